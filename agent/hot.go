package agent

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/stats"
)

// hot is hot standby (commit.mode: hot): while this node is not master,
// the flows in its external cache are kept in its kernel table ahead of a
// failover. A flow its owner adds or changes is written within a pass; a
// flow its owner drops (deleted, expired, or gone from a snapshot) is
// deleted; and while its owner still holds it, its timeout in this
// kernel is refreshed before it runs out, so a quiet flow (a UDP stream
// whose packets refresh the owner's entry without any event) never
// expires here. The takeover then has only the last pass to write.
//
// The kernel entries it writes are not this node's flows: while hot is
// active, events and dumps of flows the external cache holds are kept out
// of the internal cache (they would otherwise echo back to their owner).
type hot struct {
	a      *Agent
	active atomic.Bool

	mu    stdsync.Mutex
	dirty map[cache.Key]struct{} // keys changed in the external cache
	kick  chan struct{}

	run  stdsync.Mutex // serialises passes and the takeover
	held map[cache.Key]heldFlow

	flows                                      atomic.Int64
	created, updated, deleted, failed, skipped atomic.Uint64
}

// heldFlow is what hot wrote to the kernel for one key.
type heldFlow struct {
	from    string       // origin of the copy written
	version uint64       // its version there
	expires int64        // monotonic ns when the kernel entry times out
	check   int64        // when to look at its timeout again
	zoneDir flow.ZoneDir // to address the entry for a delete
	labels  bool         // written with ct labels: updates must carry them
}

// hotChunk bounds the flows one kernel round of a pass carries.
const hotChunk = 8192

func newHot(a *Agent) *hot {
	return &hot{a: a, dirty: make(map[cache.Key]struct{}), kick: make(chan struct{}, 1),
		held: make(map[cache.Key]heldFlow)}
}

// changed is the external cache's OnChange hook (its lock is held).
func (h *hot) changed(k *cache.Key) {
	if !h.active.Load() {
		return
	}
	h.mu.Lock()
	h.dirty[*k] = struct{}{}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// owns reports whether a kernel flow is one hot keeps for a peer.
func (h *hot) owns(f *flow.Flow) bool {
	if h == nil || !h.active.Load() {
		return false
	}
	k := cache.KeyOf(f)
	return h.a.ext.Has(&k)
}

// activate starts keeping the external cache in the kernel (at start in
// hot mode, and on notify backup or fault).
func (h *hot) activate() {
	if h.active.Swap(true) {
		return
	}
	h.markAll()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// recheck makes the next pass look at every flow again (a reloaded
// filter decides anew which of them this node writes).
func (h *hot) recheck() {
	if !h.active.Load() {
		return
	}
	h.markAll()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// loop runs passes when keys change and once a second (timeouts).
func (h *hot) loop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-t.C:
		}
		h.run.Lock()
		if err := h.pass(ctx, h.a.inGate(hotAddrsMaxAge)); err != nil && ctx.Err() == nil {
			h.a.warn.Warn(h.a.log, "hot pass failed", "hot standby: writing peers' flows to the kernel failed; retrying", "err", err)
		}
		h.run.Unlock()
	}
}

// takeover writes what is pending and hands the flows over: from now on
// they are this node's own (the internal cache's resync picks them up).
// It returns how many flows were in the kernel already, how many this
// last pass wrote, how many it skipped (this node refuses them, with the
// addresses it has now), and the keys of the flows it could not write
// (they stay in the external cache for a commit to retry).
func (h *hot) takeover(ctx context.Context) (held, written, skipped int, left map[cache.Key]struct{}, err error) {
	h.run.Lock()
	defer h.run.Unlock()
	before, s0 := h.created.Load()+h.updated.Load(), h.skipped.Load()
	held = len(h.held)
	err = h.pass(ctx, h.a.inGate(0))
	written = int(h.created.Load() + h.updated.Load() - before)
	skipped = int(h.skipped.Load() - s0)
	h.active.Store(false)
	h.held = make(map[cache.Key]heldFlow)
	h.flows.Store(0)
	h.mu.Lock()
	left = h.dirty // marked for a retry, or changed since the pass
	h.dirty = make(map[cache.Key]struct{})
	h.mu.Unlock()
	for k := range left {
		if !h.a.ext.Has(&k) {
			delete(left, k)
		}
	}
	return held, written, skipped, left, err
}

