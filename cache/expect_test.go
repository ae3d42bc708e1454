package cache

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ctsync/ctsync/flow"
)

// mkExpect is an ftp-like expectation of a data connection to port.
func mkExpect(port uint16) flow.Expect {
	a := netip.MustParseAddr
	x := flow.Expect{
		Tuple:   flow.Tuple{Src: a("198.51.100.7"), Dst: a("203.0.113.1"), Proto: flow.ProtoTCP, DstPort: port},
		Mask:    flow.Tuple{Src: a("255.255.255.255"), Dst: a("255.255.255.255"), Proto: flow.ProtoTCP, DstPort: 0xffff},
		Master:  flow.Tuple{Src: a("192.168.1.2"), Dst: a("198.51.100.7"), Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 21},
		Timeout: 300, ID: 77, Helper: "ftp", Fn: "nat-follow-master", NATDir: 1,
		NATTuple: flow.Tuple{Src: a("192.168.1.2"), Dst: a("0.0.0.0"), Proto: flow.ProtoTCP, SrcPort: 50000},
	}
	x.Set(flow.ExpectAttrTimeout | flow.ExpectAttrID | flow.ExpectAttrHelper | flow.ExpectAttrNAT | flow.ExpectAttrFn | flow.ExpectAttrFlags | flow.ExpectAttrClass)
	return x
}

func TestInternalExpects(t *testing.T) {
	clk := &fakeClock{}
	c := NewInternal(InternalOptions{Clock: clk.now})
	r := c.NewReader()
	defer r.Close()
	// A new reader gets the (empty) set once.
	if xs, _, ok := r.NextExpects(); !ok || len(xs) != 0 {
		t.Fatalf("first NextExpects: %v %v", xs, ok)
	}
	if _, _, ok := r.NextExpects(); ok {
		t.Fatal("unchanged set returned again")
	}
	x := mkExpect(50000)
	if ch, err := c.UpsertExpect(&x); !ch || err != nil {
		t.Fatalf("upsert: %v %v", ch, err)
	}
	// The same expectation with a lower timeout and another id is no change.
	y := x
	y.Timeout, y.ID = 200, 78
	if ch, _ := c.UpsertExpect(&y); ch {
		t.Fatal("timeout change counted as a change")
	}
	clk.advance(100 * time.Second)
	xs, dg, ok := r.NextExpects()
	if !ok || len(xs) != 1 || dg.Count != 1 {
		t.Fatalf("after upsert: %v %v %v", xs, dg, ok)
	}
	if xs[0].Timeout != 100 || xs[0].Has(flow.ExpectAttrID) || xs[0].Key() != x.Key() {
		t.Fatalf("listed %+v; want the timeout left (100) and no id", xs[0])
	}
	if dg.Hash != ExpectHash(&xs[0]) {
		t.Fatal("digest hash is not the expectation's hash")
	}
	// A resync that does not see it removes it.
	c.BeginExpectResync()
	x2 := mkExpect(50001)
	c.UpsertExpect(&x2)
	if n := c.EndExpectResync(); n != 1 {
		t.Fatalf("resync removed %d, want 1", n)
	}
	if xs, _, ok := r.NextExpects(); !ok || len(xs) != 1 || xs[0].Tuple.DstPort != 50001 {
		t.Fatalf("after resync: %v %v", xs, ok)
	}
	if !c.DeleteExpect(&x2) || c.DeleteExpect(&x2) {
		t.Fatal("delete")
	}
	if xs, dg, ok := r.NextExpects(); !ok || len(xs) != 0 || dg != (Digest{}) {
		t.Fatalf("after delete: %v %v %v", xs, dg, ok)
	}
	// A snapshot resends the set.
	r.Snapshot()
	if _, _, ok := r.NextExpects(); !ok {
		t.Fatal("snapshot does not resend expectations")
	}
	// Expiry (a lost destroy event).
	c.UpsertExpect(&x)
	clk.advance(302 * time.Second)
	if n := c.ExpireExpects(); n != 1 || len(c.Expects()) != 0 {
		t.Fatalf("expired %d", n)
	}
}

func TestInternalExpectsFull(t *testing.T) {
	c := NewInternal(InternalOptions{Clock: (&fakeClock{}).now})
	for i := 0; i < MaxExpects; i++ {
		x := mkExpect(uint16(i))
		x.Tuple.SrcPort = uint16(i >> 16)
		x.Tuple.Src = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if _, err := c.UpsertExpect(&x); err != nil {
			t.Fatal(err)
		}
	}
	x := mkExpect(1)
	if _, err := c.UpsertExpect(&x); !errors.Is(err, ErrFull) {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestExternalExpects(t *testing.T) {
	clk := &fakeClock{}
	e := NewExternal(ExternalOptions{Clock: clk.now})
	x, y := mkExpect(50000), mkExpect(50001)
	y.Timeout = 10
	if e.ReplaceExpects("b", 1, []flow.Expect{x}) {
		t.Fatal("accepted before the origin's epoch is known")
	}
	e.BeginSnapshot("b", 1)
	e.EndSnapshot("b", 1)
	if _, synced := e.ExpectDigest("b", 1); synced {
		t.Fatal("synced before any set")
	}
	if !e.ReplaceExpects("b", 1, []flow.Expect{x, y}) || e.ExpectsLen("") != 2 {
		t.Fatal("replace")
	}
	in := NewInternal(InternalOptions{Clock: clk.now})
	in.UpsertExpect(&x)
	in.UpsertExpect(&y)
	if got, synced := e.ExpectDigest("b", 1); !synced || got != in.ExpectDigest() {
		t.Fatalf("digest %v %v, owner's %v", got, synced, in.ExpectDigest())
	}
	// A smaller set deletes.
	e.ReplaceExpects("b", 1, []flow.Expect{y})
	var got []flow.Expect
	e.RangeExpects("", func(o string, x *flow.Expect) bool { got = append(got, *x); return o == "b" })
	if len(got) != 1 || got[0].Key() != y.Key() {
		t.Fatalf("after replace: %v", got)
	}
	// Expiry by timeout.
	clk.advance(11 * time.Second)
	e.Expire()
	if e.ExpectsLen("b") != 0 {
		t.Fatal("not expired")
	}
	// A new epoch drops them.
	e.ReplaceExpects("b", 1, []flow.Expect{x})
	e.BeginSnapshot("b", 2)
	if e.ExpectsLen("b") != 0 {
		t.Fatal("kept across epochs")
	}
	if e.ReplaceExpects("b", 1, []flow.Expect{x}) {
		t.Fatal("accepted an old epoch's set")
	}
	e.ReplaceExpects("b", 2, []flow.Expect{x})
	e.Flush("")
	if e.ExpectsLen("") != 0 {
		t.Fatal("flush kept expectations")
	}
}
