package agent

import (
	"slices"
	"sync"
	"time"

	"github.com/ctsync/ctsync/stats"
)

// durations accumulates a stats.Histogram. Observations are rare (one per
// commit or takeover), so a mutex keeps Count, Sum and the buckets
// consistent with each other.
type durations struct {
	mu     sync.Mutex
	count  uint64
	sum    float64
	counts [16]uint64 // len(stats.DurationBuckets) + 1 (above the last bound)
}

func (d *durations) observe(v time.Duration) {
	s := v.Seconds()
	i, _ := slices.BinarySearch(stats.DurationBuckets, s)
	d.mu.Lock()
	d.count++
	d.sum += s
	d.counts[i]++
	d.mu.Unlock()
}

func (d *durations) snapshot() stats.Histogram {
	d.mu.Lock()
	defer d.mu.Unlock()
	return stats.Histogram{Count: d.count, Sum: d.sum, Counts: slices.Clone(d.counts[:len(stats.DurationBuckets)])}
}
