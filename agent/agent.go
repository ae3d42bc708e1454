package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/ratelog"
	ctsync "github.com/ctsync/ctsync/sync"
)

// Kernel is the part of kernel.Conn the agent uses; cluster tests pass an
// in-memory table (kernel/kerneltest.MemTable).
type Kernel interface {
	Dump(ctx context.Context, f kernel.DumpFilter, fn func(*flow.Flow) error) error
	Watch(ctx context.Context, o kernel.WatchOptions, fn func(*flow.Event) error) error
	Bulk(ctx context.Context, op kernel.Op, flows []flow.Flow, o kernel.BulkOptions, errs []error) (int, error)
	Mute(mute bool) error
	Close() error
}

// Options build an Agent.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Build describes the running binary, for the statistics.
	Build BuildInfo
	// Kernel is the table to serve; nil dials Config.Kernel.Netns's.
	Kernel Kernel
	// Keys are the cluster keys (primary first); nil reads Config's key
	// file unless the cluster is insecure.
	Keys [][]byte
	// SyncTimings makes replication use fast loopback timings (tests).
	SyncTimings bool
	// DigestEvery overrides the digest interval (tests); 0 = 1s.
	DigestEvery time.Duration
	// ForgetDeparted overrides how long members that left or failed stay
	// listed (tests); 0 = sync.DefaultForgetDeparted.
	ForgetDeparted time.Duration
	// EventEvery overrides the rate limit of the peer lifecycle lines
	// (tests); 0 = one per peer and kind per 10 s.
	EventEvery time.Duration
	// Clock is the time source (tests); nil is the real clock.
	Clock Clock
	// Network carries the cluster traffic; nil = the host's network.
	// Fault-injection tests give one that can be partitioned
	// (sync/netfake).
	Network ctsync.Network
	// Gate is the commit gate. nil with Config.Commit.Gate set uses
	// nftables in the served namespace, unless Kernel is given (a test
	// table has no nftables to gate): then there is none.
	Gate Gate
}

// Agent is a running ctsync node. Create it with New and run it with Run;
// its methods (control.Backend) are safe for concurrent use.
type Agent struct {
	cfg    *config.Config
	log    *slog.Logger
	warn   *ratelog.Limiter // repeated warnings: one line per kind per 10 s
	kern   Kernel
	in     *cache.Internal
	ext    *cache.External
	node   *ctsync.Node
	bind   string // the cluster address listened on (cluster.bind, or derived from cluster.join)
	start  time.Time
	build  BuildInfo
	filter atomic.Pointer[replFilter]
	// local caches this node's addresses (inGate).
	local localAddrs
	// pending holds flows younger than filter.min_age (loop goroutine only).
	pending pending

	events    chan []flow.Event     // batches from the watcher
	expEvents chan flow.ExpectEvent // from the expectation watcher
	// expOrphans are expectations waiting for their master (loop only).
	expOrphans map[flow.ExpectKey]orphan
	free       chan []flow.Event // applied batches, for reuse
	overrun    chan struct{}     // the watcher lost events
	ops        chan func()       // work for the loop goroutine
	ready      atomic.Bool       // initial dump done, watcher running
	quit       chan struct{}     // closed by Shutdown: Run ends
	quitOnce   stdsync.Once
	stopping   chan struct{} // closed when Run begins to stop: no more loop work
	stopped    chan struct{} // closed when Run has returned

	transition stdsync.Mutex // serialises commit, purge, notify
	// commitLeft holds the keys of the flows the last commit (or hot
	// takeover) did not write: notify master keeps them in the external
	// cache. Guarded by transition.
	commitLeft map[cache.Key]struct{}

	purgeMu    stdsync.Mutex
	purgeTimer Timer
	purgeAt    time.Time

	clock Clock     // real unless Options.Clock
	epoch time.Time // origin of monotonic

	hot       *hot // nil unless commit.mode is hot
	gate      Gate // nil when commit.gate is off
	gateArmed atomic.Bool
	gateDrops atomic.Uint64 // dropped in the current or last armed period
	gateLast  atomic.Int64  // ns from the last notify master to the gate's removal
	gateMu    stdsync.Mutex // guards gateRead
	gateRead  time.Time     // when the armed gate's counters were last read
	role      atomic.Pointer[string]

	st counters
}

