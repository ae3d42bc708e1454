package sync

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	// Added later (expect.go); older receivers drop and count them.
	msgExpects      msgType = 7 // the origin's complete expectation set
	msgExpectDigest msgType = 8 // its digest
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
	case msgExpects:
		return "expectations"
	case msgExpectDigest:
		return "expectation-digest"
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

// writer builds messages (by hand, see msgp.go). Not safe for concurrent
// use; the slice a method returns is valid until the next call.
type writer struct {
	b        []byte
	countPos int // where startEntries left the array32 count
}

func newWriter() *writer { return &writer{b: make([]byte, 0, 64<<10)} }

func (w *writer) begin(t msgType) { w.b = append(w.b[:0], wireVersion, byte(t)) }

// hello: [node, epoch, session]
func (w *writer) hello(node string, epoch, session uint64) []byte {
	w.begin(msgHello)
	w.b = appendArrayLen(w.b, 3)
	w.b = appendStr(w.b, node)
	w.b = appendUint(w.b, epoch)
	w.b = appendUint(w.b, session)
	return w.b
}

// u64s encodes a message whose body is an array of unsigned integers.
func (w *writer) u64s(t msgType, vs ...uint64) []byte {
	w.begin(t)
	w.b = appendArrayLen(w.b, len(vs))
	for _, v := range vs {
		w.b = appendUint(w.b, v)
	}
	return w.b
}

// startEntries begins an entries message; add entries with entry, then
// finish with endEntries(n).
func (w *writer) startEntries(epoch uint64) {
	w.begin(msgEntries)
	w.b = appendUint(w.b, epoch)
	w.countPos = len(w.b)
	// The count is written last into a fixed-size array32 header.
	w.b = append(w.b, 0xdd, 0, 0, 0, 0)
}

func (w *writer) endEntries(n int) []byte {
	binary.BigEndian.PutUint32(w.b[w.countPos+1:], uint32(n))
	return w.b
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
	inverse := !e.Deleted && f.Reply == f.Orig.Invert()
	b := appendEntryHead(w.b, e, inverse)
	if e.Deleted {
		w.b = b
		return
	}

	if inverse {
		b = append(b, 0xc0, 0xc0, 0xc0, 0xc0)
	} else {
		b = appendAddr(b, f.Reply.Src)
		b = appendAddr(b, f.Reply.Dst)
		sp, dp := l4(&f.Reply)
		b = appendUint(b, uint64(sp))
		b = appendUint(b, uint64(dp))
	}

	attrs := wireAttrs(f)
	b = appendUint(b, attrs)
	b = appendUint(b, uint64(f.Status))
	b = appendUint(b, uint64(f.Timeout))
	b = appendUint(b, uint64(f.Mark))
	b = appendUint(b, uint64(f.ZoneDir))
	state, tcp, aux1, aux2 := protoInfo(f)
	b = appendUint(b, state)
	b = appendUint(b, tcp)
	b = appendUint(b, aux1)
	b = appendUint(b, aux2)

	w.b = appendOptional(b, f, attrs)
}

// appendEntryHead appends an entry's array header and the fields every
// entry has, deleted or not: version, flags, the original tuple and the
// zone.
func appendEntryHead(b []byte, e *cache.Entry, inverse bool) []byte {
	f := &e.Flow
	var flags uint64
	if e.Deleted {
		flags |= efDeleted
	}
	if inverse {
		flags |= efReplyInverse
	}
	if e.Deleted {
		b = appendArrayLen(b, 8)
	} else {
		b = appendArrayLen(b, 26)
	}
	b = appendUint(b, e.Version)
	b = appendUint(b, flags)
	b = appendUint(b, uint64(f.Orig.Proto))
	b = appendAddr(b, f.Orig.Src)
	b = appendAddr(b, f.Orig.Dst)
	sp, dp := l4(&f.Orig)
	b = appendUint(b, uint64(sp))
	b = appendUint(b, uint64(dp))
	return appendUint(b, uint64(f.Zone))
}

// wireAttrs returns the wa bits of the optional parts f carries.
func wireAttrs(f *flow.Flow) uint64 {
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
	return attrs
}

