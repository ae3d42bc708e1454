package cache

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/ctsync/ctsync/flow"
)

// fakeClock is a settable clock.
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64              { return c.ns }
func (c *fakeClock) advance(d time.Duration) { c.ns += int64(d) }

func mkFlow(i int) flow.Flow {
	f := flow.Flow{
		Orig: flow.Tuple{
			Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("192.0.2.1"),
			Proto: flow.ProtoTCP, SrcPort: uint16(1000 + i%60000), DstPort: 80,
		},
		Status: flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed, Timeout: 300,
		Attrs: flow.AttrTCP | flow.AttrStatus | flow.AttrTimeout | flow.AttrMark,
		TCP:   flow.TCPInfo{State: flow.TCPEstablished},
	}
	f.Reply = f.Orig.Invert()
	return f
}

func richFlows() []flow.Flow {
	a := netip.MustParseAddr
	tcp := mkFlow(1)
	tcp.Reply.Dst, tcp.Reply.DstPort = a("203.0.113.1"), 40000
	tcp.Mark, tcp.Zone = 7, 3
	tcp.Attrs |= flow.AttrZone | flow.AttrHelper | flow.AttrLabels | flow.AttrSeqAdjOrig
	tcp.Helper = "ftp"
	tcp.Labels = flow.Labels{1: 2}
	tcp.SeqAdjOrig = flow.SeqAdj{CorrectionPos: 1, OffsetBefore: 2, OffsetAfter: 3}
	tcp.TCP = flow.TCPInfo{State: 3, WScaleOrig: 7, WScaleReply: 8, FlagsOrig: 3, FlagsReply: 1}
	icmp := flow.Flow{Orig: flow.Tuple{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Proto: flow.ProtoICMPv6, ICMPType: 128, ICMPID: 9},
		Timeout: 30, Attrs: flow.AttrTimeout | flow.AttrStatus | flow.AttrMark, Zone: 4, ZoneDir: flow.ZoneOrig}
	icmp.Reply = icmp.Orig.Invert()
	sctp := flow.Flow{Orig: flow.Tuple{Src: a("1.1.1.1"), Dst: a("2.2.2.2"), Proto: flow.ProtoSCTP, SrcPort: 5, DstPort: 6},
		Timeout: 30, Attrs: flow.AttrTimeout | flow.AttrSCTP | flow.AttrStatus | flow.AttrMark, SCTP: flow.SCTPInfo{State: 4, VTagOrig: 10, VTagReply: 11}}
	sctp.Reply = sctp.Orig.Invert()
	dccp := flow.Flow{Orig: flow.Tuple{Src: a("1.1.1.1"), Dst: a("2.2.2.2"), Proto: flow.ProtoDCCP, SrcPort: 5, DstPort: 6},
		Timeout: 30, Attrs: flow.AttrTimeout | flow.AttrDCCP | flow.AttrStatus | flow.AttrMark, DCCP: flow.DCCPInfo{State: 4, Role: 1, HandshakeSeq: 1<<40 + 5}}
	dccp.Reply = dccp.Orig.Invert()
	related := mkFlow(2)
	m := tcp.Orig
	related.Master = &m
	related.Attrs |= flow.AttrMaster
	return []flow.Flow{tcp, icmp, sctp, dccp, related}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, f := range richFlows() {
		k, r, x := encode(&f)
		var got flow.Flow
		decode(k, &r, x, &got)
		if fmt.Sprintf("%+v", got.Master) != fmt.Sprintf("%+v", f.Master) {
			t.Fatalf("master %+v, want %+v", got.Master, f.Master)
		}
		got.Master, f.Master = nil, nil
		if got != f {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
		}
	}
}

func newInternal(limit int) (*Internal, *fakeClock) {
	clk := &fakeClock{ns: 1}
	return NewInternal(InternalOptions{MaxFlows: limit, Clock: clk.now}), clk
}

