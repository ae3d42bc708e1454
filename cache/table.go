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

// put stores k's record (and extras), replacing any previous one.
func (t *table) put(k *Key, r *rec, x *extra) {
	if pos, i, ok, tag := t.idx.find(t, k); ok {
		s := t.slot(i)
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
		t.idx.insert(pos, i, tag)
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
	pos, i, ok, _ := t.idx.find(t, k)
	if !ok {
		return false
	}
	s := t.slot(i)
	t.xor ^= k.hash(s.r.version)
	t.idx.remove(pos)
	*s = slot{}
	delete(t.extras, *k)
	t.free = append(t.free, i)
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
