package cache

import (
	"sort"
	stdsync "sync"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// ExternalOptions configure an External cache.
type ExternalOptions struct {
	// MaxFlows bounds the flows held of all origins together (0 =
	// unlimited): a new flow beyond it is dropped and counted in its
	// origin's Full. No origin has a share of its own: the bound is what
	// the node can hold, whoever sends.
	MaxFlows int
	// MaxAge is how long a flow received without a timeout is kept after
	// its owner's last word; 0 = DefaultMaxAge.
	MaxAge time.Duration
	Clock  Clock // required
	// OnChange, if set, is called with the key of every flow added,
	// changed or removed, with the cache's lock held: it must be quick and
	// must not call back into the cache (hot standby collects the keys).
	OnChange func(k *Key)
}

// DefaultMaxAge is the age limit of a flow received without a timeout:
// the kernel's default timeout of an established TCP connection
// (nf_conntrack_tcp_timeout_established, 5 days).
const DefaultMaxAge = 5 * 24 * time.Hour

// reserveCeiling bounds what one snapshot's announced size reserves ahead
// of its flows (the announcement is a hint from the network); beyond it
// the index grows as the flows arrive.
const reserveCeiling = 1 << 14

// External holds other nodes' flows, per origin node. Safe for concurrent use.
type External struct {
	mu      stdsync.RWMutex
	origins map[string]*origin
	opts    ExternalOptions
	held    int    // flows held, all origins together (bounded by MaxFlows)
	sink    uint32 // keeps ApplyBatch's prefetching reads from being optimised away
}

type origin struct {
	t       *table
	epoch   uint64
	vouched int64 // when the owner last vouched for its flows (clock ns)
	gen     uint8
	inSnap  bool
	synced  bool // a snapshot completed in this epoch
	// truncated: a new flow of the origin was dropped for lack of room
	// since its last snapshot began, so its copy cannot match its owner's.
	truncated bool
	stats     OriginStats

	exp       expSet // the origin's expectations (expect.go)
	expSynced bool   // a set was received in this epoch
}

// OriginStats describe one origin's part of the external cache (defined
// in the leaf package stats, which the statistics' readers import).
type OriginStats = stats.Origin

// NewExternal returns an empty external cache.
func NewExternal(o ExternalOptions) *External {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	return &External{origins: make(map[string]*origin), opts: o}
}

func (e *External) originLocked(name string) *origin {
	o := e.origins[name]
	if o == nil {
		o = &origin{t: newTable()}
		e.origins[name] = o
	}
	return o
}

// BeginSnapshot starts a full copy of origin's flows in the given epoch
// (the owner's incarnation). A new epoch discards what was held: versions
// restart with the owner.
func (e *External) BeginSnapshot(name string, epoch uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.originLocked(name)
	if o.epoch != epoch {
		e.resetLocked(o)
		o.epoch = epoch
		o.synced = false
	}
	o.gen++
	o.inSnap = true
	o.truncated = false
	o.vouched = e.opts.Clock()
	o.stats.Snapshots++
}

// EndSnapshot removes origin's flows the snapshot did not carry and returns
// how many.
func (e *External) EndSnapshot(name string, epoch uint64) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.origins[name]
	if o == nil || o.epoch != epoch || !o.inSnap {
		return 0
	}
	o.inSnap = false
	o.synced = true
	stale := o.t.keys(func(s *slot) bool { return s.r.gen != o.gen })
	for i := range stale {
		o.t.del(&stale[i])
		e.changed(&stale[i])
	}
	e.held -= len(stale)
	return len(stale)
}

// ApplyBatch stores a run of entries from origin in order, under one lock
// and one reading of the clock. Entries from another epoch, or older than
// what is held, are refused and counted as stale; it returns how many were
// refused. It rewrites
// the entries' keys (a sender's key is only a hint; the flow is the truth).
func (e *External) ApplyBatch(name string, epoch uint64, ens []Entry) (stale int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.originLocked(name)
	if o.epoch != epoch {
		o.stats.Stale += uint64(len(ens))
		return len(ens)
	}
	now := e.opts.Clock()
	const group = 64 // lookups whose memory is fetched together
	var tags [group]uint32
	for start := 0; start < len(ens); start += group {
		part := ens[start:min(start+group, len(ens))]
		for i := range part {
			en := &part[i]
			if !en.Deleted {
				en.Key = KeyOf(&en.Flow)
			}
			tags[i] = o.t.idx.hash(&en.Key)
		}
		e.sink += o.t.idx.touch(o.t, tags[:len(part)])
		for i := range part {
			if !e.applyLocked(o, &part[i], tags[i], now) {
				stale++
			}
		}
	}
	return stale
}