// New builds an agent: opens the kernel table, creates the caches and
// starts listening on the cluster port. Nothing runs until Run.
func New(o Options) (*Agent, error) {
	cfg := o.Config
	if cfg == nil {
		return nil, errors.New("agent: no configuration")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := newReplFilter(&cfg.Filter)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: log, start: time.Now(), build: o.Build, warn: ratelog.New(ratelog.DefaultEvery),
		events:     make(chan []flow.Event, 64),
		expEvents:  make(chan flow.ExpectEvent, 256),
		expOrphans: make(map[flow.ExpectKey]orphan),
		free:       make(chan []flow.Event, 64),
		overrun:    make(chan struct{}, 1),
		ops:        make(chan func()),
		stopped:    make(chan struct{}),
		stopping:   make(chan struct{}),
		quit:       make(chan struct{}),
		pending:    make(pending),
	}
	a.setClock(o.Clock)
	a.filter.Store(f)
	a.newCaches()
	if err := a.setGate(o); err != nil {
		return nil, err
	}

	keys, err := clusterKeys(cfg, o.Keys)
	if err != nil {
		return nil, err
	}
	// Where to listen: cluster.bind, or the address that routes to the
	// first join peer. Then say what that exposes, at every start.
	bind, via, err := clusterBind(context.Background(), &cfg.Cluster)
	if err != nil {
		return nil, err
	}
	if via != "" {
		log.Info("cluster.bind not set: listening on the local address that routes to a join peer", "bind", bind, "peer", via)
	}
	a.bind = bind
	warnExposure(log, &cfg.Cluster, bind)

	if a.kern, err = openKernel(cfg, o.Kernel); err != nil {
		return nil, err
	}
	a.node, err = ctsync.New(ctsync.Config{
		Node: cfg.Node, Bind: bind, Advertise: cfg.Cluster.Advertise, Join: cfg.Cluster.Join,
		Keys: keys, Label: cfg.Cluster.Name, Internal: a.in, External: a.ext, Logger: log,
		LocalTimings: o.SyncTimings, DigestEvery: o.DigestEvery, ForgetDeparted: o.ForgetDeparted, EventEvery: o.EventEvery,
		Network: o.Network,
	})
	if err != nil {
		a.kern.Close()
		return nil, err
	}
	return a, nil
}

// newCaches creates the internal and external caches (and hot standby,
// which follows the external one's changes).
func (a *Agent) newCaches() {
	cfg := a.cfg
	a.in = cache.NewInternal(cache.InternalOptions{MaxFlows: cfg.Cache.MaxFlows, Clock: a.monotonic})
	extOpts := cache.ExternalOptions{MaxFlows: cfg.Cache.MaxFlows, Clock: a.monotonic}
	if cfg.Commit.Mode == config.ModeHot {
		a.hot = newHot(a)
		extOpts.OnChange = a.hot.changed
	}
	a.ext = cache.NewExternal(extOpts)
}

// setGate sets the commit gate: the given one, or nftables in the served
// namespace when commit.gate is on and the kernel is the real one.
func (a *Agent) setGate(o Options) error {
	switch {
	case o.Gate != nil:
		a.gate = o.Gate
	case a.cfg.Commit.Gate && o.Kernel == nil:
		g, err := newNftGate(a.cfg.Kernel.Netns)
		if err != nil {
			return err
		}
		a.gate = g
	}
	return nil
}

// clusterKeys returns the cluster keys: the given ones, or every key of
// the configured file (the first is primary, the others are accepted too:
// a key rotation in progress); none for an insecure cluster.
func clusterKeys(cfg *config.Config, keys [][]byte) ([][]byte, error) {
	if cfg.Cluster.Insecure {
		return nil, nil
	}
	if keys != nil {
		return keys, nil
	}
	keys, err := cfg.Keys()
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	return keys, nil
}

// openKernel returns k, or dials the configured namespace's table.
func openKernel(cfg *config.Config, k Kernel) (Kernel, error) {
	if k != nil {
		return k, nil
	}
	// One socket: the kernel serialises ctnetlink creates under the
	// nfnetlink mutex, so a second socket only adds contention, and
	// the other CPU is better spent on the caches and replication.
	c, err := kernel.Dial(kernel.Config{NetNS: cfg.Kernel.Netns, Parallel: 1})
	if err != nil {
		return nil, fmt.Errorf("open the kernel's conntrack table: %w", err)
	}
	return c, nil
}

