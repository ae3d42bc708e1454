package sync

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/flow"
	"github.com/vmihailenco/msgpack/v5"
)

var update = flag.Bool("update", false, "rewrite golden files")

func wireFlows() []flow.Flow {
	a := netip.MustParseAddr
	tcp := tflow(3) // SNAT
	tcp.Zone, tcp.Mark = 5, 0xdead
	tcp.Attrs |= flow.AttrZone | flow.AttrHelper | flow.AttrLabels | flow.AttrSeqAdjOrig | flow.AttrSeqAdjReply
	tcp.Helper = "ftp"
	tcp.Labels = flow.Labels{0: 1, 15: 0x80}
	tcp.SeqAdjOrig = flow.SeqAdj{CorrectionPos: 1, OffsetBefore: 2, OffsetAfter: 3}
	tcp.SeqAdjReply = flow.SeqAdj{CorrectionPos: 4, OffsetBefore: 5, OffsetAfter: 6}
	tcp.TCP = flow.TCPInfo{State: 3, WScaleOrig: 7, WScaleReply: 9, FlagsOrig: 0x23, FlagsReply: 0x21}
	plain := tflow(4)
	v6 := flow.Flow{Orig: flow.Tuple{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Proto: flow.ProtoICMPv6, ICMPType: 128, ICMPID: 77},
		Timeout: 30, Attrs: flow.AttrTimeout | flow.AttrStatus | flow.AttrMark, Zone: 9, ZoneDir: flow.ZoneReply}
	v6.Reply = v6.Orig.Invert()
	sctp := flow.Flow{Orig: flow.Tuple{Src: a("1.1.1.1"), Dst: a("2.2.2.2"), Proto: flow.ProtoSCTP, SrcPort: 5, DstPort: 6},
		Timeout: 30, Attrs: flow.AttrTimeout | flow.AttrSCTP | flow.AttrStatus, SCTP: flow.SCTPInfo{State: 4, VTagOrig: 0xdeadbeef, VTagReply: 11}}
	sctp.Reply = sctp.Orig.Invert()
	sctp.Reply.Src, sctp.Reply.SrcPort = a("9.9.9.9"), 99
	dccp := flow.Flow{Orig: flow.Tuple{Src: a("1.1.1.1"), Dst: a("2.2.2.2"), Proto: flow.ProtoDCCP, SrcPort: 5, DstPort: 6},
		Timeout: 30, Attrs: flow.AttrTimeout | flow.AttrDCCP, DCCP: flow.DCCPInfo{State: 4, Role: 1, HandshakeSeq: 1<<47 + 3}}
	dccp.Reply = dccp.Orig.Invert()
	gre := flow.Flow{Orig: flow.Tuple{Src: a("1.1.1.7"), Dst: a("2.2.2.2"), Proto: flow.ProtoGRE, SrcPort: 5, DstPort: 6}, Timeout: 30, Attrs: flow.AttrTimeout}
	gre.Reply = gre.Orig.Invert()
	related := tflow(5)
	m := tcp.Orig
	related.Master = &m
	related.Attrs |= flow.AttrMaster
	return []flow.Flow{tcp, plain, v6, sctp, dccp, gre, related}
}

func wireEntries() []cache.Entry {
	var out []cache.Entry
	for i, f := range wireFlows() {
		out = append(out, cache.Entry{Key: cache.KeyOf(&f), Version: uint64(1000 + i), Flow: f})
	}
	del := tflow(6)
	out = append(out, cache.Entry{Key: cache.KeyOf(&del), Version: 2000, Deleted: true, Flow: flow.Flow{Orig: del.Orig}})
	return out
}

