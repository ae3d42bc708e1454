package cache

// chunkSize is the number of slots per slab chunk. Chunks are allocated
// whole and never move, so growth costs no copying.
const chunkSize = 4096

type slot struct {
	k    Key
	r    rec
	used bool
}

// table is a set of records keyed by Key: a map from key to slot index over
// a chunked slab. Not safe for concurrent use; Internal and External lock.
type table struct {
	idx    index
	chunks [][]slot
	free   []uint32
	next   uint32 // slots handed out so far (high-water mark)
	extras map[Key]*extra

	// The digest: count and XOR of hash(key, version) over all records.
	xor uint64
}

func newTable() *table {
	return &table{idx: newIndex(), extras: make(map[Key]*extra)}
}

func (t *table) len() int { return t.idx.n }

func (t *table) slot(i uint32) *slot { return &t.chunks[i/chunkSize][i%chunkSize] }

// get returns the slot of k, or nil.
func (t *table) get(k *Key) *slot {
	_, i, ok, _ := t.idx.find(t, k)
	if !ok {
		return nil
	}
	return t.slot(i)
}

// found is where a lookup left a key: its slot, or the probe position an
// insert takes. It is valid until the table changes.
type found struct {
	pos  int
	slot uint32
	ok   bool
	tag  uint32
}

// lookup returns k's slot (nil when absent) and a handle for putFound or
// delFound, so that a read-then-write costs one probe.
func (t *table) lookup(k *Key) (*slot, found) {
	pos, i, ok, tag := t.idx.find(t, k)
	f := found{pos: pos, slot: i, ok: ok, tag: tag}
	if !ok {
		return nil, f
	}
	return t.slot(i), f
}

// lookupTag is lookup for a key whose index hash is known.
func (t *table) lookupTag(k *Key, tag uint32) (*slot, found) {
	pos, i, ok, _ := t.idx.findTag(t, k, tag)
	f := found{pos: pos, slot: i, ok: ok, tag: tag}
	if !ok {
		return nil, f
	}
	return t.slot(i), f
}

// put stores k's record (and extras), replacing any previous one.
func (t *table) put(k *Key, r *rec, x *extra) {
	_, f := t.lookup(k)
	t.putFound(f, k, r, x)
}

// putFound is put at the place a lookup of k found.
func (t *table) putFound(f found, k *Key, r *rec, x *extra) {
	if f.ok {
		s := t.slot(f.slot)
		t.xor ^= k.hash(s.r.version)
		s.r = *r
	} else {
		var i uint32
		if n := len(t.free); n > 0 {
			i = t.free[n-1]
			t.free = t.free[:n-1]
		} else {
			i = t.next
			t.next++
			if int(i/chunkSize) == len(t.chunks) {
				t.chunks = append(t.chunks, make([]slot, chunkSize))
			}
		}
		s := t.slot(i)
		s.k, s.r, s.used = *k, *r, true
		t.idx.insert(f.pos, i, f.tag)
	}
	t.xor ^= k.hash(r.version)
	if x != nil {
		t.extras[*k] = x
	} else if len(t.extras) > 0 {
		delete(t.extras, *k)
	}
}

// del removes k; it reports whether it was present.
func (t *table) del(k *Key) bool {
	_, f := t.lookup(k)
	return t.delFound(f, k)
}

// delFound is del at the place a lookup of k found.
func (t *table) delFound(f found, k *Key) bool {
	if !f.ok {
		return false
	}
	s := t.slot(f.slot)
	t.xor ^= k.hash(s.r.version)
	t.idx.remove(f.pos)
	*s = slot{}
	delete(t.extras, *k)
	t.free = append(t.free, f.slot)
	return true
}

// walk calls fn for used slots from index start, at most n of them, and
// returns the index to continue from (or -1 when the slab is exhausted).
func (t *table) walk(start uint32, n int, fn func(s *slot)) int64 {
	i := start
	for ; i < t.next && n > 0; i++ {
		s := t.slot(i)
		if s.used {
			fn(s)
			n--
		}
	}
	if i >= t.next {
		return -1
	}
	return int64(i)
}

// each calls fn for every record; fn may delete the record it is given.
func (t *table) each(fn func(s *slot)) {
	for i := uint32(0); i < t.next; i++ {
		if s := t.slot(i); s.used {
			fn(s)
		}
	}
}

// keys returns the keys of the records for which match holds (collected
// first, so that the caller may delete them).
func (t *table) keys(match func(s *slot) bool) []Key {
	var out []Key
	t.each(func(s *slot) {
		if match(s) {
			out = append(out, s.k)
		}
	})
	return out
}

// reset empties the table, keeping no memory.
func (t *table) reset() { *t = *newTable() }

// Digest summarises a set of records at their versions: equal sets have
// equal digests.
type Digest struct {
	Count uint64
	Hash  uint64
}

func (t *table) digest() Digest { return Digest{Count: uint64(t.idx.n), Hash: t.xor} }
