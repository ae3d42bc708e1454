package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ctsync/ctsync/flow"
)

// Netlink and nfnetlink framing.
const (
	nlmsgHdrLen = 16
	nfgenHdrLen = 4
	nlaHdrLen   = 4
	nlaFNested  = 0x8000
	nlaTypeMask = 0x3fff

	nlmFRequest = 0x1
	nlmFMulti   = 0x2
	nlmFAck     = 0x4
	nlmFDump    = 0x300 // ROOT|MATCH
	nlmFReplace = 0x100
	nlmFExcl    = 0x200
	nlmFCreate  = 0x400

	nlmsgError = 0x2
	nlmsgDone  = 0x3

	nfnlSubsysCT  = 1
	nfnlSubsysExp = 2
	nfnetlinkV0   = 0
	nfnetlinkV1   = 1
)

// ctnetlink message types (IPCTNL_MSG_CT_*).
const (
	ctNew         = 0
	ctGet         = 1
	ctDelete      = 2
	ctGetCtrZero  = 3
	ctGetStatsCPU = 4
	ctGetStats    = 5
)

// Top-level attributes (CTA_*).
const (
	ctaTupleOrig   = 1
	ctaTupleReply  = 2
	ctaStatus      = 3
	ctaProtoinfo   = 4
	ctaHelp        = 5
	ctaNATSrc      = 6
	ctaTimeout     = 7
	ctaMark        = 8
	ctaCountersOrg = 9
	ctaCountersRpl = 10
	ctaUse         = 11
	ctaID          = 12
	ctaNATDst      = 13
	ctaTupleMaster = 14
	ctaSeqAdjOrig  = 15
	ctaSeqAdjReply = 16
	ctaSecmark     = 17
	ctaZone        = 18
	ctaSecctx      = 19
	ctaTimestamp   = 20
	ctaMarkMask    = 21
	ctaLabels      = 22
	ctaLabelsMask  = 23
	ctaSynproxy    = 24
	ctaFilter      = 25
	ctaStatusMask  = 26
)

// Nested attributes.
const (
	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaTupleZone  = 3

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum      = 1
	ctaProtoSrcPort  = 2
	ctaProtoDstPort  = 3
	ctaProtoICMPID   = 4
	ctaProtoICMPType = 5
	ctaProtoICMPCode = 6
	ctaProtoICMP6ID  = 7
	ctaProtoICMP6Typ = 8
	ctaProtoICMP6Cod = 9

	ctaProtoinfoTCP  = 1
	ctaProtoinfoDCCP = 2
	ctaProtoinfoSCTP = 3

	ctaTCPState       = 1
	ctaTCPWScaleOrig  = 2
	ctaTCPWScaleReply = 3
	ctaTCPFlagsOrig   = 4
	ctaTCPFlagsReply  = 5

	ctaDCCPState        = 1
	ctaDCCPRole         = 2
	ctaDCCPHandshakeSeq = 3

	ctaSCTPState     = 1
	ctaSCTPVTagOrig  = 2
	ctaSCTPVTagReply = 3

	ctaCountersPackets   = 1
	ctaCountersBytes     = 2
	ctaCountersPackets32 = 3
	ctaCountersBytes32   = 4

	ctaTimestampStart = 1
	ctaTimestampStop  = 2

	ctaHelpName = 1

	ctaSeqAdjCorrectionPos = 1
	ctaSeqAdjOffsetBefore  = 2
	ctaSeqAdjOffsetAfter   = 3

	ctaNATV4MinIP = 1
	ctaNATV4MaxIP = 2
	ctaNATProto   = 3
	ctaNATV6MinIP = 4
	ctaNATV6MaxIP = 5

	ctaProtoNATPortMin = 1
	ctaProtoNATPortMax = 2

	ctaSecctxName = 1
)

// errMalformed reports a message that does not parse as ctnetlink.
var errMalformed = errors.New("malformed ctnetlink message")

// ---------------------------------------------------------------- encoding

// encoder appends netlink messages to a byte slice. The zero value is ready.
type encoder struct {
	b []byte
}

func (e *encoder) reset() { e.b = e.b[:0] }

// begin starts a message and returns its offset for end.
func (e *encoder) begin(typ uint16, flags uint16, seq uint32, family uint8, version uint8) int {
	off := len(e.b)
	e.b = append(e.b, make([]byte, nlmsgHdrLen+nfgenHdrLen)...)
	h := e.b[off:]
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], seq)
	h[16] = family
	h[17] = version
	return off
}