func TestInternalVersions(t *testing.T) {
	c, _ := newInternal(0)
	f := mkFlow(1)
	if changed, err := c.Upsert(&f); !changed || err != nil {
		t.Fatalf("first upsert: %v %v", changed, err)
	}
	f.Timeout = 100 // a ticking timeout is not a change
	if changed, _ := c.Upsert(&f); changed {
		t.Fatalf("timeout-only upsert was a change")
	}
	f.Mark = 9
	if changed, _ := c.Upsert(&f); !changed {
		t.Fatalf("mark change was not a change")
	}
	if st := c.Stats(); st.Version != 2 || st.Flows != 1 || st.Unchanged != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !c.Delete(&f) || c.Delete(&f) {
		t.Fatalf("delete twice should succeed once")
	}
	if c.Len() != 0 {
		t.Fatalf("len %d after delete", c.Len())
	}
}

func TestInternalFull(t *testing.T) {
	c, _ := newInternal(2)
	for i := 0; i < 2; i++ {
		f := mkFlow(i)
		if _, err := c.Upsert(&f); err != nil {
			t.Fatal(err)
		}
	}
	f := mkFlow(3)
	if _, err := c.Upsert(&f); !errors.Is(err, ErrFull) {
		t.Fatalf("upsert into full cache: %v, want ErrFull", err)
	}
	f = mkFlow(0)
	f.Mark = 5
	if _, err := c.Upsert(&f); err != nil {
		t.Fatalf("update in full cache: %v", err)
	}
	if c.Stats().Full != 1 {
		t.Fatalf("full counter %d", c.Stats().Full)
	}
}

// TestDeletionCarriesIdentity: a deletion read from the log names its flow,
// so that a receiver can apply it without a snapshot.
func TestDeletionCarriesIdentity(t *testing.T) {
	in, _ := newInternal(0)
	r := in.NewReader()
	r.Snapshot()
	f := mkFlow(7)
	f.Zone = 3
	in.Upsert(&f)
	in.Delete(&f)
	var got []Entry
	r.Next(10, func(e *Entry) { got = append(got, *e) })
	if len(got) != 1 || !got[0].Deleted {
		t.Fatalf("entries %+v, want one deletion", got)
	}
	if got[0].Flow.Orig != f.Orig || got[0].Flow.Zone != 3 || KeyOf(&got[0].Flow) != KeyOf(&f) {
		t.Fatalf("deletion names %+v zone %d, want %+v zone 3", got[0].Flow.Orig, got[0].Flow.Zone, f.Orig)
	}
}

