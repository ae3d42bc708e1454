package test

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// ctList is conntrack -L -o id in ns, one line per entry.
func ctList(t *testing.T, ns string) []string {
	t.Helper()
	out, err := kerneltest.Conntrack(t, ns, "-L", "-o", "id")
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// ctEntry returns the conntrack -L line whose original direction starts
// with "src=SRC dst=DST", or "".
func ctEntry(lines []string, src, dst string) string {
	for _, l := range lines {
		if i := strings.Index(l, " src="); i >= 0 && strings.HasPrefix(l[i:], " src="+src+" dst="+dst+" ") {
			return l
		}
	}
	return ""
}

var ctID = regexp.MustCompile(`id=(\d+)`)

func ctIDs(t *testing.T, ns string) map[string]string {
	t.Helper()
	ids := make(map[string]string)
	for _, l := range ctList(t, ns) {
		m := ctID.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("no id in %q", l)
		}
		ids[strings.Fields(l)[4]] = m[1] // the original source
	}
	return ids
}

func commitOK(t *testing.T, what string, c *control.CommitResult, created, replaced int) {
	t.Helper()
	if c == nil || c.Created != created || c.Replaced != replaced || c.Failed != 0 || c.KeptLocal != 0 || c.Remaining != 0 {
		t.Fatalf("%s: %+v, want %d created, %d replaced, nothing failed, kept local or remaining", what, c, created, replaced)
	}
}

// TestCommitTwiceKernel: master, backup, master again within
// purge_timeout. The second commit finds every flow in the kernel
// already: each is updated in place (the same entry, by its id, with the
// replica's new mark), none fails.
func TestCommitTwiceKernel(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b, ns := startKernelAgent(t, "fw-b", key, a.agent.Addr())
	const n = 4
	for i := 1; i <= n; i++ {
		a.kern.Insert(natFlow(i))
	}
	wait.For(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == n })
	ctx := context.Background()
	res, err := b.agent.Notify(ctx, "master")
	if err != nil {
		t.Fatalf("notify master: %v", err)
	}
	commitOK(t, "first commit", res.Commit, n, 0)
	ids := ctIDs(t, ns)
	if len(ids) != n {
		t.Fatalf("b's kernel holds %d entries after the commit, want %d", len(ids), n)
	}
	if _, err := b.agent.Notify(ctx, "backup"); err != nil {
		t.Fatalf("notify backup: %v", err)
	}
	changed := natFlow(1)
	changed.Mark = 77
	a.kern.Update(changed)
	wait.For(t, "the resync after backup", 15*time.Second, func() bool {
		var f flow.Flow
		found := false
		b.agent.Cache(ctx, control.CacheQuery{Cache: "external", Origin: "fw-a"}, func(_ string, g *flow.Flow) error {
			if g.Key() == changed.Key() {
				f, found = *g, true
			}
			return nil
		})
		return cacheLen(t, b, "external", "fw-a") == n && found && f.Mark == 77
	})
	res, err = b.agent.Notify(ctx, "master")
	if err != nil {
		t.Fatalf("second notify master: %v", err)
	}
	commitOK(t, "second commit", res.Commit, 0, n)
	if res.Remaining != 0 {
		t.Fatalf("second notify master: %d flows remain, want 0", res.Remaining)
	}
	if got := ctIDs(t, ns); len(got) != n {
		t.Fatalf("b's kernel holds %v after the second commit, want the %d entries %v", got, n, ids)
	} else {
		for src, id := range ids {
			if got[src] != id {
				t.Errorf("entry %s has id %s after the second commit, want %s (updated in place)", src, got[src], id)
			}
		}
	}
	if l := ctEntry(ctList(t, ns), changed.Orig.Src.String(), changed.Orig.Dst.String()); !strings.Contains(l, "mark=77") {
		t.Fatalf("updated entry %q, want the replica's mark=77", l)
	}
}

