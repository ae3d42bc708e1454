// Package metrics serves the daemon's statistics (stats.Stats) to
// Prometheus over HTTP, on metrics.listen:
//
//	curl http://127.0.0.1:9469/metrics
//
// It is built on the Prometheus client library: a collector reads a fresh
// stats.Stats at every scrape and turns it into constant metrics (nothing
// is kept between scrapes), beside the library's process and Go runtime
// collectors; promhttp negotiates the format with the scraper. Families
// appear only for what exists or happened (per-peer metrics before any
// peer is known, the last commit before any commit are left out); points
// in time are _timestamp_seconds gauges, identifiers (epochs) labels of
// _info gauges, and the commit and takeover durations the agent keeps in
// stats.Histogram become histograms.
//
// GET or HEAD /metrics answers the metrics, / a short pointer to them,
// anything else 404 (another method on /metrics 405).
package metrics