// Ready reports whether the internal cache is loaded and events flow.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Alive reports whether the agent's loop answers within a second (for the
// systemd watchdog).
func (a *Agent) Alive(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return a.do(ctx, func() {}) == nil
}

// Addr is the cluster address peers reach this node at.
func (a *Agent) Addr() string { return a.node.Addr() }

// Run serves until ctx is cancelled or Shutdown is called, then leaves the
// cluster and releases everything. It returns nil on a clean stop.
func (a *Agent) Run(ctx context.Context) error {
	defer close(a.stopped)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.cancelOnQuit(ctx, cancel)
	var wg stdsync.WaitGroup
	defer wg.Wait()
	l := &runLoop{a: a, ctx: ctx, wg: &wg, watchErr: make(chan error, 1), syncErr: make(chan error, 1)}

	// Watch first, then dump: no change can fall between the two.
	if err := l.startWatch(); err != nil {
		a.shutdownSync()
		a.kern.Close()
		return fmt.Errorf("watch kernel events: %w", err)
	}
	l.startExpectWatch()

	// Replication starts before the dump: peers' flows do not wait for
	// this node's table to be read (after a restart that is what the node
	// waits for), and the peers get this node's flows as the dump adds
	// them, after a snapshot of what was read so far.
	l.startSync()
	if _, err := a.resync(ctx); err != nil && ctx.Err() == nil {
		a.log.Error("initial kernel dump failed; will retry", "err", err)
		a.signalOverrun()
	}
	a.ready.Store(true)

	a.readGateState(ctx)
	l.startHot()
	return l.serve()
}

// cancelOnQuit cancels Run's context when Shutdown is called.
func (a *Agent) cancelOnQuit(ctx context.Context, cancel context.CancelFunc) {
	select {
	case <-a.quit:
		cancel()
	case <-ctx.Done():
	}
}

// runLoop is one Run: its context, its goroutines and the loop's state.
type runLoop struct {
	a        *Agent
	ctx      context.Context
	wg       *stdsync.WaitGroup
	watchErr chan error       // the kernel event watcher ended
	syncErr  chan error       // replication ended
	retry    <-chan time.Time // a failed resync's retry
}

// goWatch starts the kernel event watcher; ready is closed when it listens.
func (l *runLoop) goWatch() (ready chan struct{}) {
	ready = make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.watchErr <- l.a.watch(l.ctx, ready)
	}()
	return ready
}

// startWatch starts the watcher and waits until it listens.
func (l *runLoop) startWatch() error {
	ready := l.goWatch()
	select {
	case <-ready:
		return nil
	case err := <-l.watchErr:
		return err
	}
}

// startExpectWatch starts the expectation watcher, if the kernel has
// expectations, and waits until it listens.
func (l *runLoop) startExpectWatch() {
	xk := l.a.expectKernel()
	if xk == nil {
		return
	}
	ready := make(chan struct{})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.a.runExpectWatch(l.ctx, xk, ready)
	}()
	select {
	case <-ready:
	case <-l.ctx.Done():
	}
}

func (l *runLoop) startSync() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.syncErr <- l.a.node.Run(l.ctx)
	}()
}

// readGateState keeps a gate left by a crash: this node's role has not
// changed.
func (a *Agent) readGateState(ctx context.Context) {
	if a.gate == nil {
		return
	}
	if armed, _, err := a.gate.State(ctx); err != nil {
		a.log.Warn("commit gate: cannot read its state", "err", err)
	} else if armed {
		a.gateArmed.Store(true)
		a.log.Info("commit gate found armed (left by a previous run); keeping it until notify master")
	}
}

func (l *runLoop) startHot() {
	if l.a.hot == nil {
		return
	}
	l.a.hot.activate()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.a.hot.loop(l.ctx)
	}()
}

// serve is the loop goroutine: every change to the internal cache and the
// loop-only state happens here, one case at a time.
func (l *runLoop) serve() error {
	a := l.a
	expire := time.NewTicker(time.Second)
	defer expire.Stop()
	promote := time.NewTicker(promoteEvery)
	defer promote.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return l.stop()
		case err := <-l.watchErr:
			l.restartWatch(err)
		case batch := <-a.events:
			a.applyBatch(batch)
		case <-a.overrun:
			l.resync()
		case <-l.retry:
			l.retry = nil
			a.signalOverrun()
		case ev := <-a.expEvents:
			a.applyExpect(&ev)
		case op := <-a.ops:
			op()
		case <-expire.C:
			a.expire()
		case <-promote.C:
			a.promote()
		}
	}
}

