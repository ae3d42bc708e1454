package cache

// Apply stores one entry from origin (tests; the sync layer applies a
// message's entries with ApplyBatch). Entries from another epoch, or older
// than what is held, are refused (false) and counted as stale.
func (e *External) Apply(name string, epoch uint64, en *Entry) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.originLocked(name)
	if o.epoch != epoch {
		o.stats.Stale++
		return false
	}
	if !en.Deleted {
		en.Key = KeyOf(&en.Flow)
	}
	return e.applyLocked(o, en, o.t.idx.hash(&en.Key), e.opts.Clock())
}
