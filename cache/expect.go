package cache

import (
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/ctsync/ctsync/flow"
)

// Expectations are the second kind of cached object. A node has few of
// them (one per FTP control connection that announced a data connection,
// a few per SIP call) and each lives seconds, so they are kept in plain
// maps and replicated as a whole: whenever a node's set changes, its
// streams send the complete set (sync's msgExpects), which the receiver
// puts in place of what it held for that origin. Deletions need no log:
// an expectation missing from the set is gone.

// MaxExpects bounds the expectations kept per node (internal) and per
// origin (external): a whole set must fit one replication message.
const MaxExpects = 16384

// expRec is one cached expectation and when it runs out (Clock ns; 0 when
// it carries no timeout).
type expRec struct {
	x        flow.Expect
	deadline int64
}

// ExpectHash is the digest hash of one expectation: of what identifies it
// and what replication carries, not of its ticking timeout or local id.
// Every node computes the same value.
func ExpectHash(x *flow.Expect) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%v|%v|%v|%d|%d|%d|%s|%d|%v|%s|%d", x.Tuple, x.Mask, x.Master, x.Zone, x.Flags, x.Class,
		x.Helper, x.NATDir, x.NATTuple, x.Fn, x.Attrs&^(flow.ExpectAttrTimeout|flow.ExpectAttrID))
	return h.Sum64()
}

// sameExpect reports whether two expectations are the same for
// replication (their timeout and id aside).
func sameExpect(a, b *flow.Expect) bool {
	x, y := *a, *b
	x.Timeout, y.Timeout, x.ID, y.ID = 0, 0, 0, 0
	x.Attrs &^= flow.ExpectAttrTimeout | flow.ExpectAttrID
	y.Attrs &^= flow.ExpectAttrTimeout | flow.ExpectAttrID
	return x == y
}

func expDeadline(x *flow.Expect, now int64) int64 {
	if !x.Has(flow.ExpectAttrTimeout) {
		return 0
	}
	return now + int64(x.Timeout)*int64(time.Second)
}

// withLeft returns r's expectation with its timeout set to what is left
// of it at now (at least 1 s), as a kernel dump would show it.
func (r *expRec) withLeft(now int64) flow.Expect {
	x := r.x
	if r.deadline != 0 {
		x.Timeout = uint32(max((r.deadline-now)/int64(time.Second), 1))
	}
	return x
}

// expSet is a set of expectations with its digest.
type expSet struct {
	m   map[flow.ExpectKey]*expRec
	xor uint64
}

func (s *expSet) put(x *flow.Expect, now int64) bool {
	if s.m == nil {
		s.m = make(map[flow.ExpectKey]*expRec)
	}
	k := x.Key()
	c := *x
	c.ID = 0
	c.Attrs &^= flow.ExpectAttrID
	if r := s.m[k]; r != nil {
		changed := !sameExpect(&r.x, &c)
		s.xor ^= ExpectHash(&r.x)
		r.x, r.deadline = c, expDeadline(&c, now)
		s.xor ^= ExpectHash(&r.x)
		return changed
	}
	s.m[k] = &expRec{x: c, deadline: expDeadline(&c, now)}
	s.xor ^= ExpectHash(&c)
	return true
}

func (s *expSet) del(k flow.ExpectKey) bool {
	r := s.m[k]
	if r == nil {
		return false
	}
	s.xor ^= ExpectHash(&r.x)
	delete(s.m, k)
	return true
}

func (s *expSet) digest() Digest { return Digest{Count: uint64(len(s.m)), Hash: s.xor} }

// expire removes what ran out at now and returns how many.
func (s *expSet) expire(now int64) int {
	n := 0
	for k, r := range s.m {
		if r.deadline != 0 && r.deadline <= now {
			s.del(k)
			n++
		}
	}
	return n
}

// list returns the set's expectations in a stable order, timeouts as left.
func (s *expSet) list(now int64) []flow.Expect {
	out := make([]flow.Expect, 0, len(s.m))
	for _, r := range s.m {
		out = append(out, r.withLeft(now))
	}
	sortExpects(out)
	return out
}

func sortExpects(xs []flow.Expect) {
	sort.Slice(xs, func(i, j int) bool { return xs[i].String() < xs[j].String() })
}

// ---------------------------------------------------------------- internal

// UpsertExpect records x (from a kernel event or dump) as alive and
// reports whether the set changed (ErrFull when a new one does not fit).
// A change wakes every reader.
func (c *Internal) UpsertExpect(x *flow.Expect) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.exp.m[x.Key()]; !ok && len(c.exp.m) >= MaxExpects {
		c.stats.Full++
		return false, ErrFull
	}
	if c.expSweep != nil {
		c.expSweep[x.Key()] = struct{}{}
	}
	if !c.exp.put(x, c.opts.Clock()) {
		return false, nil
	}
	c.expChangedLocked()
	return true, nil
}

