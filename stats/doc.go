// Package stats holds the types of the daemon's statistics: what
// `ctsync stats` shows, GET /v1/stats answers and the metrics endpoint
// reads. It is data only (no counters, no I/O) and imports nothing of
// ours, so that the side that fills the statistics (agent, sync, cache,
// control) and the sides that read them (control's Backend, metrics,
// cmd/ctsync) all import it and none imports the other.
//
// The results of commits and keepalived transitions (CommitResult,
// NotifyResult) live here too because Stats holds the last ones; control
// names them for its API.
package stats
