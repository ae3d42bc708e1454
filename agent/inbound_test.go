package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// expectMem is an in-memory table that also takes expectations (only
// their creation is needed here).
type expectMem struct {
	*kerneltest.MemTable
	mu      stdsync.Mutex
	created []flow.Expect
}

func (m *expectMem) DumpExpect(context.Context, kernel.ExpectFilter, func(*flow.Expect) error) error {
	return nil
}

func (m *expectMem) WatchExpect(ctx context.Context, o kernel.WatchOptions, _ func(*flow.ExpectEvent) error) error {
	if o.Ready != nil {
		o.Ready()
	}
	<-ctx.Done()
	return nil
}

func (m *expectMem) CreateExpect(_ context.Context, x *flow.Expect) error {
	m.mu.Lock()
	m.created = append(m.created, *x)
	m.mu.Unlock()
	return nil
}

func (m *expectMem) expects() []flow.Expect {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]flow.Expect(nil), m.created...)
}

// Addresses of the committing node (b) in these tests.
var (
	ownAddr = netip.MustParseAddr("192.0.2.2")   // an interface address
	vipAddr = netip.MustParseAddr("192.0.2.100") // a VRRP address it took over
	ignored = netip.MustParseAddr("192.0.2.50")  // in its filter.ignore_addresses
)

// tcpFlow is an established TCP flow src:sport -> dst:dport whose reply
// comes from rsrc to rdst (NAT when they differ from dst and src).
func tcpFlow(src, dst, rsrc, rdst string, sport, dport uint16) flow.Flow {
	f := flow.Flow{
		Orig:   flow.Tuple{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: flow.ProtoTCP, SrcPort: sport, DstPort: dport},
		Status: flow.StatusSeenReply | flow.StatusAssured, Timeout: 3600,
		Attrs: flow.AttrTCP | flow.AttrTimeout | flow.AttrStatus | flow.AttrMark, TCP: flow.TCPInfo{State: flow.TCPEstablished},
	}
	f.Reply = f.Orig.Invert()
	f.Reply.Src, f.Reply.Dst = netip.MustParseAddr(rsrc), netip.MustParseAddr(rdst)
	return f
}

// peerFlows is what a misconfigured peer sends: three flows b must refuse
// (loopback, to an address b ignores, to b's own address) and three it
// must write (forwarded; SNATed to b's VRRP address; DNATed from it).
func peerFlows() (refused, written []flow.Flow) {
	refused = []flow.Flow{
		tcpFlow("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", 40001, 8080),
		tcpFlow("10.1.0.9", ignored.String(), ignored.String(), "10.1.0.9", 40002, 22),
		tcpFlow("10.1.0.9", ownAddr.String(), ownAddr.String(), "10.1.0.9", 40003, 22),
	}
	written = []flow.Flow{
		tcpFlow("10.1.0.6", "198.51.100.10", "198.51.100.10", "10.1.0.6", 40004, 443),
		tcpFlow("10.1.0.5", "198.51.100.10", "198.51.100.10", vipAddr.String(), 40005, 443),
		tcpFlow("198.51.100.20", vipAddr.String(), "10.1.0.7", "198.51.100.20", 40006, 443),
	}
	return refused, written
}

// startInboundAgent runs node fw-b on kern, whose addresses are ownAddr
// and vipAddr and whose filter ignores `ignored` (not loopback: the hard
// deny must refuse that on its own).
func startInboundAgent(t *testing.T, kern Kernel, mode string) *Agent {
	t.Helper()
	cfg := config.Default()
	cfg.Node = "fw-b"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.Name = "inbound-test"
	cfg.Commit.Mode = mode
	cfg.Filter.IgnoreAddresses = []string{ignored.String()}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Kernel: kern, Keys: [][]byte{key}, SyncTimings: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait.For(t, "the agent to be ready", 20*time.Second, a.Ready)
	return a
}

// fromPeer puts flows into a's external cache as peer fw-a's.
func fromPeer(t *testing.T, a *Agent, flows []flow.Flow) {
	t.Helper()
	a.ext.BeginSnapshot("fw-a", 1)
	for i := range flows {
		if a.ext.ApplyBatch("fw-a", 1, []cache.Entry{{Version: uint64(i + 1), Flow: flows[i]}}) != 0 {
			t.Fatalf("flow %d refused by the external cache", i)
		}
	}
	a.ext.EndSnapshot("fw-a", 1)
}

