package cache

import "hash/maphash"

// index maps keys to slab slots: open addressing with linear probing over
// 4-byte slot references (0 = empty, else slot+1), keys compared in the
// slab. It costs 5-11 bytes per flow where a Go map of the 40-byte keys
// costs about 100. The hash is seeded per table so that keys an attacker
// can choose (addresses, ports) cannot be made to collide.
type index struct {
	refs []uint32
	n    int
	seed maphash.Seed
}

func newIndex() index { return index{refs: make([]uint32, 16), seed: maphash.MakeSeed()} }

func (x *index) hash(k *Key) uint64 { return maphash.Comparable(x.seed, *k) }

// find returns the slot of k and true, or the probe position for an insert.
func (x *index) find(t *table, k *Key) (pos int, slot uint32, ok bool) {
	mask := len(x.refs) - 1
	i := int(x.hash(k)) & mask
	for {
		ref := x.refs[i]
		if ref == 0 {
			return i, 0, false
		}
		if t.slot(ref-1).k == *k {
			return i, ref - 1, true
		}
		i = (i + 1) & mask
	}
}

// insert records slot for k at probe position pos (from a failed find).
func (x *index) insert(t *table, pos int, slot uint32) {
	x.refs[pos] = slot + 1
	x.n++
	if x.n*4 > len(x.refs)*3 {
		x.grow(t)
	}
}

func (x *index) grow(t *table) {
	old := x.refs
	x.refs = make([]uint32, 2*len(old))
	mask := len(x.refs) - 1
	for _, ref := range old {
		if ref == 0 {
			continue
		}
		i := int(x.hash(&t.slot(ref-1).k)) & mask
		for x.refs[i] != 0 {
			i = (i + 1) & mask
		}
		x.refs[i] = ref
	}
}

// remove deletes the reference at pos, shifting later entries of the probe
// run back so that no tombstones are needed.
func (x *index) remove(t *table, pos int) {
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
		home := int(x.hash(&t.slot(ref-1).k)) & mask
		// Move ref into the hole at pos unless its home lies cyclically
		// in (pos, i].
		if (i > pos && (home <= pos || home > i)) || (i < pos && home <= pos && home > i) {
			x.refs[pos] = ref
			x.refs[i] = 0
			pos = i
		}
	}
}
