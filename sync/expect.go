package sync

import (
	"fmt"
	"net/netip"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/flow"
)

// Expectations travel in their own messages, added in a backward-safe way
// (wire version 1 unchanged): a receiver that predates them counts them as
// unexpected messages and drops them, keeping the stream up, and never
// sends the resync reason that asks for them.
//
//	msgExpects:      [epoch, [expect, ...]]   the origin's complete set
//	msgExpectDigest: [epoch, count, hash]     its digest (cache.ExpectHash)
//
// An expect is an array, fields only ever appended:
//
//	[attrs, proto, src, dst, sport, dport,          the expected tuple
//	 mask-src, mask-dst, mask-sport, mask-dport,    its mask (proto: the tuple's)
//	 master-proto, master-src, master-dst, master-sport, master-dport,
//	 timeout, zone, flags, class, helper|nil,
//	 nat-dir, [nat-src, nat-dst, nat-sport, nat-dport]|nil (proto: the master's),
//	 fn|nil]
//
// Unset addresses are nil. The local id is not sent.

// resyncExpects is the msgResync reason that asks for the expectation set
// only (after an expectation digest mismatch); other reasons ask for a
// full snapshot.
const resyncExpects = 3

const expectFields = 23

func appendAddrOrNil(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return appendNil(b)
	}
	return appendAddr(b, a)
}

func appendL4(b []byte, t *flow.Tuple) []byte {
	sp, dp := l4(t)
	return appendUint(appendUint(b, uint64(sp)), uint64(dp))
}

func appendStrOrNil(b []byte, s string) []byte {
	if s == "" {
		return appendNil(b)
	}
	return appendStr(b, s)
}

// expects encodes a set of expectations.
func (w *writer) expects(epoch uint64, xs []flow.Expect) []byte {
	w.begin(msgExpects)
	b := appendUint(w.b, epoch)
	b = appendArrayLen(b, len(xs))
	for i := range xs {
		b = appendExpect(b, &xs[i])
	}
	w.b = b
	return b
}

func appendExpect(b []byte, x *flow.Expect) []byte {
	b = appendArrayLen(b, expectFields)
	b = appendUint(b, uint64(x.Attrs&^flow.ExpectAttrID))
	b = appendUint(b, uint64(x.Tuple.Proto))
	b = appendAddrOrNil(b, x.Tuple.Src)
	b = appendAddrOrNil(b, x.Tuple.Dst)
	b = appendL4(b, &x.Tuple)
	m := x.Mask
	m.Proto = x.Tuple.Proto
	b = appendAddrOrNil(b, m.Src)
	b = appendAddrOrNil(b, m.Dst)
	b = appendL4(b, &m)
	b = appendUint(b, uint64(x.Master.Proto))
	b = appendAddrOrNil(b, x.Master.Src)
	b = appendAddrOrNil(b, x.Master.Dst)
	b = appendL4(b, &x.Master)
	b = appendUint(b, uint64(x.Timeout))
	b = appendUint(b, uint64(x.Zone))
	b = appendUint(b, uint64(x.Flags))
	b = appendUint(b, uint64(x.Class))
	b = appendStrOrNil(b, x.Helper)
	b = appendUint(b, uint64(x.NATDir))
	if x.Has(flow.ExpectAttrNAT) {
		n := x.NATTuple
		n.Proto = x.Master.Proto
		b = appendArrayLen(b, 4)
		b = appendAddrOrNil(b, n.Src)
		b = appendAddrOrNil(b, n.Dst)
		b = appendL4(b, &n)
	} else {
		b = appendNil(b)
	}
	return appendStrOrNil(b, x.Fn)
}

// expects decodes a msgExpects body.
func (rd *reader) expects() (uint64, []flow.Expect, error) {
	p := parser{b: rd.body}
	epoch := p.uint(^uint64(0))
	n := p.arrayLen()
	if p.err == nil && n > cache.MaxExpects {
		p.fail(fmt.Sprintf("%d expectations, at most %d", n, cache.MaxExpects))
	}
	if p.err != nil {
		return 0, nil, p.err
	}
	xs := make([]flow.Expect, n)
	for i := range xs {
		if err := parseExpect(&p, &xs[i]); err != nil {
			return 0, nil, fmt.Errorf("expectation %d: %w", i, err)
		}
	}
	return epoch, xs, nil
}

func (p *parser) addrOrNil(fam flow.Family) netip.Addr {
	if p.isNil() {
		return netip.Addr{}
	}
	return p.addr(fam)
}

// l4Tuple reads src, dst (nil or of family fam), sport and dport into t,
// whose Proto is set.
func (p *parser) l4Tuple(t *flow.Tuple, fam flow.Family) flow.Family {
	t.Src = p.addrOrNil(fam)
	if fam == 0 && t.Src.IsValid() {
		fam = flow.FamilyOf(t.Src)
	}
	t.Dst = p.addrOrNil(fam)
	if fam == 0 && t.Dst.IsValid() {
		fam = flow.FamilyOf(t.Dst)
	}
	sp, dp := p.uint(0xffff), p.uint(0xffff)
	setL4(t, uint16(sp), uint16(dp))
	return fam
}

func parseExpect(p *parser, x *flow.Expect) error {
	*x = flow.Expect{}
	n := p.arrayLen()
	if p.err == nil && n < expectFields {
		p.fail(fmt.Sprintf("%d fields in an expectation, want at least %d", n, expectFields))
	}

	x.Attrs = flow.ExpectAttr(p.uint(0xffff)) &^ flow.ExpectAttrID
	x.Tuple.Proto = uint8(p.uint(0xff))
	fam := p.l4Tuple(&x.Tuple, 0)
	x.Mask.Proto = x.Tuple.Proto
	p.l4Tuple(&x.Mask, fam)
	x.Master.Proto = uint8(p.uint(0xff))
	p.l4Tuple(&x.Master, fam)
	x.Timeout = uint32(p.uint(0xffffffff))
	x.Zone = uint16(p.uint(0xffff))
	x.Flags = uint32(p.uint(0xffffffff))
	x.Class = uint32(p.uint(0xffffffff))

	if !p.isNil() {
		h := p.bin()
		if p.err == nil && (len(h) == 0 || len(h) > 32) {
			p.fail("helper name")
		}
		x.Helper = string(h)
	}
	x.NATDir = uint32(p.uint(0xffffffff))
	if !p.isNil() {
		nn := p.arrayLen()
		if p.err == nil && nn < 4 {
			p.fail("nat tuple")
		}
		x.NATTuple.Proto = x.Master.Proto
		p.l4Tuple(&x.NATTuple, fam)
		for i := 4; i < nn && p.err == nil; i++ {
			p.skip()
		}
	}
	if !p.isNil() {
		fn := p.bin()
		if p.err == nil && (len(fn) == 0 || len(fn) > 64) {
			p.fail("expectfn name")
		}
		x.Fn = string(fn)
	}

	for i := expectFields; i < n && p.err == nil; i++ {
		p.skip()
	}
	if p.err != nil {
		return p.err
	}

	// What the fields say is present, the presence bits say too (and the
	// reverse), so that a decoded expectation encodes to the same bytes.
	set := func(cond bool, a flow.ExpectAttr) {
		if cond {
			x.Attrs |= a
		}
	}
	set(x.Helper != "", flow.ExpectAttrHelper)
	set(x.Fn != "", flow.ExpectAttrFn)
	if x.Has(flow.ExpectAttrNAT) {
		x.NATTuple.Proto = x.Master.Proto
	} else {
		x.NATTuple = flow.Tuple{}
	}

	if err := x.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errWire, err)
	}
	return nil
}
