package sync

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/flow"
	"github.com/vmihailenco/msgpack/v5"
)

// wireVersion is the first byte of every message. Fields are only ever
// appended, so the version changes only for incompatible changes.
const wireVersion = 1

// msgType is the second byte of every message.
type msgType uint8

const (
	msgHello     msgType = 1 // sender → receiver, first: origin, epoch, session
	msgSnapBegin msgType = 2 // a snapshot of the origin's flows follows
	msgEntries   msgType = 3 // flows and deletions, in order
	msgSnapEnd   msgType = 4 // the snapshot is complete
	msgDigest    msgType = 5 // the origin's cache summary at this point
	msgResync    msgType = 6 // receiver → sender: send a snapshot
)

func (t msgType) String() string {
	switch t {
	case msgHello:
		return "hello"
	case msgSnapBegin:
		return "snapshot-begin"
	case msgEntries:
		return "entries"
	case msgSnapEnd:
		return "snapshot-end"
	case msgDigest:
		return "digest"
	case msgResync:
		return "resync"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

var errWire = errors.New("malformed message")

// entry flag bits.
const (
	efDeleted      = 1 << 0
	efReplyInverse = 1 << 1 // the reply tuple is the original's inverse: omitted
)

// attrs bits on the wire (which optional parts a flow carries).
const (
	waStatus = 1 << iota
	waTimeout
	waMark
	waTCP
	waSCTP
	waDCCP
	waHelper
	waLabels
	waSeqOrig
	waSeqReply
	waMaster
)

// writer builds messages. Not safe for concurrent use.
type writer struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

func newWriter() *writer {
	w := &writer{}
	w.enc = msgpack.NewEncoder(&w.buf)
	return w
}

func (w *writer) begin(t msgType) {
	w.buf.Reset()
	w.buf.WriteByte(wireVersion)
	w.buf.WriteByte(byte(t))
}

func (w *writer) bytes() []byte { return w.buf.Bytes() }

// hello: [node, epoch, session]
func (w *writer) hello(node string, epoch, session uint64) []byte {
	w.begin(msgHello)
	_ = w.enc.EncodeArrayLen(3)
	_ = w.enc.EncodeString(node)
	_ = w.enc.EncodeUint(epoch)
	_ = w.enc.EncodeUint(session)
	return w.bytes()
}

// u64s encodes a message whose body is an array of unsigned integers.
func (w *writer) u64s(t msgType, vs ...uint64) []byte {
	w.begin(t)
	_ = w.enc.EncodeArrayLen(len(vs))
	for _, v := range vs {
		_ = w.enc.EncodeUint(v)
	}
	return w.bytes()
}

// startEntries begins an entries message; add entries with entry, then
// finish with endEntries(n).
func (w *writer) startEntries(epoch uint64) {
	w.begin(msgEntries)
	_ = w.enc.EncodeUint(epoch)
	// The count is written last into a fixed-size array32 header.
	w.buf.Write([]byte{0xdd, 0, 0, 0, 0})
}

func (w *writer) endEntries(n int) []byte {
	b := w.buf.Bytes()
	// Find the array header: after version, type and the epoch.
	off := 2 + uintLen(b[2])
	b[off+1], b[off+2], b[off+3], b[off+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// uintLen is the encoded size of a msgpack unsigned integer by its first byte.
func uintLen(first byte) int {
	switch first {
	case 0xcc:
		return 2
	case 0xcd:
		return 3
	case 0xce:
		return 5
	case 0xcf:
		return 9
	}
	return 1
}

func (w *writer) addr(a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		_ = w.enc.EncodeBytes(v[:])
		return
	}
	v := a.As16()
	_ = w.enc.EncodeBytes(v[:])
}

func l4(t *flow.Tuple) (uint16, uint16) {
	if flow.IsICMP(t.Proto) {
		return t.ICMPID, uint16(t.ICMPType)<<8 | uint16(t.ICMPCode)
	}
	return t.SrcPort, t.DstPort
}

// entry appends one entry:
// [version, flags, proto, osrc, odst, osport, odport, zone,
//
//	(not deleted:) rsrc, rdst, rsport, rdport, attrs, status, timeout, mark,
//	zonedir, state, tcp, aux1, aux2, helper, labels, seqO, seqR, master]
//
// Absent optional parts are nil; an inverse reply tuple is nil.
func (w *writer) entry(e *cache.Entry) {
	f := &e.Flow
	var flags uint64
	if e.Deleted {
		flags |= efDeleted
	}
	inverse := !e.Deleted && f.Reply == f.Orig.Invert()
	if inverse {
		flags |= efReplyInverse
	}
	if e.Deleted {
		_ = w.enc.EncodeArrayLen(8)
	} else {
		_ = w.enc.EncodeArrayLen(26)
	}
	_ = w.enc.EncodeUint(e.Version)
	_ = w.enc.EncodeUint(flags)
	_ = w.enc.EncodeUint(uint64(f.Orig.Proto))
	w.addr(f.Orig.Src)
	w.addr(f.Orig.Dst)
	sp, dp := l4(&f.Orig)
	_ = w.enc.EncodeUint(uint64(sp))
	_ = w.enc.EncodeUint(uint64(dp))
	_ = w.enc.EncodeUint(uint64(f.Zone))
	if e.Deleted {
		return
	}
	if inverse {
		_ = w.enc.EncodeNil()
		_ = w.enc.EncodeNil()
		_ = w.enc.EncodeNil()
		_ = w.enc.EncodeNil()
	} else {
		w.addr(f.Reply.Src)
		w.addr(f.Reply.Dst)
		sp, dp := l4(&f.Reply)
		_ = w.enc.EncodeUint(uint64(sp))
		_ = w.enc.EncodeUint(uint64(dp))
	}
	var attrs uint64
	set := func(cond bool, bit uint64) {
		if cond {
			attrs |= bit
		}
	}
	set(f.Has(flow.AttrStatus), waStatus)
	set(f.Has(flow.AttrTimeout), waTimeout)
	set(f.Has(flow.AttrMark), waMark)
	set(f.Has(flow.AttrTCP), waTCP)
	set(f.Has(flow.AttrSCTP), waSCTP)
	set(f.Has(flow.AttrDCCP), waDCCP)
	set(f.Helper != "", waHelper)
	set(!f.Labels.IsZero(), waLabels)
	set(f.Has(flow.AttrSeqAdjOrig), waSeqOrig)
	set(f.Has(flow.AttrSeqAdjReply), waSeqReply)
	set(f.Master != nil, waMaster)
	_ = w.enc.EncodeUint(attrs)
	_ = w.enc.EncodeUint(uint64(f.Status))
	_ = w.enc.EncodeUint(uint64(f.Timeout))
	_ = w.enc.EncodeUint(uint64(f.Mark))
	_ = w.enc.EncodeUint(uint64(f.ZoneDir))
	var state, tcp, aux1, aux2 uint64
	switch {
	case f.Has(flow.AttrTCP):
		state = uint64(f.TCP.State)
		tcp = uint64(f.TCP.WScaleOrig) | uint64(f.TCP.WScaleReply)<<8 | uint64(f.TCP.FlagsOrig)<<16 | uint64(f.TCP.FlagsReply)<<24
	case f.Has(flow.AttrSCTP):
		state, aux1, aux2 = uint64(f.SCTP.State), uint64(f.SCTP.VTagOrig), uint64(f.SCTP.VTagReply)
	case f.Has(flow.AttrDCCP):
		state, tcp, aux1 = uint64(f.DCCP.State), uint64(f.DCCP.Role), f.DCCP.HandshakeSeq
	}
	_ = w.enc.EncodeUint(state)
	_ = w.enc.EncodeUint(tcp)
	_ = w.enc.EncodeUint(aux1)
	_ = w.enc.EncodeUint(aux2)
	if attrs&waHelper != 0 {
		_ = w.enc.EncodeString(f.Helper)
	} else {
		_ = w.enc.EncodeNil()
	}
	if attrs&waLabels != 0 {
		_ = w.enc.EncodeBytes(f.Labels[:])
	} else {
		_ = w.enc.EncodeNil()
	}
	w.seqAdj(attrs&waSeqOrig != 0, f.SeqAdjOrig)
	w.seqAdj(attrs&waSeqReply != 0, f.SeqAdjReply)
	if f.Master != nil {
		m := f.Master
		_ = w.enc.EncodeArrayLen(6)
		_ = w.enc.EncodeUint(uint64(m.Proto))
		w.addr(m.Src)
		w.addr(m.Dst)
		sp, dp := l4(m)
		_ = w.enc.EncodeUint(uint64(sp))
		_ = w.enc.EncodeUint(uint64(dp))
		_ = w.enc.EncodeUint(0) // reserved: master zone
	} else {
		_ = w.enc.EncodeNil()
	}
}

func (w *writer) seqAdj(ok bool, s flow.SeqAdj) {
	if !ok {
		_ = w.enc.EncodeNil()
		return
	}
	_ = w.enc.EncodeArrayLen(3)
	_ = w.enc.EncodeUint(uint64(s.CorrectionPos))
	_ = w.enc.EncodeUint(uint64(s.OffsetBefore))
	_ = w.enc.EncodeUint(uint64(s.OffsetAfter))
}

// ---------------------------------------------------------------- reading

// reader parses messages. Not safe for concurrent use.
type reader struct {
	r   bytes.Reader
	dec *msgpack.Decoder
	a   [16]byte
}

func newReader() *reader {
	rd := &reader{}
	rd.dec = msgpack.NewDecoder(&rd.r)
	return rd
}

// open checks a message's header and positions the decoder on its body.
func (rd *reader) open(b []byte) (msgType, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("%w: %d bytes", errWire, len(b))
	}
	if b[0] != wireVersion {
		return 0, fmt.Errorf("%w: wire version %d, want %d", errWire, b[0], wireVersion)
	}
	rd.r.Reset(b[2:])
	rd.dec.ResetReader(&rd.r)
	return msgType(b[1]), nil
}

// arrayLen reads an array header of at least min elements.
func (rd *reader) arrayLen(min int) (int, error) {
	n, err := rd.dec.DecodeArrayLen()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errWire, err)
	}
	if n < min {
		return 0, fmt.Errorf("%w: %d fields, want at least %d", errWire, n, min)
	}
	return n, nil
}

