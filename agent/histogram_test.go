package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/ctsync/ctsync/stats"
)

func TestDurationsHistogram(t *testing.T) {
	var d durations
	if h := d.snapshot(); h.Count != 0 || len(h.Counts) != len(stats.DurationBuckets) {
		t.Fatalf("empty: %+v", h)
	}
	for _, v := range []time.Duration{500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 300 * time.Millisecond, 2 * time.Minute} {
		d.observe(v)
	}
	h := d.snapshot()
	want := make([]uint64, len(stats.DurationBuckets))
	want[0] = 2 // 0.5 ms and 1 ms: at most 1 ms (upper bounds are inclusive)
	want[1] = 1 // 2 ms
	want[slices.Index(stats.DurationBuckets, 0.5)] = 1
	// 2 minutes is above the last bound: in Count only.
	if h.Count != 5 || !slices.Equal(h.Counts, want) {
		t.Errorf("got count %d buckets %v, want 5 and %v", h.Count, h.Counts, want)
	}
	if h.Sum < 120.30 || h.Sum > 120.31 {
		t.Errorf("sum %v", h.Sum)
	}
	if !slices.IsSorted(stats.DurationBuckets) || stats.DurationBuckets[0] != 0.001 || stats.DurationBuckets[len(stats.DurationBuckets)-1] != 60 {
		t.Errorf("buckets %v: want 1 ms to 60 s, sorted", stats.DurationBuckets)
	}
}