func kernelKeys(m *kerneltest.MemTable) []string {
	var out []string
	for _, f := range m.Flows() {
		out = append(out, fmt.Sprintf("%v:%d>%v:%d", f.Orig.Src, f.Orig.SrcPort, f.Orig.Dst, f.Orig.DstPort))
	}
	sort.Strings(out)
	return out
}

func flowKeys(flows []flow.Flow) []string {
	var out []string
	for i := range flows {
		o := flows[i].Orig
		out = append(out, fmt.Sprintf("%v:%d>%v:%d", o.Src, o.SrcPort, o.Dst, o.DstPort))
	}
	sort.Strings(out)
	return out
}

// TestCommitRefusesPeersFlows: a commit writes only the peer's flows this
// node would accept: not a loopback flow, not one its filter ignores, not
// one ending at its own address; the forwarded flows NATed to or from its
// VRRP address (local at notify master) are written. The refused ones
// are skipped, not failed, and so are the expectations on them.
func TestCommitRefusesPeersFlows(t *testing.T) {
	mem := kerneltest.NewMemTable()
	mem.SetLocalAddrs(ownAddr, vipAddr, netip.MustParseAddr("127.0.0.1"))
	kern := &expectMem{MemTable: mem}
	a := startInboundAgent(t, kern, config.ModeCommit)
	refused, written := peerFlows()
	fromPeer(t, a, append(append([]flow.Flow(nil), refused...), written...))
	// One expectation on a refused master (the loopback flow), one on a
	// written one.
	xs := []flow.Expect{
		{Master: refused[0].Orig, Tuple: flow.Tuple{Src: refused[0].Orig.Src, Dst: refused[0].Orig.Dst, Proto: flow.ProtoTCP, DstPort: 50000}, Timeout: 300, Helper: "ftp"},
		{Master: written[0].Orig, Tuple: flow.Tuple{Src: written[0].Orig.Src, Dst: written[0].Orig.Dst, Proto: flow.ProtoTCP, DstPort: 50001}, Timeout: 300, Helper: "ftp"},
	}
	if !a.ext.ReplaceExpects("fw-a", 1, xs) {
		t.Fatal("expectations refused by the external cache")
	}

	res, err := a.Notify(context.Background(), "master")
	if err != nil {
		t.Fatal(err)
	}
	c := res.Commit
	if c == nil || c.Created != 3 || c.Replaced != 0 || c.Failed != 0 || c.Skipped != 3 {
		t.Fatalf("commit %+v, want 3 created, 3 skipped, none failed", c)
	}
	if c.Expectations != 1 || c.ExpectationsSkipped != 1 || c.ExpectationsFailed != 0 {
		t.Fatalf("commit %+v, want 1 expectation created, 1 skipped", c)
	}
	if got, want := kernelKeys(mem), flowKeys(written); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kernel holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := kern.expects(); len(got) != 1 || got[0].Master != written[0].Orig {
		t.Fatalf("expectations created %+v, want only the one on the written master", got)
	}
	if !strings.Contains(res.Steps[0].Detail, "3 skipped") {
		t.Fatalf("commit step says %q", res.Steps[0].Detail)
	}
	st := a.stats()
	if st.Commit.Skipped != 3 || st.Commit.Failed != 0 {
		t.Fatalf("commit stats %+v, want 3 skipped", st.Commit)
	}
}

// TestHotRefusesPeersFlows: hot standby writes the peer's flows as they
// arrive, except those this node refuses; they are counted as skipped,
// a commit reports them so, and a reloaded filter that refuses a flow
// written before removes it from the kernel.
func TestHotRefusesPeersFlows(t *testing.T) {
	mem := kerneltest.NewMemTable()
	mem.SetLocalAddrs(ownAddr, vipAddr)
	a := startInboundAgent(t, mem, config.ModeHot)
	refused, written := peerFlows()
	fromPeer(t, a, append(append([]flow.Flow(nil), refused...), written...))
	wait.For(t, "hot standby to write the peer's flows", 20*time.Second, func() bool {
		h := a.hot.stats()
		return h.Flows == len(written) && h.Skipped >= uint64(len(refused)) && h.Pending == 0
	})
	if got, want := kernelKeys(mem), flowKeys(written); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("kernel holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if h := a.hot.stats(); h.Failed != 0 {
		t.Fatalf("hot stats %+v: refused flows counted as failed", h)
	}
	res, err := a.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 3 || res.Failed != 0 || res.Created != 0 {
		t.Fatalf("hot commit %+v, want 3 skipped, nothing created or failed", res)
	}

	// A reload that ignores the forwarded flow's client: it leaves the
	// kernel at the next pass.
	cfg := config.Default()
	cfg.Filter.IgnoreAddresses = []string{ignored.String(), "10.1.0.6"}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the newly refused flow to leave the kernel", 20*time.Second, func() bool {
		_, ok := mem.Get(written[0].Key())
		return !ok && mem.Len() == len(written)-1
	})

	// The takeover keeps it so: nothing refused is written.
	if _, err := a.Notify(context.Background(), "master"); err != nil {
		t.Fatal(err)
	}
	if got, want := kernelKeys(mem), flowKeys(written[1:]); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the takeover the kernel holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestInGate: the hard deny, rule by rule.