// DeleteExpect records the removal of x; false when it was not cached.
func (c *Internal) DeleteExpect(x *flow.Expect) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.exp.del(x.Key()) {
		return false
	}
	c.expChangedLocked()
	return true
}

// BeginExpectResync starts a rebuild of the expectations from a kernel
// dump: UpsertExpect until EndExpectResync marks what it is given as seen.
func (c *Internal) BeginExpectResync() {
	c.mu.Lock()
	c.expSweep = make(map[flow.ExpectKey]struct{})
	c.mu.Unlock()
}

// EndExpectResync removes the expectations not seen since
// BeginExpectResync, and returns how many.
func (c *Internal) EndExpectResync() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expSweep == nil {
		return 0
	}
	n := 0
	for k := range c.exp.m {
		if _, ok := c.expSweep[k]; !ok {
			c.exp.del(k)
			n++
		}
	}
	c.expSweep = nil
	if n > 0 {
		c.expChangedLocked()
	}
	return n
}

// ExpireExpects removes expectations whose timeout ran out (the kernel's
// destroy event was lost) and returns how many.
func (c *Internal) ExpireExpects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.exp.expire(c.opts.Clock() - int64(time.Second)) // the kernel's event first
	if n > 0 {
		c.expChangedLocked()
	}
	return n
}

func (c *Internal) expChangedLocked() {
	c.expVersion++
	for r := range c.readers {
		r.signal()
	}
}

// Expects returns this node's expectations, their timeouts as left now.
func (c *Internal) Expects() []flow.Expect {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.exp.list(c.opts.Clock())
}

// ExpectDigest summarises this node's expectations.
func (c *Internal) ExpectDigest() Digest {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.exp.digest()
}

// NextExpects returns the node's expectation set, its digest and true
// when it changed since the reader last took it (or the reader must
// resend it: a new stream, a snapshot, ResendExpects); false otherwise.
func (r *Reader) NextExpects() ([]flow.Expect, Digest, bool) {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.expSent && r.expVersion == c.expVersion {
		return nil, Digest{}, false
	}
	r.expSent, r.expVersion = true, c.expVersion
	return c.exp.list(c.opts.Clock()), c.exp.digest(), true
}

// ResendExpects makes the reader's next NextExpects return the set.
func (r *Reader) ResendExpects() {
	r.c.mu.Lock()
	r.expSent = false
	r.c.mu.Unlock()
	r.signal()
}

// ---------------------------------------------------------------- external

// ReplaceExpects puts xs, origin's complete expectation set, in place of
// what was held for it. It is rejected (false) in another epoch than the
// origin's flows'. Timeouts count from now.
func (e *External) ReplaceExpects(name string, epoch uint64, xs []flow.Expect) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.originLocked(name)
	if o.epoch != epoch {
		o.stats.Stale++
		return false
	}
	now := e.opts.Clock()
	o.exp = expSet{}
	for i := range xs {
		if len(o.exp.m) >= MaxExpects {
			o.stats.Full++
			break
		}
		o.exp.put(&xs[i], now)
	}
	o.expSynced = true
	return true
}

// ExpectDigest returns origin's expectation digest and whether a set was
// received in this epoch.
func (e *External) ExpectDigest(name string, epoch uint64) (Digest, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	o := e.origins[name]
	if o == nil || o.epoch != epoch {
		return Digest{}, false
	}
	return o.exp.digest(), o.expSynced
}

// ExpectsLen returns the number of expectations held (of one origin, or
// all for "").
func (e *External) ExpectsLen(name string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	for on, o := range e.origins {
		if name == "" || on == name {
			n += len(o.exp.m)
		}
	}
	return n
}

// RangeExpects calls fn for each held expectation of origin (all origins
// for ""), origins in order, timeouts set to what is left. Returning false
// stops.
func (e *External) RangeExpects(name string, fn func(origin string, x *flow.Expect) bool) {
	now := e.opts.Clock()
	e.mu.RLock()
	names := make([]string, 0, len(e.origins))
	lists := map[string][]flow.Expect{}
	for n, o := range e.origins {
		if (name == "" || n == name) && len(o.exp.m) > 0 {
			names = append(names, n)
			lists[n] = o.exp.list(now)
		}
	}
	e.mu.RUnlock()
	sort.Strings(names)
	for _, n := range names {
		for i := range lists[n] {
			if !fn(n, &lists[n][i]) {
				return
			}
		}
	}
}
