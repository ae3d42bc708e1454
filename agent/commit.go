package agent

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/ctsync/ctsync/cache"
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
	a.commitLeft = nil
	skipped, left, err := a.commitCache(ctx, rec, &res)

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
	res.Remaining = len(left)
	a.commitLeft = left
	a.commitDone(&res, start)
	return res, nil
}

// commitCache writes the external cache's flows, chunk by chunk, and has
// rec record those written: masters, then the expectations, then RELATED
// flows. It returns the flows this node refused and the keys of those not
// written.
func (a *Agent) commitCache(ctx context.Context, rec *recorder, res *control.CommitResult) (refusals, map[cache.Key]struct{}, error) {
	opts := kernel.BulkOptions{Create: kernel.CreateOptions{Timeout: uint32(a.cfg.Commit.Timeout.Duration() / time.Second), Liberal: true}}
	// The peers' flows this node refuses are not written: its addresses
	// as they are now (the VRRP addresses it just took over included).
	// They are not failures either: notify master flushes them with the
	// written ones.
	gate := a.inGate(0)
	var skipped refusals
	// The flows not written stay in the external cache for the next
	// commit (notify master flushes the rest).
	left := make(map[cache.Key]struct{})
	notWritten := func(f *flow.Flow) { left[cache.KeyOf(f)] = struct{}{} }

	var err error
	for _, related := range []bool{false, true} {
		if related && err == nil {
			// Masters are in: their expectations, then the RELATED
			// flows (which may have been created by one).
			err = a.commitExpects(ctx, gate, res)
		}
		buf := rec.buffer()
		send := func() {
			if len(buf) == 0 || err != nil {
				return
			}
			var created []flow.Flow
			created, err = a.commitSet(ctx, buf, opts, res, notWritten)
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
			buf = append(buf, copyFlow(f))
			if len(buf) == commitChunk {
				send()
			}
			return err == nil
		})
		send()
	}
	return skipped, left, err
}

// copyFlow copies f and its master, if any.
func copyFlow(f *flow.Flow) flow.Flow {
	c := *f
	if f.Master != nil {
		m := *f.Master
		c.Master = &m
	}
	return c
}

