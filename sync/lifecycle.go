package sync

import (
	"context"
	"log/slog"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/ctsync/ctsync/ratelog"
	"github.com/hashicorp/memberlist"
)

// DefaultForgetDeparted is how long a member that left or failed stays in
// Members (as left or dead) before it is dropped from the list.
const DefaultForgetDeparted = 5 * time.Minute

// misconfigEvery is the interval of the lines that repeat as long as a
// node is misconfigured (another cluster key or name, no peer reachable):
// once a minute, however often the join is retried.
const misconfigEvery = time.Minute

// lifecycle logs what happens to peers — joined, suspect, failed, left,
// back; streams up and down; in and out of sync — at INFO, one line per
// event with the peer, its address and the reason, at most one line per
// peer and kind of event per Config.EventEvery (a flapping peer cannot
// flood the log). It also keeps the evidence Healthy gives as the reason a
// node never synced.
type lifecycle struct {
	lim  *ratelog.Limiter // per peer and kind of event
	slow *ratelog.Limiter // misconfiguration, per cause

	// Evidence of why this node may never have synced: unix ns of the
	// last traffic refused for the cluster key, for the cluster name, and
	// of the last failed join (with its error).
	keyFail, labelFail, joinFail atomic.Int64
	joinErr                      atomic.Value // string

	mu     stdsync.Mutex
	insync map[string]syncMark // by peer name: the in-sync state last logged
}

type syncMark struct {
	logged   bool      // "in sync" was logged last
	outSince time.Time // when the peer stopped being in sync (zero: it is)
}

func newLifecycle(every time.Duration) lifecycle {
	return lifecycle{lim: ratelog.New(every), slow: ratelog.New(misconfigEvery), insync: map[string]syncMark{}}
}

// event logs one lifecycle event of peer at INFO, rate-limited per peer
// and kind.
func (n *Node) event(kind, peer, addr, reason string, args ...any) {
	args = append([]any{"peer", peer, "addr", addr, "reason", reason}, args...)
	n.life.lim.Log(context.Background(), n.log, slog.LevelInfo, kind+"\x00"+peer, kind, args...)
}

// Authentication failure causes.
const (
	causeKey   = "key"
	causeLabel = "label"
)

// authFailed counts a packet, stream or join refused for the cluster key
// or name (cause), and remembers it for Healthy.
func (n *Node) authFailed(cause string) {
	now := time.Now().UnixNano()
	if cause == causeLabel {
		n.life.labelFail.Store(now)
	} else {
		n.life.keyFail.Store(now)
	}
}

// authCause says which of the cluster key or name a refusal's text is
// about ("" when neither).
func authCause(msg string) string {
	switch {
	case strings.Contains(msg, "label"):
		return causeLabel
	case memberlistAuthFailure(msg), strings.Contains(msg, "decrypt"), strings.Contains(msg, "encrypt"):
		return causeKey
	}
	return ""
}

// joinFailed records a failed join of peers and says so, once a minute
// per cause: a node that never joins (no peer reachable, another cluster
// key) is otherwise silent at INFO.
func (n *Node) joinFailed(peers string, err error) {
	n.stats.joinFailures.Add(1)
	msg := err.Error()
	n.life.joinFail.Store(time.Now().UnixNano())
	n.life.joinErr.Store(joinErrText(msg))
	reason := "no peer reachable"
	switch authCause(msg) {
	case causeKey:
		n.authFailed(causeKey)
		reason = "the peer holds another cluster key (cluster.key_file), or none"
	case causeLabel:
		n.authFailed(causeLabel)
		reason = "the peer has another cluster name (cluster.name)"
	}
	n.life.slow.Log(context.Background(), n.log, slog.LevelWarn, "join failed: "+reason, "cannot join the cluster, retrying",
		"peers", peers, "reason", reason, "err", joinErrText(msg))
}

