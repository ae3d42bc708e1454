package sync

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/flow"
	"go.uber.org/goleak"

	"github.com/ctsync/ctsync/sync/netfake"
	"github.com/ctsync/ctsync/test/wait"
)

// memberlist's Shutdown does not wait for a probe in flight; it ends by
// its own timeout (ProbeTimeout), so goleak may see it for a moment.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

func monoClock() int64 { return time.Now().UnixNano() }

// testLogger logs debug lines through t.Log when CTSYNC_TEST_LOG is set.
func testLogger(t *testing.T, name string) *slog.Logger {
	if os.Getenv("CTSYNC_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("n", name)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type testNode struct {
	*Node
	in     *cache.Internal
	ext    *cache.External
	net    *netfake.Network // cut it with net.Partition
	cancel context.CancelFunc
	done   chan error
}

func newKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func startNode(t *testing.T, name string, key []byte, join ...string) *testNode {
	t.Helper()
	var keys [][]byte
	if key != nil {
		keys = [][]byte{key}
	}
	return startNodeConfig(t, Config{Node: name, Join: join, Keys: keys, Network: netfake.New()}, cache.ExternalOptions{})
}

// startNodeConfig starts a node of cfg on 127.0.0.1 with the tests'
// timings, fresh caches (the external one with ext's options, on the tests'
// monotonic clock unless ext names one), label
// "test" and a logger into the test's log unless cfg names them, and stops
// it when the test ends.
func startNodeConfig(t *testing.T, cfg Config, ext cache.ExternalOptions) *testNode {
	t.Helper()
	if ext.Clock == nil {
		ext.Clock = monoClock
	}
	tn := &testNode{in: cache.NewInternal(cache.InternalOptions{Clock: monoClock}), ext: cache.NewExternal(ext)}
	tn.net, _ = cfg.Network.(*netfake.Network)
	cfg.Bind, cfg.Internal, cfg.External = "127.0.0.1:0", tn.in, tn.ext
	cfg.DigestEvery, cfg.JoinEvery, cfg.LocalTimings = 100*time.Millisecond, 200*time.Millisecond, true
	if cfg.Label == "" {
		cfg.Label = "test"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, cfg.Node)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Node, err)
	}
	tn.Node = n
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	tn.done = make(chan error, 1)
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	<-tn.done
	tn.cancel = nil
}

func tflow(i int) flow.Flow {
	f := flow.Flow{
		Orig: flow.Tuple{Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("192.0.2.1"),
			Proto: flow.ProtoTCP, SrcPort: uint16(1024 + i%60000), DstPort: 443},
		Status: flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed, Timeout: 3600,
		Attrs: flow.AttrTCP | flow.AttrStatus | flow.AttrTimeout | flow.AttrMark, TCP: flow.TCPInfo{State: flow.TCPEstablished},
	}
	f.Reply = f.Orig.Invert()
	if i%3 == 0 {
		f.Reply.Dst, f.Reply.DstPort = netip.MustParseAddr("203.0.113.1"), uint16(i)
	}
	return f
}

// inSync reports whether dst holds exactly src's flows under origin.
func inSync(src, dst *testNode, origin string) bool {
	d, ok := dst.ext.Digest(origin, src.Epoch())
	return ok && d == src.in.Digest()
}

func TestThreeNodesConverge(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	c := startNode(t, "c", key, a.Addr())
	for i := 0; i < 3000; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	for i := 0; i < 500; i++ {
		f := tflow(100000 + i)
		c.in.Upsert(&f)
	}
	wait.For(t, "b and c to hold a's flows", 10*time.Second, func() bool { return inSync(a, b, "a") && inSync(a, c, "a") })
	wait.For(t, "a and b to hold c's flows", 10*time.Second, func() bool { return inSync(c, a, "c") && inSync(c, b, "c") })
	if b.ext.Len("a") != 3000 || a.ext.Len("c") != 500 {
		t.Fatalf("b holds %d of a's flows, a holds %d of c's", b.ext.Len("a"), a.ext.Len("c"))
	}
	// Updates and deletes propagate.
	for i := 0; i < 3000; i += 2 {
		f := tflow(i)
		if i%4 == 0 {
			a.in.Delete(&f)
		} else {
			f.Mark = 77
			a.in.Upsert(&f)
		}
	}
	wait.For(t, "changes to reach b and c", 10*time.Second, func() bool { return inSync(a, b, "a") && inSync(a, c, "a") })
	if b.ext.Len("a") != 2250 {
		t.Fatalf("b holds %d of a's flows after deletes, want 2250", b.ext.Len("a"))
	}
	marked := 0
	b.ext.Range("a", func(_ string, f *flow.Flow) bool {
		if f.Mark == 77 {
			marked++
		}
		return true
	})
	if marked != 750 {
		t.Fatalf("b sees %d updated marks, want 750", marked)
	}
	wait.For(t, "health", 10*time.Second, func() bool { ok, _ := b.Healthy(); return ok })
	// Everything above must have flowed as changes: no repair was needed.
	for _, n := range []*testNode{a, b, c} {
		for _, p := range n.Stats().Peers {
			if p.Mismatches != 0 {
				t.Fatalf("%s: %d digest mismatches with %s: changes were lost and repaired by snapshots", n.cfg.Node, p.Mismatches, p.Peer)
			}
		}
	}
}