func (rd *reader) uint(max uint64) (uint64, error) {
	v, err := rd.dec.DecodeUint64()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errWire, err)
	}
	if v > max {
		return 0, fmt.Errorf("%w: value %d out of range", errWire, v)
	}
	return v, nil
}

// skip discards n values (fields a newer peer appended).
func (rd *reader) skip(n int) error {
	for i := 0; i < n; i++ {
		if err := rd.dec.Skip(); err != nil {
			return fmt.Errorf("%w: %v", errWire, err)
		}
	}
	return nil
}

// isNil consumes a nil if one is next.
func (rd *reader) isNil() (bool, error) {
	c, err := rd.dec.PeekCode()
	if err != nil {
		return false, fmt.Errorf("%w: %v", errWire, err)
	}
	if c == 0xc0 {
		_ = rd.dec.DecodeNil()
		return true, nil
	}
	return false, nil
}

// addr reads a 4- or 16-byte address of the expected family (0: either).
func (rd *reader) addr(fam flow.Family) (netip.Addr, error) {
	n, err := rd.dec.DecodeBytesLen()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %v", errWire, err)
	}
	switch {
	case n == 4 && fam != flow.IPv6:
		if err := rd.dec.ReadFull(rd.a[:4]); err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %v", errWire, err)
		}
		return netip.AddrFrom4([4]byte(rd.a[:4])), nil
	case n == 16 && fam != flow.IPv4:
		if err := rd.dec.ReadFull(rd.a[:16]); err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %v", errWire, err)
		}
		return netip.AddrFrom16(rd.a), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: address of %d bytes", errWire, n)
}

