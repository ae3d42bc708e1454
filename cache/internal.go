package cache

import (
	"errors"
	stdsync "sync"

	"github.com/ctsync/ctsync/flow"
)

// Clock returns a monotonic time in nanoseconds.
type Clock func() int64

// ErrFull: the cache holds its maximum number of flows; the flow was dropped.
var ErrFull = errors.New("cache full")

// ErrLost: a reader fell behind the change log's limit (or the cache was
// flushed); it must take a snapshot before reading changes again.
var ErrLost = errors.New("change log overrun: snapshot needed")

// Entry is one flow as replication sees it: its current state, or its
// deletion, at a version. A deletion's Flow carries the original tuple and
// zone (its identity) only.
type Entry struct {
	Key     Key
	Version uint64
	Deleted bool
	Flow    flow.Flow // valid unless Deleted
}

// InternalOptions configure an Internal cache.
type InternalOptions struct {
	MaxFlows int   // 0 = unlimited
	LogLimit int   // changes kept for lagging readers; 0 = 4 x MaxFlows or 1M
	Clock    Clock // required
}

// change is one change log entry.
type change struct {
	k       Key
	version uint64
	deleted bool
}

// Internal is the cache of this node's own flows. Safe for concurrent use.
type Internal struct {
	mu      stdsync.RWMutex
	t       *table
	version uint64 // last version handed out
	opts    InternalOptions

	// The change log: entries with sequence numbers [logStart, logStart+len).
	log      []change
	logStart uint64
	readers  map[*Reader]struct{}

	gen     uint8 // resync generation
	inSweep bool
	held    bool // readers paused (Hold)
	stats   InternalStats

	// Expectations (expect.go): the set, its version (bumped on every
	// change), and the keys seen by a resync in progress.
	exp        expSet
	expVersion uint64
	expSweep   map[flow.ExpectKey]struct{}
}

// InternalStats are counters of an Internal cache.
type InternalStats struct {
	Flows     int
	Version   uint64
	Upserts   uint64 // changes recorded (new or changed flows)
	Deletes   uint64
	Unchanged uint64 // updates that changed nothing replicable
	Full      uint64 // flows dropped because the cache was full
	LogLen    int
	Lost      uint64 // readers that fell behind the log
}

// NewInternal returns an empty cache.
func NewInternal(o InternalOptions) *Internal {
	if o.LogLimit <= 0 {
		o.LogLimit = 4 * o.MaxFlows
		if o.LogLimit < 1<<20 {
			o.LogLimit = 1 << 20
		}
	}
	return &Internal{t: newTable(), opts: o, readers: make(map[*Reader]struct{})}
}

// Upsert records f as alive. It returns true when f is new or changed in a
// way worth replicating (a new version was logged); counters, use count and
// the ticking timeout alone are not changes. ErrFull when a new flow does
// not fit.
func (c *Internal) Upsert(f *flow.Flow) (bool, error) {
	k, r, x := encode(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.t.get(&k)
	if s != nil {
		s.r.gen = c.gen
		if sameContent(&s.r, &r) && extrasEqual(c.t.extras[k], x) {
			c.stats.Unchanged++
			return false, nil
		}
	} else if c.opts.MaxFlows > 0 && c.t.len() >= c.opts.MaxFlows {
		c.stats.Full++
		return false, ErrFull
	}
	c.version++
	r.version = c.version
	r.updated = c.opts.Clock()
	r.gen = c.gen
	c.t.put(&k, &r, x)
	c.stats.Upserts++
	c.appendLocked(change{k: k, version: r.version})
	return true, nil
}

// Delete records the removal of f. It returns false when f was not cached.
func (c *Internal) Delete(f *flow.Flow) bool {
	k := KeyOf(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleteLocked(&k)
}

func (c *Internal) deleteLocked(k *Key) bool {
	if !c.t.del(k) {
		return false
	}
	c.version++
	c.stats.Deletes++
	c.appendLocked(change{k: *k, version: c.version, deleted: true})
	return true
}

// Has reports whether f (its original tuple and zone) is cached.
func (c *Internal) Has(f *flow.Flow) bool {
	k := KeyOf(f)
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.t.get(&k) != nil
}

// BeginResync starts a rebuild from a kernel dump: every Upsert until
// EndResync marks its flow as seen.
func (c *Internal) BeginResync() {
	c.mu.Lock()
	c.gen++
	c.inSweep = true
	c.mu.Unlock()
}

// EndResync deletes (and logs the deletion of) every flow not seen since
// BeginResync, and returns how many.
func (c *Internal) EndResync() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.inSweep {
		return 0
	}
	c.inSweep = false
	stale := c.t.keys(func(s *slot) bool { return s.r.gen != c.gen })
	for i := range stale {
		c.deleteLocked(&stale[i])
	}
	return len(stale)
}

// Flush empties the cache. Readers must resend a snapshot (which tells
// peers this node now owns nothing).
func (c *Internal) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t.reset()
	c.exp = expSet{}
	c.expVersion++
	c.version++
	c.logStart += uint64(len(c.log))
	c.log = nil
	for r := range c.readers {
		r.lost = true
		r.signal()
	}
}

