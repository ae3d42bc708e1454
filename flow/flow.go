package flow

import (
	"fmt"
	"net/netip"
)

// Family is an address family as the kernel numbers it.
type Family uint8

// Address families.
const (
	FamilyUnspec Family = 0
	IPv4         Family = 2  // AF_INET
	IPv6         Family = 10 // AF_INET6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "unknown"
}

// ParseFamily parses "ipv4" or "ipv6".
func ParseFamily(s string) (Family, error) {
	switch s {
	case "ipv4", "inet", "4":
		return IPv4, nil
	case "ipv6", "inet6", "6":
		return IPv6, nil
	}
	return 0, fmt.Errorf("unknown family %q (want ipv4 or ipv6)", s)
}

// FamilyOf returns the family of an address.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return FamilyUnspec
}

// Tuple is one direction of a flow: addresses and layer-4 identifiers.
//
// Which layer-4 fields are meaningful depends on Proto: ports for TCP, UDP,
// UDP-Lite, SCTP and DCCP; keys (in SrcPort/DstPort) for GRE; ICMP type, code
// and id for ICMP and ICMPv6; none for other protocols. Tuple is comparable.
type Tuple struct {
	Src, Dst netip.Addr
	Proto    uint8
	SrcPort  uint16 // also the GRE source key
	DstPort  uint16 // also the GRE destination key
	ICMPID   uint16
	ICMPType uint8
	ICMPCode uint8
}

// Family returns the tuple's address family.
func (t Tuple) Family() Family { return FamilyOf(t.Src) }

// IsZero reports whether the tuple is unset.
func (t Tuple) IsZero() bool { return t == Tuple{} }

// HasPorts reports whether the tuple's protocol carries ports.
func (t Tuple) HasPorts() bool { return HasPorts(t.Proto) }

// HasPorts reports whether protocol p identifies endpoints by ports.
func HasPorts(p uint8) bool {
	switch p {
	case ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoDCCP:
		return true
	}
	return false
}

// IsICMP reports whether protocol p is ICMP or ICMPv6.
func IsICMP(p uint8) bool { return p == ProtoICMP || p == ProtoICMPv6 }

// ZoneDir says in which directions a flow's zone applies.
type ZoneDir uint8

// Zone directions. ZoneBoth is the default (conntrack's -w); ZoneOrig and
// ZoneReply are conntrack's --orig-zone and --reply-zone.
const (
	ZoneBoth  ZoneDir = 0
	ZoneOrig  ZoneDir = 1
	ZoneReply ZoneDir = 2
)

// TCPInfo is the TCP protocol state of a flow.
type TCPInfo struct {
	State       uint8
	WScaleOrig  uint8
	WScaleReply uint8
	FlagsOrig   uint8 // IP_CT_TCP_FLAG_* bits
	FlagsReply  uint8
}

// TCP flag bits of TCPInfo.FlagsOrig/FlagsReply (the kernel's IP_CT_TCP_FLAG_*).
const (
	TCPFlagWindowScale   = 0x01
	TCPFlagSACKPerm      = 0x02
	TCPFlagCloseInit     = 0x04
	TCPFlagBeLiberal     = 0x08
	TCPFlagDataUnacked   = 0x10
	TCPFlagMaxackSet     = 0x20
	TCPFlagChallengeAck  = 0x40
	TCPFlagSimultaneousO = 0x80
)

// SCTPInfo is the SCTP protocol state of a flow.
type SCTPInfo struct {
	State     uint8
	VTagOrig  uint32
	VTagReply uint32
}

// DCCPInfo is the DCCP protocol state of a flow.
type DCCPInfo struct {
	State        uint8
	Role         uint8
	HandshakeSeq uint64
}

// SeqAdj is the sequence-number adjustment of one direction (NAT helpers).
type SeqAdj struct {
	CorrectionPos uint32
	OffsetBefore  uint32
	OffsetAfter   uint32
}

// IsZero reports whether no adjustment is set.
func (s SeqAdj) IsZero() bool { return s == SeqAdj{} }

// Counters are a direction's packet and byte counters (accounting).
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// Labels is the 128-bit connection label bitmap (ct label).
type Labels [16]byte

// IsZero reports whether no label bit is set.
func (l Labels) IsZero() bool { return l == Labels{} }

// Attr is a bit set saying which optional attributes a flow carries. A dump
// or event only carries what the kernel sent; output formats (conntrack(8)'s
// among them) print an attribute only when it is present.
type Attr uint32

// Attribute presence bits.
const (
	AttrTimeout Attr = 1 << iota
	AttrStatus
	AttrMark
	AttrZone
	AttrUse
	AttrID
	AttrTCP
	AttrSCTP
	AttrDCCP
	AttrCounters
	AttrTimestamp
	AttrLabels
	AttrHelper
	AttrSeqAdjOrig
	AttrSeqAdjReply
	AttrMaster
	AttrSecctx
	AttrSecmark
	AttrTimestampStop
)

