package sync

import (
	"bufio"
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/vmihailenco/msgpack/v5"
)

// Hostile msgpack from a member with the key: fields a newer peer appends
// are skipped, and so nesting and lengths there are the sender's to choose.
// A value nested deeper than maxDepth is refused without recursion, and a
// length or count of 2^31 or more is refused, not turned into a negative
// int, on 32-bit platforms too (these tests run as 32-bit ARM in
// `make unit-32bit`, and pass under GOARCH=386).

// nestHeaders are the container headers of msgpack, each holding one value
// (a map: a nil key and the value).
var nestHeaders = []struct {
	name string
	hdr  []byte
}{
	{"fixarray", []byte{0x91}},
	{"array16", []byte{0xdc, 0, 1}},
	{"array32", []byte{0xdd, 0, 0, 0, 1}},
	{"fixmap", []byte{0x81, 0xc0}},
	{"map16", []byte{0xde, 0, 1, 0xc0}},
	{"map32", []byte{0xdf, 0, 0, 0, 1, 0xc0}},
}

// nested returns depth containers with header hdr, one in the other, around
// a nil.
func nested(hdr []byte, depth int) []byte {
	return append(bytes.Repeat(hdr, depth), 0xc0)
}

// entryWith encodes an entries message of one flow whose entry has extra as
// a 27th field.
func entryWith(extra []byte) []byte {
	w := newWriter()
	w.startEntries(1)
	e := wireEntries()[1]
	at := len(w.b)
	w.entry(&e)
	if w.b[at] != 0xdc || w.b[at+2] != 26 {
		panic("an entry no longer starts with array16(26)")
	}
	w.b[at+2]++
	w.b = append(w.b, extra...)
	return append([]byte(nil), w.endEntries(1)...)
}

// expectWith encodes an expectations message of one expectation with extra
// as its last field.
func expectWith(extra []byte) []byte {
	w := newWriter()
	w.begin(msgExpects)
	b := appendArrayLen(appendUint(w.b, 1), 1)
	at := len(b)
	b = appendExpect(b, &wireExpects()[0])
	if b[at] != 0xdc || b[at+2] != expectFields {
		panic("an expectation no longer starts with array16(expectFields)")
	}
	b[at+2]++
	return append(b, extra...)
}

// helloWith encodes a hello with extra as its fourth field (the library
// path: reader.hello).
func helloWith(extra []byte) []byte {
	b := appendArrayLen([]byte{wireVersion, byte(msgHello)}, 4)
	b = appendUint(appendUint(appendStr(b, "a"), 1), 1)
	return append(b, extra...)
}

// digestWith encodes a digest with extra as its fifth field (the library
// path: reader.u64s).
func digestWith(extra []byte) []byte {
	b := appendArrayLen([]byte{wireVersion, byte(msgDigest)}, 5)
	for _, v := range []uint64{1, 2, 3, 4} {
		b = appendUint(b, v)
	}
	return append(b, extra...)
}

// keyReplyWith encodes a key reply whose one field, unknown, is extra (the
// library path: msgpack.Unmarshal).
func keyReplyWith(extra []byte) []byte {
	return append([]byte{keyMsgMarker, keyMsgReply, 0x81, 0xa2, 'z', 'z'}, extra...)
}

// keyMsgRefused reports whether a node counts b as a decode error.
func keyMsgRefused(b []byte) bool {
	n := &Node{}
	if !n.handleKeyMsg(b) {
		panic("not a key message")
	}
	return n.stats.decodeErrors.Load() == 1
}

// wirePaths decode a message made with extra in a place a newer peer may
// append fields, each as its receiver does. A key message is checked whole
// (checkValue) before the library decodes it: its map is one more level.
var wirePaths = []struct {
	name  string
	msg   func(extra []byte) []byte
	outer int // containers around extra that count towards maxDepth
}{
	{"entry", entryWith, 0},
	{"expectation", expectWith, 0},
	{"hello", helloWith, 0},
	{"digest", digestWith, 0},
	{"key message", keyReplyWith, 1},
}

// decodePath decodes what wirePaths made: nil if it was accepted.
func decodePath(b []byte) error {
	if b[0] == keyMsgMarker {
		if keyMsgRefused(b) {
			return errWire
		}
		return nil
	}
	return decodeAny(b)
}