// joinErrText flattens memberlist's multi-error ("1 error occurred:\n\t* ...").
func joinErrText(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l != "" && !strings.HasSuffix(l, "occurred:") {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// refreshMembers reads memberlist's view of every node into n.members and
// logs the changes since the last look.
func (n *Node) refreshMembers() {
	if n.table != nil {
		n.memMu.Lock()
		gen := n.memGen
		n.memMu.Unlock()
		rows := n.table.read()
		n.memMu.Lock()
		// An event that came in meanwhile is newer than what was read:
		// the next refresh (the event nudges one) reads again.
		if n.memGen == gen {
			for _, r := range rows {
				n.members[r.name] = refreshed(n.members[r.name], r)
			}
		}
		n.memMu.Unlock()
	}
	n.logMembers()
}

func refreshed(old member, r mlNode) member {
	m := member{state: r.state, since: r.since, logged: old.logged, seen: old.seen}
	m.addr, m.ip = memberAddrOf(r.addr, r.port)
	return m
}

// logMembers logs each member's state change since it was last logged.
func (n *Node) logMembers() {
	type change struct {
		name, addr string
		from, to   memberlist.NodeStateType
		first      bool
		was        time.Duration // how long it was in from
	}
	var changes []change
	now := time.Now()
	n.memMu.Lock()
	for name, m := range n.members {
		if name == n.cfg.Node || (m.seen && m.logged == m.state) {
			continue
		}
		changes = append(changes, change{name: name, addr: m.addr, from: m.logged, to: m.state, first: !m.seen, was: now.Sub(m.since)})
		m.logged, m.seen = m.state, true
		n.members[name] = m
	}
	n.memMu.Unlock()
	for _, c := range changes {
		switch {
		case c.first && c.to == memberlist.StateAlive:
			n.event("peer joined", c.name, c.addr, "memberlist: a new member of the cluster")
		case c.first:
			// Heard of through gossip, already gone: nothing happened.
		case c.to == memberlist.StateSuspect:
			n.event("peer suspect", c.name, c.addr, "it does not answer memberlist's probes: declared failed unless it answers within the suspicion timeout")
		case c.to == memberlist.StateDead:
			n.event("peer failed", c.name, c.addr, "no answer to memberlist's probes: stopped without leaving, crashed, or cut off")
		case c.to == memberlist.StateLeft:
			n.event("peer left", c.name, c.addr, "it left the cluster (stopped gracefully)")
		case c.to == memberlist.StateAlive && c.from == memberlist.StateSuspect:
			n.event("peer came back", c.name, c.addr, "it answers again and refuted the suspicion (a partition healed, or it was overloaded)", "was", "suspect")
		case c.to == memberlist.StateAlive:
			n.event("peer came back", c.name, c.addr, "it rejoined the cluster (restarted, or a partition healed)", "was", stateName(c.from))
		}
	}
}

// logSync logs peers that came into sync, and those out of sync for
// longer than a few digest periods (a busy stream is briefly behind all
// the time: that is no event). Only the Run loop calls it.
func (n *Node) logSync() {
	type state struct {
		p    *peer
		addr string
	}
	n.mu.Lock()
	peers := make([]state, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, state{p: p, addr: p.addr})
	}
	n.mu.Unlock()
	grace := 3*n.cfg.DigestEvery + time.Second
	now := time.Now()
	n.life.mu.Lock()
	defer n.life.mu.Unlock()
	for _, s := range peers {
		p := s.p
		insync := p.connected.Load() && p.caughtUp.Load() && n.recentDigest(p)
		mark := n.life.insync[p.name]
		switch {
		case insync:
			mark.outSince = time.Time{}
			if !mark.logged {
				mark.logged = true
				n.event("peer in sync", p.name, s.addr, "both directions caught up, and its digest matches this node's copy of its flows")
			}
		case mark.outSince.IsZero():
			mark.outSince = now
		case mark.logged && now.Sub(mark.outSince) > grace:
			mark.logged = false
			n.event("peer out of sync", p.name, s.addr, n.outOfSyncWhy(p), "for", now.Sub(mark.outSince).Round(time.Second).String())
		}
		n.life.insync[p.name] = mark
	}
}

// outOfSyncWhy says why p is not in sync.
func (n *Node) outOfSyncWhy(p *peer) string {
	n.memMu.Lock()
	m, known := n.members[p.name]
	n.memMu.Unlock()
	switch {
	case known && m.state == memberlist.StateSuspect:
		return "it is suspect: it does not answer memberlist's probes"
	case known && m.state == memberlist.StateDead:
		return "it failed"
	case known && m.state == memberlist.StateLeft:
		return "it left the cluster"
	case !p.connected.Load():
		why := "this node's stream to it is down"
		if e, ok := p.lastErr.Load().(string); ok && e != "" {
			why += ": " + e
		}
		return why
	case !p.caughtUp.Load():
		return "this node's flows to it are not caught up (pending changes, or a snapshot under way)"
	case p.truncated.Load():
		return "this node's copy of its flows is incomplete: the external cache is full (cache.max_flows)"
	default:
		return "no matching digest of its flows lately (its stream to this node is down or behind)"
	}
}

// neverSyncedWhy says why a node that never synced did not: the most
// recent evidence of a cluster key or name mismatch, or of no peer
// reachable.
func (n *Node) neverSyncedWhy() string {
	const fresh = 2 * misconfigEvery
	now := time.Now().UnixNano()
	recent := func(t int64) bool { return t != 0 && time.Duration(now-t) < fresh }
	key, label := n.life.keyFail.Load(), n.life.labelFail.Load()
	switch {
	case recent(key) && key >= label:
		return "cluster key mismatch: cluster traffic between this node and a peer fails the cluster key (one of them holds another key in cluster.key_file, or none); see auth_failures in ctsync stats"
	case recent(label):
		return "cluster name mismatch: a peer has another cluster.name; see auth_failures in ctsync stats"
	}
	var alive []string
	for name := range n.aliveMembers() {
		alive = append(alive, name)
	}
	switch {
	case len(alive) > 0:
		return "joined, waiting for the first complete copy of the peers' flows (" + strings.Join(alive, ", ") + ")"
	case recent(n.life.joinFail.Load()):
		e, _ := n.life.joinErr.Load().(string)
		return "no peer reachable: " + e
	case len(n.cfg.Join) == 0:
		return "no peer reachable: cluster.join is empty and no peer has joined this node"
	}
	return "no peer reachable: not joined to a cluster yet"
}
