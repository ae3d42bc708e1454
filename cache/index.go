package cache

import "hash/maphash"

// index maps keys to slab slots: open addressing with linear probing over
// 4-byte slot references (0 = empty, else slot+1), keys compared in the
// slab. Beside each reference it keeps the low 32 bits of the key's hash:
// a probe compares those before it compares keys, and growing or removing
// finds an entry's home without hashing its key again. It costs 11-21
// bytes per flow where a Go map of the 40-byte keys costs about 100. The
// hash is seeded per table so that keys an attacker can choose (addresses,
// ports) cannot be made to collide.
type index struct {
	refs []uint32
	tags []uint32 // low 32 bits of the hash of the key at refs[i]
	n    int
	seed maphash.Seed
}

func newIndex() index {
	return index{refs: make([]uint32, 16), tags: make([]uint32, 16), seed: maphash.MakeSeed()}
}

func (x *index) hash(k *Key) uint32 { return uint32(maphash.Comparable(x.seed, *k)) }

// find returns the slot of k and true, or the probe position for an
// insert; tag is k's hash, for insert.
func (x *index) find(t *table, k *Key) (pos int, slot uint32, ok bool, tag uint32) {
	mask := len(x.refs) - 1
	tag = x.hash(k)
	i := int(tag) & mask
	for {
		ref := x.refs[i]
		if ref == 0 {
			return i, 0, false, tag
		}
		if x.tags[i] == tag && t.slot(ref-1).k == *k {
			return i, ref - 1, true, tag
		}
		i = (i + 1) & mask
	}
}

// insert records slot for a key with hash tag at probe position pos (from
// a failed find).
func (x *index) insert(pos int, slot, tag uint32) {
	x.refs[pos] = slot + 1
	x.tags[pos] = tag
	x.n++
	if x.n*4 > len(x.refs)*3 {
		x.grow()
	}
}

func (x *index) grow() {
	oldRefs, oldTags := x.refs, x.tags
	x.refs = make([]uint32, 2*len(oldRefs))
	x.tags = make([]uint32, 2*len(oldRefs))
	mask := len(x.refs) - 1
	for j, ref := range oldRefs {
		if ref == 0 {
			continue
		}
		tag := oldTags[j]
		i := int(tag) & mask
		for x.refs[i] != 0 {
			i = (i + 1) & mask
		}
		x.refs[i], x.tags[i] = ref, tag
	}
}

// remove deletes the reference at pos, shifting later entries of the probe
// run back so that no tombstones are needed.
func (x *index) remove(pos int) {
	mask := len(x.refs) - 1
	x.refs[pos] = 0
	x.n--
	i := pos
	for {
		i = (i + 1) & mask
		ref := x.refs[i]
		if ref == 0 {
			return
		}
		home := int(x.tags[i]) & mask
		// Move ref into the hole at pos unless its home lies cyclically
		// in (pos, i].
		if (i > pos && (home <= pos || home > i)) || (i < pos && home <= pos && home > i) {
			x.refs[pos], x.tags[pos] = ref, x.tags[i]
			x.refs[i] = 0
			pos = i
		}
	}
}
