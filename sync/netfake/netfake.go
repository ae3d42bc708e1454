// Package netfake is a sync.Network for fault-injection tests: the host's
// network, except that it can be partitioned. Give each node its own
// Network (sync.Config.Network, agent.Options.Network); a partition is
// complete when every node on both sides of it is cut.
//
// Imported only by tests.
package netfake

import (
	"context"
	"errors"
	"net"
	stdsync "sync"
)

// ErrPartitioned is the error of a dial across a partition.
var ErrPartitioned = errors.New("partitioned (fault injection)")

// Network is the host's network with a partition that can be set and
// healed. Its methods are safe for concurrent use.
type Network struct {
	mu      stdsync.Mutex
	blocked func(addr string) bool // nil: no partition
	open    map[*conn]struct{}     // connections dialled and not closed
}

// New returns a Network with no partition.
func New() *Network { return &Network{open: make(map[*conn]struct{})} }

// Partition cuts the node off from every address for which blocked returns
// true (nil heals): memberlist's packets to them are dropped, dials to
// them refused, and the connections already open to them closed (which
// ends the streams at both ends).
func (n *Network) Partition(blocked func(addr string) bool) {
	n.mu.Lock()
	n.blocked = blocked
	var cut []*conn
	for c := range n.open {
		if blocked != nil && blocked(c.addr) {
			cut = append(cut, c)
		}
	}
	n.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// DialContext dials addr unless a partition cuts it off; a partition set
// while the dial was under way closes the new connection.
func (n *Network) DialContext(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	if !n.Deliver(addr) {
		return nil, ErrPartitioned
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cutLocked(addr) {
		nc.Close()
		return nil, ErrPartitioned
	}
	c := &conn{Conn: nc, addr: addr, net: n}
	n.open[c] = struct{}{}
	return c, nil
}

// Deliver reports whether a packet to addr gets through the partition.
func (n *Network) Deliver(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.cutLocked(addr)
}

func (n *Network) cutLocked(addr string) bool { return n.blocked != nil && n.blocked(addr) }

// conn is a dialled connection, tracked until it is closed.
type conn struct {
	net.Conn
	addr string
	net  *Network
}

func (c *conn) Close() error {
	c.net.mu.Lock()
	delete(c.net.open, c)
	c.net.mu.Unlock()
	return c.Conn.Close()
}