func TestEntriesRoundTrip(t *testing.T) {
	w := newWriter()
	w.startEntries(42)
	in := wireEntries()
	for i := range in {
		w.entry(&in[i])
	}
	b := append([]byte(nil), w.endEntries(len(in))...)
	rd := newReader()
	typ, err := rd.open(b)
	if err != nil || typ != msgEntries {
		t.Fatalf("open: %v %v", typ, err)
	}
	var got []cache.Entry
	if err := rd.entries(func(ep uint64, e *cache.Entry) error {
		if ep != 42 {
			t.Fatalf("epoch %d", ep)
		}
		c := *e
		got = append(got, c)
		return nil
	}); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d entries, want %d", len(got), len(in))
	}
	for i := range in {
		g, w := got[i], in[i]
		if g.Key != w.Key || g.Version != w.Version || g.Deleted != w.Deleted {
			t.Fatalf("entry %d header: got %+v, want %+v", i, g, w)
		}
		if w.Deleted {
			continue
		}
		if fmt.Sprint(g.Flow.Master) != fmt.Sprint(w.Flow.Master) {
			t.Fatalf("entry %d master: %v, want %v", i, g.Flow.Master, w.Flow.Master)
		}
		g.Flow.Master, w.Flow.Master = nil, nil
		if g.Flow != w.Flow {
			t.Fatalf("entry %d:\n got %+v\nwant %+v", i, g.Flow, w.Flow)
		}
	}
}

// TestGolden pins the wire format: a change here breaks mixed-version
// clusters, so it must be deliberate (-update) and append-only.
func TestGolden(t *testing.T) {
	w := newWriter()
	var msgs []string
	add := func(name string, b []byte) { msgs = append(msgs, name+" "+hex.EncodeToString(b)) }
	add("hello", w.hello("fw-a", 7, 3))
	add("snapshot-begin", w.u64s(msgSnapBegin, 7))
	w.startEntries(7)
	in := wireEntries()
	for i := range in {
		w.entry(&in[i])
	}
	add("entries", w.endEntries(len(in)))
	add("snapshot-end", w.u64s(msgSnapEnd, 7))
	add("digest", w.u64s(msgDigest, 7, 8, 0xfedcba9876543210, 1008))
	add("resync", w.u64s(msgResync, 1))
	// Added with expectations (new message types; version 1 unchanged).
	add("expectations", w.expects(7, wireExpects()))
	add("expectation-digest", w.u64s(msgExpectDigest, 7, 2, 0x0123456789abcdef))
	add("resync-expectations", w.u64s(msgResync, resyncExpects))
	// Added later: a snapshot announces its size (receivers of the first
	// form read a size of 0; older receivers skip the field).
	add("snapshot-begin-sized", w.u64s(msgSnapBegin, 7, 100000))
	got := strings.Join(msgs, "\n") + "\n"
	path := filepath.Join("testdata", "wire-v1.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	if got != string(want) {
		t.Fatalf("wire format changed:\n got %s\nwant %s", got, want)
	}
	// And the golden bytes decode.
	for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		b, _ := hex.DecodeString(strings.Fields(line)[1])
		if err := decodeAny(b); err != nil {
			t.Fatalf("%s: %v", strings.Fields(line)[0], err)
		}
	}
}

// decodeAny decodes any message, as the receiver would.
func decodeAny(b []byte) error {
	rd := newReader()
	t, err := rd.open(b)
	if err != nil {
		return err
	}
	switch t {
	case msgHello:
		_, _, _, err = rd.hello()
	case msgEntries:
		err = rd.entries(func(uint64, *cache.Entry) error { return nil })
	case msgSnapBegin:
		var ep, size uint64
		err = rd.u64sMin(1, &ep, &size)
	case msgSnapEnd, msgResync:
		var v uint64
		err = rd.u64s(&v)
	case msgDigest:
		var a, b, c, d uint64
		err = rd.u64s(&a, &b, &c, &d)
	case msgExpects:
		_, _, err = rd.expects()
	case msgExpectDigest:
		var a, b, c uint64
		err = rd.u64s(&a, &b, &c)
	default:
		err = errWire
	}
	return err
}