func (c *Internal) appendLocked(ch change) {
	if len(c.readers) == 0 {
		// Nobody follows the log: a future reader starts with a snapshot.
		c.logStart++
		return
	}
	c.log = append(c.log, ch)
	if len(c.log) > c.opts.LogLimit {
		// Drop the oldest half; readers behind that must snapshot.
		drop := len(c.log) / 2
		c.log = compact(c.log, drop)
		c.logStart += uint64(drop)
		for r := range c.readers {
			if r.cursor < c.logStart {
				r.lost = true
				c.stats.Lost++
			}
		}
	}
	if !c.held {
		for r := range c.readers {
			r.signal()
		}
	}
}

// Hold pauses (true) or resumes (false) every reader: while held, changes
// are logged but readers see nothing new, so a burst of changes that need
// not reach peers at once (a commit's) does not compete for the CPU with
// the work that makes it. Resuming wakes every reader.
func (c *Internal) Hold(hold bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = hold
	if !hold {
		for r := range c.readers {
			r.signal()
		}
	}
}

// trimLocked drops log entries every reader has read.
func (c *Internal) trimLocked() {
	oldest := c.logStart + uint64(len(c.log))
	for r := range c.readers {
		if !r.lost && r.cursor < oldest {
			oldest = r.cursor
		}
	}
	if n := int(oldest - c.logStart); n > 0 && n >= len(c.log)/2 {
		c.log = compact(c.log, n)
		c.logStart = oldest
	}
}

// Len returns the number of cached flows.
func (c *Internal) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.t.len()
}

// Stats returns the cache's counters.
func (c *Internal) Stats() InternalStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.stats
	s.Flows = c.t.len()
	s.Version = c.version
	s.LogLen = len(c.log)
	return s
}

// Digest summarises the cache at its current versions.
func (c *Internal) Digest() Digest {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.t.digest()
}

// rangeChunk is how many flows Range copies per lock acquisition.
const rangeChunk = 1024

// Range calls fn for every cached flow, without holding the cache's lock:
// it copies chunks of flows under the lock and calls fn outside it, so a
// slow fn (a client reading a listing) never stalls the cache's writers.
// Like a kernel dump, a flow changed during the walk may be seen in either
// state, or (if it moved) not or twice. The *flow.Flow is reused; fn
// returning false stops the walk.
func (c *Internal) Range(fn func(f *flow.Flow) bool) {
	buf := make([]flow.Flow, 0, rangeChunk)
	for pos := int64(0); pos >= 0; {
		buf = buf[:0]
		c.mu.RLock()
		pos = c.t.walk(uint32(pos), rangeChunk, func(s *slot) {
			buf = append(buf, flow.Flow{})
			decode(s.k, &s.r, c.t.extras[s.k], &buf[len(buf)-1])
		})
		c.mu.RUnlock()
		for i := range buf {
			if !fn(&buf[i]) {
				return
			}
		}
	}
}

// Reader follows the change log for one consumer (a peer's sender). A new
// Reader starts lost: its first step is a snapshot. Not safe for concurrent
// use by several goroutines.
type Reader struct {
	c      *Internal
	cursor uint64
	lost   bool
	wake   chan struct{}

	expSent    bool // the expectation set at expVersion was taken
	expVersion uint64
}

