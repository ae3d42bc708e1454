package test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	stdsync "sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/test/wait"
)

// logLines records the log lines at INFO and above, as text.
type logLines struct {
	mu    *stdsync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newLogLines() logLines { return logLines{mu: &stdsync.Mutex{}, lines: new([]string)} }

func (l logLines) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range l.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	if len(*l.lines) < 10000 {
		*l.lines = append(*l.lines, b.String())
	}
	l.mu.Unlock()
	return nil
}
func (l logLines) WithAttrs(as []slog.Attr) slog.Handler {
	l.attrs = append(append([]slog.Attr(nil), l.attrs...), as...)
	return l
}
func (l logLines) WithGroup(string) slog.Handler { return l }

// since returns the lines logged from index i on, and the next index.
func (l logLines) since(i int) ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), (*l.lines)[i:]...), len(*l.lines)
}

// wait waits for an INFO line msg about peer, from line i on.
func (l logLines) wait(t *testing.T, i int, msg, peer string) {
	t.Helper()
	wait.For(t, "the line "+msg+" for "+peer, 10*time.Second, func() bool {
		lines, _ := l.since(i)
		for _, line := range lines {
			if strings.HasPrefix(line, "INFO "+msg+" ") && strings.Contains(line, "peer="+peer+" ") {
				return true
			}
		}
		return false
	})
}

// membersText renders members as `ctsync members` does.
func membersText(ms []control.Member) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tSTATE\tSINCE\tCONNECTED\tIN-SYNC")
	yn := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	for _, m := range ms {
		name, conn, insync := m.Name, yn(m.Connected), yn(m.InSync)
		if m.Self {
			name, conn, insync = name+" (self)", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, m.Addr, m.State, (time.Duration(m.Since)*time.Second).String()+" ago", conn, insync)
	}
	tw.Flush()
	return b.String()
}

