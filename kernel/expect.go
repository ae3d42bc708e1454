package kernel

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/ctsync/ctsync/flow"
)

// ctnetlink_exp message types (IPCTNL_MSG_EXP_*).
const (
	expNew    = 0
	expGet    = 1
	expDelete = 2
)

// Expectation attributes (CTA_EXPECT_*).
const (
	ctaExpectMaster   = 1
	ctaExpectTuple    = 2
	ctaExpectMask     = 3
	ctaExpectTimeout  = 4
	ctaExpectID       = 5
	ctaExpectHelpName = 6
	ctaExpectZone     = 7
	ctaExpectFlags    = 8
	ctaExpectClass    = 9
	ctaExpectNAT      = 10
	ctaExpectFn       = 11

	ctaExpectNATDir   = 1
	ctaExpectNATTuple = 2
)

// fullMask returns the all-ones address of fam.
func fullMask(fam flow.Family) netip.Addr {
	if fam == flow.IPv6 {
		var b [16]byte
		for i := range b {
			b[i] = 0xff
		}
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{0xff, 0xff, 0xff, 0xff})
}

// zeroAddr returns the zero address of fam.
func zeroAddr(fam flow.Family) netip.Addr {
	if fam == flow.IPv6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// expectMask is the mask sent for x: x.Mask with the kernel's conventions
// filled in (an unset mask matches everything exactly; the protocol is the
// expected tuple's; the destination is always matched in full).
func expectMask(x *flow.Expect) flow.Tuple {
	fam := x.Family()
	m := x.Mask
	if !m.Src.IsValid() {
		m = flow.Tuple{Src: fullMask(fam), SrcPort: 0xffff, ICMPID: 0xffff, ICMPType: 0xff, ICMPCode: 0xff}
	}
	m.Dst = fullMask(fam)
	m.Proto = x.Tuple.Proto
	m.DstPort = 0xffff
	return m
}

// appendExpectCreate encodes an EXP_NEW request creating x. The kernel
// takes the timeout from the master's helper policy, whatever is sent.
func (e *encoder) appendExpectCreate(x *flow.Expect, seq uint32, flags uint16) {
	off := e.begin(nfnlSubsysExp<<8|expNew, nlmFRequest|nlmFAck|flags, seq, uint8(x.Family()), nfnetlinkV0)
	e.tuple(ctaExpectMaster, &x.Master, -1)
	e.tuple(ctaExpectTuple, &x.Tuple, -1)
	m := expectMask(x)
	e.tuple(ctaExpectMask, &m, -1)
	if x.Zone != 0 {
		e.be16(ctaExpectZone, x.Zone)
	}
	if x.Timeout != 0 {
		e.be32(ctaExpectTimeout, x.Timeout)
	}
	if x.Flags != 0 {
		e.be32(ctaExpectFlags, x.Flags)
	}
	if x.Has(flow.ExpectAttrClass) && x.Class != 0 {
		e.be32(ctaExpectClass, x.Class)
	}
	if x.Helper != "" {
		e.attr(ctaExpectHelpName, append([]byte(x.Helper), 0))
	}
	if x.Has(flow.ExpectAttrNAT) {
		n := e.nest(ctaExpectNAT)
		e.be32(ctaExpectNATDir, x.NATDir)
		t := x.NATTuple
		if !t.Src.IsValid() {
			t.Src = zeroAddr(x.Family())
		}
		if !t.Dst.IsValid() {
			t.Dst = zeroAddr(x.Family())
		}
		t.Proto = x.Master.Proto
		e.tuple(ctaExpectNATTuple, &t, -1)
		e.unnest(n)
	}
	if x.Fn != "" {
		e.attr(ctaExpectFn, append([]byte(x.Fn), 0))
	}
	e.end(off)
}

// appendExpectTupleRequest encodes an EXP_GET or EXP_DELETE by tuple (and
// id, when x has one).
func (e *encoder) appendExpectTupleRequest(msg uint16, x *flow.Expect, seq uint32) {
	off := e.begin(nfnlSubsysExp<<8|msg, nlmFRequest|nlmFAck, seq, uint8(x.Family()), nfnetlinkV0)
	e.tuple(ctaExpectTuple, &x.Tuple, -1)
	if x.Zone != 0 {
		e.be16(ctaExpectZone, x.Zone)
	}
	if x.Has(flow.ExpectAttrID) {
		e.be32(ctaExpectID, x.ID)
	}
	e.end(off)
}

// decodeExpect parses the attributes of one ctnetlink_exp message (the
// bytes after the nfgenmsg header) into x, which is reset first. It never
// panics on malformed input; unknown attributes are skipped.
func decodeExpect(b []byte, x *flow.Expect) error {
	*x = flow.Expect{}
	it := attrIter{b: b}
	var err error
	hasMaster, hasMask := false, false
	for it.next() && err == nil {
		v := it.val
		switch it.typ {
		case ctaExpectMaster:
			_, _, err = decodeTuple(v, &x.Master)
			hasMaster = true
		case ctaExpectTuple:
			_, _, err = decodeTuple(v, &x.Tuple)
		case ctaExpectMask:
			_, _, err = decodeTuple(v, &x.Mask)
			hasMask = true
		case ctaExpectTimeout:
			x.Timeout, err = beU32(v)
			x.Set(flow.ExpectAttrTimeout)
		case ctaExpectID:
			x.ID, err = beU32(v)
			x.Set(flow.ExpectAttrID)
		case ctaExpectHelpName:
			x.Helper = cstring(v)
			x.Set(flow.ExpectAttrHelper)
		case ctaExpectZone:
			x.Zone, err = beU16(v)
			x.Set(flow.ExpectAttrZone)
		case ctaExpectFlags:
			x.Flags, err = beU32(v)
			x.Set(flow.ExpectAttrFlags)
		case ctaExpectClass:
			x.Class, err = beU32(v)
			x.Set(flow.ExpectAttrClass)
		case ctaExpectFn:
			x.Fn = cstring(v)
			x.Set(flow.ExpectAttrFn)
		case ctaExpectNAT:
			in := attrIter{b: v}
			for in.next() && err == nil {
				switch in.typ {
				case ctaExpectNATDir:
					x.NATDir, err = beU32(in.val)
				case ctaExpectNATTuple:
					_, _, err = decodeTuple(in.val, &x.NATTuple)
				}
			}
			if err == nil {
				err = in.err
			}
			x.Set(flow.ExpectAttrNAT)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: expectation attribute %d", errMalformed, it.typ)
	}
	if it.err != nil {
		return it.err
	}
	if !x.Tuple.Src.IsValid() || !hasMaster || !hasMask {
		return fmt.Errorf("%w: expectation without tuple, mask or master", errMalformed)
	}
	return nil
}

// ExpectFilter narrows an expectation dump. The zero value dumps all.
type ExpectFilter struct {
	Family flow.Family // 0 = both
}

// DumpExpect streams every expectation to fn, in the kernel's order. The
// *flow.Expect passed to fn is reused: copy it to keep it.
func (c *Conn) DumpExpect(ctx context.Context, filter ExpectFilter, fn func(*flow.Expect) error) error {
	s, err := c.get()
	if err != nil {
		return err
	}
	defer c.put(s)
	s.enc.reset()
	off := s.enc.begin(nfnlSubsysExp<<8|expGet, nlmFRequest|nlmFDump, s.nextSeq(), uint8(filter.Family), nfnetlinkV0)
	s.enc.end(off)
	var x flow.Expect
	err = s.request(ctx, c.cfg.RequestTimeout*10, func(m *msg) error {
		if m.typ != nfnlSubsysExp<<8|expNew || len(m.data) < nfgenHdrLen {
			return nil
		}
		if err := decodeExpect(m.data[nfgenHdrLen:], &x); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		return fn(&x)
	})
	if err != nil {
		return fmt.Errorf("dump expectation table: %w", err)
	}
	return nil
}

// CreateExpect inserts x on its master, which must exist (in zone x.Zone)
// and have a helper; ErrNotFound when the master does not exist, ErrExist
// when the expectation does. The kernel sets the timeout from the helper's
// policy.
func (c *Conn) CreateExpect(ctx context.Context, x *flow.Expect) error {
	if err := x.Validate(); err != nil {
		return fmt.Errorf("create expectation: %w", err)
	}
	return c.simple(ctx, "create expectation", func(e *encoder, seq uint32) {
		e.appendExpectCreate(x, seq, nlmFCreate|nlmFExcl)
	})
}

// DeleteExpect removes the expectation with x's tuple and zone (and id,
// when x has one). ErrNotFound when there is none.
func (c *Conn) DeleteExpect(ctx context.Context, x *flow.Expect) error {
	return c.simple(ctx, "delete expectation", func(e *encoder, seq uint32) {
		e.appendExpectTupleRequest(expDelete, x, seq)
	})
}

// FlushExpect deletes every expectation.
func (c *Conn) FlushExpect(ctx context.Context) error {
	return c.simple(ctx, "flush expectation table", func(e *encoder, seq uint32) {
		off := e.begin(nfnlSubsysExp<<8|expDelete, nlmFRequest|nlmFAck, seq, 0, nfnetlinkV0)
		e.end(off)
	})
}

// Expectation multicast groups (NFNLGRP_CONNTRACK_EXP_NEW, _UPDATE,
// _DESTROY = 4, 5, 6) as a bind bitmask.
const (
	groupExpNew     = 1 << 3
	groupExpUpdate  = 1 << 4
	groupExpDestroy = 1 << 5
)

// WatchExpect delivers the expectation table's events to fn in the
// kernel's order until ctx is cancelled (then it returns nil) or fn returns
// an error. The *flow.ExpectEvent is reused between calls. It takes the
// options of Watch; Mute does not silence it.
func (c *Conn) WatchExpect(ctx context.Context, o WatchOptions, fn func(*flow.ExpectEvent) error) error {
	return watch(ctx, c, o, &expectEvents, fn)
}

// expectEvents is what WatchExpect reads: the expectation table's events.
var expectEvents = watchKind[flow.ExpectEvent]{
	name:   "expectation events",
	subsys: nfnlSubsysExp,
	groups: [3]uint32{groupExpNew, groupExpUpdate, groupExpDestroy},
	decode: decodeExpectEvent,
}

// decodeExpectEvent decodes one ctnetlink_exp event message into ev; ok is
// false for a message that is not an event.
func decodeExpectEvent(m msg, ev *flow.ExpectEvent) (ok bool, err error) {
	switch m.typ & 0xff {
	case expNew:
		ev.Type = flow.EventNew
	case expDelete:
		ev.Type = flow.EventDestroy
	default:
		return false, nil
	}
	ev.PortID = m.pid
	return true, decodeExpect(m.data[nfgenHdrLen:], &ev.Expect)
}