// TestRepairsLoss: flows lost on the receiver side (as if messages were
// dropped) come back through the digest check.
func TestRepairsLoss(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 1000; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "initial sync", 10*time.Second, func() bool { return inSync(a, b, "a") })
	// Corrupt b's copy behind the stream's back: delete and add entries.
	for i := 0; i < 100; i++ {
		f := tflow(i)
		b.ext.ApplyBatch("a", a.Epoch(), []cache.Entry{{Key: cache.KeyOf(&f), Version: 1 << 40, Deleted: true}})
	}
	g := tflow(999999)
	b.ext.ApplyBatch("a", a.Epoch(), []cache.Entry{{Key: cache.KeyOf(&g), Version: 1, Flow: g}})
	wait.For(t, "repair", 10*time.Second, func() bool { return inSync(a, b, "a") })
	if b.ext.Len("a") != 1000 {
		t.Fatalf("b holds %d after repair, want 1000", b.ext.Len("a"))
	}
}

// TestRestartedPeerConverges: a receiver that restarts (empty caches, new
// epoch) gets everything again, and the restarted owner's old flows are
// replaced by its new incarnation's.
func TestRestartedPeerConverges(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 2000; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "initial sync", 10*time.Second, func() bool { return inSync(a, b, "a") })
	b.stop()
	b2 := startNode(t, "b", key, a.Addr())
	wait.For(t, "restarted b to converge", 15*time.Second, func() bool { return inSync(a, b2, "a") })

	// Owner restart: a new incarnation with fewer flows.
	a.stop()
	a2 := startNode(t, "a", key, b2.Addr())
	for i := 0; i < 10; i++ {
		f := tflow(i)
		a2.in.Upsert(&f)
	}
	wait.For(t, "b to hold only a's new flows", 15*time.Second, func() bool { return inSync(a2, b2, "a") })
	if b2.ext.Len("a") != 10 {
		t.Fatalf("b holds %d of a's flows, want 10", b2.ext.Len("a"))
	}
}

// TestWrongKeyCannotJoinOrInject: a node with another key is not admitted
// and none of its flows land anywhere.
func TestWrongKeyCannotJoinOrInject(t *testing.T) {
	a := startNode(t, "a", newKey(t))
	evil := startNode(t, "evil", newKey(t), a.Addr())
	for i := 0; i < 10; i++ {
		f := tflow(i)
		evil.in.Upsert(&f)
	}
	wait.For(t, "a to count failed authentication", 10*time.Second, func() bool {
		return a.Stats().AuthFailures > 0 || evil.Stats().JoinFailures > 2
	})
	if a.ext.Len("") != 0 {
		t.Fatalf("a holds %d flows from a node with the wrong key", a.ext.Len(""))
	}
	if len(a.Members()) != 1 {
		t.Fatalf("a lists %d members, want only itself", len(a.Members()))
	}
}

func TestInsecureAndSecureDoNotMix(t *testing.T) {
	a := startNode(t, "a", newKey(t))
	plain := startNode(t, "plain", nil, a.Addr())
	f := tflow(1)
	plain.in.Upsert(&f)
	wait.For(t, "join attempts", 10*time.Second, func() bool { return plain.Stats().JoinFailures > 1 })
	if a.ext.Len("") != 0 || len(a.Members()) != 1 {
		t.Fatalf("secure node accepted an insecure one")
	}
}

func BenchmarkReplicate100k(b *testing.B) {
	key := make([]byte, 32)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nodes := make([]*Node, 2)
		ins := []*cache.Internal{cache.NewInternal(cache.InternalOptions{Clock: monoClock}), cache.NewInternal(cache.InternalOptions{Clock: monoClock})}
		exts := []*cache.External{cache.NewExternal(cache.ExternalOptions{Clock: monoClock}), cache.NewExternal(cache.ExternalOptions{Clock: monoClock})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		var join []string
		for j := range nodes {
			n, err := New(Config{Node: fmt.Sprint("n", j), Bind: "127.0.0.1:0", Join: join, Keys: [][]byte{key}, Label: "bench",
				Internal: ins[j], External: exts[j], LocalTimings: true, JoinEvery: 100 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			nodes[j] = n
			join = []string{n.Addr()}
			go func() { n.Run(ctx); done <- struct{}{} }()
		}
		for len(nodes[0].Members()) < 2 || !nodes[0].Stats().Peers[0].Connected {
			time.Sleep(5 * time.Millisecond)
		}
		b.StartTimer()
		for j := 0; j < 100_000; j++ {
			f := tflow(j)
			ins[0].Upsert(&f)
		}
		for exts[1].Len("n0") < 100_000 {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		st := nodes[0].Stats()
		b.ReportMetric(float64(st.Peers[0].SentBytes)/100_000, "wire-B/flow")
		cancel()
		<-done
		<-done
	}
}

// TestDigestsHeldBackUnderChurn: a sender that catches up after every
// change sends a digest at most every DigestEvery/4 (and on its ticks),
// not after each change, and the last change is still vouched for.
func TestDigestsHeldBackUnderChurn(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	wait.For(t, "b in sync with a", 10*time.Second, func() bool { return inSync(a, b, "a") })
	peer := func() *peer {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.peers["b"]
	}()
	if peer == nil {
		t.Fatal("a has no peer b")
	}
	before := peer.digests.Load()
	start := time.Now()
	const changes = 100
	for i := 0; i < changes; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
		// Let the sender catch up: every change would be a digest.
		wait.For(t, "the change reaches b", 10*time.Second, func() bool { return b.ext.Len("a") == i+1 })
	}
	elapsed := time.Since(start)
	sent := peer.digests.Load() - before
	// DigestEvery is 100 ms in these tests: at most one every 25 ms, plus
	// the ticks, plus one at the start.
	limit := uint64(2 + elapsed/(25*time.Millisecond) + elapsed/(100*time.Millisecond))
	if sent > limit {
		t.Fatalf("%d digests for %d changes in %v, want at most %d", sent, changes, elapsed, limit)
	}
	wait.For(t, "b in sync after the churn", 10*time.Second, func() bool { return inSync(a, b, "a") })
}
