package kernel

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ctsync/ctsync/flow"
	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

func testFlows() []flow.Flow {
	a := netip.MustParseAddr
	tcp := flow.Flow{
		Orig:    flow.Tuple{Src: a("10.0.0.1"), Dst: a("198.51.100.1"), Proto: flow.ProtoTCP, SrcPort: 1000, DstPort: 443},
		Status:  flow.StatusSeenReply | flow.StatusAssured,
		Timeout: 431999, Mark: 0xdead, Zone: 7,
		Attrs:      flow.AttrTCP | flow.AttrSeqAdjOrig,
		TCP:        flow.TCPInfo{State: flow.TCPEstablished, WScaleOrig: 7, WScaleReply: 9, FlagsOrig: flow.TCPFlagWindowScale | flow.TCPFlagSACKPerm, FlagsReply: flow.TCPFlagWindowScale},
		SeqAdjOrig: flow.SeqAdj{CorrectionPos: 1, OffsetBefore: 2, OffsetAfter: 3},
		Helper:     "ftp",
		Labels:     flow.Labels{0: 0x80, 15: 1},
	}
	tcp.Reply = tcp.Orig.Invert()
	tcp.Reply.Dst, tcp.Reply.DstPort = a("203.0.113.1"), 40020
	v6 := flow.Flow{Orig: flow.Tuple{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Proto: flow.ProtoICMPv6, ICMPType: 128, ICMPID: 5}, Timeout: 30}
	v6.Reply = v6.Orig.Invert()
	sctp := flow.Flow{Orig: flow.Tuple{Src: a("1.1.1.6"), Dst: a("2.2.2.2"), Proto: flow.ProtoSCTP, SrcPort: 10, DstPort: 20}, Timeout: 30, Attrs: flow.AttrSCTP,
		SCTP: flow.SCTPInfo{State: 4, VTagOrig: 5, VTagReply: 6}, Zone: 3, ZoneDir: flow.ZoneReply}
	sctp.Reply = sctp.Orig.Invert()
	sctp.Reply.Src, sctp.Reply.SrcPort = a("9.9.9.9"), 2020
	return []flow.Flow{tcp, v6, sctp}
}

// TestEncodeDecode: a create message decodes back to the flow it encodes
// (with the reply tuple as sent: the inverse of the original).
func TestEncodeDecode(t *testing.T) {
	for _, f := range testFlows() {
		var e encoder
		e.appendCreate(&f, 1, nlmFCreate, CreateOptions{})
		var got flow.Flow
		if err := decodeFlow(e.b[nlmsgHdrLen+nfgenHdrLen:], &got); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.Orig != f.Orig {
			t.Errorf("orig %+v, want %+v", got.Orig, f.Orig)
		}
		if inv := f.Orig.Invert(); got.Reply != inv {
			t.Errorf("reply %+v, want the inverse %+v", got.Reply, inv)
		}
		if got.Status != createStatus(f.Status) || got.Timeout != f.Timeout || got.Mark != f.Mark {
			t.Errorf("status/timeout/mark %v/%d/%d, want %v/%d/%d", got.Status, got.Timeout, got.Mark, createStatus(f.Status), f.Timeout, f.Mark)
		}
		if got.Zone != f.Zone || got.ZoneDir != f.ZoneDir {
			t.Errorf("zone %d/%d, want %d/%d", got.Zone, got.ZoneDir, f.Zone, f.ZoneDir)
		}
		if got.TCP != f.TCP || got.SCTP != f.SCTP || got.Helper != f.Helper || got.Labels != f.Labels || got.SeqAdjOrig != f.SeqAdjOrig {
			t.Errorf("extras differ: got %+v\nwant %+v", got, f)
		}
	}
}

