package test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// TestCommitSemantics: an existing entry is replaced by the replica, a
// RELATED flow is committed after its master (the kernel refuses it
// before), and every flow is counted.
func TestCommitSemantics(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	b := startAgent(t, "fw-b", key, bk, a.agent.Addr())

	master := natFlow(1)
	related := natFlow(2)
	related.Orig.DstPort, related.Reply.SrcPort = 20, 20 // an FTP data connection
	m := master.Orig
	related.Master = &m
	a.kern.Insert(master)
	a.kern.Insert(related)
	for i := 10; i < 20; i++ {
		a.kern.Insert(natFlow(i))
	}
	wait.For(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 12 })

	// b's kernel already has one of the flows, with another mark.
	stale := natFlow(10)
	stale.Mark = 999
	bk.Insert(stale)

	res, err := b.agent.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if res.Created != 11 || res.Replaced != 1 || res.Failed != 0 {
		t.Fatalf("commit result %+v, want 11 created, 1 replaced, 0 failed", res)
	}
	got, ok := bk.Get(stale.Key())
	if !ok || got.Mark != natFlow(10).Mark {
		t.Fatalf("replaced entry has mark %d, want the replica's %d", got.Mark, natFlow(10).Mark)
	}
	rel, ok := bk.Get(related.Key())
	if !ok || rel.Status&flow.StatusExpected == 0 {
		t.Fatalf("RELATED flow not committed with its master link: %+v", rel)
	}
}

// TestCommitTimeout: commit.timeout replaces every flow's remaining timeout.
func TestCommitTimeout(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	b := startAgentWith(t, "fw-b", key, bk, func(c *config.Config) { c.Commit.Timeout = config.Duration(180 * time.Second) }, a.agent.Addr())
	for i := 0; i < 5; i++ {
		a.kern.Insert(natFlow(i))
	}
	wait.For(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 5 })
	if _, err := b.agent.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range bk.Flows() {
		if f.Timeout != 180 {
			t.Fatalf("committed flow has timeout %d, want commit.timeout 180", f.Timeout)
		}
	}
	if bk.Len() != 5 {
		t.Fatalf("b's kernel holds %d flows, want 5", bk.Len())
	}
}

// TestNotifyBackupPurges: notify backup asks the peers for their flows and
// purges this node's replicated flows after purge_timeout (the box's own
// traffic stays); peers see them withdrawn. notify fault purges too.
func TestNotifyBackupPurges(t *testing.T) {
	key := clusterKey(t)
	short := func(c *config.Config) { c.PurgeTimeout = config.Duration(300 * time.Millisecond) }
	a := startAgentWith(t, "fw-a", key, nil, short)
	b := startAgentWith(t, "fw-b", key, nil, short, a.agent.Addr())
	for i := 0; i < 20; i++ {
		a.kern.Insert(natFlow(i))
	}
	local := natFlow(100)
	local.Orig.Src = netip.MustParseAddr("127.0.0.1")
	a.kern.Insert(local)
	b.kern.Insert(natFlow(200))
	wait.For(t, "replication", 15*time.Second, func() bool {
		return cacheLen(t, b, "external", "fw-a") == 20 && cacheLen(t, a, "external", "fw-b") == 1
	})
	res, err := a.agent.Notify(context.Background(), "backup")
	if err != nil || len(res.Steps) != 3 {
		t.Fatalf("notify backup: %+v %v", res, err)
	}
	wait.For(t, "the purge", 10*time.Second, func() bool { return a.kern.Len() == 1 })
	if _, ok := a.kern.Get(local.Key()); !ok {
		t.Fatalf("the purge deleted the box's own (ignored) flow")
	}
	wait.For(t, "b to see a's flows withdrawn", 10*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 0 })
	// b's flows are still held by a (it is a backup of b now).
	if got := cacheLen(t, a, "external", "fw-b"); got != 1 {
		t.Fatalf("a holds %d of b's flows after its demotion, want 1", got)
	}
	if _, err := b.agent.Notify(context.Background(), "fault"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "b's purge after a fault", 10*time.Second, func() bool { return b.kern.Len() == 0 })
	if _, err := b.agent.Notify(context.Background(), "bogus"); err == nil {
		t.Fatalf("notify with an unknown state succeeded")
	}
}