// commitDone counts and logs a successful commit.
func (a *Agent) commitDone(res *control.CommitResult, start time.Time) {
	took := time.Since(start)
	res.Seconds = took.Seconds()
	a.st.commits.Add(1)
	a.st.committed.Add(uint64(res.Created + res.Replaced))
	a.st.commitFailed.Add(uint64(res.Failed))
	a.st.commitSkipped.Add(uint64(res.Skipped))
	a.st.lastCommit.Store(res)
	a.st.lastCommitAt.Store(time.Now().UnixNano())
	a.st.commitDurations.observe(took)

	lvl := a.log.Info
	if res.Remaining > 0 {
		lvl = a.log.Warn
	}
	lvl("committed the external cache", "created", res.Created, "replaced", res.Replaced, "failed", res.Failed,
		"skipped", res.Skipped, "kept_local", res.KeptLocal, "remaining", res.Remaining,
		"expectations", res.Expectations, "expectations_existing", res.ExpectationsExisting, "expectations_failed", res.ExpectationsFailed,
		"took", time.Since(start).Round(time.Millisecond))
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

// commitSet writes flows into the kernel and returns those now there;
// notWritten, when not nil, is called for every other flow. The flows'
// order is not kept.
//
// A flow whose entry exists already never costs the live connection:
//   - the same connection (same original and reply tuple, so the same NAT,
//     and the same helper) is updated in place: timeout, mark, labels and
//     TCP state; nothing is destroyed;
//   - an entry with the same original tuple but other NAT or helper (which
//     the kernel cannot change in place) is swapped for the replica: it is
//     fetched, deleted exactly (by its id), and the replica created; if the
//     kernel refuses the replica, the fetched entry is put back and the
//     flow is kept local;
//   - an entry that is another connection (the kernel finds a tuple in
//     either direction: the replica's original tuple is its reply, or the
//     replica's reply tuple is taken) is kept, and so is the flow: kept
//     local.
func (a *Agent) commitSet(ctx context.Context, flows []flow.Flow, opts kernel.BulkOptions, res *control.CommitResult, notWritten func(*flow.Flow)) ([]flow.Flow, error) {
	if len(flows) == 0 {
		return nil, nil
	}
	if notWritten == nil {
		notWritten = func(*flow.Flow) {}
	}
	s := &commitStep{a: a, ctx: ctx, opts: opts, res: res, notWritten: notWritten}

	exist, err := s.create(flows)
	if err != nil || len(exist) == 0 {
		return s.created, err
	}
	if err := s.classify(exist); err != nil {
		return s.created, err
	}
	if err := s.updateInPlace(); err != nil {
		return s.created, err
	}
	if err := s.swapAll(); err != nil {
		return s.created, err
	}
	if err := s.createAgain(); err != nil {
		return s.created, err
	}
	return s.created, nil
}

// commitStep is one commitSet call: the flows it has written so far and
// those waiting for each later step, by what the kernel holds for them.
type commitStep struct {
	a          *Agent
	ctx        context.Context
	opts       kernel.BulkOptions
	res        *control.CommitResult
	notWritten func(*flow.Flow)

	created []flow.Flow // in the kernel now

	// Existing entries, with the live entry each one found.
	update, updLive []flow.Flow // the same connection: update in place
	swap, swapLive  []flow.Flow // another form of it: swap
	again           []flow.Flow // no entry with its original tuple: create again
}

func (s *commitStep) fail(f *flow.Flow, err error) {
	s.a.commitFailure(s.res, f, err)
	s.notWritten(f)
}

func (s *commitStep) keep(f *flow.Flow, why string) {
	s.a.commitKeptLocal(s.res, f, why)
	s.notWritten(f)
}

// create tries every flow as new. It keeps the created flows (partitioned
// in place at the front of flows) and returns those whose entry exists.
func (s *commitStep) create(flows []flow.Flow) ([]flow.Flow, error) {
	errs := make([]error, len(flows))
	if _, err := s.a.kern.Bulk(s.ctx, kernel.OpCreate, flows, s.opts, errs); err != nil && s.ctx.Err() != nil {
		return nil, err
	}

	// Partition in place: created flows first, then the existing ones.
	done, exist := 0, []flow.Flow(nil)
	for i, err := range errs {
		switch {
		case err == nil:
			flows[done] = flows[i]
			done++
		case errors.Is(err, kernel.ErrExist):
			exist = append(exist, flows[i])
		default:
			s.fail(&flows[i], err)
		}
	}
	s.res.Created += done
	s.created = flows[:done]
	return exist, nil
}

// classify fetches the entries that exist (look at what is there before
// touching it) and sorts the flows by what they found.
func (s *commitStep) classify(exist []flow.Flow) error {
	live := make([]flow.Flow, len(exist))
	errs := make([]error, len(exist))
	if _, err := s.a.kern.Bulk(s.ctx, kernel.OpGet, exist, kernel.BulkOptions{Got: live}, errs); err != nil && s.ctx.Err() != nil {
		return err
	}

	for i := range exist {
		r, l := &exist[i], &live[i]
		switch {
		case errors.Is(errs[i], kernel.ErrNotFound):
			// No entry has this original tuple (any more): the clash
			// was on the reply tuple, or the entry ended meanwhile.
			s.again = append(s.again, *r)
		case errs[i] != nil:
			s.fail(r, errs[i])
		case l.Orig != r.Orig || l.Zone != r.Zone:
			s.keep(r, "its original tuple is the reply tuple of a local connection")
		case l.Reply == r.Reply && l.Helper == r.Helper:
			s.update = append(s.update, *r)
			s.updLive = append(s.updLive, *l)
		default:
			s.swap = append(s.swap, *r)
			s.swapLive = append(s.swapLive, *l)
		}
	}
	return nil
}

// updateInPlace updates the same connection in place. An entry that ended
// meanwhile is created again; one not updatable in place is swapped.
func (s *commitStep) updateInPlace() error {
	if len(s.update) == 0 {
		return nil
	}
	errs, err := s.updateRequests()
	if err != nil {
		return err
	}

	for i, err := range errs {
		r := s.update[i]
		switch {
		case err == nil:
			s.res.Replaced++
			s.created = append(s.created, r)
		case errors.Is(err, kernel.ErrNotFound):
			s.again = append(s.again, r) // ended meanwhile
		default:
			// Not updatable in place (labels on an entry without
			// them, for one): swap it.
			s.swap = append(s.swap, r)
			s.swapLive = append(s.swapLive, s.updLive[i])
		}
	}
	return nil
}

// updateRequests sends the in-place updates, exactly to the entries looked
// at, and returns each one's error.
func (s *commitStep) updateRequests() ([]error, error) {
	update, updLive := s.update, s.updLive
	req := make([]flow.Flow, len(update))
	for i := range update {
		u := &req[i]
		*u = update[i]
		u.ID = updLive[i].ID
		u.Attrs |= flow.AttrID // exactly the entry looked at
		if s.opts.Create.Timeout != 0 {
			u.Timeout = s.opts.Create.Timeout
		}
	}

	// Labels only where the entry or the replica has some: the
	// kernel refuses labels on an entry created without them.
	labels := func(i int) bool { return !update[i].Labels.IsZero() || !updLive[i].Labels.IsZero() }
	errs := make([]error, len(update))
	fields := kernel.UpdateFields{Timeout: true, Mark: true, TCP: true, Liberal: s.opts.Create.Liberal}
	for _, withLabels := range []bool{false, true} {
		var part []flow.Flow
		var at []int
		for i := range update {
			if labels(i) == withLabels {
				part = append(part, req[i])
				at = append(at, i)
			}
		}
		if len(part) == 0 {
			continue
		}
		fields.Labels = withLabels
		perrs := make([]error, len(part))
		if _, err := s.a.kern.Bulk(s.ctx, kernel.OpUpdate, part, kernel.BulkOptions{Update: fields}, perrs); err != nil && s.ctx.Err() != nil {
			return nil, err
		}
		for k, i := range at {
			errs[i] = perrs[k]
		}
	}
	return errs, nil
}

// swapAll swaps another form of the connection for the replica, and puts
// it back if the replica is refused. Once an entry is deleted, the swap
// runs to its end even if ctx ends (each request is bounded by the kernel
// connection's request timeout): a live connection is at stake.
func (s *commitStep) swapAll() error {
	if len(s.swap) == 0 {
		return nil
	}
	if err := s.ctx.Err(); err != nil {
		return err
	}
	sctx := context.WithoutCancel(s.ctx)

	// Delete the local entries.
	errs := make([]error, len(s.swap))
	if _, err := s.a.kern.Bulk(sctx, kernel.OpDelete, s.swapLive, kernel.BulkOptions{}, errs); err != nil {
		s.a.log.Warn("deleting local entries to swap them for replicas", "err", err)
	}
	var put, putLive []flow.Flow
	var gone []bool // the local entry had ended already: nothing to put back
	for i, err := range errs {
		if err == nil || errors.Is(err, kernel.ErrNotFound) {
			put = append(put, s.swap[i])
			putLive = append(putLive, s.swapLive[i])
			gone = append(gone, err != nil)
		} else {
			s.fail(&s.swap[i], fmt.Errorf("delete the local entry: %w", err))
		}
	}

	// Create the replicas in their place.
	errs = errs[:len(put)]
	if _, err := s.a.kern.Bulk(sctx, kernel.OpCreate, put, s.opts, errs); err != nil {
		s.a.log.Warn("creating replicas in place of local entries", "err", err)
	}
	var back, backLive []flow.Flow
	var why []error
	for i, err := range errs {
		switch {
		case err == nil:
			s.res.Replaced++
			s.created = append(s.created, put[i])
		case gone[i]:
			s.fail(&put[i], err)
		default:
			back = append(back, put[i])
			backLive = append(backLive, putLive[i])
			why = append(why, err)
		}
	}

	s.restore(sctx, back, backLive, why, errs)
	return nil
}

// restore puts back the local entries whose replicas the kernel refused
// (why), and keeps those flows local. errs is scratch space.
func (s *commitStep) restore(sctx context.Context, back, backLive []flow.Flow, why, errs []error) {
	if len(back) == 0 {
		return
	}
	errs = errs[:len(back)]
	if _, err := s.a.kern.Bulk(sctx, kernel.OpCreate, backLive, kernel.BulkOptions{}, errs); err != nil {
		s.a.log.Warn("putting local entries back after refused replicas", "err", err)
	}
	for i, err := range errs {
		switch {
		case err == nil || errors.Is(err, kernel.ErrExist):
			// Back (or recreated by packets meanwhile).
			s.keep(&back[i], fmt.Sprintf("the kernel refused the replica (%v); the local entry was put back", why[i]))
		default:
			s.fail(&back[i], fmt.Errorf("%w; the local entry could not be put back: %v", why[i], err))
		}
	}
}

// createAgain creates once more the flows no entry's original tuple
// matched; a clash now is with another connection's reply tuple, which
// stays.
func (s *commitStep) createAgain() error {
	if len(s.again) == 0 {
		return nil
	}
	errs := make([]error, len(s.again))
	if _, err := s.a.kern.Bulk(s.ctx, kernel.OpCreate, s.again, s.opts, errs); err != nil && s.ctx.Err() != nil {
		return err
	}
	for i, err := range errs {
		switch {
		case err == nil:
			s.res.Created++
			s.created = append(s.created, s.again[i])
		case errors.Is(err, kernel.ErrExist):
			s.keep(&s.again[i], "its reply tuple is a local connection's")
		default:
			s.fail(&s.again[i], err)
		}
	}
	return nil
}

// commitKeptLocal counts a flow kept local instead of its replica, and
// lists it with the reason among the first errors.
func (a *Agent) commitKeptLocal(res *control.CommitResult, f *flow.Flow, why string) {
	res.KeptLocal++
	if len(res.Errors) < maxReportedErrors {
		line := string(f.AppendText(nil, flow.TextOptions{}))
		res.Errors = append(res.Errors, fmt.Sprintf("kept local: %s: %s", why, line))
	}
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
	a.purgeAt = a.clock.Now().Add(after)
	a.purgeTimer = a.clock.AfterFunc(after, func() {
		a.transition.Lock()
		defer a.transition.Unlock()
		a.purgeMu.Lock()
		if a.purgeTimer == nil || a.clock.Now().Before(a.purgeAt) {
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
