package kernel

// Test-only helpers: convenience wrappers over the production API that only
// the tests call. Compiled into the package for its tests alone.

import (
	"context"
	"fmt"

	"github.com/ctsync/ctsync/flow"
)

// List returns every entry matching filter. Prefer Dump for large tables.
func (c *Conn) List(ctx context.Context, filter DumpFilter) ([]flow.Flow, error) {
	var out []flow.Flow
	err := c.Dump(ctx, filter, func(f *flow.Flow) error {
		out = append(out, cloneFlow(f))
		return nil
	})
	return out, err
}

// cloneFlow copies f, including what its pointers reference.
func cloneFlow(f *flow.Flow) flow.Flow {
	out := *f
	if f.Master != nil {
		m := *f.Master
		out.Master = &m
	}
	return out
}

// DeleteByID removes the entry with the given id; ErrNotFound when there is none.
// The kernel looks entries up by tuple, so this dumps until it finds the id.
func (c *Conn) DeleteByID(ctx context.Context, id uint32) (flow.Flow, error) {
	var target *flow.Flow
	err := c.Dump(ctx, DumpFilter{}, func(f *flow.Flow) error {
		if f.Has(flow.AttrID) && f.ID == id {
			cp := cloneFlow(f)
			target = &cp
			return errStop
		}
		return nil
	})
	if err != nil && target == nil {
		return flow.Flow{}, err
	}
	if target == nil {
		return flow.Flow{}, fmt.Errorf("delete conntrack entry id %d: %w", id, ErrNotFound)
	}
	return *target, c.Delete(ctx, target)
}

// errStop ends a dump early.
var errStop = fmt.Errorf("stop")

// ListExpect returns every expectation.
func (c *Conn) ListExpect(ctx context.Context, filter ExpectFilter) ([]flow.Expect, error) {
	var out []flow.Expect
	err := c.DumpExpect(ctx, filter, func(x *flow.Expect) error {
		out = append(out, *x)
		return nil
	})
	return out, err
}

// GetExpect fetches the expectation with x's tuple and zone (and id, when
// x has one). It returns ErrNotFound when there is none.
func (c *Conn) GetExpect(ctx context.Context, x *flow.Expect) (flow.Expect, error) {
	s, err := c.get()
	if err != nil {
		return flow.Expect{}, err
	}
	defer c.put(s)
	s.enc.reset()
	s.enc.appendExpectTupleRequest(expGet, x, s.nextSeq())
	var out flow.Expect
	found := false
	err = s.request(ctx, c.cfg.RequestTimeout, func(m *msg) error {
		if len(m.data) < nfgenHdrLen {
			return errMalformed
		}
		found = true
		return decodeExpect(m.data[nfgenHdrLen:], &out)
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return flow.Expect{}, fmt.Errorf("get expectation: %w", err)
	}
	return out, nil
}