// Flow is one conntrack entry.
//
// Orig and Reply are the tuples as the kernel sees them: NAT is expressed by a
// reply tuple that is not the inverse of the original one (see SNAT and DNAT).
// Zero-valued optional fields are only meaningful when their Attr bit is set.
type Flow struct {
	Orig, Reply Tuple
	Master      *Tuple // the master's original tuple for RELATED (expected) flows

	Attrs   Attr
	ID      uint32
	Status  Status
	Timeout uint32 // seconds left
	Mark    uint32
	Secmark uint32
	Zone    uint16
	ZoneDir ZoneDir
	Use     uint32

	TCP  TCPInfo
	SCTP SCTPInfo
	DCCP DCCPInfo

	SeqAdjOrig, SeqAdjReply SeqAdj
	Labels                  Labels
	Helper                  string
	Secctx                  string

	CountersOrig, CountersReply Counters
	Start, Stop                 uint64 // timestamps, ns since the epoch
}

// Has reports whether all attributes in a are present.
func (f *Flow) Has(a Attr) bool { return f.Attrs&a == a }

// Set marks attributes as present.
func (f *Flow) Set(a Attr) { f.Attrs |= a }

// Family returns the flow's address family.
func (f *Flow) Family() Family { return f.Orig.Family() }

// Proto returns the layer-4 protocol number.
func (f *Flow) Proto() uint8 { return f.Orig.Proto }

// Key identifies a flow within one table: the original tuple and the zone.
type Key struct {
	Orig Tuple
	Zone uint16
}

// Key returns the flow's identity.
func (f *Flow) Key() Key { return Key{Orig: f.Orig, Zone: f.Zone} }

// Invert returns the tuple seen from the other direction, as the kernel
// computes a reply tuple for a flow without NAT.
func (t Tuple) Invert() Tuple {
	r := Tuple{Src: t.Dst, Dst: t.Src, Proto: t.Proto}
	switch {
	case IsICMP(t.Proto):
		r.ICMPID = t.ICMPID
		r.ICMPCode = t.ICMPCode
		r.ICMPType = invertICMPType(t.Proto, t.ICMPType)
	default:
		r.SrcPort, r.DstPort = t.DstPort, t.SrcPort
	}
	return r
}

// invertICMPType maps a request type to its reply type as the kernel does
// (nf_conntrack_proto_icmp{,v6} invmap). Types without an inverse keep theirs.
func invertICMPType(proto, typ uint8) uint8 {
	if proto == ProtoICMP {
		switch typ {
		case 8:
			return 0 // echo -> echo reply
		case 0:
			return 8
		case 13:
			return 14 // timestamp
		case 14:
			return 13
		case 15:
			return 16 // info
		case 16:
			return 15
		case 17:
			return 18 // address mask
		case 18:
			return 17
		}
		return typ
	}
	switch typ {
	case 128:
		return 129 // echo request -> reply
	case 129:
		return 128
	case 139:
		return 140 // node info query -> response
	case 140:
		return 139
	}
	return typ
}

// SNAT reports the source NAT mapping of the flow: the address and port the
// original source is translated to, read from the reply tuple.
func (f *Flow) SNAT() (addr netip.Addr, port uint16, ok bool) {
	inv := f.Orig.Invert()
	switch {
	case IsICMP(f.Orig.Proto):
		// Source NAT of ICMP may remap the query id, the "port" of ICMP.
		if f.Reply.Dst == inv.Dst && f.Reply.ICMPID == inv.ICMPID {
			return netip.Addr{}, 0, false
		}
		return f.Reply.Dst, f.Reply.ICMPID, true
	case f.Reply.Dst == inv.Dst && (!f.Orig.HasPorts() || f.Reply.DstPort == inv.DstPort):
		return netip.Addr{}, 0, false
	}
	return f.Reply.Dst, f.Reply.DstPort, true
}

// DNAT reports the destination NAT mapping of the flow: the address and port
// the original destination is translated to, read from the reply tuple.
func (f *Flow) DNAT() (addr netip.Addr, port uint16, ok bool) {
	inv := f.Orig.Invert()
	if f.Reply.Src == inv.Src && (!f.Orig.HasPorts() || f.Reply.SrcPort == inv.SrcPort) {
		return netip.Addr{}, 0, false
	}
	return f.Reply.Src, f.Reply.SrcPort, true
}

// Validate checks that a flow is complete enough to be created in a kernel
// table: families agree, the tuples carry what their protocol needs.
func (f *Flow) Validate() error {
	if !f.Orig.Src.IsValid() || !f.Orig.Dst.IsValid() {
		return fmt.Errorf("original tuple needs a source and a destination address")
	}
	if !f.Reply.Src.IsValid() || !f.Reply.Dst.IsValid() {
		return fmt.Errorf("reply tuple needs a source and a destination address")
	}
	fam := FamilyOf(f.Orig.Src)
	for _, a := range []netip.Addr{f.Orig.Dst, f.Reply.Src, f.Reply.Dst} {
		if FamilyOf(a) != fam {
			return fmt.Errorf("mixed address families in one flow")
		}
	}
	if f.Orig.Proto != f.Reply.Proto {
		return fmt.Errorf("original and reply tuple have different protocols")
	}
	if f.Orig.Proto == ProtoICMP && fam != IPv4 || f.Orig.Proto == ProtoICMPv6 && fam != IPv6 {
		return fmt.Errorf("protocol %s does not match family %s", ProtoName(f.Orig.Proto), fam)
	}
	return nil
}