// replicate drives a reader into an external cache as the sync layer does.
func replicate(t *testing.T, r *Reader, ext *External, origin string, epoch uint64) {
	t.Helper()
	if r.Lost() {
		snap := r.Snapshot()
		ext.BeginSnapshot(origin, epoch)
		for snap.Next(100, func(e *Entry) { ext.Apply(origin, epoch, e) }) {
		}
		ext.EndSnapshot(origin, epoch)
	}
	for {
		n, err := r.Next(100, func(e *Entry) {
			// Apply what a receiver can know: the flow, and for a
			// deletion only its identity.
			c := *e
			c.Key = KeyOf(&c.Flow)
			ext.Apply(origin, epoch, &c)
		})
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

func TestReplicationConverges(t *testing.T) {
	in, _ := newInternal(0)
	ext := NewExternal(ExternalOptions{Clock: func() int64 { return 1 }})
	for i := 0; i < 1000; i++ {
		f := mkFlow(i)
		in.Upsert(&f)
	}
	r := in.NewReader()
	defer r.Close()
	replicate(t, r, ext, "a", 1)
	checkSame(t, in, ext, "a", 1)
	// Churn: updates, deletes, re-creates; reading coalesces.
	for i := 0; i < 1000; i += 3 {
		f := mkFlow(i)
		f.Mark = uint32(i)
		in.Upsert(&f)
		f.Mark++
		in.Upsert(&f)
		if i%2 == 0 {
			in.Delete(&f)
		}
	}
	sent := 0
	for {
		n, _ := r.Next(50, func(e *Entry) { ext.Apply("a", 1, e); sent++ })
		if n == 0 {
			break
		}
	}
	if sent != 334 {
		t.Fatalf("sent %d entries for 334 changed flows (coalescing failed)", sent)
	}
	checkSame(t, in, ext, "a", 1)
	if _, _, ok := r.CaughtUp(); !ok {
		t.Fatalf("reader not caught up")
	}
}

func checkSame(t *testing.T, in *Internal, ext *External, origin string, epoch uint64) {
	t.Helper()
	d, synced := ext.Digest(origin, epoch)
	if !synced || d != in.Digest() {
		t.Fatalf("digests differ: internal %+v, external %+v (synced %v)", in.Digest(), d, synced)
	}
	want := map[flow.Key]flow.Flow{}
	in.Range(func(f *flow.Flow) bool { want[f.Key()] = *f; return true })
	n := 0
	ext.Range(origin, func(_ string, f *flow.Flow) bool {
		w, ok := want[f.Key()]
		f.Timeout = w.Timeout
		if !ok || *f != w {
			t.Fatalf("external flow %+v, internal %+v", *f, w)
		}
		n++
		return true
	})
	if n != len(want) {
		t.Fatalf("external holds %d, internal %d", n, len(want))
	}
}

func TestSnapshotDuringChurn(t *testing.T) {
	in, _ := newInternal(0)
	ext := NewExternal(ExternalOptions{Clock: func() int64 { return 1 }})
	for i := 0; i < 5000; i++ {
		f := mkFlow(i)
		in.Upsert(&f)
	}
	// The receiver holds junk from an earlier session of the same epoch.
	ext.BeginSnapshot("a", 1)
	junk := mkFlow(99999)
	ext.Apply("a", 1, &Entry{Key: KeyOf(&junk), Version: 1, Flow: junk})
	ext.EndSnapshot("a", 1)

	r := in.NewReader()
	snap := r.Snapshot()
	ext.BeginSnapshot("a", 1)
	i := 0
	for snap.Next(64, func(e *Entry) { ext.Apply("a", 1, e) }) {
		// Changes interleaved with the snapshot.
		f := mkFlow(i * 7 % 5000)
		if i%3 == 0 {
			in.Delete(&f)
		} else {
			f.Mark = uint32(i)
			in.Upsert(&f)
		}
		g := mkFlow(10000 + i)
		in.Upsert(&g)
		i++
	}
	ext.EndSnapshot("a", 1)
	replicate(t, r, ext, "a", 1)
	checkSame(t, in, ext, "a", 1)
}

func TestReaderLostOnOverflowAndFlush(t *testing.T) {
	clk := &fakeClock{}
	in := NewInternal(InternalOptions{LogLimit: 100, Clock: clk.now})
	r := in.NewReader()
	r.Snapshot()
	for i := 0; i < 500; i++ {
		f := mkFlow(i)
		in.Upsert(&f)
	}
	if _, err := r.Next(10, func(*Entry) {}); !errors.Is(err, ErrLost) {
		t.Fatalf("lagging reader: %v, want ErrLost", err)
	}
	ext := NewExternal(ExternalOptions{Clock: clk.now})
	replicate(t, r, ext, "a", 1)
	checkSame(t, in, ext, "a", 1)
	in.Flush()
	if !r.Lost() {
		t.Fatalf("reader not lost after flush")
	}
	replicate(t, r, ext, "a", 1)
	if ext.Len("a") != 0 {
		t.Fatalf("external holds %d after owner flush", ext.Len("a"))
	}
}

func TestResyncSweep(t *testing.T) {
	in, _ := newInternal(0)
	for i := 0; i < 10; i++ {
		f := mkFlow(i)
		in.Upsert(&f)
	}
	in.BeginResync()
	for i := 0; i < 10; i += 2 { // the dump sees only even flows
		f := mkFlow(i)
		in.Upsert(&f)
	}
	if n := in.EndResync(); n != 5 {
		t.Fatalf("resync removed %d, want 5", n)
	}
	if in.Len() != 5 {
		t.Fatalf("len %d, want 5", in.Len())
	}
}

func TestExternalStaleAndEpochs(t *testing.T) {
	clk := &fakeClock{ns: 1}
	ext := NewExternal(ExternalOptions{Clock: clk.now})
	f := mkFlow(1)
	k := KeyOf(&f)
	ext.BeginSnapshot("a", 1)
	ext.EndSnapshot("a", 1)
	if !ext.Apply("a", 1, &Entry{Key: k, Version: 5, Flow: f}) {
		t.Fatalf("apply v5 rejected")
	}
	f.Mark = 1
	if ext.Apply("a", 1, &Entry{Key: k, Version: 4, Flow: f}) {
		t.Fatalf("older v4 accepted")
	}
	if ext.Apply("a", 1, &Entry{Key: k, Version: 3, Deleted: true}) {
		t.Fatalf("older delete accepted")
	}
	if ext.Apply("a", 2, &Entry{Key: k, Version: 9, Flow: f}) {
		t.Fatalf("entry of another epoch accepted")
	}
	if ext.Len("a") != 1 {
		t.Fatalf("len %d", ext.Len("a"))
	}
	// A new epoch (owner restart) starts from its snapshot alone.
	ext.BeginSnapshot("a", 2)
	if ext.Len("a") != 0 {
		t.Fatalf("new epoch kept %d flows", ext.Len("a"))
	}
	st := ext.Stats()
	if len(st) != 1 || st[0].Stale != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExternalExpiry(t *testing.T) {
	clk := &fakeClock{ns: 1}
	ext := NewExternal(ExternalOptions{Clock: clk.now})
	ext.BeginSnapshot("a", 1)
	for i, timeout := range []uint32{10, 100} {
		f := mkFlow(i)
		f.Timeout = timeout
		ext.Apply("a", 1, &Entry{Key: KeyOf(&f), Version: uint64(i + 1), Flow: f})
	}
	ext.EndSnapshot("a", 1)
	clk.advance(8 * time.Second)
	ext.Vouch("a") // the owner is alive: ageing restarts
	clk.advance(8 * time.Second)
	if n := ext.Expire(); n != 0 {
		t.Fatalf("expired %d while vouched recently", n)
	}
	remaining := map[uint32]bool{}
	ext.Range("a", func(_ string, f *flow.Flow) bool { remaining[f.Timeout] = true; return true })
	if !remaining[2] || !remaining[92] {
		t.Fatalf("remaining timeouts %v, want 2 and 92", remaining)
	}
	clk.advance(3 * time.Second) // the owner fell silent
	if n := ext.Expire(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	clk.advance(100 * time.Second)
	if n := ext.Expire(); n != 1 || ext.Len("") != 0 {
		t.Fatalf("expired %d (left %d), want all gone", n, ext.Len(""))
	}
}

// TestExternalBoundIsGlobal: cache.max_flows bounds the external cache as a
// whole: a second origin does not get a share of its own, every dropped
// flow is counted against its origin, room freed by one origin serves
// another, and an origin whose owner stopped talking (a dead member: what
// a takeover commits) keeps its flows until their own timeouts.
func TestExternalBoundIsGlobal(t *testing.T) {
	clk := &fakeClock{ns: 1}
	ext := NewExternal(ExternalOptions{MaxFlows: 3, Clock: clk.now})
	for _, o := range []string{"a", "b"} {
		ext.BeginSnapshot(o, 1)
		for i := 0; i < 5; i++ {
			f := mkFlow(i)
			ext.Apply(o, 1, &Entry{Key: KeyOf(&f), Version: uint64(i + 1), Flow: f})
		}
		ext.EndSnapshot(o, 1)
	}
	if ext.Len("a") != 3 || ext.Len("b") != 0 || ext.Len("") != 3 {
		t.Fatalf("lens a=%d b=%d all=%d, want 3, 0, 3 (one bound for all origins)", ext.Len("a"), ext.Len("b"), ext.Len(""))
	}
	if st := ext.Stats(); st[0].Full != 2 || st[1].Full != 5 {
		t.Fatalf("full counters %+v", st)
	}
	if tr, room := ext.Truncated("b"); !tr || room != 0 {
		t.Fatalf("b: truncated %v room %d, want true 0", tr, room)
	}
	// "a" falls silent (its owner died): its flows stay until their own
	// timeouts (300 s), whatever else wants the room.
	clk.advance(299 * time.Second)
	if n := ext.Expire(); n != 0 || ext.Len("a") != 3 {
		t.Fatalf("a dead member's flows went early: expired %d, a holds %d", n, ext.Len("a"))
	}
	clk.advance(2 * time.Second)
	if n := ext.Expire(); n != 3 {
		t.Fatalf("expired %d, want 3", n)
	}
	// The room serves b now; a new snapshot of b clears its truncation.
	ext.BeginSnapshot("b", 1)
	if tr, room := ext.Truncated("b"); tr || room != 3 {
		t.Fatalf("b after a new snapshot began: truncated %v room %d, want false 3", tr, room)
	}
	for i := 0; i < 3; i++ {
		f := mkFlow(i)
		ext.Apply("b", 1, &Entry{Key: KeyOf(&f), Version: uint64(i + 10), Flow: f})
	}
	ext.EndSnapshot("b", 1)
	if ext.Len("b") != 3 {
		t.Fatalf("b holds %d, want 3", ext.Len("b"))
	}
	ext.Flush("b")
	if ext.Len("") != 0 {
		t.Fatalf("flush b: %d left", ext.Len(""))
	}
	if _, room := ext.Truncated("x"); room != 3 {
		t.Fatalf("room %d after the flush, want 3", room)
	}
}

// TestExternalNoTimeoutMaxAge: a flow received without a timeout does not
// live forever: it goes MaxAge after its owner's last word.
func TestExternalNoTimeoutMaxAge(t *testing.T) {
	clk := &fakeClock{ns: 1}
	ext := NewExternal(ExternalOptions{Clock: clk.now})
	ext.BeginSnapshot("a", 1)
	f := mkFlow(1)
	f.Timeout = 0
	f.Attrs &^= flow.AttrTimeout
	ext.Apply("a", 1, &Entry{Key: KeyOf(&f), Version: 1, Flow: f})
	ext.EndSnapshot("a", 1)
	clk.advance(DefaultMaxAge - time.Second)
	if n := ext.Expire(); n != 0 {
		t.Fatalf("expired %d before the maximum age", n)
	}
	clk.advance(2 * time.Second)
	if n := ext.Expire(); n != 1 || ext.Len("") != 0 {
		t.Fatalf("expired %d, left %d: a flow without a timeout outlived %v", n, ext.Len(""), DefaultMaxAge)
	}
}

// TestReserveHintIsCapped: announced sizes reserve little, whatever a
// peer claims and however many origins claim it: 40 origins each
// announcing 2^62 flows under the default bound reserve no more than a
// capped index each (they used to reserve 2^21 flows, 32 MiB, each).
func TestReserveHintIsCapped(t *testing.T) {
	for _, max := range []int{0, 2097152} {
		ext := NewExternal(ExternalOptions{Clock: func() int64 { return 1 }, MaxFlows: max})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		total := 0
		for i := 0; i < 40; i++ {
			name := fmt.Sprintf("o%d", i)
			ext.BeginSnapshot(name, 1)
			ext.Reserve(name, 1, 1<<62)
			total += len(ext.origins[name].t.idx.ents)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		t.Logf("max_flows %d: 40 announced snapshots hold %d index positions, heap +%d KiB", max, total,
			(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024)
		runtime.KeepAlive(ext)
		if limit := 40 * 2 * 2 * reserveCeiling; total > limit {
			t.Fatalf("max_flows %d: 40 announcements reserved %d index positions, want at most %d", max, total, limit)
		}
	}
}

// BenchmarkMemoryPerFlow measures heap bytes per cached flow (internal
// cache; ctsync's budget is 300 B of daemon RSS, conntrackd uses ~500).
func BenchmarkMemoryPerFlow(b *testing.B) {
	const n = 200_000
	flows := make([]flow.Flow, n)
	for i := range flows {
		flows[i] = mkFlow(i)
	}
	var perFlow float64
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := NewInternal(InternalOptions{Clock: func() int64 { return 1 }})
		r := c.NewReader()
		r.Snapshot()
		for j := range flows {
			c.Upsert(&flows[j])
		}
		r.Next(n, func(*Entry) {}) // a caught-up reader lets the log go
		runtime.GC()
		runtime.ReadMemStats(&after)
		perFlow = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
		r.Close()
	}
	b.ReportMetric(perFlow, "B/flow")
}

func BenchmarkUpsert(b *testing.B) {
	c, _ := newInternal(0)
	flows := make([]flow.Flow, 1<<16)
	for i := range flows {
		flows[i] = mkFlow(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &flows[i&(len(flows)-1)]
		f.Mark++
		c.Upsert(f)
		i++
	}
}

// TestIndexAgainstMap drives the open-addressing index and a Go map with the
// same random inserts and deletes.
func TestIndexAgainstMap(t *testing.T) {
	tb := newTable()
	ref := map[Key]uint64{}
	for i := 0; i < 200000; i++ {
		j := (i * 7919) % 5000
		f := mkFlow(j)
		k, r, x := encode(&f)
		if i%3 == 2 {
			if tb.del(&k) != (ref[k] != 0) {
				t.Fatalf("step %d: del disagrees", i)
			}
			delete(ref, k)
			continue
		}
		r.version = uint64(i + 1)
		tb.put(&k, &r, x)
		ref[k] = r.version
	}
	if tb.len() != len(ref) {
		t.Fatalf("len %d, map %d", tb.len(), len(ref))
	}
	for k, v := range ref {
		s := tb.get(&k)
		if s == nil || s.r.version != v {
			t.Fatalf("key lost or wrong version")
		}
	}
	var xor uint64
	for k, v := range ref {
		xor ^= k.hash(v)
	}
	if tb.digest().Hash != xor {
		t.Fatalf("digest hash drifted")
	}
}

func TestHoldPausesReaders(t *testing.T) {
	in, _ := newInternal(0)
	r := in.NewReader()
	r.Snapshot()
	in.Hold(true)
	f := mkFlow(1)
	in.Upsert(&f)
	if n, err := r.Next(10, func(*Entry) {}); n != 0 || err != nil {
		t.Fatalf("held reader read %d (%v)", n, err)
	}
	if _, _, ok := r.CaughtUp(); ok {
		t.Fatalf("a held reader claims to be caught up")
	}
	select {
	case <-r.Wake():
	default:
	}
	in.Hold(false)
	select {
	case <-r.Wake():
	default:
		t.Fatalf("resuming did not wake the reader")
	}
	if n, _ := r.Next(10, func(*Entry) {}); n != 1 {
		t.Fatalf("resumed reader read %d, want 1", n)
	}
}

// TestExternalOnChangeGetHas: every way a flow enters, changes or leaves
// the external cache is reported (hot standby relies on it), and Get
// returns the newest copy with its remaining timeout and version.
func TestExternalOnChangeGetHas(t *testing.T) {
	clk := &fakeClock{ns: 1}
	changes := map[Key]int{}
	ext := NewExternal(ExternalOptions{Clock: clk.now, OnChange: func(k *Key) { changes[*k]++ }})
	f0, f1, f2 := mkFlow(0), mkFlow(1), mkFlow(2)
	k0, k1, k2 := KeyOf(&f0), KeyOf(&f1), KeyOf(&f2)
	ext.BeginSnapshot("a", 1)
	ext.Apply("a", 1, &Entry{Key: k0, Version: 1, Flow: f0})
	ext.Apply("a", 1, &Entry{Key: k1, Version: 2, Flow: f1})
	ext.EndSnapshot("a", 1)
	if changes[k0] != 1 || changes[k1] != 1 {
		t.Fatalf("adds reported %v", changes)
	}
	var g flow.Flow
	if from, v, ok := ext.Get(&k1, &g); !ok || from != "a" || v != 2 || g.Orig != f1.Orig || g.Timeout != 300 {
		t.Fatalf("Get = %q %d %v %+v", from, v, ok, g)
	}
	if !ext.Has(&k0) || ext.Has(&k2) {
		t.Fatal("Has wrong")
	}
	ext.Apply("a", 1, &Entry{Key: k0, Version: 3, Deleted: true}) // delete
	ext.BeginSnapshot("a", 1)                                     // a snapshot without k1
	ext.EndSnapshot("a", 1)
	if changes[k0] != 2 || changes[k1] != 2 {
		t.Fatalf("delete and snapshot sweep reported %v", changes)
	}
	if _, _, ok := ext.Get(&k0, &g); ok {
		t.Fatal("deleted flow still found")
	}
	// Expiry, flush and a new epoch report too.
	ext.BeginSnapshot("b", 1)
	ext.Apply("b", 1, &Entry{Key: k2, Version: 1, Flow: f2})
	ext.EndSnapshot("b", 1)
	clk.advance(301 * time.Second)
	ext.Expire()
	if changes[k2] != 2 {
		t.Fatalf("expiry reported %v", changes)
	}
	ext.BeginSnapshot("b", 2)
	ext.Apply("b", 2, &Entry{Key: k2, Version: 1, Flow: f2})
	ext.BeginSnapshot("b", 3) // owner restarted: what was held goes
	if changes[k2] != 4 {
		t.Fatalf("epoch reset reported %v", changes)
	}
	ext.Apply("b", 3, &Entry{Key: k2, Version: 1, Flow: f2})
	ext.Flush("")
	ext.Forget("b")
	if changes[k2] != 6 {
		t.Fatalf("flush reported %v", changes)
	}
}

// BenchmarkExternalSnapshot100k is what a restarted peer does with an
// owner's snapshot: 100k flows applied into an empty external cache.
func BenchmarkExternalSnapshot100k(b *testing.B) {
	const n = 100000
	entries := make([]Entry, n)
	for i := range entries {
		f := mkFlow(i)
		entries[i] = Entry{Key: KeyOf(&f), Version: uint64(i + 1), Flow: f}
	}
	b.ResetTimer()
	for range b.N {
		ext := NewExternal(ExternalOptions{Clock: func() int64 { return 1 }})
		ext.BeginSnapshot("a", 1)
		for i := range entries {
			ext.Apply("a", 1, &entries[i])
		}
		ext.EndSnapshot("a", 1)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/flow")
}

// TestApplyBatchMatchesApply: a run of entries applied a message at a
// time (with repeated keys, stale versions, deletions, a key the sender
// got wrong and a resize in the middle of a group) leaves what applying
// them one by one leaves.
func TestApplyBatchMatchesApply(t *testing.T) {
	clk := &fakeClock{ns: 1}
	one := NewExternal(ExternalOptions{Clock: clk.now})
	batched := NewExternal(ExternalOptions{Clock: clk.now})
	for _, e := range []*External{one, batched} {
		e.BeginSnapshot("a", 1)
		e.EndSnapshot("a", 1)
	}
	var ens []Entry
	for i := 0; i < 20000; i++ {
		j := (i * 7919) % 3000
		f := mkFlow(j)
		en := Entry{Key: KeyOf(&f), Version: uint64(i + 1), Flow: f}
		switch i % 7 {
		case 3:
			en = Entry{Key: KeyOf(&f), Version: uint64(i + 1), Deleted: true}
		case 5:
			en.Version = uint64(i / 2) // often older than what is held
		case 6:
			wrong := mkFlow(j + 1)
			en.Key = KeyOf(&wrong) // a hint only: the flow is the truth
		}
		ens = append(ens, en)
	}
	staleOne := 0
	for i := range ens {
		en := ens[i]
		if !one.Apply("a", 1, &en) {
			staleOne++
		}
	}
	staleBatched := 0
	for start := 0; start < len(ens); start += 333 {
		part := append([]Entry(nil), ens[start:min(start+333, len(ens))]...)
		staleBatched += batched.ApplyBatch("a", 1, part)
	}
	if staleOne != staleBatched {
		t.Fatalf("stale: one by one %d, batched %d", staleOne, staleBatched)
	}
	d1, _ := one.Digest("a", 1)
	d2, _ := batched.Digest("a", 1)
	if d1 != d2 || d1.Count == 0 {
		t.Fatalf("digests differ: %+v %+v", d1, d2)
	}
	if n := batched.ApplyBatch("a", 2, ens[:10]); n != 10 {
		t.Fatalf("entries of another epoch: %d refused, want 10", n)
	}
}

// TestReserveIsBounded: a snapshot's announced size grows the index ahead
// of it, but never past the cache's bound, whatever a peer claims.
func TestReserveIsBounded(t *testing.T) {
	clk := &fakeClock{ns: 1}
	ext := NewExternal(ExternalOptions{Clock: clk.now, MaxFlows: 1000})
	ext.BeginSnapshot("a", 1)
	ext.Reserve("a", 1, 1<<62)
	if got := len(ext.origins["a"].t.idx.ents); got > 2048 {
		t.Fatalf("index of %d positions for a bound of 1000 flows", got)
	}
	ext.Reserve("a", 1, 900)
	before := len(ext.origins["a"].t.idx.ents)
	for i := 0; i < 900; i++ {
		f := mkFlow(i)
		ext.Apply("a", 1, &Entry{Version: 1, Flow: f})
	}
	if after := len(ext.origins["a"].t.idx.ents); after != before {
		t.Fatalf("index grew from %d to %d while loading a reserved snapshot", before, after)
	}
	ext.Reserve("b", 1, 5) // unknown origin: nothing
	if _, ok := ext.origins["b"]; ok {
		t.Fatalf("reserve created an origin")
	}
}

// TestExternalFlushExcept: the flows a commit could not write stay, with
// their origin, version, extras and digest; everything else goes.
func TestExternalFlushExcept(t *testing.T) {
	ext := NewExternal(ExternalOptions{Clock: func() int64 { return 1 }})
	for _, o := range []string{"a", "b"} {
		ext.BeginSnapshot(o, 1)
		for i := 0; i < 100; i++ {
			f := mkFlow(i)
			if o == "b" {
				f = mkFlow(1000 + i)
			}
			if i == 7 {
				f.Helper = "ftp"
				f.Set(flow.AttrHelper)
			}
			ext.Apply(o, 1, &Entry{Key: KeyOf(&f), Version: uint64(i + 1), Flow: f})
		}
		ext.EndSnapshot(o, 1)
	}
	kept7, kept9, keptB := mkFlow(7), mkFlow(9), mkFlow(1003)
	keep := map[Key]struct{}{KeyOf(&kept7): {}, KeyOf(&kept9): {}, KeyOf(&keptB): {}}
	want := NewExternal(ExternalOptions{Clock: func() int64 { return 1 }})
	want.BeginSnapshot("a", 1)
	for _, i := range []int{7, 9} {
		f := mkFlow(i)
		if i == 7 {
			f.Helper = "ftp"
			f.Set(flow.AttrHelper)
		}
		want.Apply("a", 1, &Entry{Key: KeyOf(&f), Version: uint64(i + 1), Flow: f})
	}
	want.EndSnapshot("a", 1)
	if n := ext.FlushExcept(keep); n != 3 {
		t.Fatalf("FlushExcept kept %d flows, want 3", n)
	}
	if ext.Len("a") != 2 || ext.Len("b") != 1 {
		t.Fatalf("after FlushExcept: a holds %d, b %d; want 2 and 1", ext.Len("a"), ext.Len("b"))
	}
	var g flow.Flow
	k7 := KeyOf(&kept7)
	if from, v, ok := ext.Get(&k7, &g); !ok || from != "a" || v != 8 || g.Helper != "ftp" {
		t.Fatalf("kept flow: %q v%d %v %+v", from, v, ok, g)
	}
	got, _ := ext.Digest("a", 1)
	if w, _ := want.Digest("a", 1); got != w {
		t.Fatalf("digest after FlushExcept %+v, want that of the kept flows %+v", got, w)
	}
	if n := ext.FlushExcept(nil); n != 0 || ext.Len("") != 0 {
		t.Fatalf("FlushExcept(nil) kept %d, %d left", n, ext.Len(""))
	}
}
