package sync

import (
	"context"
	"log/slog"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/hashicorp/memberlist"

	"github.com/ctsync/ctsync/test/wait"
)

// lineLog records the log lines at INFO and above, as text.
type lineLog struct {
	mu    stdsync.Mutex
	lines []string
	attrs []slog.Attr
}

func (l *lineLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range l.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	if len(l.lines) < 10000 {
		l.lines = append(l.lines, b.String())
	}
	l.mu.Unlock()
	return nil
}
func (l *lineLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineLogView{l, append(append([]slog.Attr(nil), l.attrs...), as...)}
}
func (l *lineLog) WithGroup(string) slog.Handler { return l }

// lineLogView is a lineLog with attributes added (they all write to the
// same lines).
type lineLogView struct {
	l     *lineLog
	attrs []slog.Attr
}

func (v *lineLogView) Enabled(ctx context.Context, lv slog.Level) bool { return v.l.Enabled(ctx, lv) }
func (v *lineLogView) Handle(ctx context.Context, r slog.Record) error {
	r2 := r.Clone()
	r2.AddAttrs(v.attrs...)
	return v.l.Handle(ctx, r2)
}
func (v *lineLogView) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineLogView{v.l, append(append([]slog.Attr(nil), v.attrs...), as...)}
}
func (v *lineLogView) WithGroup(string) slog.Handler { return v }

// matching returns the lines that contain every one of words.
func (l *lineLog) matching(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// startNodeWith is startNode with the configuration's key, label and
// logger of the test's choosing.
func startNodeWith(t *testing.T, name string, key []byte, label string, log *slog.Logger, join ...string) *testNode {
	t.Helper()
	return startNodeConfig(t, Config{Node: name, Join: join, Keys: [][]byte{key}, Label: label, Logger: log}, cache.ExternalOptions{})
}

// TestMemberlistTableReadable: memberlist's own view of the nodes can be
// read (a memberlist upgrade that changes its layout fails here).
func TestMemberlistTableReadable(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	if a.table == nil {
		t.Fatalf("memberlist's node table is not readable")
	}
	wait.For(t, "a to see b", 10*time.Second, func() bool { return a.ml.NumMembers() == 2 })
	states := map[string]memberlist.NodeStateType{}
	for _, r := range a.table.read() {
		states[r.name] = r.state
		if r.since.IsZero() || r.port == 0 || r.addr == nil {
			t.Errorf("row %+v lacks its time, port or address", r)
		}
	}
	if len(states) != 2 || states["a"] != memberlist.StateAlive || states["b"] != memberlist.StateAlive {
		t.Fatalf("memberlist's table reads %v, want a and b alive", states)
	}
	_ = b
}

// TestWrongKeySaysSoOnce: a node whose key differs from its peer's says
// so on both sides, once in a while, not at every join attempt.
func TestWrongKeySaysSoOnce(t *testing.T) {
	la, lb := &lineLog{}, &lineLog{}
	a := startNodeWith(t, "a", newKey(t), "test", slog.New(la))
	b := startNodeWith(t, "b", newKey(t), "test", slog.New(lb), a.Addr())
	wait.For(t, "many join attempts", 20*time.Second, func() bool { return b.Stats().JoinFailures >= 15 })
	joiner := lb.matching("cluster key")
	joined := la.matching("decrypt")
	t.Logf("over %d join attempts:\njoiner: %s\njoined: %s", b.Stats().JoinFailures, strings.Join(joiner, "\n"), strings.Join(joined, "\n"))
	if len(joiner) != 1 || len(joined) != 1 {
		t.Fatalf("over %d join attempts the joiner logged %d lines about the key, the joined node %d: want 1 each",
			b.Stats().JoinFailures, len(joiner), len(joined))
	}
}

// TestNeverSyncedReasons: a node that never synced says why: no peer
// reachable, a cluster key mismatch, or a cluster name mismatch.
func TestNeverSyncedReasons(t *testing.T) {
	reason := func(n *testNode) string { _, why := n.Healthy(); return why }
	waitReason := func(t *testing.T, n *testNode, want string) {
		t.Helper()
		wait.For(t, n.cfg.Node+" to say: "+want, 20*time.Second, func() bool { return strings.Contains(reason(n), want) })
		if ok, why := n.Healthy(); ok {
			t.Fatalf("%s is ready: %s", n.cfg.Node, why)
		}
		t.Logf("%s: %s", n.cfg.Node, reason(n))
	}
	t.Run("no peer reachable", func(t *testing.T) {
		lone := startNode(t, "lone", newKey(t))
		waitReason(t, lone, "no peer reachable: cluster.join is empty")
		// Port 1 of the loopback: nothing listens there.
		n := startNode(t, "n", newKey(t), "127.0.0.1:1")
		waitReason(t, n, "no peer reachable: failed to join 127.0.0.1:1")
	})
	t.Run("key mismatch", func(t *testing.T) {
		a := startNode(t, "a", newKey(t))
		b := startNode(t, "b", newKey(t), a.Addr())
		waitReason(t, a, "cluster key mismatch")
		waitReason(t, b, "cluster key mismatch")
	})
	t.Run("cluster name mismatch", func(t *testing.T) {
		key := newKey(t)
		a := startNodeWith(t, "a", key, "one", nil)
		b := startNodeWith(t, "b", key, "two", nil, a.Addr())
		waitReason(t, a, "cluster name mismatch")
		_ = b
	})
}

// TestLeaveEventDeparts: memberlist's NotifyLeave carries a Node whose
// State says alive (memberlist never sets it); the member must depart all
// the same: no stream, no key operation goes to it.
func TestLeaveEventDeparts(t *testing.T) {
	a := startNode(t, "a", newKey(t))
	x := &memberlist.Node{Name: "x", Addr: []byte{127, 0, 0, 1}, Port: 1}
	events{a.Node}.NotifyJoin(x)
	if _, ok := a.aliveMembers()["x"]; !ok {
		t.Fatalf("x is not alive after its join")
	}
	events{a.Node}.NotifyLeave(x)
	if _, ok := a.aliveMembers()["x"]; ok {
		t.Fatalf("x is still alive after memberlist said it left")
	}
	for _, m := range a.Members() {
		if m.Name == "x" && m.State != "dead" {
			t.Fatalf("x shows %q after it went, want dead (memberlist's table no longer has it)", m.State)
		}
	}
}

// TestLifecycleLinesRateLimited: a flapping peer logs one line per kind
// per interval; other peers and other kinds are not held back by it.
func TestLifecycleLinesRateLimited(t *testing.T) {
	l := &lineLog{}
	a := startNodeWith(t, "a", newKey(t), "test", slog.New(l))
	for range 100 {
		a.event("stream to peer down", "flappy", "127.0.0.1:1", "EOF")
		a.event("stream to peer up", "flappy", "127.0.0.1:1", "connected")
	}
	a.event("stream to peer down", "steady", "127.0.0.1:2", "EOF")
	if got := len(l.matching("stream to peer", "peer=flappy")); got != 2 {
		t.Fatalf("200 events of a flapping peer logged %d lines, want 2 (one per kind)", got)
	}
	if got := len(l.matching("stream to peer down", "peer=steady")); got != 1 {
		t.Fatalf("another peer's event logged %d lines, want 1", got)
	}
}
