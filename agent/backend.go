package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

var _ control.Backend = (*Agent)(nil)

// Commit implements control.Backend.
//
// In hot standby (while not master) the peers' flows are in the kernel
// already: a commit then writes what is still pending and reports it.
func (a *Agent) Commit(ctx context.Context) (control.CommitResult, error) {
	a.transition.Lock()
	defer a.transition.Unlock()
	if a.hot != nil && a.hot.active.Load() {
		return a.hot.commit(ctx)
	}
	return a.commit(ctx)
}

// Flush implements control.Backend.
func (a *Agent) Flush(ctx context.Context, which string) error {
	switch which {
	case "", "internal", "external":
	default:
		return fmt.Errorf("unknown cache %q (want internal or external)", which)
	}
	if which != "external" {
		// On the loop, so that no event is applied half-way.
		if err := a.do(ctx, a.in.Flush); err != nil {
			return err
		}
	}
	if which != "internal" {
		a.ext.Flush("")
	}
	a.log.Info("cache flushed", "cache", orBoth(which))
	return nil
}

func orBoth(s string) string {
	if s == "" {
		return "both"
	}
	return s
}

// ResyncKernel implements control.Backend.
func (a *Agent) ResyncKernel(ctx context.Context) (control.ResyncResult, error) {
	start := time.Now()
	var removed int
	var err error
	if derr := a.do(ctx, func() { removed, err = a.resync(ctx) }); derr != nil {
		return control.ResyncResult{}, derr
	}
	if err != nil {
		return control.ResyncResult{}, err
	}
	return control.ResyncResult{Flows: a.in.Len(), Removed: removed, Seconds: time.Since(start).Seconds()}, nil
}

// ResyncPeers implements control.Backend.
func (a *Agent) ResyncPeers(ctx context.Context) (int, error) { return a.node.RequestResync(), nil }

// SendBulk implements control.Backend.
func (a *Agent) SendBulk(ctx context.Context) (int, error) { return a.node.SendBulk(), nil }

// Purge implements control.Backend.
func (a *Agent) Purge(ctx context.Context, after time.Duration) (control.PurgeResult, error) {
	if after < 0 {
		return control.PurgeResult{}, errors.New("purge delay must not be negative")
	}
	if after == 0 {
		after = a.cfg.PurgeTimeout.Duration()
	}
	return a.schedulePurge(after), nil
}

