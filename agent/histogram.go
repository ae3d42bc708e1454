package agent

import (
	"slices"
	"sync"
	"time"
)

// DurationBuckets are the upper bounds, in seconds, of the duration
// histograms in Stats: 1 ms to 60 s, about three per decade.
var DurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Histogram is a snapshot of durations observed so far, in the shape of a
// Prometheus histogram: Counts[i] are the observations of at most
// DurationBuckets[i] seconds and above the previous bound (not
// cumulative); observations above the last bound count only in Count.
type Histogram struct {
	Count  uint64
	Sum    float64 // seconds
	Counts []uint64
}

// durations accumulates a Histogram. Observations are rare (one per
// commit or takeover), so a mutex keeps Count, Sum and the buckets
// consistent with each other.
type durations struct {
	mu     sync.Mutex
	count  uint64
	sum    float64
	counts [16]uint64 // len(DurationBuckets) + 1 (above the last bound)
}

func (d *durations) observe(v time.Duration) {
	s := v.Seconds()
	i, _ := slices.BinarySearch(DurationBuckets, s)
	d.mu.Lock()
	d.count++
	d.sum += s
	d.counts[i]++
	d.mu.Unlock()
}

func (d *durations) snapshot() Histogram {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Histogram{Count: d.count, Sum: d.sum, Counts: slices.Clone(d.counts[:len(DurationBuckets)])}
}
