package stats

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
