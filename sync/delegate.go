package sync

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ctsync/ctsync/ratelog"
	"github.com/hashicorp/memberlist"
)

// delegate answers memberlist. Flows never travel through it: user
// messages other than key rotation's (keys.go) are not expected (counted
// and dropped), and there is no
// push/pull state (the 20 MiB cap and whole-state copies make it unfit).
type delegate struct{ n *Node }

func (d delegate) NodeMeta(limit int) []byte { return []byte{wireVersion} }
func (d delegate) NotifyMsg(b []byte) {
	if !d.n.handleKeyMsg(b) { // key rotation requests are the only user messages
		d.n.stats.unexpectedMsgs.Add(1)
	}
}
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d delegate) LocalState(join bool) []byte                { return nil }
func (d delegate) MergeRemoteState(buf []byte, join bool)     {}

// events nudges the reconcile loop; memberlist calls it synchronously, so
// it never blocks.
type events struct{ n *Node }

func (e events) nudge() {
	select {
	case e.n.kick <- struct{}{}:
	default:
	}
}

// memberlist calls these with its node lock held; the *memberlist.Node
// must be copied here and never kept (memberlist changes it later without
// telling readers: reading it afterwards is a data race). Its State is not
// memberlist's view of the node (memberlist never sets it): a join or an
// update means alive, a leave means dead or left (which one, and suspicion,
// the next refreshMembers reads from memberlist's table).
func (e events) NotifyJoin(m *memberlist.Node) {
	e.n.memberEvent(m, memberlist.StateAlive)
	e.n.retryNow(m.Name)
	e.nudge()
}
func (e events) NotifyLeave(m *memberlist.Node) {
	e.n.memberEvent(m, memberlist.StateDead)
	e.nudge()
}
func (e events) NotifyUpdate(m *memberlist.Node) {
	e.n.memberEvent(m, memberlist.StateAlive)
	e.n.retryNow(m.Name)
	e.nudge()
}

// member is our copy of what memberlist knows of a node.
type member struct {
	addr   string
	ip     netip.Addr // addr's IP, unmapped
	state  memberlist.NodeStateType
	since  time.Time                // when state began
	logged memberlist.NodeStateType // the state last logged (lifecycle.go)
	seen   bool                     // logged at least once
}

// setMember records m with the state it carries (tests set it).
func (n *Node) setMember(m *memberlist.Node) {
	n.putMember(m.Name, m.Addr, m.Port, m.State, time.Now())
}

// memberEvent records what a memberlist event says of m.
func (n *Node) memberEvent(m *memberlist.Node, state memberlist.NodeStateType) {
	n.memMu.Lock()
	n.memGen++
	n.memMu.Unlock()
	n.putMember(m.Name, m.Addr, m.Port, state, time.Now())
}

func (n *Node) putMember(name string, addr net.IP, port uint16, state memberlist.NodeStateType, since time.Time) {
	mb := member{state: state, since: since}
	mb.addr, mb.ip = memberAddrOf(addr, port)
	n.memMu.Lock()
	old, ok := n.members[name]
	if ok {
		mb.logged, mb.seen = old.logged, old.seen
		if old.state == state {
			mb.since = old.since
		}
	}
	n.members[name] = mb
	n.memMu.Unlock()
}

// memberAddrOf returns a node's address as host:port, and its IP unmapped.
func memberAddrOf(addr net.IP, port uint16) (string, netip.Addr) {
	var ip netip.Addr
	if a, ok := netip.AddrFromSlice(addr); ok {
		ip = a.Unmap()
	}
	return net.JoinHostPort(addr.String(), strconv.Itoa(int(port))), ip
}

// memberAddr returns the address memberlist knows for a node, or "".
func (n *Node) memberAddr(name string) string {
	n.memMu.Lock()
	defer n.memMu.Unlock()
	return n.members[name].addr
}

// checkOrigin says why a stream from remote that names origin in its hello
// must be refused, or "" when origin is a member memberlist holds as alive
// (or suspect) at remote's IP. memberlist's view of a name is first-come:
// a name that is alive at one address cannot be claimed from another. The
// binding is by IP, not port: a stream leaves from an ephemeral port of
// the node's advertised IP (stream binds it), so a key holder on the same
// IP is the same host.
func (n *Node) checkOrigin(origin string, remote net.Addr) string {
	n.memMu.Lock()
	m, ok := n.members[origin]
	n.memMu.Unlock()
	switch {
	case !ok:
		return "not a member (unknown to memberlist, or not yet)"
	case m.state != memberlist.StateAlive && m.state != memberlist.StateSuspect:
		return "not an alive member (" + stateName(m.state) + ")"
	}
	var ip netip.Addr
	if ta, ok := remote.(*net.TCPAddr); ok {
		ip = ta.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
		ip = ap.Addr().Unmap()
	}
	if !ip.IsValid() || ip != m.ip {
		return "the member is alive at another address (" + m.addr + ")"
	}
	return ""
}

// rejoining reports whether origin is a member that left or failed and
// remote is at its IP: most likely the member itself, restarted.
func (n *Node) rejoining(origin string, remote net.Addr) bool {
	n.memMu.Lock()
	m, ok := n.members[origin]
	n.memMu.Unlock()
	ap, err := netip.ParseAddrPort(remote.String())
	return ok && departed(m.state) && err == nil && ap.Addr().Unmap() == m.ip
}

// everMember reports whether memberlist ever told us of a node of that name.
func (n *Node) everMember(name string) bool {
	n.memMu.Lock()
	defer n.memMu.Unlock()
	_, ok := n.members[name]
	return ok
}

