package agent

import (
	"sync/atomic"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/control"
	ctsync "github.com/ctsync/ctsync/sync"
)

// stats are the agent's own counters.
type stats struct {
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
	lastCommit      atomic.Pointer[control.CommitResult]
	lastCommitAt    atomic.Int64 // Unix ns; 0 before any
	commitDurations durations
	purgesScheduled atomic.Uint64
	purges          atomic.Uint64
	purged          atomic.Uint64
	transitions     atomic.Uint64
	lastTransition  atomic.Pointer[control.NotifyResult]
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

// Stats is everything `ctsync stats` shows; it is JSON-encoded as is:
// keys in snake_case, durations in seconds (keys ending in _seconds),
// points in time as RFC 3339 strings (keys ending in _at, left out when
// the event never happened), 64-bit identifiers (epochs) as decimal
// strings, which JSON tools that read numbers as doubles cannot round.
type Stats struct {
	Node          string                `json:"node"`
	Build         BuildInfo             `json:"build"`
	UptimeSeconds float64               `json:"uptime_seconds"`
	Started       time.Time             `json:"started_at"`
	Ready         bool                  `json:"ready"`
	Mode          string                `json:"mode"` // commit.mode: commit or hot
	Role          string                `json:"role"` // the last keepalived transition: master, backup, fault, or "" before any
	Kernel        KernelStats           `json:"kernel"`
	Internal      InternalStats         `json:"internal_cache"`
	External      []cache.OriginStats   `json:"external_cache"`
	Commit        CommitStats           `json:"commit"`
	Purge         PurgeStats            `json:"purge"`
	Hot           HotStats              `json:"hot"`
	Gate          GateStats             `json:"gate"`
	Sync          ctsync.Stats          `json:"sync"`
	Transitions   uint64                `json:"transitions"`
	LastNotify    *control.NotifyResult `json:"last_notify,omitempty"`
	LastNotifyAt  time.Time             `json:"last_notify_at,omitzero"`
	// Takeovers are the durations of the master transitions, from the
	// notify to the gate's removal (for metrics; not in JSON).
	Takeovers Histogram `json:"-"`
	// Insecure is cluster.insecure: cluster traffic is neither encrypted
	// nor authenticated (`ctsync stats` shows a warning first).
	Insecure bool `json:"insecure"`
}

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
}

// KernelStats count what came from the kernel.
type KernelStats struct {
	EventsNew      uint64    `json:"events_new"`
	EventsUpdate   uint64    `json:"events_update"`
	EventsDestroy  uint64    `json:"events_destroy"`
	Filtered       uint64    `json:"events_filtered"`
	Overruns       uint64    `json:"overruns"`
	WatchRestarts  uint64    `json:"watch_restarts"`
	Resyncs        uint64    `json:"resyncs"`
	ResyncFailures uint64    `json:"resync_failures"`
	LastResyncSecs float64   `json:"last_resync_seconds"`
	LastResyncAt   time.Time `json:"last_resync_at,omitzero"` // when the last resync ended
}

// InternalStats describe the internal cache.
type InternalStats struct {
	Flows     int    `json:"flows"`
	Version   uint64 `json:"version"`
	Upserts   uint64 `json:"changes"`
	Deletes   uint64 `json:"deletes"`
	Unchanged uint64 `json:"unchanged_updates"`
	Full      uint64 `json:"dropped_full"`
	LogLen    int    `json:"change_log"`
	Lost      uint64 `json:"readers_lost"`
}

// CommitStats describe commits.
type CommitStats struct {
	Commits   uint64                `json:"commits"`
	Committed uint64                `json:"flows_committed"`
	Failed    uint64                `json:"flows_failed"`
	Skipped   uint64                `json:"flows_skipped"` // peers' flows this node refuses: not written
	Last      *control.CommitResult `json:"last,omitempty"`
	LastAt    time.Time             `json:"last_at,omitzero"` // when the last commit ended
	// Durations of the commits (for metrics; not in JSON).
	Durations Histogram `json:"-"`
}

// HotStats describe hot standby (commit.mode: hot): the peers' flows this
// node keeps in its kernel table ahead of a failover.
type HotStats struct {
	Active  bool   `json:"active"`  // hot mode on and this node is not master
	Flows   int    `json:"flows"`   // peers' flows held in the kernel table
	Pending int    `json:"pending"` // changes not yet written to the kernel
	Created uint64 `json:"created"`
	Updated uint64 `json:"updated"` // timeouts refreshed and attributes changed
	Deleted uint64 `json:"deleted"`
	Failed  uint64 `json:"failed"`
	Skipped uint64 `json:"skipped"` // peers' flows this node refuses, not written (each time one is looked at)
}

// GateStats describe the commit gate (commit.gate): while this node is
// backup or fault, packets of flows its kernel table does not know are
// dropped, so that none is answered with a reset or creates a new NAT
// mapping before the takeover has put the flows in place.
type GateStats struct {
	Enabled     bool    `json:"enabled"`
	Armed       bool    `json:"armed"`
	Dropped     uint64  `json:"dropped"`      // packets dropped while armed (now, or in the last armed period)
	LastSeconds float64 `json:"last_seconds"` // from the last notify master to the gate's removal
}

// PurgeStats describe purges.
type PurgeStats struct {
	Scheduled uint64     `json:"scheduled"`
	Runs      uint64     `json:"runs"`
	Deleted   uint64     `json:"flows_deleted"`
	Pending   *time.Time `json:"pending_at,omitempty"`
}

func (a *Agent) stats() Stats {
	is := a.in.Stats()
	s := Stats{
		Node: a.cfg.Node, Build: a.build, UptimeSeconds: time.Since(a.start).Seconds(), Started: a.start, Ready: a.ready.Load(),
		Insecure: a.cfg.Cluster.Insecure,
		Kernel: KernelStats{
			EventsNew: a.st.events[1].Load(), EventsUpdate: a.st.events[2].Load(), EventsDestroy: a.st.events[3].Load(),
			Filtered: a.st.filtered.Load(), Overruns: a.st.overruns.Load(), WatchRestarts: a.st.watchRestarts.Load(),
			Resyncs: a.st.resyncs.Load(), ResyncFailures: a.st.resyncFailures.Load(),
			LastResyncSecs: time.Duration(a.st.lastResync.Load()).Seconds(),
			LastResyncAt:   unixNano(a.st.lastResyncAt.Load()),
		},
		Internal: InternalStats{Flows: is.Flows, Version: is.Version, Upserts: is.Upserts, Deletes: is.Deletes,
			Unchanged: is.Unchanged, Full: is.Full + a.st.cacheFull.Load(), LogLen: is.LogLen, Lost: is.Lost},
		External: a.ext.Stats(),
		Commit: CommitStats{Commits: a.st.commits.Load(), Committed: a.st.committed.Load(), Failed: a.st.commitFailed.Load(),
			Skipped: a.st.commitSkipped.Load(), Last: a.st.lastCommit.Load(), LastAt: unixNano(a.st.lastCommitAt.Load()),
			Durations: a.st.commitDurations.snapshot()},
		Mode:         a.cfg.Commit.Mode,
		Gate:         a.gateStats(),
		Purge:        PurgeStats{Scheduled: a.st.purgesScheduled.Load(), Runs: a.st.purges.Load(), Deleted: a.st.purged.Load()},
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