// protoInfo packs the protocol's state into the four fields state, tcp,
// aux1 and aux2 (what each means depends on the protocol).
func protoInfo(f *flow.Flow) (state, tcp, aux1, aux2 uint64) {
	switch {
	case f.Has(flow.AttrTCP):
		state = uint64(f.TCP.State)
		tcp = uint64(f.TCP.WScaleOrig) | uint64(f.TCP.WScaleReply)<<8 | uint64(f.TCP.FlagsOrig)<<16 | uint64(f.TCP.FlagsReply)<<24
	case f.Has(flow.AttrSCTP):
		state, aux1, aux2 = uint64(f.SCTP.State), uint64(f.SCTP.VTagOrig), uint64(f.SCTP.VTagReply)
	case f.Has(flow.AttrDCCP):
		state, tcp, aux1 = uint64(f.DCCP.State), uint64(f.DCCP.Role), f.DCCP.HandshakeSeq
	}
	return state, tcp, aux1, aux2
}

// appendOptional appends the optional parts attrs names, each nil when
// absent: helper, labels, the sequence adjustments and the master tuple.
func appendOptional(b []byte, f *flow.Flow, attrs uint64) []byte {
	if attrs&waHelper != 0 {
		b = appendStr(b, f.Helper)
	} else {
		b = appendNil(b)
	}
	if attrs&waLabels != 0 {
		b = appendBin(b, f.Labels[:])
	} else {
		b = appendNil(b)
	}
	b = appendSeqAdj(b, attrs&waSeqOrig != 0, f.SeqAdjOrig)
	b = appendSeqAdj(b, attrs&waSeqReply != 0, f.SeqAdjReply)

	m := f.Master
	if m == nil {
		return appendNil(b)
	}
	b = appendArrayLen(b, 6)
	b = appendUint(b, uint64(m.Proto))
	b = appendAddr(b, m.Src)
	b = appendAddr(b, m.Dst)
	sp, dp := l4(m)
	b = appendUint(b, uint64(sp))
	b = appendUint(b, uint64(dp))
	return appendUint(b, 0) // reserved: master zone
}

func appendSeqAdj(b []byte, ok bool, s flow.SeqAdj) []byte {
	if !ok {
		return appendNil(b)
	}
	b = appendArrayLen(b, 3)
	b = appendUint(b, uint64(s.CorrectionPos))
	b = appendUint(b, uint64(s.OffsetBefore))
	return appendUint(b, uint64(s.OffsetAfter))
}

// ---------------------------------------------------------------- reading

// reader parses messages. Not safe for concurrent use.
type reader struct {
	r    bytes.Reader
	dec  *msgpack.Decoder
	body []byte
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
	rd.body = b[2:]
	rd.r.Reset(b[2:])
	rd.dec.ResetReader(&rd.r)
	return msgType(b[1]), nil
}

// arrayLen reads an array header of at least least elements, and at most
// as many as there are bytes left (a count of 2^31 or more is negative as
// the library's int on a 32-bit platform: it fails the first check).
func (rd *reader) arrayLen(least int) (int, error) {
	n, err := rd.dec.DecodeArrayLen()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errWire, err)
	}
	if n < least || n > rd.r.Len() {
		return 0, fmt.Errorf("%w: %d fields in %d bytes, want at least %d", errWire, n, rd.r.Len(), least)
	}
	return n, nil
}

// uint reads an unsigned integer of at most limit.
func (rd *reader) uint(limit uint64) (uint64, error) {
	v, err := rd.dec.DecodeUint64()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errWire, err)
	}
	if v > limit {
		return 0, fmt.Errorf("%w: value %d out of range", errWire, v)
	}
	return v, nil
}

