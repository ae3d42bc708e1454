package agent

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	stdsync "sync"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// AddrKernel is the part of kernel.Conn that tells this node's own
// addresses (those of the served network namespace). A Kernel without it
// is taken to serve the daemon's own namespace.
type AddrKernel interface {
	LocalAddrs() ([]netip.Addr, error)
}

// localAddrs caches this node's addresses between reads.
type localAddrs struct {
	mu   stdsync.Mutex
	set  map[netip.Addr]struct{} // replaced, never changed: readers keep theirs
	read int64                   // monotonic ns of the last read; 0 = never
}

// hotAddrsMaxAge is how old the addresses hot standby's passes use may be:
// a pass runs at every change, too often to read them each time.
const hotAddrsMaxAge = time.Second

// ownAddrs returns this node's addresses, read again when the last read is
// older than maxAge (0: now). When they cannot be read the last known ones
// are used (none before a first read), and a warning says so.
func (a *Agent) ownAddrs(maxAge time.Duration) map[netip.Addr]struct{} {
	l := &a.local
	l.mu.Lock()
	defer l.mu.Unlock()
	now := a.monotonic()
	if l.read != 0 && maxAge > 0 && now-l.read < int64(maxAge) {
		return l.set
	}
	var addrs []netip.Addr
	var err error
	if ak, ok := a.kern.(AddrKernel); ok {
		addrs, err = ak.LocalAddrs()
	} else {
		var ias []net.Addr
		if ias, err = net.InterfaceAddrs(); err == nil {
			addrs = kernel.IPAddrs(ias)
		}
	}
	if err != nil {
		a.warn.Warn(a.log, "own addresses", "cannot read this node's addresses: peers' flows to or from it are refused by the last known ones only", "err", err)
		return l.set
	}
	set := make(map[netip.Addr]struct{}, len(addrs))
	for _, x := range addrs {
		set[x.Unmap().WithZone("")] = struct{}{}
	}
	l.set, l.read = set, now
	return set
}

// inGate decides which of the peers' flows may be written into this
// node's kernel table (commit, hot standby): those its own filter would
// replicate (filter.*: a flow it would keep to itself has no business
// arriving from a peer either), and never, whatever the configuration, a
// flow with a loopback or unspecified address, or one that ends or starts
// at this node itself without NAT. A forwarded flow NATed to or from one
// of its addresses (a VRRP virtual address that moved here) passes.
type inGate struct {
	f     *replFilter
	local map[netip.Addr]struct{}
}

// inGate returns the gate for a write, with this node's addresses read
// at most maxAge ago (0: now).
func (a *Agent) inGate(maxAge time.Duration) inGate {
	return inGate{f: a.filter.Load(), local: a.ownAddrs(maxAge)}
}

// Why a peer's flow is refused.
const (
	refusedLoopback = "loopback or unspecified address"
	refusedOwn      = "ends or starts at this node's own address"
	refusedFilter   = "refused by this node's filter"
)

// refuse returns why fl must not be written on this node, or "".
func (g inGate) refuse(fl *flow.Flow) string {
	for _, x := range [...]netip.Addr{fl.Orig.Src, fl.Orig.Dst, fl.Reply.Src, fl.Reply.Dst} {
		x = x.Unmap()
		if x.IsLoopback() || x.IsUnspecified() {
			return refusedLoopback
		}
	}
	if len(g.local) > 0 {
		// Ends here: to an own address, not DNATed away (the reply comes
		// from the address it was sent to). Starts here: from an own
		// address, not SNATed (the reply goes back to it).
		dst, src := fl.Orig.Dst.Unmap().WithZone(""), fl.Orig.Src.Unmap().WithZone("")
		if _, ok := g.local[dst]; ok && fl.Reply.Src.Unmap().WithZone("") == dst {
			return refusedOwn
		}
		if _, ok := g.local[src]; ok && fl.Reply.Dst.Unmap().WithZone("") == src {
			return refusedOwn
		}
	}
	if !g.f.pass(fl) {
		return refusedFilter
	}
	return ""
}

// refusals count the peers' flows one write refused, and keep the first
// as an example for the log.
type refusals struct {
	n       int
	example string
}

// add counts fl, refused for why; each is logged at debug level.
func (r *refusals) add(log *slog.Logger, fl *flow.Flow, why string) {
	r.n++
	debug := log.Enabled(context.Background(), slog.LevelDebug)
	if r.n > 1 && !debug {
		return
	}
	text := string(fl.AppendText(nil, flow.TextOptions{}))
	if r.n == 1 {
		r.example = why + ": " + text
	}
	if debug {
		log.Debug("peer's flow not written to the kernel table: this node refuses it", "why", why, "flow", text)
	}
}