// aliveMembers returns the other nodes memberlist considers alive (or
// suspect), by name, with their addresses.
func (n *Node) aliveMembers() map[string]string {
	n.memMu.Lock()
	defer n.memMu.Unlock()
	out := make(map[string]string, len(n.members))
	for name, m := range n.members {
		if name != n.cfg.Node && (m.state == memberlist.StateAlive || m.state == memberlist.StateSuspect) {
			out[name] = m.addr
		}
	}
	return out
}

// logBridge turns memberlist's "[LEVEL] memberlist: ..." lines into slog.
//
// memberlist logs a line for every packet and stream it rejects, and
// anyone can send those (UDP needs not even a real source address), so its
// warnings and errors go through the node's rate limiter, keyed by the
// line's kind (memberlistKind: the words before any address, number, quote
// or error detail), one line per kind per interval with the count of those
// suppressed. Lines that say a packet or stream failed the cluster key or
// label — the stranger's traffic, or a peer with another key or cluster
// name — are counted as authentication failures, and logged once a minute
// per kind with the reason (misconfigEvery).
// Debug and info lines pass as they are (memberlist logs them for its own
// events, not per received packet).
type logBridge struct {
	log       *slog.Logger
	lim, slow *ratelog.Limiter
	authFail  func(cause string)
}

func newLogBridge(l *slog.Logger, lim, slow *ratelog.Limiter, authFail func(cause string)) *log.Logger {
	return log.New(logBridge{l.With("lib", "memberlist"), lim, slow, authFail}, "", 0)
}

func (b logBridge) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lv := range []struct {
		tag string
		l   slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}} {
		if i := bytes.Index(line, []byte(lv.tag)); i >= 0 {
			level = lv.l
			line = bytes.TrimSpace(line[i+len(lv.tag):])
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	msg := string(line)
	if level < slog.LevelWarn {
		b.log.Log(context.Background(), level, msg)
		return len(p), nil
	}
	if memberlistAuthFailure(msg) {
		cause := authCause(msg)
		if b.authFail != nil {
			b.authFail(cause)
		}
		reason := "the sender holds another cluster key (cluster.key_file), or none"
		if cause == causeLabel {
			reason = "the sender has another cluster name (cluster.name)"
		}
		b.slow.Log(context.Background(), b.log, level, "memberlist: "+memberlistKind(msg), msg, "reason", reason)
		return len(p), nil
	}
	b.lim.Log(context.Background(), b.log, level, "memberlist: "+memberlistKind(msg), msg)
	return len(p), nil
}

// memberlistAuthFailures are the parts of memberlist's (v0.7) log lines for
// a packet or stream refused for the cluster key or label.
var memberlistAuthFailures = []string{
	"Decrypt packet failed",                    // UDP: no key opens it
	"no installed keys could decrypt",          // streams, in "failed to receive: ..."
	"unacceptable label",                       // packet or stream of another (or no) label
	"label header",                             // a malformed label header
	"cannot decode label",                      // a truncated one
	"remote state is encrypted and encryption", // an encrypted stream to an insecure node
	"encryption is configured but remote state is not encrypted",
}

func memberlistAuthFailure(msg string) bool {
	for _, s := range memberlistAuthFailures {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// memberlistKind reduces a memberlist log line to its kind, the rate
// limiter's key: the line up to the first colon, quote, parenthesis or
// "from=" (where the error detail, a label, a node name or an address
// begins), digits dropped, at most six words. A sender cannot make a new
// kind per packet by varying its address, label or payload.
func memberlistKind(msg string) string {
	if i := strings.IndexAny(msg, ":\"'(%"); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "from="); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, msg)
	w := strings.Fields(msg)
	return strings.Join(w[:min(len(w), 6)], " ")
}

// Member is one cluster member as an operator sees it.
type Member struct {
	Name      string  `json:"name"`
	Addr      string  `json:"addr"`
	State     string  `json:"state"`         // alive, suspect, dead, left
	Since     float64 `json:"since_seconds"` // how long it has been in that state
	Self      bool    `json:"self"`
	Connected bool    `json:"connected"` // our stream to it is up
	InSync    bool    `json:"in_sync"`   // both directions caught up
}

// Members lists the cluster members as memberlist sees them now, this node
// first. A member that left or failed is listed as such for
// Config.ForgetDeparted, then no more.
func (n *Node) Members() []Member {
	n.refreshMembers()
	var out []Member
	now := time.Now()
	n.memMu.Lock()
	copies := make(map[string]member, len(n.members))
	for name, m := range n.members {
		if departed(m.state) && now.Sub(m.since) > n.cfg.ForgetDeparted {
			continue
		}
		copies[name] = m
	}
	n.memMu.Unlock()
	for name, m := range copies {
		mb := Member{Name: name, Addr: m.addr, State: stateName(m.state), Self: name == n.cfg.Node,
			Since: max(now.Sub(m.since), 0).Round(time.Second).Seconds()}
		if !mb.Self {
			n.mu.Lock()
			p := n.peers[name]
			n.mu.Unlock()
			if p != nil {
				mb.Connected = p.connected.Load()
				mb.InSync = p.caughtUp.Load() && n.recentDigest(p)
			}
		}
		out = append(out, mb)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Self != out[j].Self {
			return out[i].Self
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func departed(s memberlist.NodeStateType) bool {
	return s == memberlist.StateDead || s == memberlist.StateLeft
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

func (n *Node) recentDigest(p *peer) bool {
	t := p.digestOK.Load()
	return t != 0 && time.Since(time.Unix(0, t)) < 3*n.cfg.DigestEvery+time.Second
}