// end writes the message length.
func (e *encoder) end(off int) {
	binary.NativeEndian.PutUint32(e.b[off:], uint32(len(e.b)-off))
}

func (e *encoder) attr(typ uint16, data []byte) {
	l := nlaHdrLen + len(data)
	e.b = binary.NativeEndian.AppendUint16(e.b, uint16(l))
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = append(e.b, data...)
	e.pad()
}

func (e *encoder) pad() {
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) u8(typ uint16, v uint8) {
	e.b = binary.NativeEndian.AppendUint16(e.b, 5)
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = append(e.b, v, 0, 0, 0)
}

func (e *encoder) be16(typ uint16, v uint16) {
	e.b = binary.NativeEndian.AppendUint16(e.b, 6)
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = binary.BigEndian.AppendUint16(e.b, v)
	e.b = append(e.b, 0, 0)
}

func (e *encoder) be32(typ uint16, v uint32) {
	e.b = binary.NativeEndian.AppendUint16(e.b, 8)
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = binary.BigEndian.AppendUint32(e.b, v)
}

func (e *encoder) be64(typ uint16, v uint64) {
	e.b = binary.NativeEndian.AppendUint16(e.b, 12)
	e.b = binary.NativeEndian.AppendUint16(e.b, typ)
	e.b = binary.BigEndian.AppendUint64(e.b, v)
}

// nest opens a nested attribute and returns its offset for unnest.
func (e *encoder) nest(typ uint16) int {
	off := len(e.b)
	e.b = binary.NativeEndian.AppendUint16(e.b, 0)
	e.b = binary.NativeEndian.AppendUint16(e.b, typ|nlaFNested)
	return off
}

func (e *encoder) unnest(off int) {
	binary.NativeEndian.PutUint16(e.b[off:], uint16(len(e.b)-off))
}

func (e *encoder) addr(typ uint16, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		e.attr(typ, v[:])
		return
	}
	v := a.As16()
	e.attr(typ, v[:])
}

// tuple encodes a tuple under attribute typ. zone >= 0 adds a directional zone.
func (e *encoder) tuple(typ uint16, t *flow.Tuple, zone int) {
	n := e.nest(typ)
	ip := e.nest(ctaTupleIP)
	if t.Src.Is4() {
		e.addr(ctaIPv4Src, t.Src)
		e.addr(ctaIPv4Dst, t.Dst)
	} else {
		e.addr(ctaIPv6Src, t.Src)
		e.addr(ctaIPv6Dst, t.Dst)
	}
	e.unnest(ip)
	p := e.nest(ctaTupleProto)
	e.u8(ctaProtoNum, t.Proto)
	switch {
	case t.Proto == flow.ProtoICMP:
		e.be16(ctaProtoICMPID, t.ICMPID)
		e.u8(ctaProtoICMPType, t.ICMPType)
		e.u8(ctaProtoICMPCode, t.ICMPCode)
	case t.Proto == flow.ProtoICMPv6:
		e.be16(ctaProtoICMP6ID, t.ICMPID)
		e.u8(ctaProtoICMP6Typ, t.ICMPType)
		e.u8(ctaProtoICMP6Cod, t.ICMPCode)
	case flow.HasPorts(t.Proto) || t.Proto == flow.ProtoGRE:
		e.be16(ctaProtoSrcPort, t.SrcPort)
		e.be16(ctaProtoDstPort, t.DstPort)
	}
	e.unnest(p)
	if zone >= 0 {
		e.be16(ctaTupleZone, uint16(zone))
	}
	e.unnest(n)
}

func (e *encoder) natRange(typ uint16, a netip.Addr, port uint16, withPort bool) {
	n := e.nest(typ)
	if a.Is4() {
		e.addr(ctaNATV4MinIP, a)
		e.addr(ctaNATV4MaxIP, a)
	} else {
		e.addr(ctaNATV6MinIP, a)
		e.addr(ctaNATV6MaxIP, a)
	}
	if withPort {
		p := e.nest(ctaNATProto)
		e.be16(ctaProtoNATPortMin, port)
		e.be16(ctaProtoNATPortMax, port)
		e.unnest(p)
	}
	e.unnest(n)
}

