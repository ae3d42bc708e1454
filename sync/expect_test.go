package sync

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/flow"

	"github.com/ctsync/ctsync/test/wait"
)

// wireExpects are expectations as a kernel dump gives them (minus the id).
func wireExpects() []flow.Expect {
	a := netip.MustParseAddr
	nat := flow.Expect{
		Tuple:   flow.Tuple{Src: a("198.51.100.7"), Dst: a("203.0.113.1"), Proto: flow.ProtoTCP, DstPort: 50000},
		Mask:    flow.Tuple{Src: a("255.255.255.255"), Dst: a("255.255.255.255"), Proto: flow.ProtoTCP, DstPort: 0xffff},
		Master:  flow.Tuple{Src: a("192.168.1.2"), Dst: a("198.51.100.7"), Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 21},
		Timeout: 300, Helper: "ftp", Fn: "nat-follow-master", NATDir: 1, Zone: 3,
		NATTuple: flow.Tuple{Src: a("192.168.1.2"), Dst: a("0.0.0.0"), Proto: flow.ProtoTCP, SrcPort: 50000},
	}
	nat.Set(flow.ExpectAttrTimeout | flow.ExpectAttrHelper | flow.ExpectAttrNAT | flow.ExpectAttrFn | flow.ExpectAttrFlags | flow.ExpectAttrClass | flow.ExpectAttrZone)
	v6 := flow.Expect{
		Tuple:  flow.Tuple{Src: a("2001:db8::2"), Dst: a("2001:db8::1"), Proto: flow.ProtoUDP, SrcPort: 5060, DstPort: 5062},
		Mask:   flow.Tuple{Src: a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Dst: a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Proto: flow.ProtoUDP, SrcPort: 0xffff, DstPort: 0xffff},
		Master: flow.Tuple{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Proto: flow.ProtoUDP, SrcPort: 5060, DstPort: 5060},
		Flags:  flow.ExpectPermanent | flow.ExpectInactive, Class: 1, Helper: "sip",
	}
	v6.Set(flow.ExpectAttrHelper | flow.ExpectAttrFlags | flow.ExpectAttrClass)
	return []flow.Expect{nat, v6}
}

func TestExpectsRoundTrip(t *testing.T) {
	w := newWriter()
	in := wireExpects()
	b := append([]byte(nil), w.expects(42, in)...)
	rd := newReader()
	if typ, err := rd.open(b); err != nil || typ != msgExpects {
		t.Fatalf("open: %v %v", typ, err)
	}
	ep, got, err := rd.expects()
	if err != nil || ep != 42 {
		t.Fatalf("decode: %d %v", ep, err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, in)
	}
	// The local id is not sent.
	x := in[0]
	x.ID = 9
	x.Set(flow.ExpectAttrID)
	rd.open(append([]byte(nil), w.expects(1, []flow.Expect{x})...))
	if _, got, err := rd.expects(); err != nil || got[0].Has(flow.ExpectAttrID) || got[0].ID != 0 {
		t.Fatalf("id sent: %+v %v", got, err)
	}
	// An empty set (every expectation gone).
	rd.open(append([]byte(nil), w.expects(1, nil)...))
	if _, got, err := rd.expects(); err != nil || len(got) != 0 {
		t.Fatalf("empty set: %v %v", got, err)
	}
}

