package agent

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// maxReportedErrors bounds the failures a commit result lists.
const maxReportedErrors = 10

// commitChunk is how many flows a commit takes from the external cache,
// creates and records at a time: memory stays bounded for any cache size,
// and recording one chunk overlaps the kernel's work on the next.
const commitChunk = 8192

// commit writes the external cache into the kernel: masters first, then
// the expectations (on their masters), then RELATED flows (which need
// their master), each flow with its remaining
// timeout (or commit.timeout), TCP flows with BE_LIBERAL so that window
// tracking on this node does not drop them. An entry that exists already
// is replaced by the replica. Callers hold a.transition.
func (a *Agent) commit(ctx context.Context) (control.CommitResult, error) {
	start := time.Now()
	a.cancelPurge()
	res := control.CommitResult{}
	opts := kernel.BulkOptions{Create: kernel.CreateOptions{Timeout: uint32(a.cfg.Commit.Timeout.Duration() / time.Second), Liberal: true}}
	// This node knows what it commits: while its event sockets listen,
	// the kernel does event work for every created entry (that halves the
	// commit rate, kernel BenchmarkBulkCreateWatched). So it stops
	// listening, records the committed flows itself, and resyncs afterwards
	// for what packets created or destroyed meanwhile.
	if err := a.kern.Mute(true); err != nil {
		a.log.Warn("could not mute kernel events during the commit", "err", err)
	}
	// The committed flows become this node's and are announced to the
	// peers, but after the commit: announcing them meanwhile competes with
	// the kernel's work for the CPU and would make the commit slower.
	a.in.Hold(true)
	defer a.in.Hold(false)
	rec := a.newRecorder(ctx)
	// The peers' flows this node refuses are not written: its addresses
	// as they are now (the VRRP addresses it just took over included).
	gate := a.inGate(0)
	var skipped refusals
	var err error
	for _, related := range []bool{false, true} {
		if related && err == nil {
			// Masters are in: their expectations, then the RELATED
			// flows (which may have been created by one).
			err = a.commitExpects(ctx, gate, &res)
		}
		buf := rec.buffer()
		send := func() {
			if len(buf) == 0 || err != nil {
				return
			}
			var created []flow.Flow
			created, err = a.commitSet(ctx, buf, opts, &res)
			rec.record(created)
			buf = rec.buffer()
		}
		a.ext.Range("", func(_ string, f *flow.Flow) bool {
			if (f.Master != nil) != related {
				return true
			}
			if why := gate.refuse(f); why != "" {
				skipped.add(a.log, f, why)
				return true
			}
			c := *f
			if f.Master != nil {
				m := *f.Master
				c.Master = &m
			}
			buf = append(buf, c)
			if len(buf) == commitChunk {
				send()
			}
			return err == nil
		})
		send()
	}
	if merr := a.kern.Mute(false); merr != nil {
		a.log.Error("could not resume kernel events after the commit; resyncing", "err", merr)
	}
	rec.wait()
	a.signalOverrun() // a resync: the kernel is the truth
	res.Skipped = skipped.n
	if err != nil {
		return res, err
	}
	if skipped.n > 0 {
		a.log.Info("peers' flows skipped: this node refuses them (its filter, loopback, its own addresses)",
			"skipped", skipped.n, "expectations_skipped", res.ExpectationsSkipped, "example", skipped.example)
	}
	res.Seconds = time.Since(start).Seconds()
	a.st.commits.Add(1)
	a.st.committed.Add(uint64(res.Created + res.Replaced))
	a.st.commitFailed.Add(uint64(res.Failed))
	a.st.commitSkipped.Add(uint64(res.Skipped))
	a.st.lastCommit.Store(&res)
	lvl := a.log.Info
	if res.Failed > 0 {
		lvl = a.log.Warn
	}
	lvl("committed the external cache", "created", res.Created, "replaced", res.Replaced, "failed", res.Failed,
		"skipped", res.Skipped, "expectations", res.Expectations, "expectations_existing", res.ExpectationsExisting, "expectations_failed", res.ExpectationsFailed,
		"took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// recorder puts committed flows into the internal cache on the loop, one
// chunk at a time, without making the commit wait for each chunk.
type recorder struct {
	a    *Agent
	ctx  context.Context
	wg   stdsync.WaitGroup
	sem  chan struct{}    // bounds the chunks in flight
	free chan []flow.Flow // recorded chunks, for reuse (less garbage, fewer GCs)
	f    *replFilter
	tout uint32
}

const recordersInFlight = 4

func (a *Agent) newRecorder(ctx context.Context) *recorder {
	return &recorder{a: a, ctx: ctx, sem: make(chan struct{}, recordersInFlight),
		free: make(chan []flow.Flow, recordersInFlight+2), f: a.filter.Load(),
		tout: uint32(a.cfg.Commit.Timeout.Duration() / time.Second)}
}

// buffer returns an empty chunk buffer, recycled when one is free.
func (r *recorder) buffer() []flow.Flow {
	select {
	case b := <-r.free:
		return b[:0]
	default:
		return make([]flow.Flow, 0, commitChunk)
	}
}

// record takes ownership of created (a chunk buffer, or a prefix of one).
func (r *recorder) record(created []flow.Flow) {
	if len(created) == 0 {
		return
	}
	r.sem <- struct{}{}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { <-r.sem }()
		defer func() {
			if cap(created) == commitChunk {
				select {
				case r.free <- created[:0]:
				default:
				}
			}
		}()
		err := r.a.do(r.ctx, func() {
			for i := range created {
				fl := &created[i]
				if r.tout != 0 {
					fl.Timeout = r.tout
				}
				fl.Status |= flow.StatusConfirmed
				normalize(fl)
				if r.f.pass(fl) {
					if _, err := r.a.in.Upsert(fl); err != nil {
						r.a.st.cacheFull.Add(1)
					}
				}
			}
		})
		if err != nil {
			r.a.log.Warn("committed flows not recorded in the internal cache; a resync will", "err", err)
		}
	}()
}

func (r *recorder) wait() { r.wg.Wait() }

// commitSet creates flows (replacing existing entries) and returns those
// now in the kernel. The flows' order is not kept.
func (a *Agent) commitSet(ctx context.Context, flows []flow.Flow, opts kernel.BulkOptions, res *control.CommitResult) ([]flow.Flow, error) {
	if len(flows) == 0 {
		return nil, nil
	}
	errs := make([]error, len(flows))
	if _, err := a.kern.Bulk(ctx, kernel.OpCreate, flows, opts, errs); err != nil && ctx.Err() != nil {
		return nil, err
	}
	// Partition in place: created flows first, then the existing ones.
	done, again := 0, []flow.Flow(nil)
	for i, err := range errs {
		switch {
		case err == nil:
			flows[done] = flows[i]
			done++
		case errors.Is(err, kernel.ErrExist):
			again = append(again, flows[i])
		default:
			a.commitFailure(res, &flows[i], err)
		}
	}
	res.Created += done
	created := flows[:done]
	if len(again) == 0 {
		return created, nil
	}
	// Replace what exists: delete, then create again.
	errs = errs[:len(again)]
	if _, err := a.kern.Bulk(ctx, kernel.OpDelete, again, kernel.BulkOptions{}, errs); err != nil && ctx.Err() != nil {
		return created, err
	}
	if _, err := a.kern.Bulk(ctx, kernel.OpCreate, again, opts, errs); err != nil && ctx.Err() != nil {
		return created, err
	}
	for i, err := range errs {
		if err == nil {
			res.Replaced++
			created = append(created, again[i])
		} else {
			a.commitFailure(res, &again[i], err)
		}
	}
	return created, nil
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
		// In hot standby, the peers' flows written here stay.
		if f.pass(fl) && !a.hot.owns(fl) {
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
