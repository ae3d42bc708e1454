// Package metrics serves the daemon's statistics (agent.Stats) in the
// Prometheus text exposition format (version 0.0.4) over HTTP, on
// metrics.listen:
//
//	curl http://127.0.0.1:9469/metrics
//
// It keeps no state of its own: every scrape asks the agent for a fresh
// agent.Stats and renders it. The format is written by hand (no client
// library): counter and gauge families only, each with one HELP and one
// TYPE line, families sorted by name and series by labels, so the output
// is stable. A family with no series (per-peer metrics before any peer is
// known, the last commit before any commit) is left out.
//
// GET or HEAD /metrics answers the metrics, / a short pointer to them,
// anything else 404 (another method on /metrics 405).
package metrics
