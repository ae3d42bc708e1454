package sync

import (
	"context"
	"net"
)

// Network is how a Node reaches other nodes: the TCP connections it dials
// (memberlist's streams and the replication streams) and the memberlist
// packets it sends. Config.Network nil is the host's network; tests give
// one that can cut links (package sync/netfake), as memberlist's
// MockNetwork and wireguard-go's conn/bindtest do.
type Network interface {
	// DialContext connects to addr over TCP with d's options.
	DialContext(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error)
	// Deliver reports whether a memberlist packet to addr is sent; false
	// drops it silently, as a cut link would.
	Deliver(addr string) bool
}

// hostNetwork is the host's network: every dial and packet goes out.
type hostNetwork struct{}

func (hostNetwork) DialContext(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	return d.DialContext(ctx, "tcp", addr)
}

func (hostNetwork) Deliver(string) bool { return true }