// TestDecodeAgreesWithTiMo decodes the same bytes with ti-mo/conntrack, an
// independent implementation, and compares what both understand.
func TestDecodeAgreesWithTiMo(t *testing.T) {
	for _, f := range testFlows() {
		var e encoder
		e.appendCreate(&f, 1, nlmFCreate, CreateOptions{})
		var ev conntrack.Event
		nm := netlink.Message{
			Header: netlink.Header{
				Length: binary.NativeEndian.Uint32(e.b),
				Type:   netlink.HeaderType(binary.NativeEndian.Uint16(e.b[4:])),
				Flags:  netlink.HeaderFlags(binary.NativeEndian.Uint16(e.b[6:])),
			},
			Data: e.b[nlmsgHdrLen:],
		}
		if err := ev.Unmarshal(nm); err != nil {
			t.Fatalf("ti-mo unmarshal: %v", err)
		}
		var ours flow.Flow
		if err := decodeFlow(e.b[nlmsgHdrLen+nfgenHdrLen:], &ours); err != nil {
			t.Fatalf("decode: %v", err)
		}
		tf := ev.Flow
		if tf.TupleOrig.IP.SourceAddress != ours.Orig.Src || tf.TupleOrig.IP.DestinationAddress != ours.Orig.Dst ||
			tf.TupleReply.IP.SourceAddress != ours.Reply.Src || tf.TupleReply.IP.DestinationAddress != ours.Reply.Dst {
			t.Errorf("addresses: ti-mo %+v / %+v, ours %+v / %+v", tf.TupleOrig.IP, tf.TupleReply.IP, ours.Orig, ours.Reply)
		}
		if tf.TupleOrig.Proto.Protocol != ours.Orig.Proto || tf.TupleOrig.Proto.SourcePort != ours.Orig.SrcPort ||
			tf.TupleOrig.Proto.DestinationPort != ours.Orig.DstPort || tf.TupleOrig.Proto.ICMPID != ours.Orig.ICMPID ||
			tf.TupleOrig.Proto.ICMPType != ours.Orig.ICMPType {
			t.Errorf("proto: ti-mo %+v, ours %+v", tf.TupleOrig.Proto, ours.Orig)
		}
		if uint32(tf.Status) != uint32(ours.Status) || tf.Timeout != ours.Timeout || tf.Mark != ours.Mark {
			t.Errorf("status/timeout/mark: ti-mo %v/%d/%d, ours %v/%d/%d", tf.Status, tf.Timeout, tf.Mark, ours.Status, ours.Timeout, ours.Mark)
		}
		if ours.Proto() == flow.ProtoSCTP && (tf.ProtoInfo.SCTP == nil || tf.ProtoInfo.SCTP.VTagOriginal != ours.SCTP.VTagOrig) {
			t.Errorf("sctp: ti-mo %+v, ours %+v", tf.ProtoInfo.SCTP, ours.SCTP)
		}
		if ours.Proto() == flow.ProtoTCP && (tf.ProtoInfo.TCP == nil || tf.ProtoInfo.TCP.State != ours.TCP.State) {
			t.Errorf("tcp: ti-mo %+v, ours %+v", tf.ProtoInfo.TCP, ours.TCP)
		}
	}
}

// FuzzDecodeFlow: arbitrary bytes never panic the decoder, and whatever it
// accepts can be encoded again and decodes to the same original tuple.
func FuzzDecodeFlow(f *testing.F) {
	for _, fl := range testFlows() {
		var e encoder
		e.appendCreate(&fl, 1, nlmFCreate, CreateOptions{})
		f.Add(e.b[nlmsgHdrLen+nfgenHdrLen:])
	}
	f.Add([]byte{})
	f.Add([]byte{4, 0, 1, 0})
	f.Add([]byte{0xff, 0xff, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fl flow.Flow
		if err := decodeFlow(b, &fl); err != nil {
			return
		}
		if fl.Validate() != nil {
			return
		}
		var e encoder
		e.appendCreate(&fl, 1, nlmFCreate, CreateOptions{})
		var again flow.Flow
		if err := decodeFlow(e.b[nlmsgHdrLen+nfgenHdrLen:], &again); err != nil {
			t.Fatalf("re-encoded flow does not decode: %v", err)
		}
		if again.Orig != fl.Orig {
			t.Fatalf("orig changed: %+v -> %+v", fl.Orig, again.Orig)
		}
	})
}

// FuzzMessages: arbitrary datagrams never panic the message walker.
func FuzzMessages(f *testing.F) {
	var e encoder
	fl := testFlows()[0]
	e.appendCreate(&fl, 7, 0, CreateOptions{})
	f.Add(e.b)
	f.Add([]byte{16, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0})
	// Lengths of 2^31 and more: negative as an int on 32-bit platforms.
	for _, l := range []uint32{1 << 31, 1<<32 - 1} {
		f.Add(binary.NativeEndian.AppendUint32(nil, l))
		f.Add(append(binary.NativeEndian.AppendUint32(nil, l), make([]byte, 28)...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		it := msgIter{b: b}
		for it.next() {
			if it.m.typ == nlmsgError {
				_, _ = errnoOf(it.m.data)
			}
			if len(it.m.data) >= nfgenHdrLen {
				var fl flow.Flow
				_ = decodeFlow(it.m.data[nfgenHdrLen:], &fl)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	fl := testFlows()[0]
	var e encoder
	e.appendCreate(&fl, 1, nlmFCreate, CreateOptions{})
	body := e.b[nlmsgHdrLen+nfgenHdrLen:]
	var out flow.Flow
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeFlow(body, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeCreate(b *testing.B) {
	fl := testFlows()[0]
	fl.Helper = ""
	var e encoder
	b.ReportAllocs()
	for b.Loop() {
		e.reset()
		e.appendCreate(&fl, 1, nlmFCreate, CreateOptions{})
	}
}