// TestOldReceiverDropsExpectations: a receiver that does not know a
// message type (as one from before expectations does not know msgExpects)
// counts it, drops it and keeps the stream: the flows that follow apply.
func TestOldReceiverDropsExpectations(t *testing.T) {
	key := newKey(t)
	n := startNode(t, "b", key)
	fakeMember(n, "a")
	s, err := handshake(t, n, key, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := newWriter()
	f := tflow(1)
	e := cache.Entry{Key: cache.KeyOf(&f), Version: 1, Flow: f}
	unknown := append([]byte(nil), w.expects(5, wireExpects())...)
	unknown[1] = 99 // a kind from the future
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	for _, m := range [][]byte{cp(w.hello("a", 5, 1)), cp(w.u64s(msgSnapBegin, 5)), unknown} {
		if err := s.writeFrame(m); err != nil {
			t.Fatal(err)
		}
	}
	w.startEntries(5)
	w.entry(&e)
	for _, m := range [][]byte{cp(w.endEntries(1)), cp(w.u64s(msgSnapEnd, 5))} {
		if err := s.writeFrame(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the flow after the unknown message to apply", 5*time.Second, func() bool { return n.ext.Len("a") == 1 })
	st := n.Stats()
	if st.UnexpectedMsgs != 1 || st.DecodeErrors != 0 {
		t.Fatalf("unexpected %d, decode errors %d; want 1 and 0", st.UnexpectedMsgs, st.DecodeErrors)
	}
}

func TestExpectationsReplicate(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	xs := wireExpects()
	for i := range xs {
		if _, err := a.in.UpsertExpect(&xs[i]); err != nil {
			t.Fatal(err)
		}
	}
	expectsInSync := func() bool {
		d, ok := b.ext.ExpectDigest("a", a.Epoch())
		return ok && d == a.in.ExpectDigest()
	}
	wait.For(t, "b to hold a's expectations", 10*time.Second, expectsInSync)
	var got []flow.Expect
	b.ext.RangeExpects("a", func(_ string, x *flow.Expect) bool { got = append(got, *x); return true })
	if len(got) != 2 || got[0].Timeout == 0 || got[0].Timeout > 300 {
		t.Fatalf("b holds %+v", got)
	}
	// A deletion on the owner deletes on the peer.
	a.in.DeleteExpect(&xs[0])
	wait.For(t, "the deletion to reach b", 10*time.Second, func() bool { return expectsInSync() && b.ext.ExpectsLen("a") == 1 })
	// Anti-entropy: b loses its copy (an early expiry): the digest repairs it.
	// (A first stream may have been refused before b's memberlist knew a,
	// and each stream starts with a snapshot: count from here.)
	snapshots := map[string]uint64{}
	for _, p := range a.Stats().Peers {
		snapshots[p.Peer] = p.Snapshots
	}
	b.ext.ReplaceExpects("a", a.Epoch(), nil)
	wait.For(t, "the expectation digest to repair b", 10*time.Second, func() bool { return expectsInSync() && b.ext.ExpectsLen("a") == 1 })
	var mism uint64
	for _, p := range b.Stats().Peers {
		mism += p.ExpMismatches
	}
	if mism == 0 {
		t.Error("no expectation digest mismatch counted")
	}
	// Repairing expectations needs no flow snapshot.
	for _, p := range a.Stats().Peers {
		if p.Snapshots != snapshots[p.Peer] {
			t.Errorf("a sent %d snapshots to %s during the repair, want none", p.Snapshots-snapshots[p.Peer], p.Peer)
		}
	}
}

// FuzzExpectRoundTrip: an expectation set the decoder accepts encodes back
// to bytes that decode to the same set.
func FuzzExpectRoundTrip(f *testing.F) {
	w := newWriter()
	f.Add(append([]byte(nil), w.expects(3, wireExpects())...))
	for _, x := range wireExpects() {
		f.Add(append([]byte(nil), w.expects(1, []flow.Expect{x})...))
	}
	for _, b := range hostileSeeds(expectWith) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := newReader()
		if typ, err := rd.open(b); err != nil || typ != msgExpects {
			return
		}
		ep, got, err := rd.expects()
		if err != nil {
			return
		}
		again := newReader()
		if _, err := again.open(newWriter().expects(ep, got)); err != nil {
			t.Fatal(err)
		}
		ep2, got2, err := again.expects()
		if err != nil {
			t.Fatalf("re-encoded expectations do not decode: %v", err)
		}
		if ep2 != ep || !reflect.DeepEqual(got, got2) {
			t.Fatalf("decoded\n%+v\nre-encoded, decodes as\n%+v", got, got2)
		}
	})
}
