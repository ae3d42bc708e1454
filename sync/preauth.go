package sync

import (
	"net"
	"net/netip"
	stdsync "sync"
	"sync/atomic"
	"time"
)

// The pre-authentication bounds. Anyone who reaches the cluster port can
// open connections; until a connection's peer has proven the cluster key
// (or memberlist is done with it) it holds one slot, of which there are
// maxPreAuth in all and maxPreAuthPerSource per source address (per /64
// for IPv6, where one host owns a whole prefix). A connection over either
// bound is closed at once and counted (Stats.PreAuthRefused).
//
// A real peer needs at most a few slots at a time: its replication stream
// for the length of the handshake (milliseconds on a LAN), memberlist's
// push/pull and fallback-ping streams, and a reconnect burst after a
// restart or a partition; 16 leaves ample room. A stranger with many
// addresses can fill the global bound, which then delays new streams (not
// established ones) until its connections hit preAuthTimeout; it cannot
// make the node hold more than maxPreAuth connections' worth of memory (a
// goroutine and a few hundred bytes each, about 10 KiB).
const (
	maxPreAuth          = 256
	maxPreAuthPerSource = 16
)

// preAuthTimeout bounds the life of an unauthenticated connection: its
// first byte and, for a replication stream, the whole server side of the
// handshake including the client's key confirmation. A handshake is three
// small messages, a few round trips; 5 s is generous even on a congested
// link. (The dialling side keeps hsTimeout.) A variable for tests: a
// transport reads it when it is made.
var preAuthTimeout = 5 * time.Second

// preAuthGate counts the connections that have not authenticated yet.
type preAuthGate struct {
	max, perSource int
	refused        atomic.Uint64 // connections closed at once for a bound

	mu    stdsync.Mutex
	open  int
	peak  int                // the most open at once (tests)
	bySrc map[netip.Addr]int // open per source; at most max entries
}

func newPreAuthGate(total, perSource int) *preAuthGate {
	return &preAuthGate{max: total, perSource: perSource, bySrc: make(map[netip.Addr]int)}
}

// sourceKey is what the per-source bound counts by: the address, or its
// /64 for IPv6.
func sourceKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			ip = p.Addr()
		}
	}
	return ip
}

// acquire takes a slot for a connection from addr. It returns false when a
// bound is reached (the refusal is counted); otherwise release gives the
// slot back and may be called any number of times.
func (g *preAuthGate) acquire(addr net.Addr) (release func(), ok bool) {
	src := sourceKey(addr)
	g.mu.Lock()
	if g.open >= g.max || g.bySrc[src] >= g.perSource {
		g.mu.Unlock()
		g.refused.Add(1)
		return nil, false
	}
	g.open++
	g.peak = max(g.peak, g.open)
	g.bySrc[src]++
	g.mu.Unlock()
	var once stdsync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.open--
			if g.bySrc[src]--; g.bySrc[src] <= 0 {
				delete(g.bySrc, src)
			}
			g.mu.Unlock()
		})
	}, true
}

// counts returns the open connections and the peak (tests).
func (g *preAuthGate) counts() (open, peak int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.peak
}