func FuzzDecodeMessage(f *testing.F) {
	w := newWriter()
	f.Add(append([]byte(nil), w.hello("a", 1, 1)...))
	w.startEntries(1)
	in := wireEntries()
	for i := range in {
		w.entry(&in[i])
	}
	f.Add(append([]byte(nil), w.endEntries(len(in))...))
	f.Add(append([]byte(nil), w.u64s(msgDigest, 1, 2, 3, 4)...))
	f.Add([]byte{1, 3, 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add(append([]byte(nil), w.expects(1, wireExpects())...))
	f.Add(append([]byte(nil), w.u64s(msgExpectDigest, 1, 2, 3)...))
	f.Add([]byte{1, 7, 1, 0xdc, 0xff, 0xff})
	for _, msg := range []func([]byte) []byte{entryWith, expectWith, helloWith, digestWith} {
		for _, b := range hostileSeeds(msg) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = decodeAny(b) // must not panic or allocate without bound
	})
}

func FuzzHandshakeHello(f *testing.F) {
	f.Add(helloBody("ctsync", "fw-a"))
	f.Add([]byte{0})
	f.Add([]byte{5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		label, node, err := parseHello(b)
		if err == nil && !bytes.Equal(helloBody(label, node), b) {
			t.Fatalf("hello does not round-trip")
		}
	})
}

func BenchmarkEncodeEntry(b *testing.B) {
	w := newWriter()
	e := wireEntries()[1]
	b.ReportAllocs()
	for b.Loop() {
		w.startEntries(1)
		w.entry(&e)
	}
}

func BenchmarkDecodeEntries(b *testing.B) {
	w := newWriter()
	w.startEntries(1)
	e := wireEntries()[1]
	for i := 0; i < 1000; i++ {
		w.entry(&e)
	}
	msg := append([]byte(nil), w.endEntries(1000)...)
	rd := newReader()
	b.ReportAllocs()
	for b.Loop() {
		rd.open(msg)
		if err := rd.entries(func(uint64, *cache.Entry) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msg))/1000, "B/entry")
}

// TestLibraryReadsHandEncoding: the hand-written encoder produces msgpack
// that the msgpack library decodes to the same values, field by field.
func TestLibraryReadsHandEncoding(t *testing.T) {
	w := newWriter()
	w.startEntries(9)
	in := wireEntries()
	for i := range in {
		w.entry(&in[i])
	}
	b := w.endEntries(len(in))
	dec := msgpack.NewDecoder(bytes.NewReader(b[2:]))
	epoch, err := dec.DecodeUint64()
	if err != nil || epoch != 9 {
		t.Fatalf("epoch %d %v", epoch, err)
	}
	var entries []any
	if err := dec.Decode(&entries); err != nil {
		t.Fatalf("library decode: %v", err)
	}
	if len(entries) != len(in) {
		t.Fatalf("library sees %d entries, want %d", len(entries), len(in))
	}
	for i, raw := range entries {
		fields, ok := raw.([]any)
		if !ok {
			t.Fatalf("entry %d is %T", i, raw)
		}
		if v := fmt.Sprint(fields[0]); v != fmt.Sprint(in[i].Version) {
			t.Fatalf("entry %d version %s, want %d", i, v, in[i].Version)
		}
		if in[i].Deleted != (len(fields) == 8) {
			t.Fatalf("entry %d has %d fields", i, len(fields))
		}
	}
}

// TestSnapshotSizeOptional: the size a snapshot-begin carries is read when
// present and absent from an older sender, and an older receiver's
// decoding (one field) takes the new form.
func TestSnapshotSizeOptional(t *testing.T) {
	w := newWriter()
	for _, c := range []struct {
		msg      []byte
		wantSize uint64
	}{
		{append([]byte(nil), w.u64s(msgSnapBegin, 7)...), 0},
		{append([]byte(nil), w.u64s(msgSnapBegin, 7, 123456)...), 123456},
	} {
		rd := newReader()
		if _, err := rd.open(c.msg); err != nil {
			t.Fatal(err)
		}
		var ep, size uint64
		if err := rd.u64sMin(1, &ep, &size); err != nil || ep != 7 || size != c.wantSize {
			t.Fatalf("u64sMin: epoch %d size %d err %v, want 7 %d", ep, size, err, c.wantSize)
		}
		old := newReader()
		old.open(c.msg)
		var oldEp uint64
		if err := old.u64s(&oldEp); err != nil || oldEp != 7 {
			t.Fatalf("an older receiver reads epoch %d, err %v", oldEp, err)
		}
	}
	rd := newReader()
	rd.open(w.u64s(msgSnapBegin))
	var ep, size uint64
	if err := rd.u64sMin(1, &ep, &size); err == nil {
		t.Fatalf("a snapshot-begin without an epoch decoded")
	}
}