func setL4(t *flow.Tuple, sp, dp uint16) {
	if flow.IsICMP(t.Proto) {
		t.ICMPID, t.ICMPType, t.ICMPCode = sp, uint8(dp>>8), uint8(dp)
		return
	}
	if flow.HasPorts(t.Proto) || t.Proto == flow.ProtoGRE {
		t.SrcPort, t.DstPort = sp, dp
	}
}

// tuple reads proto-less tuple parts: src, dst, sport, dport.
func (rd *reader) tuple(t *flow.Tuple, fam flow.Family) error {
	var err error
	if t.Src, err = rd.addr(fam); err != nil {
		return err
	}
	if t.Dst, err = rd.addr(flow.FamilyOf(t.Src)); err != nil {
		return err
	}
	sp, err := rd.uint(0xffff)
	if err != nil {
		return err
	}
	dp, err := rd.uint(0xffff)
	if err != nil {
		return err
	}
	setL4(t, uint16(sp), uint16(dp))
	return nil
}

// hello decodes a hello body.
func (rd *reader) hello() (node string, epoch, session uint64, err error) {
	n, err := rd.arrayLen(3)
	if err != nil {
		return "", 0, 0, err
	}
	if node, err = rd.dec.DecodeString(); err != nil || len(node) == 0 || len(node) > 256 {
		return "", 0, 0, fmt.Errorf("%w: bad node name", errWire)
	}
	if epoch, err = rd.uint(^uint64(0)); err != nil {
		return
	}
	if session, err = rd.uint(^uint64(0)); err != nil {
		return
	}
	err = rd.skip(n - 3)
	return
}