// Cache implements control.Backend.
func (a *Agent) Cache(ctx context.Context, q control.CacheQuery, fn func(origin string, f *flow.Flow) error) error {
	var err error
	match := func(f *flow.Flow) bool { return q.Filter.Match(f) }
	switch q.Cache {
	case "internal":
		a.in.Range(func(f *flow.Flow) bool {
			if match(f) {
				err = fn(a.cfg.Node, f)
			}
			return err == nil && ctx.Err() == nil
		})
	case "external":
		a.ext.Range(q.Origin, func(origin string, f *flow.Flow) bool {
			if match(f) {
				err = fn(origin, f)
			}
			return err == nil && ctx.Err() == nil
		})
	default:
		return fmt.Errorf("unknown cache %q (want internal or external)", q.Cache)
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

var _ control.ExpectBackend = (*Agent)(nil)

// CacheExpect implements control.ExpectBackend.
func (a *Agent) CacheExpect(ctx context.Context, q control.CacheQuery, fn func(origin string, x *flow.Expect) error) error {
	var err error
	switch q.Cache {
	case "internal":
		xs := a.in.Expects()
		for i := range xs {
			if err = fn(a.cfg.Node, &xs[i]); err != nil {
				break
			}
		}
	case "external":
		a.ext.RangeExpects(q.Origin, func(origin string, x *flow.Expect) bool {
			err = fn(origin, x)
			return err == nil && ctx.Err() == nil
		})
	default:
		return fmt.Errorf("unknown cache %q (want internal or external)", q.Cache)
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// Stats implements control.Backend.
func (a *Agent) Stats(ctx context.Context) (stats.Stats, error) { return a.stats(), nil }

// Members implements control.Backend.
func (a *Agent) Members(ctx context.Context) ([]control.Member, error) {
	var out []control.Member
	for _, m := range a.node.Members() {
		out = append(out, control.Member(m))
	}
	return out, nil
}

// Health implements control.Backend: ready when the kernel side runs and
// replication is in sync with every alive peer.
func (a *Agent) Health(ctx context.Context) (control.HealthResult, error) {
	if !a.ready.Load() {
		return control.HealthResult{Reason: "the internal cache is not loaded from the kernel yet"}, nil
	}
	ok, why := a.node.Healthy()
	return control.HealthResult{Ready: ok, Reason: why}, nil
}

// Shutdown implements control.Backend.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.quitOnce.Do(func() {
		a.log.Info("shutdown requested over the control socket")
		close(a.quit)
	})
	return nil
}

// Notify implements control.Backend: one keepalived transition, ordered
// and atomic with respect to other transitions, commits and purges.
func (a *Agent) Notify(ctx context.Context, state string) (control.NotifyResult, error) {
	a.transition.Lock()
	defer a.transition.Unlock()
	state = strings.ToLower(state)
	res := control.NotifyResult{State: state}
	s := &notifySteps{res: &res}

	var err error
	switch state {
	case "master":
		err = a.notifyMaster(ctx, s)
	case "backup":
		err = a.notifyBackup(ctx, s)
	case "fault":
		err = a.notifyFault(ctx, s)
	case "stop":
		err = a.notifyStop(ctx, s)
	default:
		return res, fmt.Errorf("unknown state %q (want master, backup, fault or stop)", state)
	}

	a.role.Store(&state)
	a.st.transitions.Add(1)
	a.st.lastTransition.Store(&res)
	a.st.lastNotifyAt.Store(time.Now().UnixNano())
	a.log.Info("keepalived transition", "state", state, "steps", len(res.Steps), "err", err)
	return res, err
}

// notifySteps records a transition's steps, timed, into its result.
type notifySteps struct{ res *control.NotifyResult }

// step runs fn as the step name and records its duration and detail.
func (s *notifySteps) step(name string, fn func() (string, error)) error {
	start := time.Now()
	detail, err := fn()
	s.res.Steps = append(s.res.Steps, control.NotifyStep{Name: name, Seconds: time.Since(start).Seconds(), Detail: detail})
	return err
}

// notifyMaster takes over: the peers' flows into the kernel, the gate
// lifted, then (if that went well) the external cache flushed, the
// internal one resynced and this node's flows sent to the peers.
func (a *Agent) notifyMaster(ctx context.Context, s *notifySteps) error {
	start := time.Now()
	a.cancelPurge()
	err := a.takeover(ctx, s)

	// The flows are in place (or the commit failed: this node is
	// master either way and must forward): lift the gate.
	if gerr := s.step("lift commit gate", func() (string, error) { return a.liftGate(ctx) }); gerr != nil && err == nil {
		err = gerr
	}
	took := time.Since(start)
	a.gateLast.Store(int64(took))
	a.st.takeovers.observe(took)

	if err == nil {
		// The committed flows are this node's own now; those not
		// written stay, for `ctsync commit` to retry.
		err = s.step("flush external cache", func() (string, error) {
			s.res.Remaining = a.ext.FlushExcept(a.commitLeft)
			a.commitLeft = nil
			if s.res.Remaining > 0 {
				return fmt.Sprintf("%d flows not written remain; run `ctsync commit` to retry", s.res.Remaining), nil
			}
			return "", nil
		})
	}
	if err == nil {
		err = s.step("resync internal cache from kernel", func() (string, error) {
			var removed int
			var rerr error
			if derr := a.do(ctx, func() { removed, rerr = a.resync(ctx) }); derr != nil {
				return "", derr
			}
			return fmt.Sprintf("%d flows, %d removed", a.in.Len(), removed), rerr
		})
	}
	if err == nil {
		err = s.step("send bulk to peers", func() (string, error) {
			return fmt.Sprintf("%d peers", a.node.SendBulk()), nil
		})
	}
	return err
}

// takeover writes the peers' flows into the kernel: in hot standby what is
// not there yet, then the expectations; otherwise a full commit.
func (a *Agent) takeover(ctx context.Context, s *notifySteps) error {
	if a.hot == nil || !a.hot.active.Load() {
		return s.step("commit", func() (string, error) {
			c, err := a.commit(ctx)
			s.res.Commit = &c
			return commitDetail(&c), err
		})
	}

	err := s.step("hot standby takeover", func() (string, error) {
		held, written, skipped, left, err := a.hot.takeover(ctx)
		a.commitLeft = left
		detail := fmt.Sprintf("%d flows in the kernel already, %d written now", held, written)
		if skipped > 0 {
			detail += fmt.Sprintf(", %d skipped (refused by this node)", skipped)
		}
		if len(left) > 0 {
			detail += fmt.Sprintf(", %d not written", len(left))
		}
		return detail, err
	})
	if err != nil {
		return err
	}

	// Hot standby keeps flows, not expectations, in the kernel ahead of
	// a failover (the kernel cannot update one, and they live seconds):
	// they are written now, on their masters, which are in place.
	return s.step("expectations", func() (string, error) {
		var c control.CommitResult
		err := a.commitExpects(ctx, a.inGate(0), &c)
		detail := fmt.Sprintf("%d created, %d existing, %d failed", c.Expectations, c.ExpectationsExisting, c.ExpectationsFailed)
		if c.ExpectationsSkipped > 0 {
			detail += fmt.Sprintf(", %d skipped", c.ExpectationsSkipped)
		}
		return detail, err
	})
}

// commitDetail is the commit step's detail line.
func commitDetail(c *control.CommitResult) string {
	detail := fmt.Sprintf("%d created, %d replaced", c.Created, c.Replaced)
	if c.Skipped > 0 {
		detail += fmt.Sprintf(", %d skipped (refused by this node)", c.Skipped)
	}
	if c.KeptLocal > 0 {
		detail += fmt.Sprintf(", %d kept local", c.KeptLocal)
	}
	if c.Failed > 0 {
		detail += fmt.Sprintf(", %d failed", c.Failed)
	}
	if n := c.Expectations + c.ExpectationsExisting + c.ExpectationsFailed; n > 0 {
		detail += fmt.Sprintf("; expectations %d created, %d existing, %d failed", c.Expectations, c.ExpectationsExisting, c.ExpectationsFailed)
	}
	return detail
}

// notifyBackup: the gate armed, hot standby on, a resync asked of the
// peers and the purge scheduled.
func (a *Agent) notifyBackup(ctx context.Context, s *notifySteps) error {
	err := s.step("arm commit gate", func() (string, error) { return a.armGate(ctx) })
	a.hotStandbyStep(s)
	if err == nil {
		err = s.step("request resync from peers", func() (string, error) {
			return fmt.Sprintf("%d peers", a.node.RequestResync()), nil
		})
	}
	if err == nil {
		err = a.schedulePurgeStep(s)
	}
	return err
}

// notifyFault: as backup, without the resync request to the peers.
func (a *Agent) notifyFault(ctx context.Context, s *notifySteps) error {
	err := s.step("arm commit gate", func() (string, error) { return a.armGate(ctx) })
	a.hotStandbyStep(s)
	if err == nil {
		err = a.schedulePurgeStep(s)
	}
	return err
}

// notifyStop: keepalived is stopping: this node holds no VIP any more and
// no takeover will come to lift the gate. Its flows stay as they are.
func (a *Agent) notifyStop(ctx context.Context, s *notifySteps) error {
	return s.step("lift commit gate", func() (string, error) { return a.liftGate(ctx) })
}

// hotStandbyStep turns hot standby on (when configured): the peers' flows
// leave the internal cache and are kept in the kernel.
func (a *Agent) hotStandbyStep(s *notifySteps) {
	if a.hot == nil {
		return
	}
	_ = s.step("hot standby", func() (string, error) {
		a.hot.activate()
		a.signalOverrun() // the peers' flows leave the internal cache
		return "peers' flows are kept in the kernel", nil
	})
}

func (a *Agent) schedulePurgeStep(s *notifySteps) error {
	return s.step("schedule purge", func() (string, error) {
		p := a.schedulePurge(a.cfg.PurgeTimeout.Duration())
		return "at " + p.At.Format(time.RFC3339), nil
	})
}
