package controltest

import (
	"context"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
)

// Expect is one expectation of a fake cache, with its origin node.
type Expect struct {
	Origin string
	Expect flow.Expect
}

// ExpectBackend is a Backend whose caches hold expectations too: it
// implements control.ExpectBackend, as the daemon does (a Backend alone
// stands for a daemon without expectations). Set the fields before the
// server runs.
type ExpectBackend struct {
	*Backend
	InternalExpect []Expect // CacheExpect("internal")
	ExternalExpect []Expect // CacheExpect("external"), filtered by q.Origin
}

var _ control.ExpectBackend = (*ExpectBackend)(nil)

// CacheExpect lists InternalExpect or ExternalExpect, and records the call
// as "CacheExpect" with q.
func (b *ExpectBackend) CacheExpect(ctx context.Context, q control.CacheQuery, fn func(string, *flow.Expect) error) error {
	b.mu.Lock()
	err := b.record("CacheExpect", q)
	xs := b.InternalExpect
	if q.Cache == "external" {
		xs = b.ExternalExpect
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	for i := range xs {
		if q.Origin != "" && xs[i].Origin != q.Origin {
			continue
		}
		x := xs[i].Expect
		if err := fn(xs[i].Origin, &x); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
