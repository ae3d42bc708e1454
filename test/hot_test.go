package test

import (
	"context"
	"net/netip"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/stats"
	"github.com/ctsync/ctsync/test/wait"
)

// fakeGate records what the agent does with its commit gate.
type fakeGate struct {
	mu    stdsync.Mutex
	armed bool
	log   []string
}

func (g *fakeGate) Arm(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
	g.log = append(g.log, "arm")
	return nil
}

func (g *fakeGate) Lift(context.Context) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = false
	g.log = append(g.log, "lift")
	return 7, nil
}

func (g *fakeGate) State(context.Context) (bool, uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.armed, 0, nil
}

func (g *fakeGate) history() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.log, ",")
}

func agentStats(t *testing.T, n *clusterNode) stats.Stats {
	t.Helper()
	st, err := n.agent.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// udpFlow is a SNATed UDP flow with a short timeout.
func udpFlow(i int, timeout uint32) flow.Flow {
	f := flow.Flow{
		Orig: flow.Tuple{Src: netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("198.51.100.53"),
			Proto: flow.ProtoUDP, SrcPort: uint16(40000 + i), DstPort: 53},
		Status: flow.StatusSeenReply, Timeout: timeout,
	}
	f.Reply = f.Orig.Invert()
	f.Reply.Dst, f.Reply.DstPort = netip.MustParseAddr("203.0.113.1"), uint16(50000+i)
	return f
}

// TestHotStandby: a hot standby keeps its peer's flows in its kernel table
// (added, changed, deleted as on the owner, timeouts refreshed while the
// owner holds them) without taking them as its own; notify master then
// writes nothing more, lifts the gate and makes them its own.
func TestHotStandby(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	gate := &fakeGate{}
	b := startAgentOpts(t, "fw-b", key, bk, func(c *config.Config) { c.Commit.Mode = config.ModeHot },
		func(o *agent.Options) { o.Gate = gate }, a.agent.Addr())

	if _, err := b.agent.Notify(context.Background(), "backup"); err != nil {
		t.Fatal(err)
	}
	if h := gate.history(); h != "arm" {
		t.Fatalf("gate after notify backup: %q, want arm", h)
	}
	const n = 300
	for i := range n {
		a.kern.Insert(natFlow(i))
	}
	quiet := udpFlow(1, 4)
	a.kern.Insert(quiet)
	wait.For(t, "the peer's flows in the standby's kernel", 15*time.Second, func() bool {
		return bk.Len() == n+1 && agentStats(t, b).Hot.Flows == n+1
	})
	st := agentStats(t, b)
	if !st.Hot.Active || st.Hot.Flows != n+1 || st.Mode != config.ModeHot || st.Role != "backup" {
		t.Fatalf("hot stats %+v mode %q role %q", st.Hot, st.Mode, st.Role)
	}
	if got := cacheLen(t, b, "internal", ""); got != 0 {
		t.Fatalf("the standby took %d of its peer's flows as its own", got)
	}
	if got := cacheLen(t, a, "external", "fw-b"); got != 0 {
		t.Fatalf("the owner got %d of its own flows back from the standby", got)
	}

	// Changes and deletes follow the owner.
	changed := natFlow(5)
	changed.Mark = 4242
	a.kern.Update(changed)
	six := natFlow(6)
	a.kern.Remove(six.Key())
	wait.For(t, "a change and a delete on the standby", 15*time.Second, func() bool {
		f, ok := bk.Get(changed.Key())
		_, gone := bk.Get(six.Key())
		return ok && f.Mark == 4242 && !gone
	})

	// The quiet UDP flow (4 s) has its kernel timeout refreshed while its
	// owner vouches for it.
	wait.For(t, "a timeout refresh", 15*time.Second, func() bool {
		f, ok := bk.Get(quiet.Key())
		return ok && agentStats(t, b).Hot.Updated >= 2 && f.Timeout >= 3
	})

	// Takeover: nothing to write, the gate goes, the flows are b's.
	creates := agentStats(t, b).Hot.Created
	res, err := b.agent.Notify(context.Background(), "master")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) == 0 || res.Steps[0].Name != "hot standby takeover" {
		t.Fatalf("notify master steps %+v", res.Steps)
	}
	if h := gate.history(); h != "arm,lift" {
		t.Fatalf("gate history %q, want arm,lift", h)
	}
	if got := agentStats(t, b).Hot.Created; got != creates {
		t.Fatalf("takeover created %d flows, want none", got-creates)
	}
	wait.For(t, "the flows to become the new master's", 15*time.Second, func() bool { return cacheLen(t, b, "internal", "") == n })
	st = agentStats(t, b)
	if st.Hot.Active || st.Gate.Armed || st.Gate.Dropped != 7 || st.Role != "master" {
		t.Fatalf("after takeover: hot %+v gate %+v role %q", st.Hot, st.Gate, st.Role)
	}
	// ... and replicated back to the old owner as b's.
	wait.For(t, "the old owner to hold the new master's flows", 15*time.Second, func() bool { return cacheLen(t, a, "external", "fw-b") == n })
}