// NewReader registers a reader.
func (c *Internal) NewReader() *Reader {
	r := &Reader{c: c, lost: true, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	c.readers[r] = struct{}{}
	c.mu.Unlock()
	r.signal()
	return r
}

func (r *Reader) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Wake returns a channel that receives when there may be something to read.
func (r *Reader) Wake() <-chan struct{} { return r.wake }

// Close unregisters the reader.
func (r *Reader) Close() {
	r.c.mu.Lock()
	delete(r.c.readers, r)
	r.c.trimLocked()
	r.c.mu.Unlock()
}

// Lost reports whether the reader must take a snapshot.
func (r *Reader) Lost() bool {
	r.c.mu.RLock()
	defer r.c.mu.RUnlock()
	return r.lost
}

// Next calls fn for up to limit changes after the reader's cursor, each
// flow's current state (or deletion) once: a change superseded by a later
// one is skipped. It returns how many entries fn got, or ErrLost.
func (r *Reader) Next(limit int, fn func(e *Entry)) (int, error) {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.lost {
		return 0, ErrLost
	}
	if c.held {
		return 0, nil
	}
	var e Entry
	n := 0
	end := c.logStart + uint64(len(c.log))
	for r.cursor < end && n < limit {
		ch := &c.log[r.cursor-c.logStart]
		r.cursor++
		s := c.t.get(&ch.k)
		switch {
		case s != nil && s.r.version == ch.version:
			e = Entry{Key: ch.k, Version: ch.version}
			decode(ch.k, &s.r, c.t.extras[ch.k], &e.Flow)
		case s == nil && ch.deleted:
			e = Entry{Key: ch.k, Version: ch.version, Deleted: true}
			e.Flow.Orig, e.Flow.Zone = ch.k.Orig(), ch.k.zone
		default:
			continue // superseded
		}
		fn(&e)
		n++
	}
	c.trimLocked()
	return n, nil
}

// CaughtUp returns the cache's digest and version if the reader has read
// every change, so that what it sent equals the cache exactly.
func (r *Reader) CaughtUp() (Digest, uint64, bool) {
	c := r.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	if r.lost || c.held || r.cursor != c.logStart+uint64(len(c.log)) {
		return Digest{}, 0, false
	}
	return c.t.digest(), c.version, true
}

// Snapshot is a consistent bulk read of the cache in chunks. Changes made
// while it runs are in the change log after its start, so the reader sends
// them after the snapshot: the receiver ends up exact.
type Snapshot struct {
	r    *Reader
	pos  int64
	done bool
	size int
}

// Len returns how many flows the cache held when the snapshot began.
func (s *Snapshot) Len() int { return s.size }

// Snapshot starts a snapshot and positions the reader's cursor at the log's
// head; the reader is no longer lost.
func (r *Reader) Snapshot() *Snapshot {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	r.cursor = c.logStart + uint64(len(c.log))
	r.lost = false
	r.expSent = false // a snapshot carries the expectations too
	c.trimLocked()
	return &Snapshot{r: r, size: c.t.len()}
}

// Next calls fn for up to limit flows and reports whether more remain.
func (s *Snapshot) Next(limit int, fn func(e *Entry)) bool {
	if s.done {
		return false
	}
	c := s.r.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	var e Entry
	next := c.t.walk(uint32(s.pos), limit, func(sl *slot) {
		e = Entry{Key: sl.k, Version: sl.r.version}
		decode(sl.k, &sl.r, c.t.extras[sl.k], &e.Flow)
		fn(&e)
	})
	if next < 0 {
		s.done = true
		return false
	}
	s.pos = next
	return true
}

func extrasEqual(a, b *extra) bool {
	if a == nil || b == nil {
		return a == b
	}
	if (a.master == nil) != (b.master == nil) || a.master != nil && *a.master != *b.master {
		return false
	}
	return a.helper == b.helper && a.labels == b.labels && a.seqO == b.seqO && a.seqR == b.seqR &&
		a.seqOK == b.seqOK && a.seqR2 == b.seqR2
}

// compact returns log without its first n entries, in a fresh array so the
// old one can be freed (a re-slice would keep it alive).
func compact(log []change, n int) []change {
	if n >= len(log) {
		return nil
	}
	return append([]change(nil), log[n:]...)
}

// Pending returns how many logged changes the reader has not read yet (-1
// when it must snapshot): its replication lag in changes.
func (r *Reader) Pending() int {
	c := r.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	if r.lost {
		return -1
	}
	return int(c.logStart + uint64(len(c.log)) - r.cursor)
}

// ForceSnapshot makes the reader lost, so that its next step is a snapshot
// (a peer asked for one).
func (r *Reader) ForceSnapshot() {
	c := r.c
	c.mu.Lock()
	r.lost = true
	c.mu.Unlock()
	r.signal()
}
