package kernel

import (
	"context"
	"fmt"

	"github.com/ctsync/ctsync/flow"
)

// DumpFilter narrows a dump inside the kernel. The zero value dumps every
// entry of both families.
type DumpFilter struct {
	Family   flow.Family // 0 = both
	Mark     uint32
	MarkMask uint32 // 0 = no mark filter; entries with mark&MarkMask == Mark
	Zone     uint16
	HasZone  bool // filter by Zone (kernel >= 6.8)
}

// Dump streams every entry matching filter to fn, in the kernel's order.
// The *flow.Flow passed to fn is reused: copy it to keep it. Memory use does
// not depend on the table size. If fn returns an error, Dump stops and
// returns it. Dump may block until ctx ends or the request timeout passes.
func (c *Conn) Dump(ctx context.Context, filter DumpFilter, fn func(*flow.Flow) error) error {
	s, err := c.get()
	if err != nil {
		return err
	}
	defer c.put(s)
	s.enc.reset()
	off := s.enc.begin(nfnlSubsysCT<<8|ctGet, nlmFRequest|nlmFDump, s.nextSeq(), uint8(filter.Family), nfnetlinkV0)
	if filter.MarkMask != 0 {
		s.enc.be32(ctaMark, filter.Mark)
		s.enc.be32(ctaMarkMask, filter.MarkMask)
	}
	if filter.HasZone {
		s.enc.be16(ctaZone, filter.Zone)
	}
	s.enc.end(off)
	var f flow.Flow
	err = s.request(ctx, c.cfg.RequestTimeout*10, func(m *msg) error {
		if m.typ != nfnlSubsysCT<<8|ctNew || len(m.data) < nfgenHdrLen {
			return nil
		}
		if err := decodeFlow(m.data[nfgenHdrLen:], &f); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		return fn(&f)
	})
	if err != nil {
		return fmt.Errorf("dump conntrack table: %w", err)
	}
	return nil
}

// Get fetches the entry with f's original tuple and zone (or, with byReply,
// its reply tuple). It returns ErrNotFound when there is none.
func (c *Conn) Get(ctx context.Context, f *flow.Flow, byReply bool) (flow.Flow, error) {
	s, err := c.get()
	if err != nil {
		return flow.Flow{}, err
	}
	defer c.put(s)
	s.enc.reset()
	s.enc.appendTupleRequest(ctGet, f, byReply, s.nextSeq())
	var out flow.Flow
	found := false
	err = s.request(ctx, c.cfg.RequestTimeout, func(m *msg) error {
		if len(m.data) < nfgenHdrLen {
			return errMalformed
		}
		found = true
		return decodeFlow(m.data[nfgenHdrLen:], &out)
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return flow.Flow{}, fmt.Errorf("get conntrack entry: %w", err)
	}
	return out, nil
}

// Create inserts f. The reply tuple's NAT (see flow.Flow.SNAT/DNAT) is set up
// with CTA_NAT_SRC/CTA_NAT_DST. It returns ErrExist if the entry, or its NAT
// mapping, exists already.
func (c *Conn) Create(ctx context.Context, f *flow.Flow, o CreateOptions) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("create conntrack entry: %w", err)
	}
	return c.simple(ctx, "create conntrack entry", func(e *encoder, seq uint32) {
		e.appendCreate(f, seq, nlmFCreate|nlmFExcl, o)
	})
}

// Update changes the fields u selects on the entry with f's original tuple
// and zone (and f.ID, when f has AttrID). ErrNotFound when there is none.
func (c *Conn) Update(ctx context.Context, f *flow.Flow, u UpdateFields) error {
	return c.simple(ctx, "update conntrack entry", func(e *encoder, seq uint32) {
		e.appendUpdate(f, seq, u)
	})
}

// Delete removes the entry with f's original tuple and zone (and f.ID, when
// f has AttrID). ErrNotFound when there is none.
func (c *Conn) Delete(ctx context.Context, f *flow.Flow) error {
	return c.simple(ctx, "delete conntrack entry", func(e *encoder, seq uint32) {
		e.appendTupleRequest(ctDelete, f, false, seq)
	})
}