// u64s decodes a body of at least len(out) unsigned integers.
func (rd *reader) u64s(out ...*uint64) error {
	n, err := rd.arrayLen(len(out))
	if err != nil {
		return err
	}
	for _, p := range out {
		if *p, err = rd.uint(^uint64(0)); err != nil {
			return err
		}
	}
	return rd.skip(n - len(out))
}

// maxEntries bounds one entries message (the frame size bounds it too).
const maxEntries = 1 << 16

// entries decodes an entries body, calling fn for each entry (reused).
func (rd *reader) entries(fn func(epoch uint64, e *cache.Entry) error) error {
	epoch, err := rd.uint(^uint64(0))
	if err != nil {
		return err
	}
	n, err := rd.dec.DecodeArrayLen()
	if err != nil || n < 0 || n > maxEntries {
		return fmt.Errorf("%w: entry count", errWire)
	}
	var e cache.Entry
	for i := 0; i < n; i++ {
		if err := rd.entry(&e); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if err := fn(epoch, &e); err != nil {
			return err
		}
	}
	return nil
}

func (rd *reader) entry(e *cache.Entry) error {
	*e = cache.Entry{}
	n, err := rd.arrayLen(8)
	if err != nil {
		return err
	}
	if e.Version, err = rd.uint(^uint64(0)); err != nil {
		return err
	}
	flags, err := rd.uint(0xff)
	if err != nil {
		return err
	}
	e.Deleted = flags&efDeleted != 0
	proto, err := rd.uint(0xff)
	if err != nil {
		return err
	}
	f := &e.Flow
	f.Orig.Proto = uint8(proto)
	if err := rd.tuple(&f.Orig, 0); err != nil {
		return err
	}
	zone, err := rd.uint(0xffff)
	if err != nil {
		return err
	}
	f.Zone = uint16(zone)
	if e.Deleted {
		e.Key = cache.KeyOf(f)
		return rd.skip(n - 8)
	}
	if n < 26 {
		return fmt.Errorf("%w: %d fields in a flow, want 26", errWire, n)
	}
	fam := f.Family()
	if flags&efReplyInverse != 0 {
		if err := rd.skip(4); err != nil {
			return err
		}
		f.Reply = f.Orig.Invert()
	} else {
		f.Reply.Proto = f.Orig.Proto
		if err := rd.tuple(&f.Reply, fam); err != nil {
			return err
		}
	}
	attrs, err := rd.uint(0xffff)
	if err != nil {
		return err
	}
	var v [4]uint64
	for i := range v {
		if v[i], err = rd.uint(0xffffffff); err != nil {
			return err
		}
	}
	f.Status, f.Timeout, f.Mark = flow.Status(v[0]), uint32(v[1]), uint32(v[2])
	if v[3] > uint64(flow.ZoneReply) {
		return fmt.Errorf("%w: zone direction %d", errWire, v[3])
	}
	f.ZoneDir = flow.ZoneDir(v[3])
	state, err := rd.uint(0xff)
	if err != nil {
		return err
	}
	tcp, err := rd.uint(0xffffffff)
	if err != nil {
		return err
	}
	aux1, err := rd.uint(^uint64(0))
	if err != nil {
		return err
	}
	aux2, err := rd.uint(0xffffffff)
	if err != nil {
		return err
	}
	setIf := func(bit uint64, a flow.Attr) {
		if attrs&bit != 0 {
			f.Set(a)
		}
	}
	setIf(waStatus, flow.AttrStatus)
	setIf(waTimeout, flow.AttrTimeout)
	setIf(waMark, flow.AttrMark)
	if f.Zone != 0 && f.ZoneDir == flow.ZoneBoth {
		f.Set(flow.AttrZone)
	}
	switch {
	case attrs&waTCP != 0:
		f.Set(flow.AttrTCP)
		f.TCP = flow.TCPInfo{State: uint8(state), WScaleOrig: uint8(tcp), WScaleReply: uint8(tcp >> 8), FlagsOrig: uint8(tcp >> 16), FlagsReply: uint8(tcp >> 24)}
	case attrs&waSCTP != 0:
		f.Set(flow.AttrSCTP)
		if aux1 > 0xffffffff {
			return fmt.Errorf("%w: sctp vtag", errWire)
		}
		f.SCTP = flow.SCTPInfo{State: uint8(state), VTagOrig: uint32(aux1), VTagReply: uint32(aux2)}
	case attrs&waDCCP != 0:
		f.Set(flow.AttrDCCP)
		f.DCCP = flow.DCCPInfo{State: uint8(state), Role: uint8(tcp), HandshakeSeq: aux1}
	}
	// helper
	if isNil, err := rd.isNil(); err != nil {
		return err
	} else if !isNil {
		h, err := rd.dec.DecodeString()
		if err != nil || len(h) == 0 || len(h) > 32 {
			return fmt.Errorf("%w: helper name", errWire)
		}
		f.Helper = h
		f.Set(flow.AttrHelper)
	}
	// labels
	if isNil, err := rd.isNil(); err != nil {
		return err
	} else if !isNil {
		ln, err := rd.dec.DecodeBytesLen()
		if err != nil || ln != len(f.Labels) {
			return fmt.Errorf("%w: labels", errWire)
		}
		if err := rd.dec.ReadFull(f.Labels[:]); err != nil {
			return fmt.Errorf("%w: %v", errWire, err)
		}
		f.Set(flow.AttrLabels)
	}
	for i, dst := range []*flow.SeqAdj{&f.SeqAdjOrig, &f.SeqAdjReply} {
		if isNil, err := rd.isNil(); err != nil {
			return err
		} else if isNil {
			continue
		}
		var a, b, c uint64
		if err := rd.u64s(&a, &b, &c); err != nil {
			return err
		}
		if a|b|c > 0xffffffff {
			return fmt.Errorf("%w: sequence adjustment", errWire)
		}
		*dst = flow.SeqAdj{CorrectionPos: uint32(a), OffsetBefore: uint32(b), OffsetAfter: uint32(c)}
		f.Set([]flow.Attr{flow.AttrSeqAdjOrig, flow.AttrSeqAdjReply}[i])
	}
	if isNil, err := rd.isNil(); err != nil {
		return err
	} else if !isNil {
		mn, err := rd.arrayLen(6)
		if err != nil {
			return err
		}
		mp, err := rd.uint(0xff)
		if err != nil {
			return err
		}
		m := &flow.Tuple{Proto: uint8(mp)}
		if err := rd.tuple(m, fam); err != nil {
			return err
		}
		if err := rd.skip(mn - 5); err != nil {
			return err
		}
		f.Master = m
		f.Set(flow.AttrMaster)
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errWire, err)
	}
	e.Key = cache.KeyOf(f)
	return rd.skip(n - 26)
}