// TestCommitRepairsEventsMissedMeanwhile: a commit mutes kernel events (a
// big speed-up); a flow that packets destroy and one they create while it
// runs are repaired by the resync that follows: the internal cache, and
// then the peers, end up exact.
func TestCommitRepairsEventsMissedMeanwhile(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	b := startAgent(t, "fw-b", key, bk, a.agent.Addr())
	own := natFlow(500) // b's own flow, to be destroyed during the commit
	bk.Insert(own)
	for i := 0; i < 50; i++ {
		a.kern.Insert(natFlow(i))
	}
	wait.For(t, "replication", 15*time.Second, func() bool {
		return cacheLen(t, b, "external", "fw-a") == 50 && cacheLen(t, a, "external", "fw-b") == 1
	})
	born := natFlow(600)
	once := false
	bk.BeforeBulk = func() {
		if !once {
			once = true
			bk.Remove(own.Key()) // events are muted now: nobody is told
			bk.Insert(born)
		}
	}
	if _, err := b.agent.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	has := func(n *clusterNode, which, origin string, f flow.Flow) bool {
		found := false
		n.agent.Cache(context.Background(), control.CacheQuery{Cache: which, Origin: origin}, func(_ string, g *flow.Flow) error {
			if g.Key() == f.Key() {
				found = true
			}
			return nil
		})
		return found
	}
	wait.For(t, "b's internal cache to be repaired", 10*time.Second, func() bool {
		return cacheLen(t, b, "internal", "") == 51 && !has(b, "internal", "", own) && has(b, "internal", "", born)
	})
	wait.For(t, "a to follow", 10*time.Second, func() bool {
		return cacheLen(t, a, "external", "fw-b") == 51 && !has(a, "external", "fw-b", own) && has(a, "external", "fw-b", born)
	})
}

// misconfiguredPeerFlows are what a peer that replicates everything (no
// ignore_addresses) sends to a node whose own address is 192.0.2.2, whose
// VRRP address is 192.0.2.100 and which ignores 192.0.2.50: a loopback
// flow, one to the ignored address and one to the node's own address
// (refused), and forwarded ones, plain, SNATed to the VRRP address and
// DNATed from it (written).
func misconfiguredPeerFlows() (refused, written []flow.Flow) {
	f := func(i int, src, dst, rsrc, rdst string) flow.Flow {
		fl := natFlow(i)
		fl.Orig.Src, fl.Orig.Dst = netip.MustParseAddr(src), netip.MustParseAddr(dst)
		fl.Reply = fl.Orig.Invert()
		fl.Reply.Src, fl.Reply.Dst = netip.MustParseAddr(rsrc), netip.MustParseAddr(rdst)
		return fl
	}
	refused = []flow.Flow{
		f(1, "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"),
		f(2, "10.1.0.9", "192.0.2.50", "192.0.2.50", "10.1.0.9"),
		f(3, "10.1.0.9", "192.0.2.2", "192.0.2.2", "10.1.0.9"),
	}
	written = []flow.Flow{
		f(4, "10.1.0.6", "198.51.100.10", "198.51.100.10", "10.1.0.6"),
		f(5, "10.1.0.5", "198.51.100.10", "198.51.100.10", "192.0.2.100"),
		f(6, "198.51.100.20", "192.0.2.100", "10.1.0.7", "198.51.100.20"),
	}
	return refused, written
}

// refusingNode configures the node misconfiguredPeerFlows are sent to.
func refusingNode(c *config.Config) { c.Filter.IgnoreAddresses = []string{"192.0.2.50"} }

func trustingNode(c *config.Config) { c.Filter.IgnoreAddresses = nil }

// TestCommitSkipsRefusedFlows: at notify master, a node writes only the
// peer's flows it would accept itself: not a loopback flow, not one its
// filter ignores, not one to its own address; the flows NATed to or from
// its VRRP address (local by then) are written. The others are skipped,
// not failed.
func TestCommitSkipsRefusedFlows(t *testing.T) {
	key := clusterKey(t)
	a := startAgentWith(t, "fw-a", key, nil, trustingNode)
	bk := kerneltest.NewMemTable()
	bk.SetLocalAddrs(netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.100"))
	b := startAgentWith(t, "fw-b", key, bk, refusingNode, a.agent.Addr())
	refused, written := misconfiguredPeerFlows()
	for _, f := range append(refused, written...) {
		a.kern.Insert(f)
	}
	wait.For(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 6 })
	res, err := b.agent.Notify(context.Background(), "master")
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Commit; c == nil || c.Created != 3 || c.Failed != 0 || c.Skipped != 3 {
		t.Fatalf("commit %+v, want 3 created, 3 skipped", c)
	}
	for _, f := range refused {
		if _, ok := bk.Get(f.Key()); ok {
			t.Errorf("refused flow %v written", f.Orig)
		}
	}
	for _, f := range written {
		if _, ok := bk.Get(f.Key()); !ok {
			t.Errorf("flow %v not written", f.Orig)
		}
	}
	if st := agentStats(t, b); st.Commit.Skipped != 3 || st.Commit.Failed != 0 {
		t.Fatalf("commit stats %+v", st.Commit)
	}
}
