package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
)

func testFlow(proto uint8, src string, dport uint16) flow.Flow {
	f := flow.Flow{Orig: flow.Tuple{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("198.51.100.7"),
		Proto: proto, SrcPort: 40000, DstPort: dport}, Timeout: 100}
	f.Reply = f.Orig.Invert()
	f.Set(flow.AttrTimeout | flow.AttrStatus | flow.AttrMark)
	if proto == flow.ProtoTCP {
		f.Set(flow.AttrTCP)
		f.TCP.State = 3 // ESTABLISHED
	}
	return f
}

func mustFilter(t *testing.T, c config.Filter) *replFilter {
	t.Helper()
	if c.Protocols == nil {
		c.Protocols = config.Default().Filter.Protocols
	}
	f, err := newReplFilter(&c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFilterRules(t *testing.T) {
	base := testFlow(flow.ProtoTCP, "192.168.10.2", 443)
	with := func(fn func(f *flow.Flow)) flow.Flow { f := base; fn(&f); return f }
	tests := []struct {
		name string
		cfg  config.Filter
		f    flow.Flow
		want bool
	}{
		{"defaults pass", config.Filter{}, base, true},
		{"protocol not listed", config.Filter{Protocols: []string{"udp"}}, base, false},
		{"ignored original source", config.Filter{IgnoreAddresses: []string{"192.168.10.0/24"}}, base, false},
		{"ignored reply source (DNAT target)", config.Filter{IgnoreAddresses: []string{"10.1.1.1"}},
			with(func(f *flow.Flow) { f.Reply.Src = netip.MustParseAddr("10.1.1.1") }), false},
		{"tcp state listed", config.Filter{TCPStates: []string{"ESTABLISHED"}}, base, true},
		{"tcp state not listed", config.Filter{TCPStates: []string{"SYN_SENT"}}, base, false},
		{"zone listed", config.Filter{Zones: []int{0, 7}}, with(func(f *flow.Flow) { f.Zone = 7 }), true},
		{"zone 0 listed", config.Filter{Zones: []int{0}}, base, true},
		{"zone not listed", config.Filter{Zones: []int{7}}, base, false},
		{"directional zone", config.Filter{Zones: []int{7}}, with(func(f *flow.Flow) { f.Zone, f.ZoneDir = 7, flow.ZoneReply }), true},
		{"mark exact", config.Filter{Marks: []string{"5"}}, with(func(f *flow.Flow) { f.Mark = 5 }), true},
		{"mark exact, other", config.Filter{Marks: []string{"5"}}, with(func(f *flow.Flow) { f.Mark = 0x105 }), false},
		{"mark masked", config.Filter{Marks: []string{"0x10/0xf0"}}, with(func(f *flow.Flow) { f.Mark = 0xa1f }), true},
		{"mark masked, other", config.Filter{Marks: []string{"0x10/0xf0"}}, with(func(f *flow.Flow) { f.Mark = 0x20 }), false},
		{"mark any of", config.Filter{Marks: []string{"0x10/0xf0", "5"}}, with(func(f *flow.Flow) { f.Mark = 5 }), true},
		{"mark zero needs a rule", config.Filter{Marks: []string{"5"}}, base, false},
		{"mark zero by rule", config.Filter{Marks: []string{"0/0xff"}}, with(func(f *flow.Flow) { f.Mark = 0x100 }), true},
		{"ignored port", config.Filter{IgnorePorts: []string{"tcp/443"}}, base, false},
		{"ignored port range", config.Filter{IgnorePorts: []string{"tcp/400-500"}}, base, false},
		{"port of another protocol", config.Filter{IgnorePorts: []string{"udp/443"}}, base, true},
		{"source port is not matched", config.Filter{IgnorePorts: []string{"tcp/40000"}}, base, true},
		{"udp/53", config.Filter{IgnorePorts: []string{"udp/53"}}, testFlow(flow.ProtoUDP, "192.168.10.2", 53), false},
		{"gre keys are not ports", config.Filter{IgnorePorts: []string{"udp/6", "tcp/6"}},
			with(func(f *flow.Flow) { f.Orig.Proto, f.Reply.Proto, f.Orig.DstPort = flow.ProtoGRE, flow.ProtoGRE, 6 }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			if got := mustFilter(t, tt.cfg).pass(&f); got != tt.want {
				t.Fatalf("pass = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterLabelMask(t *testing.T) {
	dir := t.TempDir()
	old := config.ConnlabelFile
	config.ConnlabelFile = filepath.Join(dir, "connlabel.conf")
	t.Cleanup(func() { config.ConnlabelFile = old })
	if err := os.WriteFile(config.ConnlabelFile, []byte("# names\n0 zero\n65 upper   # comment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var all flow.Labels
	for i := range all {
		all[i] = 0xff
	}
	lab := func(bits ...int) flow.Labels {
		f := config.Filter{}
		for _, b := range bits {
			f.Labels = append(f.Labels, strconv.Itoa(b))
		}
		m, err := f.LabelMask()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name   string
		labels []string
		in     flow.Labels
		want   flow.Labels
	}{
		{"all", []string{"all"}, all, all},
		{"none (empty list)", []string{}, all, flow.Labels{}},
		{"some bits", []string{"1", "127"}, all, lab(1, 127)},
		{"names", []string{"zero", "upper"}, all, lab(0, 65)},
		{"private bits cleared", []string{"3"}, lab(3, 4, 100), lab(3)},
		{"nothing left", []string{"3"}, lab(4), flow.Labels{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustFilter(t, config.Filter{Labels: tt.labels})
			f := testFlow(flow.ProtoTCP, "192.168.10.2", 443)
			f.Labels = tt.in
			f.Set(flow.AttrLabels)
			r.mask(&f)
			if f.Labels != tt.want {
				t.Fatalf("labels %x, want %x", f.Labels, tt.want)
			}
			if f.Has(flow.AttrLabels) == tt.want.IsZero() {
				t.Fatalf("AttrLabels = %v with labels %x", f.Has(flow.AttrLabels), f.Labels)
			}
		})
	}
	// Bit 65 is in the second 64-bit word, as the kernel lays it out.
	if m := lab(65); m[8]|m[15] == 0 || m[0]|m[7] != 0 {
		t.Fatalf("bit 65 at %x", m)
	}
	if _, err := (&config.Filter{Labels: []string{"nosuch"}}).LabelMask(); err == nil {
		t.Fatal("unknown label name accepted")
	}
}

// testAgent is an agent with only what apply, resync-free promotion and the
// filter need.
func testAgent(t *testing.T, c config.Filter) *Agent {
	return testAgentClock(t, c, nil)
}

// testAgentClock is testAgent on the given clock (nil: the real one).
func testAgentClock(t *testing.T, c config.Filter, clock Clock) *Agent {
	a := &Agent{pending: make(pending)}
	a.setClock(clock)
	a.in = cache.NewInternal(cache.InternalOptions{Clock: a.monotonic})
	a.filter.Store(mustFilter(t, c))
	return a
}

func ev(typ flow.EventType, f flow.Flow) flow.Event { return flow.Event{Type: typ, Flow: f} }

func TestFilterAppliedToEvents(t *testing.T) {
	a := testAgent(t, config.Filter{Marks: []string{"0x10/0xf0"}, Labels: []string{"1"}})
	f := testFlow(flow.ProtoTCP, "192.168.10.2", 443)
	f.Mark = 0x11
	f.Labels = flow.Labels{0: 0x06} // bits 1 and 2: 2 is private
	f.Set(flow.AttrLabels)
	a.apply([]flow.Event{ev(flow.EventNew, f)})
	if a.in.Len() != 1 {
		t.Fatalf("a passing flow is not cached")
	}
	var got []flow.Flow
	a.in.Range(func(f *flow.Flow) bool { got = append(got, *f); return true })
	if got[0].Labels != (flow.Labels{0: 0x02}) {
		t.Fatalf("cached labels %x, want only bit 1", got[0].Labels)
	}
	// Its mark changes to one not replicated: it is withdrawn.
	f.Mark = 0x21
	a.apply([]flow.Event{ev(flow.EventUpdate, f)})
	if a.in.Len() != 0 {
		t.Fatalf("a flow that stopped passing the filter is still cached")
	}
}

func TestFilterMinAge(t *testing.T) {
	const age = 300 * time.Millisecond
	clock := newFakeClock()
	a := testAgentClock(t, config.Filter{MinAge: config.Duration(age)}, clock)
	short := testFlow(flow.ProtoUDP, "192.168.10.2", 53)
	long := testFlow(flow.ProtoTCP, "192.168.10.3", 443)
	a.apply([]flow.Event{ev(flow.EventNew, short), ev(flow.EventNew, long)})
	if a.in.Len() != 0 || len(a.pending) != 2 {
		t.Fatalf("young flows: %d cached, %d pending; want 0 and 2", a.in.Len(), len(a.pending))
	}
	clock.Advance(age - time.Millisecond)
	a.promote()
	if a.in.Len() != 0 {
		t.Fatal("promoted before min_age")
	}
	// The short one ends young: never sent. The long one changes state
	// while pending: its latest state is what is sent.
	long.Mark = 9
	a.apply([]flow.Event{ev(flow.EventDestroy, short), ev(flow.EventUpdate, long)})
	clock.Advance(time.Millisecond)
	a.promote()
	if a.in.Len() != 1 || len(a.pending) != 0 {
		t.Fatalf("after min_age: %d cached, %d pending; want 1 and 0", a.in.Len(), len(a.pending))
	}
	a.in.Range(func(f *flow.Flow) bool {
		if f.Orig != long.Orig || f.Mark != 9 {
			t.Fatalf("promoted %+v, want the long flow with mark 9", f)
		}
		return true
	})
	// A cached (already replicated) flow is updated at once.
	long.Mark = 10
	a.apply([]flow.Event{ev(flow.EventUpdate, long)})
	a.in.Range(func(f *flow.Flow) bool {
		if f.Mark != 10 {
			t.Fatalf("update of a replicated flow held back: mark %d", f.Mark)
		}
		return true
	})
	// min_age lowered to 0 (reload): what is pending goes at once.
	third := testFlow(flow.ProtoTCP, "192.168.10.4", 443)
	a.apply([]flow.Event{ev(flow.EventNew, third)})
	if len(a.pending) != 1 {
		t.Fatalf("%d pending, want 1", len(a.pending))
	}
	a.filter.Store(mustFilter(t, config.Filter{}))
	a.promote()
	if a.in.Len() != 2 || len(a.pending) != 0 {
		t.Fatalf("after min_age 0: %d cached, %d pending; want 2 and 0", a.in.Len(), len(a.pending))
	}
}

func TestPendingTimeoutAges(t *testing.T) {
	p := pending{}
	f := testFlow(flow.ProtoTCP, "192.168.10.2", 443)
	f.Timeout = 100
	if p.hold(&f, 0, 5*time.Second) {
		t.Fatal("released at once")
	}
	out := p.due(int64(7*time.Second), 5*time.Second)
	if len(out) != 1 || out[0].Timeout != 93 {
		t.Fatalf("due: %+v, want one flow with 93 s left", out)
	}
}

// TestFilterProtocolNames: every protocol name config accepts builds a
// filter (config keeps its own copy of flow's names).
func TestFilterProtocolNames(t *testing.T) {
	names := []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "udplite", "igmp", "ipv6-icmp", "ipencap",
		"egp", "esp", "ah", "ospf", "pim", "vrrp", "l2tp", "mpls-in-ip", "99"}
	for _, n := range names {
		c := config.Default()
		c.Cluster.Insecure = true
		c.Cluster.Bind = "127.0.0.1:7946"
		c.Node = "n"
		c.Filter.Protocols = []string{n}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: Validate: %v", n, err)
		}
		if _, err := newReplFilter(&c.Filter); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
}