func (h *hot) pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.dirty)
}

// pass brings the kernel in line with the external cache for the changed
// keys and refreshes timeouts that are due. A flow the gate refuses is not
// written (and deleted if it was: a reloaded filter, an address that moved
// here); it is looked at again when it changes. Callers hold h.run.
func (h *hot) pass(ctx context.Context, gate inGate) error {
	if !h.active.Load() {
		return nil
	}
	h.mu.Lock()
	keys := h.dirty
	h.dirty = make(map[cache.Key]struct{}, len(keys)/2)
	h.mu.Unlock()
	now := h.a.monotonic()
	for k, e := range h.held {
		if e.check <= now {
			keys[k] = struct{}{}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var create, update, del []flow.Flow
	var first error
	flush := func() {
		if err := h.write(ctx, create, update, del, now); err != nil && first == nil {
			first = err
		}
		create, update, del = create[:0], update[:0], del[:0]
	}
	var f flow.Flow
	var refused refusals
	for k := range keys {
		f = flow.Flow{}
		from, version, ok := h.a.ext.Get(&k, &f)
		e, isHeld := h.held[k]
		if ok {
			if why := gate.refuse(&f); why != "" {
				refused.add(h.a.log, &f, why)
				ok = false // as if gone: deleted if held
			}
		}
		switch {
		case !ok && isHeld:
			d := flow.Flow{Orig: k.Orig(), Zone: k.Zone(), ZoneDir: e.zoneDir}
			d.Attrs |= flow.AttrZone
			del = append(del, d)
		case !ok:
		case !isHeld:
			create = append(create, f)
		case e.from != from || e.version != version:
			update = append(update, f)
		default:
			// Unchanged: refresh the timeout when its owner's word
			// (vouched since) reaches further than the kernel's entry.
			left := (e.expires - now) / int64(time.Second)
			if int64(f.Timeout) > left+1 {
				update = append(update, f)
			} else {
				e.check = now + max(int64(time.Second), (e.expires-now)/2)
				h.held[k] = e
			}
		}
		if len(create)+len(update)+len(del) >= hotChunk {
			flush()
		}
	}
	flush()
	if refused.n > 0 {
		h.skipped.Add(uint64(refused.n))
		h.a.warn.Log(ctx, h.a.log, slog.LevelInfo, "hot skipped", "hot standby: peers' flows skipped: this node refuses them (its filter, loopback, its own addresses)",
			"skipped", refused.n, "example", refused.example)
	}
	return first
}

// write applies one round of a pass to the kernel and records the result.
func (h *hot) write(ctx context.Context, create, update, del []flow.Flow, now int64) error {
	a := h.a
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if len(del) > 0 {
		errs := make([]error, len(del))
		_, err := a.kern.Bulk(ctx, kernel.OpDelete, del, kernel.BulkOptions{}, errs)
		note(err)
		for i := range del {
			if errs[i] == nil || errors.Is(errs[i], kernel.ErrNotFound) {
				delete(h.held, cache.KeyOf(&del[i]))
				h.deleted.Add(1)
			} else {
				h.retry(&del[i])
			}
		}
	}
	if len(update) > 0 {
		// Labels change in place too (a new owner's label, or bits a
		// filter.labels reload stopped replicating), but only where the
		// entry has them: the kernel refuses labels on an entry created
		// without its label extension.
		sort.SliceStable(update, func(i, j int) bool { return !h.withLabels(&update[i]) && h.withLabels(&update[j]) })
		split := sort.Search(len(update), func(i int) bool { return h.withLabels(&update[i]) })
		errs := make([]error, len(update))
		fields := kernel.UpdateFields{Timeout: true, Mark: true, TCP: true}
		_, err := a.kern.Bulk(ctx, kernel.OpUpdate, update[:split], kernel.BulkOptions{Update: fields}, errs[:split])
		note(err)
		fields.Labels = true
		_, err = a.kern.Bulk(ctx, kernel.OpUpdate, update[split:], kernel.BulkOptions{Update: fields}, errs[split:])
		note(err)
		n := 0
		for i := range update {
			if errs[i] == nil {
				h.hold(&update[i], now)
				h.updated.Add(1)
			} else {
				// Gone from the kernel (expired, deleted by hand) or not
				// updatable: write it anew.
				update[n] = update[i]
				n++
			}
		}
		create = append(create, update[:n]...)
	}
	if len(create) > 0 {
		var res control.CommitResult
		opts := kernel.BulkOptions{Create: kernel.CreateOptions{Liberal: true}}
		// commitSet reorders create in place: what it did not write is
		// marked for a retry as it goes.
		var retried int
		done, err := a.commitSet(ctx, create, opts, &res, func(f *flow.Flow) { h.retry(f); retried++ })
		note(err)
		if err != nil && retried+len(done) < len(create) {
			// Stopped half-way (ctx ended): look at everything again.
			h.markAll()
		}
		var mine []flow.Flow
		for i := range done {
			h.hold(&done[i], now)
			h.created.Add(1)
			mine = append(mine, done[i])
		}
		h.failed.Add(uint64(res.Failed + res.KeptLocal))
		if res.Failed+res.KeptLocal > 0 {
			a.warn.Warn(a.log, "hot flows failed", "hot standby: flows not written to the kernel; retrying",
				"failed", res.Failed, "kept_local", res.KeptLocal, "first", firstErr(res.Errors))
		}
		// A flow this node held as its own (it was master before) belongs
		// to its new owner now: stop announcing it.
		if len(mine) > 0 {
			_ = a.do(ctx, func() {
				for i := range mine {
					a.in.Delete(&mine[i])
				}
			})
		}
	}
	h.flows.Store(int64(len(h.held)))
	return first
}

func firstErr(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	return errs[0]
}

// withLabels reports whether an update of f must set its labels: it has
// some, or the entry was written with some (to clear them).
func (h *hot) withLabels(f *flow.Flow) bool {
	return !f.Labels.IsZero() || h.held[cache.KeyOf(f)].labels
}

// hold records a flow written to the kernel.
func (h *hot) hold(f *flow.Flow, now int64) {
	k := cache.KeyOf(f)
	var g flow.Flow
	from, version, _ := h.a.ext.Get(&k, &g)
	life := int64(f.Timeout) * int64(time.Second)
	h.held[k] = heldFlow{from: from, version: version, expires: now + life,
		check: now + max(int64(time.Second), life/2), zoneDir: f.ZoneDir, labels: !f.Labels.IsZero()}
}

// retry marks a key for the next pass.
func (h *hot) retry(f *flow.Flow) {
	k := cache.KeyOf(f)
	h.mu.Lock()
	h.dirty[k] = struct{}{}
	h.mu.Unlock()
}

func (h *hot) stats() stats.Hot {
	return stats.Hot{Active: h.active.Load(), Flows: int(h.flows.Load()), Pending: h.pending(),
		Created: h.created.Load(), Updated: h.updated.Load(), Deleted: h.deleted.Load(), Failed: h.failed.Load(),
		Skipped: h.skipped.Load()}
}

// commit is `ctsync commit` in hot standby: every flow of the external
// cache is checked against what was written, and what is missing or
// changed is written now.
func (h *hot) commit(ctx context.Context) (control.CommitResult, error) {
	start := time.Now()
	h.run.Lock()
	defer h.run.Unlock()
	h.markAll()
	c0, u0, f0, s0 := h.created.Load(), h.updated.Load(), h.failed.Load(), h.skipped.Load()
	err := h.pass(ctx, h.a.inGate(0))
	res := control.CommitResult{Created: int(h.created.Load() - c0), Replaced: int(h.updated.Load() - u0),
		Failed: int(h.failed.Load() - f0), Skipped: int(h.skipped.Load() - s0), Seconds: time.Since(start).Seconds()}
	res.Remaining = h.pending() // retried by the next pass
	return res, err
}

// markAll marks every flow of the external cache for the next pass.
func (h *hot) markAll() {
	h.a.ext.Range("", func(_ string, f *flow.Flow) bool {
		k := cache.KeyOf(f)
		h.mu.Lock()
		h.dirty[k] = struct{}{}
		h.mu.Unlock()
		return true
	})
}