// applyLocked applies en, whose Key is set and whose index hash is tag.
func (e *External) applyLocked(o *origin, en *Entry, tag uint32, now int64) bool {
	k := &en.Key
	s, f := o.t.lookupTag(k, tag)
	if en.Deleted {
		if s != nil {
			if s.r.version > en.Version {
				o.stats.Stale++
				return false
			}
			o.t.delFound(f, k)
			e.held--
			e.changed(k)
		}
		o.stats.Applied++
		return true
	}
	if s != nil {
		if s.r.version > en.Version || s.r.version == en.Version && !o.inSnap {
			o.stats.Stale++
			return false
		}
	} else if e.opts.MaxFlows > 0 && e.held >= e.opts.MaxFlows {
		o.stats.Full++
		o.truncated = true
		return false
	}
	r, x := encodeRec(&en.Flow)
	r.version = en.Version
	r.updated = now
	r.gen = o.gen
	o.t.putFound(f, k, &r, x)
	if s == nil {
		e.held++
	}
	e.changed(k)
	o.stats.Applied++
	return true
}

// Reserve makes room for n more of origin's flows in the given epoch (the
// size a snapshot announces), so that loading them rehashes less on the
// way. n is a hint from the network and reserves only what the cache has
// room for, and at most reserveCeiling flows: the rest of a large snapshot
// grows the index as its flows arrive, so that an announcement alone
// never holds memory.
func (e *External) Reserve(name string, epoch uint64, n uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.origins[name]
	if o == nil || o.epoch != epoch {
		return
	}
	n = min(n, reserveCeiling)
	if e.opts.MaxFlows > 0 {
		n = min(n, uint64(max(e.opts.MaxFlows-e.held, 0)))
	}
	if n > 0 {
		o.t.idx.reserve(int(n))
	}
}

// Truncated reports whether flows of origin were dropped for lack of room
// since its last snapshot began (its copy then cannot match its owner's
// digest), and how many more flows the cache has room for (-1: no bound).
func (e *External) Truncated(name string) (truncated bool, room int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	room = -1
	if e.opts.MaxFlows > 0 {
		room = max(e.opts.MaxFlows-e.held, 0)
	}
	if o := e.origins[name]; o != nil {
		truncated = o.truncated
	}
	return truncated, room
}

// changed reports a key's change to OnChange (lock held).
func (e *External) changed(k *Key) {
	if e.opts.OnChange != nil {
		e.opts.OnChange(k)
	}
}

// resetLocked empties an origin's table, reporting every key.
func (e *External) resetLocked(o *origin) {
	if e.opts.OnChange != nil {
		o.t.each(func(s *slot) { e.opts.OnChange(&s.k) })
	}
	e.held -= o.t.len()
	o.t.reset()
	o.truncated = false
	o.exp, o.expSynced = expSet{}, false
}

// Vouch records that origin's owner confirmed its flows (for example with a
// matching digest): their ageing restarts from now.
func (e *External) Vouch(name string) {
	e.mu.Lock()
	if o := e.origins[name]; o != nil {
		o.vouched = e.opts.Clock()
	}
	e.mu.Unlock()
}

// Digest returns origin's digest and whether its snapshot completed.
func (e *External) Digest(name string, epoch uint64) (Digest, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	o := e.origins[name]
	if o == nil || o.epoch != epoch {
		return Digest{}, false
	}
	return o.t.digest(), o.synced && !o.inSnap
}

// deadline is when a record expires: its timeout after the later of its
// last update and its owner's last word. A record received without a
// timeout expires maxAge after that.
func deadline(r *rec, vouched int64, maxAge time.Duration) int64 {
	from := r.updated
	if vouched > from {
		from = vouched
	}
	if r.attrs&rTimeout == 0 {
		return from + int64(maxAge)
	}
	return from + int64(r.timeout)*int64(time.Second)
}

// Expire removes flows whose time is up and returns how many.
func (e *External) Expire() int {
	now := e.opts.Clock()
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, o := range e.origins {
		dead := o.t.keys(func(s *slot) bool { return deadline(&s.r, o.vouched, e.opts.MaxAge) <= now })
		for i := range dead {
			o.t.del(&dead[i])
			e.changed(&dead[i])
		}
		e.held -= len(dead)
		o.stats.Expired += uint64(len(dead))
		n += len(dead)
		o.exp.expire(now)
	}
	return n
}

// Flush empties origin's flows, or every origin's when name is "".
func (e *External) Flush(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for n, o := range e.origins {
		if name == "" || n == name {
			e.resetLocked(o)
			o.synced = false
		}
	}
}