// zones returns the directional zone arguments for the orig and reply tuples.
func zones(f *flow.Flow) (orig, reply int) {
	orig, reply = -1, -1
	if f.Zone == 0 {
		return
	}
	switch f.ZoneDir {
	case flow.ZoneOrig:
		orig = int(f.Zone)
	case flow.ZoneReply:
		reply = int(f.Zone)
	}
	return
}

// zoneAttr encodes the non-directional zone, if any.
func (e *encoder) zoneAttr(f *flow.Flow) {
	if f.Zone != 0 && f.ZoneDir == flow.ZoneBoth {
		e.be16(ctaZone, f.Zone)
	}
}

// createStatus is the status sent on create: CONFIRMED (the kernel refuses a
// status without it), plus the settable bits; NAT bits come from CTA_NAT_*.
func createStatus(s flow.Status) flow.Status {
	const notSettable = flow.StatusSrcNAT | flow.StatusDstNAT | flow.StatusSrcNATDone |
		flow.StatusDstNATDone | flow.StatusSeqAdjust | flow.StatusExpected | flow.StatusDying |
		flow.StatusTemplate | flow.StatusUntracked | flow.StatusOffload | flow.StatusHWOffload |
		flow.StatusHelper
	return s&^notSettable | flow.StatusConfirmed
}

// CreateOptions tune how flows are encoded for creation.
type CreateOptions struct {
	// Timeout, when non-zero, replaces every flow's timeout (seconds).
	Timeout uint32
	// Liberal sets the TCP BE_LIBERAL flag in both directions so that the
	// new node's window tracking does not drop a flow whose sequence numbers
	// it never saw (what conntrackd does unless it replicates windows).
	Liberal bool
}

// appendCreate encodes a CT_NEW request creating f. The reply tuple sent is
// the inverse of the original one; NAT travels as CTA_NAT_SRC/CTA_NAT_DST,
// the only form in which the kernel sets up the translation.
func (e *encoder) appendCreate(f *flow.Flow, seq uint32, flags uint16, o CreateOptions) {
	off := e.begin(nfnlSubsysCT<<8|ctNew, nlmFRequest|nlmFAck|flags, seq, uint8(f.Family()), nfnetlinkV0)
	zo, zr := zones(f)
	e.tuple(ctaTupleOrig, &f.Orig, zo)
	inv := f.Orig.Invert()
	if flow.IsICMP(f.Orig.Proto) && f.Reply.Src.IsValid() {
		// Keep the reply type the owner's kernel computed (the id is NAT's).
		inv.ICMPType, inv.ICMPCode = f.Reply.ICMPType, f.Reply.ICMPCode
	}
	if f.Orig.Proto == flow.ProtoGRE && f.Reply.Src.IsValid() {
		// GRE keys are per direction (PPTP call ids), not a mirror image.
		inv.SrcPort, inv.DstPort = f.Reply.SrcPort, f.Reply.DstPort
	}
	e.tuple(ctaTupleReply, &inv, zr)
	if f.Master != nil {
		e.tuple(ctaTupleMaster, f.Master, -1)
	}
	if a, p, ok := f.DNAT(); ok {
		e.natRange(ctaNATDst, a, p, f.Orig.HasPorts())
	}
	if a, p, ok := f.SNAT(); ok {
		e.natRange(ctaNATSrc, a, p, f.Orig.HasPorts() || flow.IsICMP(f.Orig.Proto))
	}
	timeout := f.Timeout
	if o.Timeout != 0 {
		timeout = o.Timeout
	}
	if timeout == 0 {
		timeout = 1
	}
	e.be32(ctaTimeout, timeout)
	e.be32(ctaStatus, uint32(createStatus(f.Status)))
	if f.Mark != 0 {
		e.be32(ctaMark, f.Mark)
	}
	e.zoneAttr(f)
	e.protoinfo(f, o.Liberal)
	e.extras(f)
	e.end(off)
}