// TestSkipBoundsDepth: a skipped field nested maxDepth deep is skipped, one
// nested deeper is refused with a wire error, on the hand-written parser's
// path (entries, expectations) and the library's (hello, digest, key
// messages), for every kind of container.
func TestSkipBoundsDepth(t *testing.T) {
	for _, path := range wirePaths {
		if err := decodePath(path.msg([]byte{0xc0})); err != nil {
			t.Fatalf("%s: with a nil appended: %v", path.name, err)
		}
		most := maxDepth - path.outer
		for _, h := range nestHeaders {
			if err := decodePath(path.msg(nested(h.hdr, most))); err != nil {
				t.Errorf("%s: %d nested %s: %v", path.name, most, h.name, err)
			}
			err := decodePath(path.msg(nested(h.hdr, most+1)))
			if !errors.Is(err, errWire) {
				t.Errorf("%s: %d nested %s: accepted (%v), want a wire error", path.name, most+1, h.name, err)
			}
		}
	}
}

// TestSkipHugeNesting: a frame-sized field of nested arrays is refused in
// bounded stack. Before the bound, the hand-written parser recursed once per
// byte (4 MiB: hundreds of MiB of stack, seconds of CPU) and the library as
// deep: the figures are logged.
func TestSkipHugeNesting(t *testing.T) {
	deep := nested([]byte{0x91}, maxFrame-64)
	for _, path := range wirePaths {
		msg := path.msg(deep)
		var err error
		var stack uint64
		start := time.Now()
		done := make(chan struct{})
		go func() { // a goroutine of its own: its stack is what the decoding grew
			defer close(done)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err = decodePath(msg)
			runtime.ReadMemStats(&after)
			stack = after.StackInuse - min(after.StackInuse, before.StackInuse)
		}()
		<-done
		t.Logf("%s: %d bytes of nested arrays: %v in %v, stack grown by %d KiB",
			path.name, len(msg), err, time.Since(start).Round(time.Millisecond), stack>>10)
		if !errors.Is(err, errWire) {
			t.Errorf("%s: a field of %d nested arrays was accepted (%v)", path.name, len(deep), err)
		}
	}
}