// stop ends Run: it stops taking loop work, lets a commit, purge or
// transition in flight finish (their loop hand-offs now fail fast), then
// releases the kernel.
func (l *runLoop) stop() error {
	a := l.a
	close(a.stopping)
	a.cancelPurge()
	a.transition.Lock()
	defer a.transition.Unlock()
	err := <-l.syncErr
	if a.gateArmed.Load() {
		// Fail open: without ctsync nothing would lift it.
		if _, gerr := a.liftGate(context.Background()); gerr != nil {
			a.log.Error("commit gate: could not lift it at shutdown", "err", gerr)
		}
	}
	a.kern.Close()
	return err
}

// restartWatch restarts a watcher that died (not an overrun: those are
// handled), unless Run is stopping and it ended with the context.
func (l *runLoop) restartWatch(err error) {
	if l.ctx.Err() != nil {
		return
	}
	a := l.a
	a.warn.Error(a.log, "watch failed", "kernel event watch failed; restarting", "err", err)
	a.st.watchRestarts.Add(1)
	l.goWatch()
	a.signalOverrun()
}

// resync rebuilds the internal cache after an overrun; a failure retries
// in a second.
func (l *runLoop) resync() {
	a := l.a
	if _, err := a.resync(l.ctx); err != nil && l.ctx.Err() == nil {
		a.warn.Warn(a.log, "resync failed", "kernel resync failed; retrying", "err", err)
		l.retry = time.After(time.Second)
	}
}

// applyBatch applies a watcher's batch and recycles it.
func (a *Agent) applyBatch(batch []flow.Event) {
	a.apply(batch)
	select {
	case a.free <- batch:
	default:
	}
}

// expire drops the expectations and external flows that timed out.
func (a *Agent) expire() {
	a.in.ExpireExpects()
	if n := a.ext.Expire(); n > 0 {
		a.log.Debug("expired external flows", "count", n)
	}
}

func (a *Agent) shutdownSync() { _ = a.node.Close() }

func (a *Agent) signalOverrun() {
	select {
	case a.overrun <- struct{}{}:
	default:
	}
}

// do runs fn on the loop goroutine and waits for it.
func (a *Agent) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case a.ops <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopping:
		return errors.New("daemon is stopping")
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const batchMax = 512