// skip discards n values (fields a newer peer appended) with the parser of
// msgp.go, which bounds their depth: the library's Skip recurses once per
// level of nesting, as deep as a frame is long. The decoder reads rd.r
// without buffering, so the rest of the body is what rd.r has left.
func (rd *reader) skip(n int) error {
	p := parser{b: rd.body[len(rd.body)-rd.r.Len():]}
	for i := 0; i < n && p.err == nil; i++ {
		p.skip()
	}
	if p.err != nil {
		return p.err
	}
	_, err := rd.r.Seek(int64(len(rd.body)-len(p.b)), io.SeekStart)
	return err
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
func (rd *reader) u64s(out ...*uint64) error { return rd.u64sMin(len(out), out...) }

// u64sMin is u64s for a message whose last fields were appended later: it
// needs the first need of them; the others keep their values when absent.
func (rd *reader) u64sMin(need int, out ...*uint64) error {
	n, err := rd.arrayLen(need)
	if err != nil {
		return err
	}
	read := 0
	for _, p := range out[:min(n, len(out))] {
		if *p, err = rd.uint(^uint64(0)); err != nil {
			return err
		}
		read++
	}
	return rd.skip(n - read)
}

// maxEntries bounds one entries message (the frame size bounds it too).
const maxEntries = 1 << 16

// entries decodes an entries body, calling fn for each entry (reused).
// Entries are parsed by hand (msgp.go), the hot path of replication.
func (rd *reader) entries(fn func(epoch uint64, e *cache.Entry) error) error {
	var buf [16]cache.Entry
	return rd.chunks(buf[:], func(epoch uint64, es []cache.Entry) error {
		for i := range es {
			if err := fn(epoch, &es[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// chunks parses an entries body into buf, a chunk at a time, and calls fn
// with the message's epoch and each chunk (valid until fn returns). fn
// gets the epoch before any entry is parsed; an entry that does not parse
// ends the message with an error after the chunks before it.
func (rd *reader) chunks(buf []cache.Entry, fn func(epoch uint64, es []cache.Entry) error) error {
	p := parser{b: rd.body}
	epoch := p.uint(^uint64(0))
	n := p.arrayLen()
	if p.err != nil {
		return p.err
	}
	if n == 0 {
		return fn(epoch, buf[:0])
	}
	for done := 0; done < n; {
		k := min(len(buf), n-done)
		for i := range k {
			if err := parseEntry(&p, &buf[i]); err != nil {
				return fmt.Errorf("entry %d: %w", done+i, err)
			}
		}
		done += k
		if err := fn(epoch, buf[:k]); err != nil {
			return err
		}
	}
	return nil
}

// addr reads a 4- or 16-byte address of the expected family (0: either).
func (p *parser) addr(fam flow.Family) netip.Addr {
	v := p.bin()
	switch {
	case p.err != nil:
	case len(v) == 4 && fam != flow.IPv6:
		return netip.AddrFrom4([4]byte(v))
	case len(v) == 16 && fam != flow.IPv4:
		return netip.AddrFrom16([16]byte(v))
	default:
		p.fail(fmt.Sprintf("address of %d bytes", len(v)))
	}
	return netip.Addr{}
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

// tuple reads src, dst, sport, dport.
func (p *parser) tuple(t *flow.Tuple, fam flow.Family) {
	t.Src = p.addr(fam)
	t.Dst = p.addr(flow.FamilyOf(t.Src))
	sp := p.uint(0xffff)
	dp := p.uint(0xffff)
	setL4(t, uint16(sp), uint16(dp))
}

// parseEntry parses one entry (see writer.entry) into e, its key included.
func parseEntry(p *parser, e *cache.Entry) error {
	*e = cache.Entry{}
	n, flags := parseEntryHead(p, e)
	if p.err != nil {
		return p.err
	}
	f := &e.Flow
	if e.Deleted {
		e.Key = cache.KeyOf(f)
		for i := 8; i < n && p.err == nil; i++ {
			p.skip()
		}
		return p.err
	}
	if n < 26 {
		p.fail(fmt.Sprintf("%d fields in a flow, want 26", n))
		return p.err
	}

	fam := f.Family()
	if flags&efReplyInverse != 0 {
		for i := 0; i < 4; i++ {
			p.skip()
		}
		f.Reply = f.Orig.Invert()
	} else {
		f.Reply.Proto = f.Orig.Proto
		p.tuple(&f.Reply, fam)
	}
	p.parseAttrs(f)
	if p.err != nil {
		return p.err
	}
	p.parseOptional(f, fam)
	for i := 26; i < n && p.err == nil; i++ {
		p.skip()
	}
	if p.err != nil {
		return p.err
	}

	if err := f.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errWire, err)
	}
	e.Key = cache.KeyOf(f)
	return nil
}

// parseEntryHead parses the entry's array header and the fields every
// entry has (see appendEntryHead), and returns the number of fields and
// the flags.
func parseEntryHead(p *parser, e *cache.Entry) (n int, flags uint64) {
	n = p.arrayLen()
	if p.err == nil && n < 8 {
		p.fail(fmt.Sprintf("%d fields in an entry, want at least 8", n))
	}
	e.Version = p.uint(^uint64(0))
	flags = p.uint(0xff)
	e.Deleted = flags&efDeleted != 0
	f := &e.Flow
	f.Orig.Proto = uint8(p.uint(0xff))
	p.tuple(&f.Orig, 0)
	f.Zone = uint16(p.uint(0xffff))
	return n, flags
}

// parseAttrs parses attrs, status, timeout, mark, zonedir and the
// protocol's state (see protoInfo) into f.
func (p *parser) parseAttrs(f *flow.Flow) {
	attrs := p.uint(0xffff)
	f.Status = flow.Status(p.uint(0xffffffff))
	f.Timeout = uint32(p.uint(0xffffffff))
	f.Mark = uint32(p.uint(0xffffffff))
	f.ZoneDir = flow.ZoneDir(p.uint(uint64(flow.ZoneReply)))
	state := uint8(p.uint(0xff))
	tcp := p.uint(0xffffffff)
	aux1 := p.uint(^uint64(0))
	aux2 := uint32(p.uint(0xffffffff))
	if p.err != nil {
		return
	}

	if attrs&waStatus != 0 {
		f.Set(flow.AttrStatus)
	}
	if attrs&waTimeout != 0 {
		f.Set(flow.AttrTimeout)
	}
	if attrs&waMark != 0 {
		f.Set(flow.AttrMark)
	}
	if f.Zone != 0 && f.ZoneDir == flow.ZoneBoth {
		f.Set(flow.AttrZone)
	}
	switch {
	case attrs&waTCP != 0:
		f.Set(flow.AttrTCP)
		f.TCP = flow.TCPInfo{State: state, WScaleOrig: uint8(tcp), WScaleReply: uint8(tcp >> 8), FlagsOrig: uint8(tcp >> 16), FlagsReply: uint8(tcp >> 24)}
	case attrs&waSCTP != 0:
		if aux1 > 0xffffffff {
			p.fail("sctp vtag")
			return
		}
		f.Set(flow.AttrSCTP)
		f.SCTP = flow.SCTPInfo{State: state, VTagOrig: uint32(aux1), VTagReply: aux2}
	case attrs&waDCCP != 0:
		f.Set(flow.AttrDCCP)
		f.DCCP = flow.DCCPInfo{State: state, Role: uint8(tcp), HandshakeSeq: aux1}
	}
}

// parseOptional parses the optional parts (see appendOptional) into f:
// helper, labels, the sequence adjustments and the master tuple, of
// family fam.
func (p *parser) parseOptional(f *flow.Flow, fam flow.Family) {
	if !p.isNil() {
		h := p.bin()
		if p.err == nil && (len(h) == 0 || len(h) > 32) {
			p.fail("helper name")
		}
		f.Helper = string(h)
		f.Set(flow.AttrHelper)
	}
	if !p.isNil() {
		l := p.bin()
		if p.err == nil && len(l) != len(f.Labels) {
			p.fail("labels")
		}
		copy(f.Labels[:], l)
		f.Set(flow.AttrLabels)
	}
	for i, dst := range []*flow.SeqAdj{&f.SeqAdjOrig, &f.SeqAdjReply} {
		if p.isNil() {
			continue
		}
		sn := p.arrayLen()
		if sn < 3 && p.err == nil {
			p.fail("sequence adjustment")
		}
		*dst = flow.SeqAdj{CorrectionPos: uint32(p.uint(0xffffffff)), OffsetBefore: uint32(p.uint(0xffffffff)), OffsetAfter: uint32(p.uint(0xffffffff))}
		for i := 3; i < sn && p.err == nil; i++ {
			p.skip()
		}
		f.Set([]flow.Attr{flow.AttrSeqAdjOrig, flow.AttrSeqAdjReply}[i])
	}
	if !p.isNil() {
		mn := p.arrayLen()
		if p.err == nil && mn < 6 {
			p.fail("master tuple")
		}
		m := &flow.Tuple{Proto: uint8(p.uint(0xff))}
		p.tuple(m, fam)
		for i := 5; i < mn && p.err == nil; i++ {
			p.skip()
		}
		f.Master = m
		f.Set(flow.AttrMaster)
	}
}
