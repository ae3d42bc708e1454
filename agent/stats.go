package agent

import (
	"sync/atomic"
	"time"

	"github.com/ctsync/ctsync/stats"
)

// counters are the agent's own counters, read by Agent.stats.
type counters struct {
	events          [4]atomic.Uint64 // by flow.EventType
	filtered        atomic.Uint64
	cacheFull       atomic.Uint64
	overruns        atomic.Uint64
	watchRestarts   atomic.Uint64
	resyncs         atomic.Uint64
	resyncFailures  atomic.Uint64
	lastResync      atomic.Int64 // ns
	lastResyncAt    atomic.Int64 // Unix ns; 0 before any
	commits         atomic.Uint64
	committed       atomic.Uint64
	commitFailed    atomic.Uint64
	commitSkipped   atomic.Uint64
	lastCommit      atomic.Pointer[stats.CommitResult]
	lastCommitAt    atomic.Int64 // Unix ns; 0 before any
	commitDurations durations
	purgesScheduled atomic.Uint64
	purges          atomic.Uint64
	purged          atomic.Uint64
	transitions     atomic.Uint64
	lastTransition  atomic.Pointer[stats.NotifyResult]
	lastNotifyAt    atomic.Int64 // Unix ns; 0 before any
	takeovers       durations    // notify master to the gate's removal
}

// unixNano is the time of a Unix nanosecond count, the zero time for 0
// (never): JSON leaves it out (omitzero) and metrics do not show it.
func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// BuildInfo describes the running binary (Options.Build); Stats shows it.
type BuildInfo = stats.Build

// stats gathers the statistics of the agent and of the components it
// owns (caches, cluster node); Stats.Control is the control server's.
func (a *Agent) stats() stats.Stats {
	is := a.in.Stats()
	s := stats.Stats{
		Node: a.cfg.Node, Build: a.build, UptimeSeconds: time.Since(a.start).Seconds(), Started: a.start, Ready: a.ready.Load(),
		Insecure: a.cfg.Cluster.Insecure,
		Kernel: stats.Kernel{
			EventsNew: a.st.events[1].Load(), EventsUpdate: a.st.events[2].Load(), EventsDestroy: a.st.events[3].Load(),
			Filtered: a.st.filtered.Load(), Overruns: a.st.overruns.Load(), WatchRestarts: a.st.watchRestarts.Load(),
			Resyncs: a.st.resyncs.Load(), ResyncFailures: a.st.resyncFailures.Load(),
			LastResyncSecs: time.Duration(a.st.lastResync.Load()).Seconds(),
			LastResyncAt:   unixNano(a.st.lastResyncAt.Load()),
		},
		Internal: stats.Internal{Flows: is.Flows, Version: is.Version, Upserts: is.Upserts, Deletes: is.Deletes,
			Unchanged: is.Unchanged, Full: is.Full + a.st.cacheFull.Load(), LogLen: is.LogLen, Lost: is.Lost},
		External: a.ext.Stats(),
		Commit: stats.Commit{Commits: a.st.commits.Load(), Committed: a.st.committed.Load(), Failed: a.st.commitFailed.Load(),
			Skipped: a.st.commitSkipped.Load(), Last: a.st.lastCommit.Load(), LastAt: unixNano(a.st.lastCommitAt.Load()),
			Durations: a.st.commitDurations.snapshot()},
		Mode:         a.cfg.Commit.Mode,
		Gate:         a.gateStats(),
		Purge:        stats.Purge{Scheduled: a.st.purgesScheduled.Load(), Runs: a.st.purges.Load(), Deleted: a.st.purged.Load()},
		Sync:         a.node.Stats(),
		Transitions:  a.st.transitions.Load(),
		LastNotify:   a.st.lastTransition.Load(),
		LastNotifyAt: unixNano(a.st.lastNotifyAt.Load()),
		Takeovers:    a.st.takeovers.snapshot(),
	}
	if r := a.role.Load(); r != nil {
		s.Role = *r
	}
	if a.hot != nil {
		s.Hot = a.hot.stats()
	}
	a.purgeMu.Lock()
	if a.purgeTimer != nil {
		at := a.purgeAt
		s.Purge.Pending = &at
	}
	a.purgeMu.Unlock()
	return s
}