func memberState(t *testing.T, n *clusterNode, name string) string {
	ms, err := n.agent.Members(context.Background())
	if err != nil {
		t.Fatalf("members: %v", err)
	}
	for _, m := range ms {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

// TestClusterMembersTruth: `members` shows what memberlist knows now — a
// peer cut off turns suspect, then dead, and alive again when the link
// heals; a peer that stops gracefully shows left, then is dropped — and
// each of those is logged once with its reason. `keys list` asks the live
// members only.
func TestClusterMembersTruth(t *testing.T) {
	key := clusterKey(t)
	logs := newLogLines()
	withLog := func(o *agent.Options) {
		o.Logger = slog.New(logs)
		o.ForgetDeparted = 3 * time.Second
		o.EventEvery = 100 * time.Millisecond // this test is shorter than the 10 s default
	}
	a := startAgentOpts(t, "fw-a", key, nil, nil, withLog)
	b := startAgent(t, "fw-b", key, nil, a.agent.Addr())
	c := startAgent(t, "fw-c", key, nil, a.agent.Addr())
	for i := 0; i < 100; i++ {
		a.kern.Insert(natFlow(i))
		b.kern.Insert(natFlow(1000 + i))
	}
	wait.For(t, "all in sync", 20*time.Second, func() bool {
		ms, _ := a.agent.Members(context.Background())
		in := 0
		for _, m := range ms {
			if m.InSync {
				in++
			}
		}
		return in == 2
	})
	logs.wait(t, 0, "peer in sync", "fw-b")
	logs.wait(t, 0, "peer in sync", "fw-c")
	ms, _ := a.agent.Members(context.Background())
	t.Logf("fw-a: ctsync members, all up:\n%s", membersText(ms))
	_, mark := logs.since(0)

	// fw-b is cut off, on both sides.
	bAddr := b.agent.Addr()
	others := map[string]bool{a.agent.Addr(): true, c.agent.Addr(): true}
	b.net.Partition(func(addr string) bool { return others[addr] })
	a.net.Partition(func(addr string) bool { return addr == bAddr })
	c.net.Partition(func(addr string) bool { return addr == bAddr })
	suspect := ""
	wait.For(t, "fw-a to see fw-b suspect", 20*time.Second, func() bool {
		if memberState(t, a, "fw-b") != "suspect" {
			return false
		}
		ms, _ := a.agent.Members(context.Background())
		suspect = membersText(ms)
		return true
	})
	t.Logf("fw-a: ctsync members, fw-b cut off:\n%s", suspect)
	wait.For(t, "fw-a to see fw-b dead", 30*time.Second, func() bool { return memberState(t, a, "fw-b") == "dead" })
	ms, _ = a.agent.Members(context.Background())
	t.Logf("fw-a: ctsync members, fw-b failed:\n%s", membersText(ms))
	// keys list asks the live members: fw-a and fw-c.
	res, err := a.agent.ListKeys(context.Background())
	if err != nil || res.Nodes != 2 || res.Answered != 2 || len(res.Errors) != 0 {
		t.Fatalf("keys list with fw-b dead: %+v, %v; want 2 of 2 members answered, no errors", res, err)
	}

	// The link heals: fw-b comes back (its join retries reach fw-a).
	for _, n := range []*clusterNode{a, b, c} {
		n.net.Partition(nil)
	}
	wait.For(t, "fw-a to see fw-b alive and in sync", 40*time.Second, func() bool {
		ms, _ := a.agent.Members(context.Background())
		for _, m := range ms {
			if m.Name == "fw-b" {
				return m.State == "alive" && m.InSync
			}
		}
		return false
	})
	ms, _ = a.agent.Members(context.Background())
	t.Logf("fw-a: ctsync members, fw-b back:\n%s", membersText(ms))
	logs.wait(t, mark, "peer in sync", "fw-b")
	death, mark := logs.since(mark)
	t.Logf("fw-a's log, fw-b cut off and back:\n%s", strings.Join(death, "\n"))

	// fw-c stops gracefully: left, then dropped from the list.
	c.stop()
	wait.For(t, "fw-a to see fw-c left", 20*time.Second, func() bool { return memberState(t, a, "fw-c") == "left" })
	ms, _ = a.agent.Members(context.Background())
	t.Logf("fw-a: ctsync members, fw-c left:\n%s", membersText(ms))
	wait.For(t, "fw-c to be dropped from the list", 20*time.Second, func() bool { return memberState(t, a, "fw-c") == "" })
	res, err = a.agent.ListKeys(context.Background())
	if err != nil || res.Nodes != 2 || res.Answered != 2 || len(res.Errors) != 0 {
		t.Fatalf("keys list with fw-c gone: %+v, %v; want 2 of 2 members answered, no errors", res, err)
	}
	left, _ := logs.since(mark)
	t.Logf("fw-a's log, fw-c leaving:\n%s", strings.Join(left, "\n"))

	// Each event was logged, once, with its reason.
	for _, want := range []struct {
		lines       []string
		msg, peer   string
		atMost      int
		description string
	}{
		{death, "peer suspect", "fw-b", 1, "fw-b suspect"},
		{death, "peer failed", "fw-b", 1, "fw-b failed"},
		{death, "peer came back", "fw-b", 1, "fw-b back"},
		{death, "stream from peer down", "fw-b", 1, "fw-b's stream to fw-a down"},
		{death, "stream to peer up", "fw-b", 1, "fw-a's stream to fw-b up again"},
		{death, "peer out of sync", "fw-b", 1, "fw-b out of sync"},
		{death, "peer in sync", "fw-b", 1, "fw-b in sync again"},
		{left, "peer left", "fw-c", 1, "fw-c left"},
	} {
		n := 0
		for _, l := range want.lines {
			if strings.HasPrefix(l, "INFO "+want.msg+" ") && strings.Contains(l, "peer="+want.peer) && strings.Contains(l, "reason=") {
				n++
			}
		}
		if n == 0 || n > want.atMost {
			t.Errorf("%s: %d INFO lines %q for %s with a reason, want 1..%d", want.description, n, want.msg, want.peer, want.atMost)
		}
	}
}