// TestHotStandbyTakesOverFromOldMaster: a master that becomes a hot
// standby hands its flows to the new master: they stay in its kernel (the
// new owner's copies), leave its internal cache, and the purge spares them.
func TestHotStandbyTakesOverFromOldMaster(t *testing.T) {
	key := clusterKey(t)
	hotCfg := func(c *config.Config) { c.Commit.Mode = config.ModeHot }
	ak := kerneltest.NewMemTable()
	a := startAgentOpts(t, "fw-a", key, ak, hotCfg, func(o *agent.Options) { o.Gate = &fakeGate{} })
	bk := kerneltest.NewMemTable()
	b := startAgentOpts(t, "fw-b", key, bk, hotCfg, func(o *agent.Options) { o.Gate = &fakeGate{} }, a.agent.Addr())
	ctx := context.Background()
	if _, err := a.agent.Notify(ctx, "master"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.agent.Notify(ctx, "backup"); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		ak.Insert(natFlow(i))
	}
	wait.For(t, "b's hot copy", 15*time.Second, func() bool { return bk.Len() == n })

	// a fails over to b, and comes back as backup.
	if _, err := b.agent.Notify(ctx, "master"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.agent.Notify(ctx, "backup"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "a's flows to move to b", 15*time.Second, func() bool {
		return cacheLen(t, a, "internal", "") == 0 && cacheLen(t, b, "internal", "") == n &&
			cacheLen(t, a, "external", "fw-b") == n
	})
	if _, err := a.agent.Purge(ctx, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "a purge that spares the new owner's flows", 15*time.Second, func() bool {
		return agentStats(t, a).Purge.Runs == 1
	})
	if ak.Len() != n {
		t.Fatalf("a's kernel holds %d flows after the purge, want the %d b owns", ak.Len(), n)
	}
	// a's hot writer takes up b's flows as they arrive, behind the caches
	// the wait above watched.
	if !wait.Until(15*time.Second, func() bool { st := agentStats(t, a); return st.Hot.Active && st.Hot.Flows == n }) {
		t.Fatalf("a's hot stats %+v", agentStats(t, a).Hot)
	}
}

// TestHotStandbySkipsRefusedFlows: a hot standby writes its peer's flows
// as they arrive, except those it refuses (TestCommitSkipsRefusedFlows).
func TestHotStandbySkipsRefusedFlows(t *testing.T) {
	key := clusterKey(t)
	a := startAgentWith(t, "fw-a", key, nil, trustingNode)
	bk := kerneltest.NewMemTable()
	bk.SetLocalAddrs(netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.100"))
	b := startAgentWith(t, "fw-b", key, bk, func(c *config.Config) {
		refusingNode(c)
		c.Commit.Mode = config.ModeHot
	}, a.agent.Addr())
	refused, written := misconfiguredPeerFlows()
	for _, f := range append(refused, written...) {
		a.kern.Insert(f)
	}
	wait.For(t, "the peer's flows in the standby's kernel", 15*time.Second, func() bool {
		h := agentStats(t, b).Hot
		return cacheLen(t, b, "external", "fw-a") == 6 && h.Flows == 3 && h.Skipped >= 3 && h.Pending == 0
	})
	for _, f := range refused {
		if _, ok := bk.Get(f.Key()); ok {
			t.Errorf("refused flow %v written", f.Orig)
		}
	}
	if bk.Len() != len(written) || agentStats(t, b).Hot.Failed != 0 {
		t.Fatalf("standby's kernel holds %d flows (want %d), hot %+v", bk.Len(), len(written), agentStats(t, b).Hot)
	}
	if _, err := b.agent.Notify(context.Background(), "master"); err != nil {
		t.Fatal(err)
	}
	if bk.Len() != len(written) {
		t.Fatalf("after the takeover the kernel holds %d flows, want %d", bk.Len(), len(written))
	}
}

// TestHotTakeoverKeepsFailedFlows: a flow the standby could not write (a
// RELATED flow whose master it lacks) stays in the external cache at the
// takeover, the transition says so, and a commit writes it once its
// master is there.
func TestHotTakeoverKeepsFailedFlows(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	b := startAgentWith(t, "fw-b", key, bk, func(c *config.Config) { c.Commit.Mode = config.ModeHot }, a.agent.Addr())
	if _, err := b.agent.Notify(context.Background(), "backup"); err != nil {
		t.Fatal(err)
	}
	master := natFlow(100)
	related := natFlow(101)
	m := master.Orig
	related.Master = &m
	a.kern.Insert(natFlow(1))
	a.kern.Insert(related)
	wait.For(t, "the standby to write what it can", 15*time.Second, func() bool {
		return bk.Len() == 1 && agentStats(t, b).Hot.Failed > 0
	})
	a.stop()
	res, err := b.agent.Notify(context.Background(), "master")
	if err != nil {
		t.Fatal(err)
	}
	if res.Remaining != 1 || cacheLen(t, b, "external", "fw-a") != 1 {
		t.Fatalf("notify master: %d remaining, external cache %d; want the RELATED flow to remain (steps %+v)",
			res.Remaining, cacheLen(t, b, "external", "fw-a"), res.Steps)
	}
	bk.Insert(master)
	c, err := b.agent.Commit(context.Background())
	if err != nil || c.Created != 1 || c.Failed != 0 || c.Remaining != 0 {
		t.Fatalf("commit after the master came: %+v %v, want 1 created", c, err)
	}
	if _, ok := bk.Get(related.Key()); !ok {
		t.Fatalf("the RELATED flow is not in the kernel after the commit")
	}
}