// protoinfo encodes TCP/SCTP/DCCP state.
func (e *encoder) protoinfo(f *flow.Flow, liberal bool) {
	switch {
	case f.Proto() == flow.ProtoTCP && (f.Has(flow.AttrTCP) || liberal):
		n := e.nest(ctaProtoinfo)
		t := e.nest(ctaProtoinfoTCP)
		if f.Has(flow.AttrTCP) {
			e.u8(ctaTCPState, f.TCP.State)
		}
		fo, fr := f.TCP.FlagsOrig, f.TCP.FlagsReply
		if liberal {
			fo |= flow.TCPFlagBeLiberal
			fr |= flow.TCPFlagBeLiberal
		}
		if fo&fr&flow.TCPFlagWindowScale != 0 {
			e.u8(ctaTCPWScaleOrig, f.TCP.WScaleOrig)
			e.u8(ctaTCPWScaleReply, f.TCP.WScaleReply)
		}
		// nf_ct_tcp_flags{flags, mask}: the kernel applies flags & mask.
		e.attr(ctaTCPFlagsOrig, []byte{fo, fo})
		e.attr(ctaTCPFlagsReply, []byte{fr, fr})
		e.unnest(t)
		e.unnest(n)
	case f.Proto() == flow.ProtoSCTP && f.Has(flow.AttrSCTP):
		n := e.nest(ctaProtoinfo)
		s := e.nest(ctaProtoinfoSCTP)
		e.u8(ctaSCTPState, f.SCTP.State)
		e.be32(ctaSCTPVTagOrig, f.SCTP.VTagOrig)
		e.be32(ctaSCTPVTagReply, f.SCTP.VTagReply)
		e.unnest(s)
		e.unnest(n)
	case f.Proto() == flow.ProtoDCCP && f.Has(flow.AttrDCCP):
		n := e.nest(ctaProtoinfo)
		d := e.nest(ctaProtoinfoDCCP)
		e.u8(ctaDCCPState, f.DCCP.State)
		e.u8(ctaDCCPRole, f.DCCP.Role)
		e.be64(ctaDCCPHandshakeSeq, f.DCCP.HandshakeSeq)
		e.unnest(d)
		e.unnest(n)
	}
}

// extras encodes helper, sequence adjustment and labels.
func (e *encoder) extras(f *flow.Flow) {
	if f.Helper != "" {
		n := e.nest(ctaHelp)
		e.attr(ctaHelpName, append([]byte(f.Helper), 0))
		e.unnest(n)
	}
	if f.Has(flow.AttrSeqAdjOrig) && !f.SeqAdjOrig.IsZero() {
		e.seqAdj(ctaSeqAdjOrig, f.SeqAdjOrig)
	}
	if f.Has(flow.AttrSeqAdjReply) && !f.SeqAdjReply.IsZero() {
		e.seqAdj(ctaSeqAdjReply, f.SeqAdjReply)
	}
	if !f.Labels.IsZero() {
		e.attr(ctaLabels, f.Labels[:])
		mask := f.Labels
		e.attr(ctaLabelsMask, mask[:])
	}
}

func (e *encoder) seqAdj(typ uint16, s flow.SeqAdj) {
	n := e.nest(typ)
	e.be32(ctaSeqAdjCorrectionPos, s.CorrectionPos)
	e.be32(ctaSeqAdjOffsetBefore, s.OffsetBefore)
	e.be32(ctaSeqAdjOffsetAfter, s.OffsetAfter)
	e.unnest(n)
}

// UpdateFields selects what an update changes.
type UpdateFields struct {
	Timeout  bool
	Status   bool
	Mark     bool
	MarkMask uint32 // with Mark: only these bits change (kernel >= 5.x CTA_MARK_MASK)
	Labels   bool
	TCP      bool
	Liberal  bool // with TCP: set BE_LIBERAL in both directions (CreateOptions.Liberal)
}

// appendUpdate encodes a CT_NEW request without CREATE that changes the
// selected fields of the entry identified by f's original tuple and zone.
func (e *encoder) appendUpdate(f *flow.Flow, seq uint32, u UpdateFields) {
	off := e.begin(nfnlSubsysCT<<8|ctNew, nlmFRequest|nlmFAck, seq, uint8(f.Family()), nfnetlinkV0)
	zo, _ := zones(f)
	e.tuple(ctaTupleOrig, &f.Orig, zo)
	e.zoneAttr(f)
	if f.Has(flow.AttrID) {
		e.be32(ctaID, f.ID)
	}
	if u.Timeout {
		e.be32(ctaTimeout, f.Timeout)
	}
	if u.Status {
		e.be32(ctaStatus, uint32(createStatus(f.Status)))
	}
	if u.Mark {
		e.be32(ctaMark, f.Mark)
		if u.MarkMask != 0 && u.MarkMask != 0xffffffff {
			e.be32(ctaMarkMask, u.MarkMask)
		}
	}
	if u.Labels {
		e.attr(ctaLabels, f.Labels[:])
		all := flow.Labels{}
		for i := range all {
			all[i] = 0xff
		}
		e.attr(ctaLabelsMask, all[:])
	}
	if u.TCP && f.Proto() == flow.ProtoTCP {
		e.protoinfo(f, u.Liberal)
	}
	e.end(off)
}