// FlushExcept empties every origin's flows but those whose key keep holds
// (flows a commit could not write, to be retried), and returns how many
// it kept. Like Flush, it drops the expectations and the origins' synced
// state.
func (e *External) FlushExcept(keep map[Key]struct{}) (kept int) {
	type held struct {
		k Key
		r rec
		x *extra
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.origins {
		var stay []held
		if len(keep) > 0 {
			o.t.each(func(s *slot) {
				if _, ok := keep[s.k]; ok {
					stay = append(stay, held{k: s.k, r: s.r, x: o.t.extras[s.k]})
				}
			})
		}
		// Empty the table (freeing its memory), then put the kept back.
		e.resetLocked(o)
		o.synced = false
		for i := range stay {
			o.t.put(&stay[i].k, &stay[i].r, stay[i].x)
			e.changed(&stay[i].k)
		}
		kept += len(stay)
	}
	return kept
}

// Forget drops an origin entirely (for example a node that left for good).
func (e *External) Forget(name string) {
	e.mu.Lock()
	if o := e.origins[name]; o != nil {
		e.resetLocked(o)
	}
	delete(e.origins, name)
	e.mu.Unlock()
}

// Has reports whether any origin holds the flow with key k.
func (e *External) Has(k *Key) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, o := range e.origins {
		if o.t.get(k) != nil {
			return true
		}
	}
	return false
}

// Get fills f with the flow of key k, its Timeout set to its remaining
// lifetime as Range does, and returns its origin and its version there.
// When several origins hold the key, the most recently updated copy wins.
func (e *External) Get(k *Key, f *flow.Flow) (from string, version uint64, ok bool) {
	now := e.opts.Clock()
	e.mu.RLock()
	defer e.mu.RUnlock()
	var best *slot
	var bestO *origin
	for name, o := range e.origins {
		if s := o.t.get(k); s != nil && (best == nil || s.r.updated > best.r.updated) {
			best, bestO, from = s, o, name
		}
	}
	if best == nil {
		return "", 0, false
	}
	decode(best.k, &best.r, bestO.t.extras[best.k], f)
	if best.r.attrs&rTimeout != 0 {
		left := (deadline(&best.r, bestO.vouched, e.opts.MaxAge) - now) / int64(time.Second)
		f.Timeout = uint32(max(left, 1))
	}
	return from, best.r.version, true
}

// Len returns the number of flows held (of one origin, or all for "").
func (e *External) Len(name string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	for on, o := range e.origins {
		if name == "" || on == name {
			n += o.t.len()
		}
	}
	return n
}

// Stats returns per-origin statistics, sorted by origin.
func (e *External) Stats() []OriginStats {
	now := e.opts.Clock()
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]OriginStats, 0, len(e.origins))
	for name, o := range e.origins {
		s := o.stats
		s.Origin, s.Flows, s.Epoch, s.Synced = name, o.t.len(), o.epoch, o.synced && !o.inSnap
		s.VouchedAge = time.Duration(now - o.vouched).Seconds()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// Range calls fn for each held flow of origin (all origins for ""), with
// the origin's name; the flow's Timeout is set to its remaining lifetime in
// seconds (at least 1). fn runs without the cache's lock held (see
// Internal.Range for what that means for concurrent changes). The
// *flow.Flow is reused; returning false stops.
func (e *External) Range(name string, fn func(origin string, f *flow.Flow) bool) {
	e.mu.RLock()
	names := make([]string, 0, len(e.origins))
	for n := range e.origins {
		if name == "" || n == name {
			names = append(names, n)
		}
	}
	e.mu.RUnlock()
	sort.Strings(names)
	buf := make([]flow.Flow, 0, rangeChunk)
	for _, n := range names {
		for pos := int64(0); pos >= 0; {
			buf = buf[:0]
			now := e.opts.Clock()
			e.mu.RLock()
			o := e.origins[n]
			if o == nil {
				e.mu.RUnlock()
				break
			}
			pos = o.t.walk(uint32(pos), rangeChunk, func(s *slot) {
				buf = append(buf, flow.Flow{})
				f := &buf[len(buf)-1]
				decode(s.k, &s.r, o.t.extras[s.k], f)
				if s.r.attrs&rTimeout != 0 {
					left := (deadline(&s.r, o.vouched, e.opts.MaxAge) - now) / int64(time.Second)
					f.Timeout = uint32(max(left, 1))
				}
			})
			e.mu.RUnlock()
			for i := range buf {
				if !fn(n, &buf[i]) {
					return
				}
			}
		}
	}
}