// TestWireLengths32: lengths and counts of 2^31 and more (negative as an
// int on 32-bit platforms) are refused cleanly wherever they come off the
// wire.
func TestWireLengths32(t *testing.T) {
	big := []uint32{1 << 31, 1<<32 - 1}
	u32 := func(c byte, n uint32) []byte { return []byte{c, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }
	for _, n := range big {
		// Skipped fields: str32, bin32, ext32, array32, map32.
		for _, c := range []byte{0xdb, 0xc6, 0xc9, 0xdd, 0xdf} {
			extra := append(u32(c, n), 0, 0, 0, 0)
			for _, path := range wirePaths {
				if err := decodePath(path.msg(extra)); !errors.Is(err, errWire) {
					t.Errorf("%s: appended 0x%02x of length %d: accepted (%v)", path.name, c, n, err)
				}
			}
		}
		// Read fields: an address, a helper name, the entry count, a
		// hello's node name and field count, a key reply's list and key.
		w := newWriter()
		w.startEntries(1)
		w.b = append(w.b, 0x98, 1, 0, 6)
		w.b = append(w.b, u32(0xc6, n)...)
		for _, msg := range [][]byte{
			append([]byte(nil), w.endEntries(1)...),
			{wireVersion, byte(msgEntries), 1, 0xdd, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0x90},
			append(append([]byte{wireVersion, byte(msgHello), 0x93}, u32(0xdb, n)...), 1, 1),
			append([]byte{wireVersion, byte(msgHello)}, append(u32(0xdd, n), 0xa1, 'a', 1, 1)...),
			append([]byte{wireVersion, byte(msgDigest)}, append(u32(0xdd, n), 1, 2, 3, 4)...),
		} {
			if err := decodeAny(msg); !errors.Is(err, errWire) {
				t.Errorf("% x: accepted (%v)", msg, err)
			}
		}
		w.startEntries(1)
		w.entry(&wireEntries()[0])
		helper := append([]byte(nil), w.endEntries(1)...)
		at := bytes.Index(helper, []byte{0xa3, 'f', 't', 'p'})
		if at < 0 {
			t.Fatal("no helper in the test flow")
		}
		helper = append(append(append([]byte(nil), helper[:at]...), u32(0xdb, n)...), helper[at+4:]...)
		if err := decodeAny(helper); !errors.Is(err, errWire) {
			t.Errorf("a helper name of %d bytes: accepted (%v)", n, err)
		}
		for _, body := range [][]byte{
			append([]byte{0x81, 0xa4, 'k', 'e', 'y', 's'}, u32(0xdd, n)...),
			append([]byte{0x81, 0xa3, 'e', 'r', 'r'}, u32(0xdb, n)...),
			u32(0xdf, n),
		} {
			if !keyMsgRefused(append([]byte{keyMsgMarker, keyMsgReply}, body...)) {
				t.Errorf("key reply % x: accepted", body)
			}
		}
		s := &conn{br: bufio.NewReader(bytes.NewReader(append(frameHeader(n), make([]byte, 64)...)))}
		if _, err := s.readFrame(); !errors.Is(err, errTooLarge) {
			t.Errorf("a frame of %d bytes: %v", n, err)
		}
	}
}

// TestSkipKeepsPosition: after the library path skips appended fields with
// the hand-written parser, the decoder reads on from the right byte.
func TestSkipKeepsPosition(t *testing.T) {
	rd := newReader()
	b := appendArrayLen([]byte{wireVersion, byte(msgDigest)}, 3)
	b = appendUint(appendStr(appendArrayLen(b, 2), "xyz"), 7)
	b = appendUint(appendUint(b, 300), 0xfedcba98)
	if _, err := rd.open(b); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.arrayLen(3); err != nil {
		t.Fatal(err)
	}
	if err := rd.skip(1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{300, 0xfedcba98} {
		if v, err := rd.uint(^uint64(0)); err != nil || v != want {
			t.Fatalf("after the skip: %d, %v; want %d", v, err, want)
		}
	}
}

// TestSeqAdjAppendedFields: a sequence adjustment with a field appended
// decodes as without it, and the fields after it stay in place.
func TestSeqAdjAppendedFields(t *testing.T) {
	w := newWriter()
	w.startEntries(1)
	e := wireEntries()[0] // has both sequence adjustments
	w.entry(&e)
	plain := append([]byte(nil), w.endEntries(1)...)
	seq := []byte{0x93, 1, 2, 3}
	at := bytes.Index(plain, seq)
	if at < 0 {
		t.Fatal("no sequence adjustment in the test flow")
	}
	b := append(append(append([]byte(nil), plain[:at]...), 0x94, 1, 2, 3, 0x92, 0xc0, 0xc0), plain[at+len(seq):]...)
	var got cache.Entry
	rd := newReader()
	if _, err := rd.open(b); err != nil {
		t.Fatal(err)
	}
	if err := rd.entries(func(_ uint64, e *cache.Entry) error { got = *e; return nil }); err != nil {
		t.Fatal(err)
	}
	if got.Flow.SeqAdjOrig != e.Flow.SeqAdjOrig || got.Flow.SeqAdjReply != e.Flow.SeqAdjReply || got.Flow.Labels != e.Flow.Labels {
		t.Fatalf("decoded as %+v, want %+v", got.Flow, e.Flow)
	}
}

// hostileSeeds are fuzz seeds made by msg with a hostile appended field:
// containers nested maxDepth and maxDepth+1 deep, and lengths of 2^31.
func hostileSeeds(msg func(extra []byte) []byte) [][]byte {
	var out [][]byte
	for _, h := range nestHeaders {
		out = append(out, msg(nested(h.hdr, maxDepth)), msg(nested(h.hdr, maxDepth+1)))
	}
	for _, c := range []byte{0xdb, 0xc6, 0xdd, 0xdf} {
		out = append(out, msg([]byte{c, 0x80, 0, 0, 0}))
	}
	return out
}

// FuzzCheckValue: checkValue never panics, and what it accepts the
// library's decoder skips too, to the same byte; what the library skips,
// short enough that it cannot nest too deep, checkValue accepts (with a
// 64-bit int: with a 32-bit one the library reads a length of 2^31 or more
// as negative and "skips" nothing, which is why checkValue goes first).
func FuzzCheckValue(f *testing.F) {
	for _, b := range hostileSeeds(func(extra []byte) []byte { return extra }) {
		f.Add(b)
	}
	f.Add([]byte{0x93, 0xc0, 0xd4, 1, 2, 0x82, 0xa1, 'a', 0xc3, 0xc7, 1, 5, 0, 0xcb, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parser{b: b}
		p.skip()
		r := bytes.NewReader(b)
		lerr := msgpack.NewDecoder(r).Skip()
		if p.err == nil {
			if lerr != nil {
				t.Fatalf("% x: checkValue accepts, the library fails: %v", b, lerr)
			}
			if r.Len() != len(p.b) {
				t.Fatalf("% x: checkValue leaves %d bytes, the library %d", b, len(p.b), r.Len())
			}
		} else if lerr == nil && len(b) <= maxDepth && strconv.IntSize == 64 {
			t.Fatalf("% x: the library skips, checkValue fails: %v", b, p.err)
		}
	})
}
