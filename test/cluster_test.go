package test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/sync/netfake"
	"github.com/ctsync/ctsync/test/wait"
)

// clusterNode is an agent on an in-memory kernel table.
type clusterNode struct {
	name   string
	agent  *agent.Agent
	net    *netfake.Network // cut it with net.Partition
	kern   *kerneltest.MemTable
	cancel context.CancelFunc
	done   chan error
}

func clusterKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func startAgent(t *testing.T, name string, key []byte, kern *kerneltest.MemTable, join ...string) *clusterNode {
	t.Helper()
	return startAgentWith(t, name, key, kern, nil, join...)
}

// startAgentWith is startAgent with a chance to change the configuration.
func startAgentWith(t *testing.T, name string, key []byte, kern *kerneltest.MemTable, tune func(*config.Config), join ...string) *clusterNode {
	t.Helper()
	return startAgentOpts(t, name, key, kern, tune, nil, join...)
}

func startAgentOpts(t *testing.T, name string, key []byte, kern *kerneltest.MemTable, tune func(*config.Config), opts func(*agent.Options), join ...string) *clusterNode {
	t.Helper()
	cfg := config.Default()
	cfg.Node = name
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.Join = join
	cfg.Cluster.Name = "cluster-test"
	if tune != nil {
		tune(cfg)
	}
	if kern == nil {
		kern = kerneltest.NewMemTable()
	}
	nw := netfake.New()
	o := agent.Options{Config: cfg, Kernel: kern, Keys: [][]byte{key}, SyncTimings: true, DigestEvery: 100 * time.Millisecond, Network: nw}
	if opts != nil {
		opts(&o)
	}
	a, err := agent.New(o)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	n := &clusterNode{name: name, agent: a, net: nw, kern: kern, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *clusterNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

// natFlow is a SNATed TCP flow, as a firewall's table holds it.
func natFlow(i int) flow.Flow {
	f := flow.Flow{
		Orig: flow.Tuple{Src: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("198.51.100.10"),
			Proto: flow.ProtoTCP, SrcPort: uint16(20000 + i%40000), DstPort: 443},
		Status: flow.StatusSeenReply | flow.StatusAssured, Timeout: 432000, Mark: uint32(i % 7),
		Attrs: flow.AttrTCP, TCP: flow.TCPInfo{State: flow.TCPEstablished},
	}
	f.Reply = f.Orig.Invert()
	f.Reply.Dst, f.Reply.DstPort = netip.MustParseAddr("203.0.113.1"), uint16(30000+i%30000)
	return f
}

func cacheLen(t *testing.T, n *clusterNode, which, origin string) int {
	c := 0
	if err := n.agent.Cache(context.Background(), control.CacheQuery{Cache: which, Origin: origin}, func(string, *flow.Flow) error { c++; return nil }); err != nil {
		t.Fatalf("cache %s: %v", which, err)
	}
	return c
}

func TestClusterReplicateCommitTakeover(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b := startAgent(t, "fw-b", key, nil, a.agent.Addr())
	c := startAgent(t, "fw-c", key, nil, a.agent.Addr())
	const n = 2000
	for i := 0; i < n; i++ {
		a.kern.Insert(natFlow(i))
	}
	// Traffic to the firewall itself stays local (ignore_addresses).
	local := natFlow(99999)
	local.Orig.Src = netip.MustParseAddr("127.0.0.1")
	a.kern.Insert(local)

	wait.For(t, "a's flows on b and c", 15*time.Second, func() bool {
		return cacheLen(t, b, "external", "fw-a") == n && cacheLen(t, c, "external", "fw-a") == n
	})
	if got := cacheLen(t, a, "internal", ""); got != n {
		t.Fatalf("a's internal cache holds %d, want %d (the local flow must stay out)", got, n)
	}
	// Updates and expiry on the owner propagate.
	for i := 0; i < 100; i++ {
		f := natFlow(i)
		f.Mark = 4242
		a.kern.Update(f)
	}
	for i := 100; i < 200; i++ {
		f := natFlow(i)
		a.kern.Remove(f.Key())
	}
	wait.For(t, "updates and deletes on c", 15*time.Second, func() bool {
		marked := 0
		c.agent.Cache(context.Background(), control.CacheQuery{Cache: "external", Origin: "fw-a", Filter: flow.Filter{HasMark: true, Mark: 4242, MarkMask: 0xffffffff}},
			func(string, *flow.Flow) error { marked++; return nil })
		return marked == 100 && cacheLen(t, c, "external", "fw-a") == n-100
	})
	wait.For(t, "b healthy", 15*time.Second, func() bool {
		h, _ := b.agent.Health(context.Background())
		return h.Ready
	})

	// a dies; b takes over.
	a.stop()
	res, err := b.agent.Notify(context.Background(), "master")
	if err != nil {
		t.Fatalf("notify master: %v", err)
	}
	if res.Commit == nil || res.Commit.Created != n-100 || res.Commit.Failed != 0 {
		t.Fatalf("commit result %+v, want %d created", res.Commit, n-100)
	}
	// The takeover and its commit are in the statistics the metrics
	// histograms and timestamps come from.
	st, err := b.agent.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Takeovers.Count != 1 || st.Commit.Durations.Count != 1 || st.Commit.LastAt.IsZero() || st.LastNotifyAt.IsZero() {
		t.Errorf("after one takeover: takeovers %+v, commit durations %+v, last commit at %v, last notify at %v",
			st.Takeovers, st.Commit.Durations, st.Commit.LastAt, st.LastNotifyAt)
	}
	// b's kernel now holds a's flows, NAT and marks included.
	want := map[flow.Key]flow.Flow{}
	for i := 0; i < n; i++ {
		if i >= 100 && i < 200 {
			continue
		}
		f := natFlow(i)
		if i < 100 {
			f.Mark = 4242
		}
		want[f.Key()] = f
	}
	if b.kern.Len() != len(want) {
		t.Fatalf("b's kernel holds %d flows, want %d", b.kern.Len(), len(want))
	}
	for _, got := range b.kern.Flows() {
		w, ok := want[got.Key()]
		if !ok || got.Reply != w.Reply || got.Mark != w.Mark || got.TCP.State != w.TCP.State {
			t.Fatalf("committed flow %+v does not match the owner's %+v", got, w)
		}
	}
	// The committed flows are b's own now, and c learns them from b.
	if got := cacheLen(t, b, "internal", ""); got != len(want) {
		t.Fatalf("b's internal cache holds %d after takeover, want %d", got, len(want))
	}
	if got := cacheLen(t, b, "external", ""); got != 0 {
		t.Fatalf("b's external cache holds %d after takeover, want 0", got)
	}
	wait.For(t, "c to learn b's flows", 15*time.Second, func() bool { return cacheLen(t, c, "external", "fw-b") == len(want) })
}

// TestClusterOverrunRepairs: events lost by the kernel side (a watcher
// overrun) are repaired by a resync, and peers converge.
func TestClusterOverrunRepairs(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b := startAgent(t, "fw-b", key, nil, a.agent.Addr())
	wait.For(t, "join", 10*time.Second, func() bool {
		m, _ := b.agent.Members(context.Background())
		return len(m) == 2
	})
	// Half of a burst of events is lost on a's kernel side.
	const n = 20000
	a.kern.LoseEvents(n / 2)
	for i := 0; i < n; i++ {
		f := natFlow(i)
		f.Orig.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a.kern.Insert(f)
	}
	wait.For(t, "b to hold all of a's flows", 30*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == n })
	st, _ := a.agent.Stats(context.Background())
	if st.Kernel.Overruns == 0 || st.Kernel.Resyncs < 2 {
		t.Fatalf("overruns %d, resyncs %d: the loss was not noticed and repaired", st.Kernel.Overruns, st.Kernel.Resyncs)
	}
}

func TestClusterPurgeAndCancel(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	for i := 0; i < 10; i++ {
		a.kern.Insert(natFlow(i))
	}
	local := natFlow(500)
	local.Orig.Src = netip.MustParseAddr("127.0.0.1")
	a.kern.Insert(local)
	wait.For(t, "internal cache", 5*time.Second, func() bool { return cacheLen(t, a, "internal", "") == 10 })
	if _, err := a.agent.Purge(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// A commit cancels it.
	if _, err := a.agent.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The commit disarmed the purge: none is pending, so none can run
	// (that a timer firing after its cancel does nothing is
	// agent.TestPurgeScheduleAndCancel's, on a fake clock).
	if p := agentStats(t, a).Purge; p.Pending != nil || p.Runs != 0 {
		t.Fatalf("after the commit a purge is still pending (%v) or ran (%d)", p.Pending, p.Runs)
	}
	if a.kern.Len() != 11 {
		t.Fatalf("cancelled purge deleted flows: %d left", a.kern.Len())
	}
	if _, err := a.agent.Purge(context.Background(), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "purge", 5*time.Second, func() bool { return a.kern.Len() == 1 })
	if _, ok := a.kern.Get(local.Key()); !ok {
		t.Fatalf("purge deleted the ignored local flow")
	}
	wait.For(t, "internal cache emptied by the purge's events", 5*time.Second, func() bool { return cacheLen(t, a, "internal", "") == 0 })
}

func TestClusterFlushAndBulk(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b := startAgent(t, "fw-b", key, nil, a.agent.Addr())
	for i := 0; i < 300; i++ {
		a.kern.Insert(natFlow(i))
	}
	wait.For(t, "sync", 10*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 300 })
	if err := b.agent.Flush(context.Background(), "external"); err != nil {
		t.Fatal(err)
	}
	// The digest check notices and b asks for everything again.
	wait.For(t, "self-repair after an external flush", 10*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 300 })
	if n, _ := a.agent.SendBulk(context.Background()); n != 1 {
		t.Fatalf("send-bulk reached %d peers, want 1", n)
	}
	if _, err := b.agent.ResyncPeers(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := a.agent.ResyncKernel(context.Background())
	if err != nil || r.Flows != 300 {
		t.Fatalf("resync kernel: %+v %v", r, err)
	}
	if err := a.agent.Flush(context.Background(), "bogus"); err == nil {
		t.Fatalf("flush of an unknown cache succeeded")
	}
	_ = fmt.Sprint()
}

// TestClusterPartitionHeal: a node cut off from the others misses changes,
// then converges by itself when the link heals: the flows it missed arrive,
// the ones deleted meanwhile disappear, with no restart and no command.
func TestClusterPartitionHeal(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	b := startAgent(t, "fw-b", key, nil, a.agent.Addr())
	c := startAgent(t, "fw-c", key, nil, a.agent.Addr(), b.agent.Addr())
	for i := 0; i < 500; i++ {
		a.kern.Insert(natFlow(i))
	}
	wait.For(t, "initial sync", 15*time.Second, func() bool {
		return cacheLen(t, b, "external", "fw-a") == 500 && cacheLen(t, c, "external", "fw-a") == 500
	})
	// Cut c off from a and b, on both sides.
	cAddr := c.agent.Addr()
	others := map[string]bool{a.agent.Addr(): true, b.agent.Addr(): true}
	c.net.Partition(func(addr string) bool { return others[addr] })
	a.net.Partition(func(addr string) bool { return addr == cAddr })
	b.net.Partition(func(addr string) bool { return addr == cAddr })
	// Changes during the partition: new flows, deletes, an update.
	for i := 500; i < 700; i++ {
		a.kern.Insert(natFlow(i))
	}
	for i := 0; i < 100; i++ {
		f := natFlow(i)
		a.kern.Remove(f.Key())
	}
	upd := natFlow(300)
	upd.Mark = 777
	a.kern.Update(upd)
	wait.For(t, "b to follow a", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 600 })
	// b has every change; c, cut off, has none of them. (Failure detection
	// under a partition is tested in sync/partition_test.go.)
	if got := cacheLen(t, c, "external", "fw-a"); got != 500 {
		t.Fatalf("c holds %d of a's flows during the partition, want the 500 it had", got)
	}
	// Heal.
	for _, n := range []*clusterNode{a, b, c} {
		n.net.Partition(nil)
	}
	wait.For(t, "c to converge after the heal", 30*time.Second, func() bool {
		marked := 0
		c.agent.Cache(context.Background(), control.CacheQuery{Cache: "external", Origin: "fw-a", Filter: flow.Filter{HasMark: true, Mark: 777, MarkMask: 0xffffffff}},
			func(string, *flow.Flow) error { marked++; return nil })
		return cacheLen(t, c, "external", "fw-a") == 600 && marked == 1
	})
	// None of the deleted flows survived on c.
	gone := natFlow(50)
	found := false
	c.agent.Cache(context.Background(), control.CacheQuery{Cache: "external", Origin: "fw-a"}, func(_ string, f *flow.Flow) error {
		if f.Key() == gone.Key() {
			found = true
		}
		return nil
	})
	if found {
		t.Fatalf("a flow deleted during the partition is still on c")
	}
}
