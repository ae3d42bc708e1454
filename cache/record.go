package cache

import (
	"net/netip"

	"github.com/ctsync/ctsync/flow"
)

// Key is the compact, comparable identity of a flow: its original tuple and
// zone. For ICMP the id travels in sport and type<<8|code in dport.
type Key struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
	fam          uint8
	zone         uint16
}

// KeyOf returns the key of f.
func KeyOf(f *flow.Flow) Key {
	k := Key{
		src:   f.Orig.Src.As16(),
		dst:   f.Orig.Dst.As16(),
		proto: f.Orig.Proto,
		fam:   uint8(f.Family()),
		zone:  f.Zone,
	}
	if flow.IsICMP(f.Orig.Proto) {
		k.sport = f.Orig.ICMPID
		k.dport = uint16(f.Orig.ICMPType)<<8 | uint16(f.Orig.ICMPCode)
	} else {
		k.sport, k.dport = f.Orig.SrcPort, f.Orig.DstPort
	}
	return k
}

func addrOf(fam uint8, b [16]byte) netip.Addr {
	if flow.Family(fam) == flow.IPv4 {
		return netip.AddrFrom4([4]byte(b[12:16]))
	}
	return netip.AddrFrom16(b)
}

// Orig returns the original tuple the key identifies.
func (k Key) Orig() flow.Tuple {
	t := flow.Tuple{Src: addrOf(k.fam, k.src), Dst: addrOf(k.fam, k.dst), Proto: k.proto}
	if flow.IsICMP(k.proto) {
		t.ICMPID = k.sport
		t.ICMPType, t.ICMPCode = uint8(k.dport>>8), uint8(k.dport)
	} else {
		t.SrcPort, t.DstPort = k.sport, k.dport
	}
	return t
}

// Zone returns the key's zone.
func (k Key) Zone() uint16 { return k.zone }