// appendTupleRequest encodes a GET or DELETE by tuple.
func (e *encoder) appendTupleRequest(msg uint16, f *flow.Flow, byReply bool, seq uint32) {
	off := e.begin(nfnlSubsysCT<<8|msg, nlmFRequest|nlmFAck, seq, uint8(f.Family()), nfnetlinkV0)
	zo, zr := zones(f)
	if byReply {
		e.tuple(ctaTupleReply, &f.Reply, zr)
	} else {
		e.tuple(ctaTupleOrig, &f.Orig, zo)
	}
	e.zoneAttr(f)
	if f.Has(flow.AttrID) {
		e.be32(ctaID, f.ID)
	}
	e.end(off)
}

// ---------------------------------------------------------------- decoding

// attrIter walks a run of netlink attributes without allocating.
type attrIter struct {
	b   []byte
	typ uint16
	val []byte
	err error
}

func (it *attrIter) next() bool {
	if len(it.b) < nlaHdrLen {
		if len(it.b) != 0 {
			it.err = errMalformed
		}
		return false
	}
	l := int(binary.NativeEndian.Uint16(it.b))
	if l < nlaHdrLen || l > len(it.b) {
		it.err = errMalformed
		return false
	}
	it.typ = binary.NativeEndian.Uint16(it.b[2:]) & nlaTypeMask
	it.val = it.b[nlaHdrLen:l]
	al := (l + 3) &^ 3
	if al > len(it.b) {
		al = len(it.b)
	}
	it.b = it.b[al:]
	return true
}

func beU16(b []byte) (uint16, error) {
	if len(b) < 2 {
		return 0, errMalformed
	}
	return binary.BigEndian.Uint16(b), nil
}

func beU32(b []byte) (uint32, error) {
	if len(b) < 4 {
		return 0, errMalformed
	}
	return binary.BigEndian.Uint32(b), nil
}

func beU64(b []byte) (uint64, error) {
	if len(b) < 8 {
		return 0, errMalformed
	}
	return binary.BigEndian.Uint64(b), nil
}

