// Package agent is the ctsync daemon's core: it wires the kernel table, the
// two caches, replication and the control API together.
//
// One goroutine (Run's loop) owns the ordering-sensitive work on the
// internal cache: it applies the kernel's events in order, runs kernel
// resyncs (dump, then sweep), and nothing else writes the internal cache, so
// a dump and the events around it can never leave a stale flow behind. A
// watcher goroutine reads events from the kernel into a bounded queue; when
// the queue is full the watcher waits, the kernel's socket buffer fills, the
// kernel reports an overrun and the loop resyncs from a dump: lost events
// are repaired, never silent. Commits, purges and keepalived transitions
// run on the caller's goroutine, serialised by a transition lock, and hand
// cache work to the loop.
//
// Agent implements control.Backend. It is not a library: cmd/ctsync builds
// one from the configuration and runs it.
package agent
