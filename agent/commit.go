package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// maxReportedErrors bounds the failures a commit result lists.
const maxReportedErrors = 10

// commit writes the external cache into the kernel: masters first, then
// RELATED flows (which need their master), each flow with its remaining
// timeout (or commit.timeout), TCP flows with BE_LIBERAL so that window
// tracking on this node does not drop them. An entry that exists already
// is replaced by the replica. Callers hold a.transition.
func (a *Agent) commit(ctx context.Context) (control.CommitResult, error) {
	start := time.Now()
	var masters, related []flow.Flow
	a.ext.Range("", func(_ string, f *flow.Flow) bool {
		c := *f
		if f.Master != nil {
			m := *f.Master
			c.Master = &m
			related = append(related, c)
		} else {
			masters = append(masters, c)
		}
		return true
	})
	a.cancelPurge()
	res := control.CommitResult{}
	opts := kernel.BulkOptions{Create: kernel.CreateOptions{Timeout: uint32(a.cfg.Commit.Timeout.Duration() / time.Second), Liberal: true}}
	for _, set := range [][]flow.Flow{masters, related} {
		if err := a.commitSet(ctx, set, opts, &res); err != nil {
			return res, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	a.st.commits.Add(1)
	a.st.committed.Add(uint64(res.Created + res.Replaced))
	a.st.commitFailed.Add(uint64(res.Failed))
	a.st.lastCommit.Store(&res)
	lvl := a.log.Info
	if res.Failed > 0 {
		lvl = a.log.Warn
	}
	lvl("committed the external cache", "created", res.Created, "replaced", res.Replaced, "failed", res.Failed,
		"took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

func (a *Agent) commitSet(ctx context.Context, flows []flow.Flow, opts kernel.BulkOptions, res *control.CommitResult) error {
	if len(flows) == 0 {
		return nil
	}
	errs := make([]error, len(flows))
	if _, err := a.kern.Bulk(ctx, kernel.OpCreate, flows, opts, errs); err != nil && ctx.Err() != nil {
		return err
	}
	var again []flow.Flow
	for i, err := range errs {
		switch {
		case err == nil:
			res.Created++
		case errors.Is(err, kernel.ErrExist):
			again = append(again, flows[i])
		default:
			a.commitFailure(res, &flows[i], err)
		}
	}
	if len(again) == 0 {
		return nil
	}
	// Replace what exists: delete, then create again.
	errs = errs[:len(again)]
	if _, err := a.kern.Bulk(ctx, kernel.OpDelete, again, kernel.BulkOptions{}, errs); err != nil && ctx.Err() != nil {
		return err
	}
	if _, err := a.kern.Bulk(ctx, kernel.OpCreate, again, opts, errs); err != nil && ctx.Err() != nil {
		return err
	}
	for i, err := range errs {
		if err == nil {
			res.Replaced++
		} else {
			a.commitFailure(res, &again[i], err)
		}
	}
	return nil
}

func (a *Agent) commitFailure(res *control.CommitResult, f *flow.Flow, err error) {
	res.Failed++
	if len(res.Errors) < maxReportedErrors {
		line := string(f.AppendText(nil, flow.TextOptions{}))
		res.Errors = append(res.Errors, fmt.Sprintf("%v: %s", err, line))
	}
}

// schedulePurge arms (or re-arms) the purge.
func (a *Agent) schedulePurge(after time.Duration) control.PurgeResult {
	a.purgeMu.Lock()
	defer a.purgeMu.Unlock()
	if a.purgeTimer != nil {
		a.purgeTimer.Stop()
	}
	a.purgeAt = time.Now().Add(after)
	a.purgeTimer = time.AfterFunc(after, func() {
		a.transition.Lock()
		defer a.transition.Unlock()
		a.purgeMu.Lock()
		if a.purgeTimer == nil || time.Now().Before(a.purgeAt) {
			a.purgeMu.Unlock()
			return // cancelled or re-armed meanwhile
		}
		a.purgeTimer = nil
		a.purgeMu.Unlock()
		a.purge(context.Background())
	})
	a.st.purgesScheduled.Add(1)
	a.log.Info("purge scheduled", "after", after)
	return control.PurgeResult{At: a.purgeAt, Seconds: after.Seconds()}
}

// cancelPurge disarms a scheduled purge; it reports whether one was armed.
func (a *Agent) cancelPurge() bool {
	a.purgeMu.Lock()
	defer a.purgeMu.Unlock()
	if a.purgeTimer == nil {
		return false
	}
	a.purgeTimer.Stop()
	a.purgeTimer = nil
	a.log.Info("scheduled purge cancelled")
	return true
}

// purge deletes from the kernel every flow the filter would replicate
// (conntrackd -t): the flows this node held as master, which would clash
// with or shadow replicated state when it takes over again.
func (a *Agent) purge(ctx context.Context) {
	f := a.filter.Load()
	var victims []flow.Flow
	err := a.kern.Dump(ctx, kernel.DumpFilter{}, func(fl *flow.Flow) error {
		if f.pass(fl) {
			victims = append(victims, *fl)
		}
		return nil
	})
	if err != nil {
		a.log.Error("purge: kernel dump failed", "err", err)
		return
	}
	failed, err := a.kern.Bulk(ctx, kernel.OpDelete, victims, kernel.BulkOptions{}, nil)
	if err != nil {
		a.log.Error("purge failed", "err", err)
	}
	a.st.purges.Add(1)
	a.st.purged.Add(uint64(len(victims) - failed))
	a.log.Info("purged replicated flows from the kernel", "deleted", len(victims)-failed, "gone already", failed)
}