// hash is a deterministic 64-bit hash of a key and a version, the same on
// every node (digests are compared across nodes).
func (k *Key) hash(version uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15) ^ version*0xbf58476d1ce4e5b9
	h = mix(h, le64(k.src[0:8]))
	h = mix(h, le64(k.src[8:16]))
	h = mix(h, le64(k.dst[0:8]))
	h = mix(h, le64(k.dst[8:16]))
	h = mix(h, uint64(k.sport)|uint64(k.dport)<<16|uint64(k.proto)<<32|uint64(k.fam)<<40|uint64(k.zone)<<48)
	return h
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// mix folds v into h (splitmix64 finaliser).
func mix(h, v uint64) uint64 {
	h ^= v
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// rec is the compact, pointer-free rest of a flow.
type rec struct {
	rsrc, rdst     [16]byte
	rsport, rdport uint16 // reply ports, GRE keys, or ICMP id and type<<8|code
	status         uint32
	timeout        uint32
	mark           uint32
	aux1, aux2     uint32 // SCTP vtags; DCCP handshake sequence (high, low)
	version        uint64
	updated        int64 // clock reading at the last change, ns
	attrs          uint16
	zoneDir        uint8
	state          uint8
	wsO, wsR       uint8
	flO, flR       uint8
	role           uint8
	gen            uint8 // snapshot generation (external cache)
	hasExtra       bool
}

// extra holds the rarely used attributes, outside the slab.
type extra struct {
	master       *flow.Tuple
	helper       string
	labels       flow.Labels
	seqO, seqR   flow.SeqAdj
	seqOK, seqR2 bool
}

// rec attribute bits (a subset of flow.Attr that survives replication).
const (
	rTCP uint16 = 1 << iota
	rSCTP
	rDCCP
	rStatus
	rTimeout
	rMark
)

// encode splits f into its key, record and extras (nil when none).
func encode(f *flow.Flow) (Key, rec, *extra) {
	r, x := encodeRec(f)
	return KeyOf(f), r, x
}

// encodeRec is encode without the key.
func encodeRec(f *flow.Flow) (rec, *extra) {
	r := rec{
		rsrc: f.Reply.Src.As16(), rdst: f.Reply.Dst.As16(),
		status: uint32(f.Status), timeout: f.Timeout, mark: f.Mark,
		zoneDir: uint8(f.ZoneDir),
	}
	if flow.IsICMP(f.Reply.Proto) {
		r.rsport = f.Reply.ICMPID
		r.rdport = uint16(f.Reply.ICMPType)<<8 | uint16(f.Reply.ICMPCode)
	} else {
		r.rsport, r.rdport = f.Reply.SrcPort, f.Reply.DstPort
	}
	if f.Has(flow.AttrStatus) || f.Status != 0 {
		r.attrs |= rStatus
	}
	if f.Has(flow.AttrTimeout) || f.Timeout != 0 {
		r.attrs |= rTimeout
	}
	if f.Has(flow.AttrMark) || f.Mark != 0 {
		r.attrs |= rMark
	}
	switch {
	case f.Has(flow.AttrTCP):
		r.attrs |= rTCP
		r.state = f.TCP.State
		r.wsO, r.wsR, r.flO, r.flR = f.TCP.WScaleOrig, f.TCP.WScaleReply, f.TCP.FlagsOrig, f.TCP.FlagsReply
	case f.Has(flow.AttrSCTP):
		r.attrs |= rSCTP
		r.state = f.SCTP.State
		r.aux1, r.aux2 = f.SCTP.VTagOrig, f.SCTP.VTagReply
	case f.Has(flow.AttrDCCP):
		r.attrs |= rDCCP
		r.state, r.role = f.DCCP.State, f.DCCP.Role
		r.aux1, r.aux2 = uint32(f.DCCP.HandshakeSeq>>32), uint32(f.DCCP.HandshakeSeq)
	}
	var x *extra
	seqO := f.Has(flow.AttrSeqAdjOrig) && !f.SeqAdjOrig.IsZero()
	seqR := f.Has(flow.AttrSeqAdjReply) && !f.SeqAdjReply.IsZero()
	if f.Master != nil || f.Helper != "" || !f.Labels.IsZero() || seqO || seqR {
		x = &extra{master: f.Master, helper: f.Helper, labels: f.Labels,
			seqO: f.SeqAdjOrig, seqR: f.SeqAdjReply, seqOK: seqO, seqR2: seqR}
		if f.Master != nil {
			m := *f.Master
			x.master = &m
		}
		r.hasExtra = true
	}
	return r, x
}

// decode rebuilds a flow from its parts. The timeout is the recorded one.
func decode(k Key, r *rec, x *extra, f *flow.Flow) {
	*f = flow.Flow{Orig: k.Orig(), Zone: k.zone, ZoneDir: flow.ZoneDir(r.zoneDir)}
	f.Reply = flow.Tuple{Src: addrOf(k.fam, r.rsrc), Dst: addrOf(k.fam, r.rdst), Proto: k.proto}
	if flow.IsICMP(k.proto) {
		f.Reply.ICMPID = r.rsport
		f.Reply.ICMPType, f.Reply.ICMPCode = uint8(r.rdport>>8), uint8(r.rdport)
	} else {
		f.Reply.SrcPort, f.Reply.DstPort = r.rsport, r.rdport
	}
	f.Status, f.Timeout, f.Mark = flow.Status(r.status), r.timeout, r.mark
	if r.attrs&rStatus != 0 {
		f.Set(flow.AttrStatus)
	}
	if r.attrs&rTimeout != 0 {
		f.Set(flow.AttrTimeout)
	}
	if r.attrs&rMark != 0 {
		f.Set(flow.AttrMark)
	}
	if k.zone != 0 && r.zoneDir == uint8(flow.ZoneBoth) {
		f.Set(flow.AttrZone)
	}
	switch {
	case r.attrs&rTCP != 0:
		f.Set(flow.AttrTCP)
		f.TCP = flow.TCPInfo{State: r.state, WScaleOrig: r.wsO, WScaleReply: r.wsR, FlagsOrig: r.flO, FlagsReply: r.flR}
	case r.attrs&rSCTP != 0:
		f.Set(flow.AttrSCTP)
		f.SCTP = flow.SCTPInfo{State: r.state, VTagOrig: r.aux1, VTagReply: r.aux2}
	case r.attrs&rDCCP != 0:
		f.Set(flow.AttrDCCP)
		f.DCCP = flow.DCCPInfo{State: r.state, Role: r.role, HandshakeSeq: uint64(r.aux1)<<32 | uint64(r.aux2)}
	}
	if x != nil {
		if x.master != nil {
			m := *x.master
			f.Master = &m
			f.Set(flow.AttrMaster)
		}
		if x.helper != "" {
			f.Helper = x.helper
			f.Set(flow.AttrHelper)
		}
		if !x.labels.IsZero() {
			f.Labels = x.labels
			f.Set(flow.AttrLabels)
		}
		if x.seqOK {
			f.SeqAdjOrig = x.seqO
			f.Set(flow.AttrSeqAdjOrig)
		}
		if x.seqR2 {
			f.SeqAdjReply = x.seqR
			f.Set(flow.AttrSeqAdjReply)
		}
	}
}

// sameContent reports whether two records describe the same flow state
// (ignoring bookkeeping), so that no-op kernel updates are not replicated.
func sameContent(a, b *rec) bool {
	x, y := *a, *b
	x.version, y.version = 0, 0
	x.updated, y.updated = 0, 0
	x.gen, y.gen = 0, 0
	x.timeout, y.timeout = 0, 0
	return x == y
}