// watch reads kernel events and hands them to the loop in batches: a batch
// goes when it is full or when the socket has nothing more queued, so an
// event never waits for company and a burst costs one hand-off per batch.
// When the loop falls behind, the hand-off blocks, the kernel's socket
// buffer fills, and the overrun that follows triggers a resync.
func (a *Agent) watch(ctx context.Context, ready chan struct{}) error {
	batch := a.newBatch()
	handOff := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case a.events <- batch:
			batch = a.newBatch()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := a.kern.Watch(ctx, kernel.WatchOptions{
		ReadBuffer: a.cfg.EventBufferBytes(),
		Ready:      func() { close(ready) },
		Idle:       handOff,
		OnOverrun: func() error {
			a.st.overruns.Add(1)
			a.warn.Warn(a.log, "overrun", "kernel event overrun: events were lost; resyncing from a dump")
			a.signalOverrun()
			return nil
		},
	}, func(ev *flow.Event) error {
		batch = append(batch, *ev)
		if len(batch) >= batchMax {
			return handOff()
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("watch ended")
	}
	return err
}

// newBatch takes a recycled batch or makes one.
func (a *Agent) newBatch() []flow.Event {
	select {
	case b := <-a.free:
		return b[:0]
	default:
		return make([]flow.Event, 0, batchMax)
	}
}

// apply updates the internal cache from kernel events, in order.
func (a *Agent) apply(batch []flow.Event) {
	f := a.filter.Load()
	now := a.monotonic()
	for i := range batch {
		ev := &batch[i]
		a.st.events[ev.Type%4].Add(1)
		switch ev.Type {
		case flow.EventDestroy:
			a.in.Delete(&ev.Flow)
			a.pending.drop(&ev.Flow) // ended younger than min_age: never sent
		default:
			if a.hot.owns(&ev.Flow) {
				continue // a peer's flow, written by hot standby
			}
			normalize(&ev.Flow)
			if !f.pass(&ev.Flow) {
				a.st.filtered.Add(1)
				// It may have passed before (its mark, zone or state
				// changed): withdraw it, as the next resync would.
				a.in.Delete(&ev.Flow)
				a.pending.drop(&ev.Flow)
				continue
			}
			f.mask(&ev.Flow)
			if !a.admit(&ev.Flow, f, now) {
				continue
			}
			if _, err := a.in.Upsert(&ev.Flow); err != nil {
				a.st.cacheFull.Add(1)
			}
		}
	}
}

// normalize fills attributes the kernel leaves out when they are zero
// (events omit a zero mark), so that the cache sees a stable value.
func normalize(f *flow.Flow) {
	f.Attrs |= flow.AttrMark | flow.AttrStatus
}

// promoteEvery is how often flows held for filter.min_age are looked at.
const promoteEvery = 250 * time.Millisecond

// admit applies filter.min_age to a flow that passes the filter: it reports
// whether fl goes to the internal cache now. A flow already there (already
// replicated) always does; a younger one is held in a.pending until it is
// old enough (then promote sends its latest state).
func (a *Agent) admit(fl *flow.Flow, f *replFilter, now int64) bool {
	if f.minAge <= 0 {
		if len(a.pending) > 0 {
			a.pending.drop(fl)
		}
		return true
	}
	if a.in.Has(fl) {
		return true
	}
	return a.pending.hold(fl, now, f.minAge)
}

// promote moves the held flows that reached filter.min_age into the
// internal cache (on the loop).
func (a *Agent) promote() {
	if len(a.expOrphans) > 0 {
		a.adoptOrphans()
	}
	if len(a.pending) == 0 {
		return
	}
	for _, fl := range a.pending.due(a.monotonic(), a.filter.Load().minAge) {
		if a.hot.owns(&fl) {
			continue
		}
		if _, err := a.in.Upsert(&fl); err != nil {
			a.st.cacheFull.Add(1)
		}
	}
}

// resync rebuilds the internal cache from a kernel dump (on the loop).
func (a *Agent) resync(ctx context.Context) (int, error) {
	start := time.Now()
	f := a.filter.Load()
	now := a.monotonic()
	// Flows still too young stay pending with their first-seen time; those
	// the dump no longer shows ended while events were lost.
	held := a.pending
	a.pending = make(pending, len(held))
	a.in.BeginResync()
	n := 0
	err := a.kern.Dump(ctx, kernel.DumpFilter{}, func(fl *flow.Flow) error {
		normalize(fl)
		if !f.pass(fl) || a.hot.owns(fl) {
			return nil
		}
		f.mask(fl)
		if f.minAge > 0 && !a.in.Has(fl) {
			if e := held[fl.Key()]; e != nil {
				a.pending[fl.Key()] = e
			}
			if !a.pending.hold(fl, now, f.minAge) {
				return nil
			}
		}
		n++
		if _, err := a.in.Upsert(fl); err != nil {
			a.st.cacheFull.Add(1)
		}
		return nil
	})
	if err != nil {
		a.st.resyncFailures.Add(1)
		for k, e := range held {
			if _, ok := a.pending[k]; !ok {
				a.pending[k] = e // keep them for the retry
			}
		}
		return 0, err
	}
	removed := a.in.EndResync()
	if _, err := a.resyncExpects(ctx); err != nil {
		a.st.resyncFailures.Add(1)
		return removed, err
	}
	a.st.resyncs.Add(1)
	a.st.lastResync.Store(int64(time.Since(start)))
	a.st.lastResyncAt.Store(time.Now().UnixNano())
	a.log.Info("internal cache rebuilt from the kernel", "flows", n, "removed", removed, "took", time.Since(start).Round(time.Millisecond))
	return removed, nil
}

// Reload applies a new configuration's filter and log level (SIGHUP).
func (a *Agent) Reload(cfg *config.Config) error {
	f, err := newReplFilter(&cfg.Filter)
	if err != nil {
		return err
	}
	a.filter.Store(f)
	a.log.Info("configuration reloaded: filter replaced; resyncing the internal cache")
	// The cluster settings are the running ones (they change at restart):
	// an insecure cluster is reported again.
	warnExposure(a.log, &a.cfg.Cluster, a.bind)
	a.signalOverrun() // a resync applies the new filter to every cached flow
	if a.hot != nil {
		a.hot.recheck() // and a pass to the peers' flows hot standby writes
	}
	return nil
}
