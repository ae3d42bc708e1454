package cache

import "hash/maphash"

// index maps keys to slab slots: open addressing with linear probing over
// 4-byte slot references (0 = empty, else slot+1), keys compared in the
// slab. Beside each reference, in the same 8 bytes so that a probe touches
// one cache line, it keeps the low 32 bits of the key's hash: a probe
// compares those before it compares keys, and growing or removing finds an
// entry's home without hashing its key again. It costs 11-21 bytes per flow
// where a Go map of the 40-byte keys costs about 100. The hash is seeded
// per table so that keys an attacker can choose (addresses, ports) cannot
// be made to collide.
type index struct {
	ents []ient
	n    int
	seed maphash.Seed
}

// ient is one index position.
type ient struct {
	ref uint32 // 0 = empty, else slot+1
	tag uint32 // low 32 bits of the hash of the key in slot ref-1
}

func newIndex() index {
	return index{ents: make([]ient, 16), seed: maphash.MakeSeed()}
}

// reserve grows the index ahead of n more keys, so that a bulk insert
// (a peer's snapshot) does not rehash on the way.
func (x *index) reserve(n int) {
	want := x.n + n
	size := len(x.ents)
	for want*4 > size*3 {
		size *= 2
	}
	if size > len(x.ents) {
		x.resize(size)
	}
}

func (x *index) hash(k *Key) uint32 { return uint32(maphash.Comparable(x.seed, *k)) }

// find returns the slot of k and true, or the probe position for an
// insert; tag is k's hash, for insert.
func (x *index) find(t *table, k *Key) (pos int, slot uint32, ok bool, tag uint32) {
	return x.findTag(t, k, x.hash(k))
}

// findTag is find for a key whose hash is known.
func (x *index) findTag(t *table, k *Key, tag uint32) (pos int, slot uint32, ok bool, _ uint32) {
	mask := len(x.ents) - 1
	i := int(tag) & mask
	for {
		e := x.ents[i]
		if e.ref == 0 {
			return i, 0, false, tag
		}
		if e.tag == tag && t.slot(e.ref-1).k == *k {
			return i, e.ref - 1, true, tag
		}
		i = (i + 1) & mask
	}
}

// insert records slot for a key with hash tag at probe position pos (from
// a failed find).
func (x *index) insert(pos int, slot, tag uint32) {
	x.ents[pos] = ient{ref: slot + 1, tag: tag}
	x.n++
	if x.n*4 > len(x.ents)*3 {
		x.resize(2 * len(x.ents))
	}
}

// resize rehashes into size positions (a power of two).
func (x *index) resize(size int) {
	old := x.ents
	x.ents = make([]ient, size)
	mask := size - 1
	for _, e := range old {
		if e.ref == 0 {
			continue
		}
		i := int(e.tag) & mask
		for x.ents[i].ref != 0 {
			i = (i + 1) & mask
		}
		x.ents[i] = e
	}
}

// remove deletes the reference at pos, shifting later entries of the probe
// run back so that no tombstones are needed.
func (x *index) remove(pos int) {
	mask := len(x.ents) - 1
	x.ents[pos] = ient{}
	x.n--
	i := pos
	for {
		i = (i + 1) & mask
		e := x.ents[i]
		if e.ref == 0 {
			return
		}
		home := int(e.tag) & mask
		// Move the entry into the hole at pos unless its home lies
		// cyclically in (pos, i].
		if (i > pos && (home <= pos || home > i)) || (i < pos && home <= pos && home > i) {
			x.ents[pos] = e
			x.ents[i] = ient{}
			pos = i
		}
	}
}

// touch reads the index position of each tag, and the slot a matching
// position refers to, and returns a value that depends on them. A batch
// of lookups that touches its positions first has the CPU fetch them in
// parallel: the lookups then find them in cache instead of waiting for
// memory one by one (at a million flows the index and the slab are far
// larger than the caches).
func (x *index) touch(t *table, tags []uint32) uint32 {
	mask := len(x.ents) - 1
	var sum uint32
	for _, tag := range tags {
		e := x.ents[int(tag)&mask]
		sum += e.ref
	}
	for _, tag := range tags {
		if e := x.ents[int(tag)&mask]; e.ref != 0 && e.tag == tag {
			sum += uint32(t.slot(e.ref - 1).k.sport)
		}
	}
	return sum
}