func u8(b []byte) (uint8, error) {
	if len(b) < 1 {
		return 0, errMalformed
	}
	return b[0], nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// decodeFlow parses the attributes of one ctnetlink conntrack message (the
// bytes after the nfgenmsg header) into f, which is reset first. It never
// panics on malformed input; unknown attributes are skipped.
func decodeFlow(b []byte, f *flow.Flow) error {
	*f = flow.Flow{}
	it := attrIter{b: b}
	var err error
	for it.next() && err == nil {
		err = decodeFlowAttr(it.typ, it.val, f)
	}
	if err != nil {
		return fmt.Errorf("%w: attribute %d", errMalformed, it.typ)
	}
	if it.err != nil {
		return it.err
	}
	if !f.Orig.Src.IsValid() {
		return fmt.Errorf("%w: no original tuple", errMalformed)
	}
	return nil
}

// decodeFlowAttr decodes one top-level attribute of an entry into f;
// unknown attributes are skipped.
func decodeFlowAttr(typ uint16, v []byte, f *flow.Flow) error {
	switch typ {
	case ctaTupleOrig, ctaTupleReply, ctaTupleMaster:
		return decodeFlowTuple(typ, v, f)
	case ctaStatus, ctaTimeout, ctaMark, ctaSecmark, ctaUse, ctaID, ctaZone:
		return decodeFlowScalar(typ, v, f)
	case ctaProtoinfo:
		return decodeProtoinfo(v, f)
	case ctaHelp:
		return decodeName(v, ctaHelpName, &f.Helper, f, flow.AttrHelper)
	case ctaSecctx:
		return decodeName(v, ctaSecctxName, &f.Secctx, f, flow.AttrSecctx)
	case ctaCountersOrg:
		f.Set(flow.AttrCounters)
		return decodeCounters(v, &f.CountersOrig)
	case ctaCountersRpl:
		f.Set(flow.AttrCounters)
		return decodeCounters(v, &f.CountersReply)
	case ctaTimestamp:
		return decodeTimestamp(v, f)
	case ctaSeqAdjOrig:
		f.Set(flow.AttrSeqAdjOrig)
		return decodeSeqAdj(v, &f.SeqAdjOrig)
	case ctaSeqAdjReply:
		f.Set(flow.AttrSeqAdjReply)
		return decodeSeqAdj(v, &f.SeqAdjReply)
	case ctaLabels:
		copy(f.Labels[:], v)
		f.Set(flow.AttrLabels)
	}
	return nil
}

// decodeFlowTuple decodes the original, reply or master tuple of an entry.
// The zone of the original or reply tuple is the entry's, for that
// direction.
func decodeFlowTuple(typ uint16, v []byte, f *flow.Flow) error {
	switch typ {
	case ctaTupleOrig:
		z, hasZ, err := decodeTuple(v, &f.Orig)
		if hasZ {
			f.Zone, f.ZoneDir = z, flow.ZoneOrig
		}
		return err
	case ctaTupleReply:
		z, hasZ, err := decodeTuple(v, &f.Reply)
		if hasZ {
			f.Zone, f.ZoneDir = z, flow.ZoneReply
		}
		return err
	}
	m := &flow.Tuple{}
	_, _, err := decodeTuple(v, m)
	f.Master = m
	f.Set(flow.AttrMaster)
	return err
}

// decodeFlowScalar decodes a number attribute of an entry.
func decodeFlowScalar(typ uint16, v []byte, f *flow.Flow) (err error) {
	switch typ {
	case ctaStatus:
		var s uint32
		s, err = beU32(v)
		f.Status = flow.Status(s)
		f.Set(flow.AttrStatus)
	case ctaTimeout:
		f.Timeout, err = beU32(v)
		f.Set(flow.AttrTimeout)
	case ctaMark:
		f.Mark, err = beU32(v)
		f.Set(flow.AttrMark)
	case ctaSecmark:
		f.Secmark, err = beU32(v)
		f.Set(flow.AttrSecmark)
	case ctaUse:
		f.Use, err = beU32(v)
		f.Set(flow.AttrUse)
	case ctaID:
		f.ID, err = beU32(v)
		f.Set(flow.AttrID)
	case ctaZone:
		f.Zone, err = beU16(v)
		f.ZoneDir = flow.ZoneBoth
		f.Set(flow.AttrZone)
	}
	return err
}

// decodeName reads the name attribute of type nameTyp nested in v (a
// helper's or a security context's) into *name, marking attr on f when
// there is one.
func decodeName(v []byte, nameTyp uint16, name *string, f *flow.Flow, attr flow.Attr) error {
	in := attrIter{b: v}
	for in.next() {
		if in.typ == nameTyp {
			*name = cstring(in.val)
			f.Set(attr)
		}
	}
	return in.err
}

// decodeTimestamp reads an entry's start and stop timestamps.
func decodeTimestamp(v []byte, f *flow.Flow) error {
	in := attrIter{b: v}
	var err error
	for in.next() && err == nil {
		switch in.typ {
		case ctaTimestampStart:
			f.Start, err = beU64(in.val)
			f.Set(flow.AttrTimestamp)
		case ctaTimestampStop:
			f.Stop, err = beU64(in.val)
			f.Set(flow.AttrTimestampStop)
		}
	}
	if err == nil {
		err = in.err
	}
	return err
}

func decodeTuple(b []byte, t *flow.Tuple) (zone uint16, hasZone bool, err error) {
	it := attrIter{b: b}
	for it.next() && err == nil {
		switch it.typ {
		case ctaTupleIP:
			in := attrIter{b: it.val}
			for in.next() {
				switch in.typ {
				case ctaIPv4Src, ctaIPv4Dst:
					if len(in.val) != 4 {
						return 0, false, errMalformed
					}
					a := netip.AddrFrom4([4]byte(in.val))
					if in.typ == ctaIPv4Src {
						t.Src = a
					} else {
						t.Dst = a
					}
				case ctaIPv6Src, ctaIPv6Dst:
					if len(in.val) != 16 {
						return 0, false, errMalformed
					}
					a := netip.AddrFrom16([16]byte(in.val))
					if in.typ == ctaIPv6Src {
						t.Src = a
					} else {
						t.Dst = a
					}
				}
			}
			err = in.err
		case ctaTupleProto:
			in := attrIter{b: it.val}
			for in.next() && err == nil {
				switch in.typ {
				case ctaProtoNum:
					t.Proto, err = u8(in.val)
				case ctaProtoSrcPort:
					t.SrcPort, err = beU16(in.val)
				case ctaProtoDstPort:
					t.DstPort, err = beU16(in.val)
				case ctaProtoICMPID, ctaProtoICMP6ID:
					t.ICMPID, err = beU16(in.val)
				case ctaProtoICMPType, ctaProtoICMP6Typ:
					t.ICMPType, err = u8(in.val)
				case ctaProtoICMPCode, ctaProtoICMP6Cod:
					t.ICMPCode, err = u8(in.val)
				}
			}
			if err == nil {
				err = in.err
			}
		case ctaTupleZone:
			zone, err = beU16(it.val)
			hasZone = true
		}
	}
	if err == nil {
		err = it.err
	}
	normalizeTuple(t)
	return zone, hasZone, err
}

// normalizeTuple clears layer-4 fields that the tuple's protocol does not
// use, so that a decoded tuple equals the one the kernel keys the entry by.
func normalizeTuple(t *flow.Tuple) {
	if !flow.IsICMP(t.Proto) {
		t.ICMPID, t.ICMPType, t.ICMPCode = 0, 0, 0
	}
	if !flow.HasPorts(t.Proto) && t.Proto != flow.ProtoGRE {
		t.SrcPort, t.DstPort = 0, 0
	}
}

func decodeProtoinfo(b []byte, f *flow.Flow) error {
	it := attrIter{b: b}
	var err error
	for it.next() && err == nil {
		in := attrIter{b: it.val}
		switch it.typ {
		case ctaProtoinfoTCP:
			f.Set(flow.AttrTCP)
			for in.next() && err == nil {
				switch in.typ {
				case ctaTCPState:
					f.TCP.State, err = u8(in.val)
				case ctaTCPWScaleOrig:
					f.TCP.WScaleOrig, err = u8(in.val)
				case ctaTCPWScaleReply:
					f.TCP.WScaleReply, err = u8(in.val)
				case ctaTCPFlagsOrig:
					f.TCP.FlagsOrig, err = u8(in.val)
				case ctaTCPFlagsReply:
					f.TCP.FlagsReply, err = u8(in.val)
				}
			}
		case ctaProtoinfoSCTP:
			f.Set(flow.AttrSCTP)
			for in.next() && err == nil {
				switch in.typ {
				case ctaSCTPState:
					f.SCTP.State, err = u8(in.val)
				case ctaSCTPVTagOrig:
					f.SCTP.VTagOrig, err = beU32(in.val)
				case ctaSCTPVTagReply:
					f.SCTP.VTagReply, err = beU32(in.val)
				}
			}
		case ctaProtoinfoDCCP:
			f.Set(flow.AttrDCCP)
			for in.next() && err == nil {
				switch in.typ {
				case ctaDCCPState:
					f.DCCP.State, err = u8(in.val)
				case ctaDCCPRole:
					f.DCCP.Role, err = u8(in.val)
				case ctaDCCPHandshakeSeq:
					f.DCCP.HandshakeSeq, err = beU64(in.val)
				}
			}
		}
		if err == nil {
			err = in.err
		}
	}
	if err == nil {
		err = it.err
	}
	return err
}

func decodeCounters(b []byte, c *flow.Counters) error {
	it := attrIter{b: b}
	var err error
	for it.next() && err == nil {
		switch it.typ {
		case ctaCountersPackets:
			c.Packets, err = beU64(it.val)
		case ctaCountersBytes:
			c.Bytes, err = beU64(it.val)
		case ctaCountersPackets32:
			var v uint32
			v, err = beU32(it.val)
			c.Packets = uint64(v)
		case ctaCountersBytes32:
			var v uint32
			v, err = beU32(it.val)
			c.Bytes = uint64(v)
		}
	}
	if err == nil {
		err = it.err
	}
	return err
}

func decodeSeqAdj(b []byte, s *flow.SeqAdj) error {
	it := attrIter{b: b}
	var err error
	for it.next() && err == nil {
		switch it.typ {
		case ctaSeqAdjCorrectionPos:
			s.CorrectionPos, err = beU32(it.val)
		case ctaSeqAdjOffsetBefore:
			s.OffsetBefore, err = beU32(it.val)
		case ctaSeqAdjOffsetAfter:
			s.OffsetAfter, err = beU32(it.val)
		}
	}
	if err == nil {
		err = it.err
	}
	return err
}
