package kernel

import (
	"net/netip"
	"testing"

	"github.com/ctsync/ctsync/flow"
)

func testExpects() []flow.Expect {
	a := netip.MustParseAddr
	return []flow.Expect{
		{ // ftp PORT through SNAT, with the NAT helper's saved address
			Tuple:   flow.Tuple{Src: a("192.0.2.10"), Dst: a("10.0.0.5"), Proto: flow.ProtoTCP, DstPort: 50000},
			Mask:    flow.Tuple{Src: a("255.255.255.255"), Dst: a("255.255.255.255"), Proto: flow.ProtoTCP, DstPort: 0xffff},
			Master:  flow.Tuple{Src: a("10.0.0.5"), Dst: a("192.0.2.10"), Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 21},
			Timeout: 300, ID: 7, Helper: "ftp", Class: 0, Flags: 0,
			NATDir:   1,
			NATTuple: flow.Tuple{Src: a("192.168.1.5"), Dst: a("0.0.0.0"), Proto: flow.ProtoTCP, SrcPort: 50001},
			Fn:       "nat-follow-master",
			Attrs: flow.ExpectAttrTimeout | flow.ExpectAttrID | flow.ExpectAttrHelper | flow.ExpectAttrClass |
				flow.ExpectAttrNAT | flow.ExpectAttrFn,
		},
		{ // sip media, IPv6, zone, permanent, class 2
			Tuple:   flow.Tuple{Src: a("2001:db8::1"), Dst: a("2001:db8::2"), Proto: flow.ProtoUDP, SrcPort: 0, DstPort: 16384},
			Mask:    flow.Tuple{Src: a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Dst: a("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Proto: flow.ProtoUDP, DstPort: 0xffff},
			Master:  flow.Tuple{Src: a("2001:db8::2"), Dst: a("2001:db8::1"), Proto: flow.ProtoUDP, SrcPort: 5060, DstPort: 5060},
			Timeout: 180, Helper: "sip", Zone: 3, Flags: flow.ExpectPermanent | flow.ExpectInactive, Class: 2,
			Attrs: flow.ExpectAttrTimeout | flow.ExpectAttrHelper | flow.ExpectAttrZone | flow.ExpectAttrFlags | flow.ExpectAttrClass,
		},
	}
}

func TestExpectEncodeDecode(t *testing.T) {
	for _, x := range testExpects() {
		var e encoder
		e.appendExpectCreate(&x, 1, nlmFCreate)
		var got flow.Expect
		if err := decodeExpect(e.b[nlmsgHdrLen+nfgenHdrLen:], &got); err != nil {
			t.Fatalf("%s: %v", x.String(), err)
		}
		got.ID, got.Attrs = x.ID, x.Attrs // not sent on create
		if got != x {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, x)
		}
	}
}

func TestExpectText(t *testing.T) {
	xs := testExpects()
	want := []string{
		"300 proto=6 src=192.0.2.10 dst=10.0.0.5 sport=0 dport=50000 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=10.0.0.5 master-dst=192.0.2.10 sport=40000 dport=21 class=0 helper=ftp",
		"180 proto=17 src=2001:db8::1 dst=2001:db8::2 sport=0 dport=16384 mask-src=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff mask-dst=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff sport=0 dport=65535 master-src=2001:db8::2 master-dst=2001:db8::1 sport=5060 dport=5060 zone=3 PERMANENT,INACTIVE class=2 helper=sip",
	}
	for i := range xs {
		if got := xs[i].String(); got != want[i] {
			t.Errorf("text:\n got %s\nwant %s", got, want[i])
		}
	}
}

// FuzzDecodeExpect: arbitrary bytes never panic the expectation decoder, and
// whatever it accepts can be encoded again and decodes to the same tuples.
func FuzzDecodeExpect(f *testing.F) {
	for _, x := range testExpects() {
		var e encoder
		e.appendExpectCreate(&x, 1, nlmFCreate)
		f.Add(e.b[nlmsgHdrLen+nfgenHdrLen:])
	}
	f.Add([]byte{})
	f.Add([]byte{4, 0, 2, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var x flow.Expect
		if err := decodeExpect(b, &x); err != nil {
			return
		}
		_ = x.String()
		if x.Validate() != nil {
			return
		}
		var e encoder
		e.appendExpectCreate(&x, 1, nlmFCreate)
		var again flow.Expect
		if err := decodeExpect(e.b[nlmsgHdrLen+nfgenHdrLen:], &again); err != nil {
			t.Fatalf("re-encoded expectation does not decode: %v", err)
		}
		if again.Tuple != x.Tuple || again.Master != x.Master {
			t.Fatalf("tuples changed: %+v -> %+v", x, again)
		}
	})
}