// TestCommitCollisionsKeepLocal: a local entry of the same connection
// with other NAT is swapped for the replica; a replica the kernel refuses
// (an unknown helper) does not cost the live local entry, and
// a replica that clashes with another local connection (its original
// tuple is that connection's reply tuple) does not delete it: both are
// reported as kept local and remain in the external cache.
func TestCommitCollisionsKeepLocal(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b, ns := startKernelAgent(t, "fw-b", key, a.agent.Addr())
	ct := func(args ...string) {
		t.Helper()
		if out, err := kerneltest.Conntrack(t, ns, args...); err != nil {
			t.Fatalf("conntrack %v: %v (%s)", args, err, out)
		}
	}
	// b's own connections.
	ct("-I", "-s", "10.3.0.1", "-d", "198.51.100.30", "-p", "tcp", "--sport", "1000", "--dport", "80",
		"--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300", "-m", "5")
	ct("-I", "-s", "10.5.0.1", "-d", "198.51.100.50", "-p", "tcp", "--sport", "3000", "--dport", "80",
		"--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300", "-m", "6")
	// The same connection as a's natFlow(2), with another NAT mapping.
	ct("-I", "-s", "10.1.0.2", "-d", "198.51.100.10", "-p", "tcp", "--sport", "20002", "--dport", "443",
		"--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300", "--src-nat", "203.0.113.9:41000")

	tcp := func(src, dst string, sport, dport uint16) flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: flow.ProtoTCP, SrcPort: sport, DstPort: dport},
			Status: flow.StatusSeenReply | flow.StatusAssured, Timeout: 600, Mark: 9,
			Attrs: flow.AttrTCP, TCP: flow.TCPInfo{State: flow.TCPEstablished}}
		f.Reply = f.Orig.Invert()
		return f
	}
	refused := tcp("10.3.0.1", "198.51.100.30", 1000, 80) // the same connection, with a helper b lacks
	refused.Helper = "nosuchhelper"
	refused.Set(flow.AttrHelper)
	reverse := tcp("198.51.100.50", "10.5.0.1", 80, 3000) // b's second connection, seen from its other end
	a.kern.Insert(refused)
	a.kern.Insert(reverse)
	a.kern.Insert(natFlow(1))
	a.kern.Insert(natFlow(2))
	wait.For(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 4 })

	res, err := b.agent.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if res.Created != 1 || res.Replaced != 1 || res.KeptLocal != 2 || res.Failed != 0 || res.Remaining != 2 {
		t.Fatalf("commit %+v, want 1 created, 1 replaced, 2 kept local, 0 failed, 2 remaining", res)
	}
	lines := ctList(t, ns)
	if l := ctEntry(lines, "10.3.0.1", "198.51.100.30"); !strings.Contains(l, "mark=5") || strings.Contains(l, "helper") {
		t.Errorf("the local entry of the refused replica is %q, want it there with its mark=5 (listing %q)", l, lines)
	}
	if l := ctEntry(lines, "10.5.0.1", "198.51.100.50"); !strings.Contains(l, "mark=6") {
		t.Errorf("the local connection the reverse replica clashes with is %q, want it there with mark=6 (listing %q)", l, lines)
	}
	if l := ctEntry(lines, "198.51.100.50", "10.5.0.1"); l != "" {
		t.Errorf("the reverse replica was written: %q", l)
	}
	if l := ctEntry(lines, "10.1.0.2", "198.51.100.10"); !strings.Contains(l, " dst=203.0.113.1 sport=443 dport=30002 ") {
		t.Errorf("the entry with other NAT is %q, want it swapped for the replica's mapping 203.0.113.1:30002", l)
	}
	if len(lines) != 4 {
		t.Errorf("b's kernel holds %d entries, want 4: %q", len(lines), lines)
	}
	kept := 0
	for _, e := range res.Errors {
		if strings.HasPrefix(e, "kept local: ") {
			kept++
		}
	}
	if kept != 2 {
		t.Errorf("commit errors %q, want two 'kept local' lines", res.Errors)
	}
}

// TestCommitFailedFlowsRemain: a flow the kernel refuses at notify master
// (a RELATED flow whose master is not there) stays in the external cache;
// the transition says so, and once the cause is gone (the master is
// there) `ctsync commit` writes it.
func TestCommitFailedFlowsRemain(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b, ns := startKernelAgent(t, "fw-b", key, a.agent.Addr())
	for i := 1; i <= 3; i++ {
		a.kern.Insert(natFlow(i))
	}
	master := natFlow(100) // a's master connection, which b lacks
	related := natFlow(101)
	m := master.Orig
	related.Master = &m
	a.kern.Insert(related)
	wait.For(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 4 })
	a.stop() // a fails: b takes over with what it holds

	res, err := b.agent.Notify(context.Background(), "master")
	if err != nil {
		t.Fatalf("notify master: %v", err)
	}
	if c := res.Commit; c == nil || c.Created != 3 || c.Failed != 1 || c.Remaining != 1 || res.Remaining != 1 {
		t.Fatalf("notify master: commit %+v, %d remaining; want 3 created, 1 failed, 1 remaining", c, res.Remaining)
	}
	if got := cacheLen(t, b, "external", "fw-a"); got != 1 {
		t.Fatalf("b's external cache holds %d flows after notify master, want the 1 not written", got)
	}
	// The cause goes away: the master connection is in b's table now.
	if out, err := kerneltest.Conntrack(t, ns, "-I", "-s", master.Orig.Src.String(), "-d", master.Orig.Dst.String(), "-p", "tcp",
		"--sport", "20100", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300"); err != nil {
		t.Fatalf("conntrack -I: %v (%s)", err, out)
	}
	c, err := b.agent.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	commitOK(t, "the retry", &c, 1, 0)
	if l := ctEntry(ctList(t, ns), related.Orig.Src.String(), related.Orig.Dst.String()); l == "" {
		t.Fatalf("the RELATED flow is not in b's kernel after the retry")
	}
}