func TestInGate(t *testing.T) {
	g := inGate{f: mustFilter(t, config.Filter{}), local: map[netip.Addr]struct{}{ownAddr: {}, vipAddr: {}, netip.MustParseAddr("2001:db8::2"): {}}}
	for _, c := range []struct {
		name string
		f    flow.Flow
		want string
	}{
		{"forwarded", tcpFlow("10.1.0.6", "198.51.100.10", "198.51.100.10", "10.1.0.6", 1, 2), ""},
		{"SNAT to VIP", tcpFlow("10.1.0.6", "198.51.100.10", "198.51.100.10", vipAddr.String(), 1, 2), ""},
		{"DNAT from VIP", tcpFlow("198.51.100.20", vipAddr.String(), "10.1.0.7", "198.51.100.20", 1, 2), ""},
		{"to own address", tcpFlow("10.1.0.6", ownAddr.String(), ownAddr.String(), "10.1.0.6", 1, 2), refusedOwn},
		{"to VIP, no DNAT", tcpFlow("10.1.0.6", vipAddr.String(), vipAddr.String(), "10.1.0.6", 1, 2), refusedOwn},
		{"from own address", tcpFlow(ownAddr.String(), "198.51.100.10", "198.51.100.10", ownAddr.String(), 1, 2), refusedOwn},
		{"from own v6 address", tcpFlow("2001:db8::2", "2001:db8:1::9", "2001:db8:1::9", "2001:db8::2", 1, 2), refusedOwn},
		{"loopback", tcpFlow("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", 1, 2), refusedLoopback},
		{"loopback reply (DNAT to lo)", tcpFlow("10.1.0.6", "198.51.100.10", "127.0.0.1", "10.1.0.6", 1, 2), refusedLoopback},
		{"v6 loopback", tcpFlow("::1", "::1", "::1", "::1", 1, 2), refusedLoopback},
		{"mapped loopback", tcpFlow("::ffff:127.0.0.1", "2001:db8:1::9", "2001:db8:1::9", "::ffff:127.0.0.1", 1, 2), refusedLoopback},
		{"unspecified", tcpFlow("0.0.0.0", "198.51.100.10", "198.51.100.10", "0.0.0.0", 1, 2), refusedLoopback},
	} {
		if got := g.refuse(&c.f); got != c.want {
			t.Errorf("%s: refused %q, want %q", c.name, got, c.want)
		}
	}
	// The filter applies too: a protocol this node does not replicate.
	u := tcpFlow("10.1.0.6", "198.51.100.10", "198.51.100.10", "10.1.0.6", 1, 2)
	g.f = mustFilter(t, config.Filter{Protocols: []string{"udp"}})
	if got := g.refuse(&u); got != refusedFilter {
		t.Errorf("filtered protocol: refused %q, want %q", got, refusedFilter)
	}
}

// BenchmarkInGateRefuse is the gate's cost per flow at commit.
func BenchmarkInGateRefuse(b *testing.B) {
	f, err := newReplFilter(&config.Default().Filter)
	if err != nil {
		b.Fatal(err)
	}
	g := inGate{f: f, local: map[netip.Addr]struct{}{ownAddr: {}, vipAddr: {}}}
	fl := tcpFlow("10.1.0.5", "198.51.100.10", "198.51.100.10", vipAddr.String(), 40005, 443)
	for b.Loop() {
		if g.refuse(&fl) != "" {
			b.Fatal("refused")
		}
	}
}
