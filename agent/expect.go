package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// ExpectKernel is the part of kernel.Conn that expectations need. A Kernel
// that does not implement it (an in-memory test table) replicates flows
// only.
type ExpectKernel interface {
	DumpExpect(ctx context.Context, f kernel.ExpectFilter, fn func(*flow.Expect) error) error
	WatchExpect(ctx context.Context, o kernel.WatchOptions, fn func(*flow.ExpectEvent) error) error
	CreateExpect(ctx context.Context, x *flow.Expect) error
}

// expectKernel returns the kernel's expectation side, or nil.
func (a *Agent) expectKernel() ExpectKernel {
	xk, _ := a.kern.(ExpectKernel)
	return xk
}

// watchExpect reads the kernel's expectation events and hands them to the
// loop one at a time (they are rare). A lost event makes the loop resync,
// which dumps the expectations too.
func (a *Agent) watchExpect(ctx context.Context, xk ExpectKernel, ready chan struct{}) error {
	err := xk.WatchExpect(ctx, kernel.WatchOptions{
		ReadBuffer: a.cfg.EventBufferBytes(),
		Ready:      func() { close(ready) },
		OnOverrun: func() error {
			a.st.overruns.Add(1)
			a.warn.Warn(a.log, "expect overrun", "kernel expectation event overrun: resyncing from a dump")
			a.signalOverrun()
			return nil
		},
	}, func(ev *flow.ExpectEvent) error {
		select {
		case a.expEvents <- *ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("expectation watch ended")
	}
	return err
}

// runExpectWatch keeps the expectation watcher up until ctx ends; ready is
// closed once it first listens (or gave up on the first try).
func (a *Agent) runExpectWatch(ctx context.Context, xk ExpectKernel, ready chan struct{}) {
	first := true
	for ctx.Err() == nil {
		r := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- a.watchExpect(ctx, xk, r) }()
		var err error
		select {
		case <-r:
			if first {
				close(ready)
				first = false
			}
			err = <-done
		case err = <-done:
			if first {
				close(ready)
				first = false
			}
		}
		if ctx.Err() != nil {
			return
		}
		a.warn.Error(a.log, "expect watch failed", "kernel expectation watch failed; restarting", "err", err)
		a.st.watchRestarts.Add(1)
		a.signalOverrun()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// applyExpect updates the internal cache from one expectation event (on
// the loop).
func (a *Agent) applyExpect(ev *flow.ExpectEvent) {
	switch ev.Type {
	case flow.EventDestroy:
		a.in.DeleteExpect(&ev.Expect)
		delete(a.expOrphans, ev.Expect.Key())
	default:
		if !a.masterReplicated(&ev.Expect) {
			a.holdOrphan(&ev.Expect)
			return
		}
		if _, err := a.in.UpsertExpect(&ev.Expect); err != nil {
			a.st.cacheFull.Add(1)
		}
	}
}

// masterReplicated reports whether x's master is in the internal cache:
// an expectation is replicated only with its master (one the filter keeps
// from peers, a loopback connection, would fail to commit there). The
// master, older, is normally cached first; one held back by
// filter.min_age gets its expectations at the next resync.
func (a *Agent) masterReplicated(x *flow.Expect) bool {
	return a.in.Has(&flow.Flow{Orig: x.Master, Zone: x.Zone})
}

// resyncExpects rebuilds the internal cache's expectations from a kernel
// dump (on the loop).
func (a *Agent) resyncExpects(ctx context.Context) (int, error) {
	xk := a.expectKernel()
	if xk == nil {
		return 0, nil
	}
	clear(a.expOrphans) // the dump tells again
	a.in.BeginExpectResync()
	n := 0
	err := xk.DumpExpect(ctx, kernel.ExpectFilter{}, func(x *flow.Expect) error {
		if !a.masterReplicated(x) {
			a.holdOrphan(x)
			return nil
		}
		n++
		if _, err := a.in.UpsertExpect(x); err != nil {
			a.st.cacheFull.Add(1)
		}
		return nil
	})
	removed := a.in.EndExpectResync() // even after an error: the watcher keeps them right
	if err != nil {
		return 0, fmt.Errorf("dump expectations: %w", err)
	}
	if removed > 0 {
		a.log.Debug("expectations rebuilt from the kernel", "expectations", n, "removed", removed)
	}
	return removed, nil
}

// commitExpects creates the external cache's expectations in the kernel,
// on their masters (which the commit created first). The kernel cannot
// update an expectation: one that exists already is left as it is. One
// whose master is missing (or has no helper) fails; one whose master the
// gate refuses is skipped. The kernel gives them their helper's timeout,
// whatever the owner had left.
func (a *Agent) commitExpects(ctx context.Context, gate inGate, res *control.CommitResult) error {
	xk := a.expectKernel()
	if xk == nil {
		return nil
	}
	var xs []flow.Expect
	a.ext.RangeExpects("", func(_ string, x *flow.Expect) bool {
		xs = append(xs, *x)
		return true
	})
	var m flow.Flow
	for i := range xs {
		mk := cache.KeyOf(&flow.Flow{Orig: xs[i].Master, Zone: xs[i].Zone})
		if _, _, ok := a.ext.Get(&mk, &m); ok && gate.refuse(&m) != "" {
			res.ExpectationsSkipped++
			continue
		}
		err := xk.CreateExpect(ctx, &xs[i])
		switch {
		case err == nil:
			res.Expectations++
		case errors.Is(err, kernel.ErrExist):
			res.ExpectationsExisting++
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			res.ExpectationsFailed++
			if len(res.Errors) < maxReportedErrors {
				res.Errors = append(res.Errors, fmt.Sprintf("%v: expectation %s", err, xs[i].String()))
			}
		}
	}
	return nil
}

// orphan is an expectation whose master is not (yet) in the internal
// cache: its events may be applied before the master's, or filter.min_age
// holds the master back. It is retried at every promote tick until its
// master is cached, it is destroyed, or its timeout runs out (then the
// filter keeps the master from peers for good).
type orphan struct {
	x        flow.Expect
	deadline int64 // monotonic ns
}

func (a *Agent) holdOrphan(x *flow.Expect) {
	if len(a.expOrphans) >= 4096 {
		a.st.filtered.Add(1)
		return
	}
	a.expOrphans[x.Key()] = orphan{x: *x, deadline: a.monotonic() + int64(x.Timeout)*int64(time.Second)}
}

// adoptOrphans caches the held expectations whose master is now cached
// (on the loop).
func (a *Agent) adoptOrphans() {
	now := a.monotonic()
	for k, o := range a.expOrphans {
		switch {
		case a.masterReplicated(&o.x):
			delete(a.expOrphans, k)
			if _, err := a.in.UpsertExpect(&o.x); err != nil {
				a.st.cacheFull.Add(1)
			}
		case o.deadline <= now:
			delete(a.expOrphans, k)
			a.st.filtered.Add(1)
		}
	}
}