// Flush deletes every entry of family (0 = both).
func (c *Conn) Flush(ctx context.Context, family flow.Family) error {
	return c.simple(ctx, "flush conntrack table", func(e *encoder, seq uint32) {
		// Version 1 makes the kernel honour the family (0 = all).
		off := e.begin(nfnlSubsysCT<<8|ctDelete, nlmFRequest|nlmFAck, seq, uint8(family), nfnetlinkV1)
		e.end(off)
	})
}

// simple runs one request that is answered by an ACK or an error.
func (c *Conn) simple(ctx context.Context, what string, build func(e *encoder, seq uint32)) error {
	s, err := c.get()
	if err != nil {
		return err
	}
	defer c.put(s)
	s.enc.reset()
	build(&s.enc, s.nextSeq())
	if err := s.request(ctx, c.cfg.RequestTimeout, nil); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Count returns the number of entries in the table and the table's limit.
func (c *Conn) Count(ctx context.Context) (entries, limit uint32, err error) {
	s, err := c.get()
	if err != nil {
		return 0, 0, err
	}
	defer c.put(s)
	s.enc.reset()
	off := s.enc.begin(nfnlSubsysCT<<8|ctGetStats, nlmFRequest|nlmFAck, s.nextSeq(), 0, nfnetlinkV0)
	s.enc.end(off)
	err = s.request(ctx, c.cfg.RequestTimeout, func(m *msg) error {
		if len(m.data) < nfgenHdrLen {
			return errMalformed
		}
		it := attrIter{b: m.data[nfgenHdrLen:]}
		var err error
		for it.next() && err == nil {
			switch it.typ {
			case 1: // CTA_STATS_GLOBAL_ENTRIES
				entries, err = beU32(it.val)
			case 2: // CTA_STATS_GLOBAL_MAX_ENTRIES
				limit, err = beU32(it.val)
			}
		}
		if err == nil {
			err = it.err
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count conntrack entries: %w", err)
	}
	return entries, limit, nil
}

// CPUStats are one CPU's conntrack counters (conntrack -S).
type CPUStats struct {
	CPU           uint16
	Found         uint32
	Invalid       uint32
	Insert        uint32
	InsertFailed  uint32
	Drop          uint32
	EarlyDrop     uint32
	Error         uint32
	SearchRestart uint32
	ClashResolve  uint32
	ChainTooLong  uint32
}

// Stats returns the per-CPU counters.
func (c *Conn) Stats(ctx context.Context) ([]CPUStats, error) {
	s, err := c.get()
	if err != nil {
		return nil, err
	}
	defer c.put(s)
	s.enc.reset()
	off := s.enc.begin(nfnlSubsysCT<<8|ctGetStatsCPU, nlmFRequest|nlmFDump, s.nextSeq(), 0, nfnetlinkV0)
	s.enc.end(off)
	var out []CPUStats
	err = s.request(ctx, c.cfg.RequestTimeout, func(m *msg) error {
		if len(m.data) < nfgenHdrLen {
			return errMalformed
		}
		st := CPUStats{CPU: uint16(m.data[2])<<8 | uint16(m.data[3])} // res_id carries the CPU
		it := attrIter{b: m.data[nfgenHdrLen:]}
		for it.next() {
			v, err := beU32(it.val)
			if err != nil {
				return err
			}
			switch it.typ {
			case 2:
				st.Found = v
			case 4:
				st.Invalid = v
			case 8:
				st.Insert = v
			case 9:
				st.InsertFailed = v
			case 10:
				st.Drop = v
			case 11:
				st.EarlyDrop = v
			case 12:
				st.Error = v
			case 13:
				st.SearchRestart = v
			case 14:
				st.ClashResolve = v
			case 15:
				st.ChainTooLong = v
			}
		}
		out = append(out, st)
		return it.err
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack statistics: %w", err)
	}
	return out, nil
}
