package stats

import "time"

// Stats is everything `ctsync stats` shows; it is JSON-encoded as is:
// keys in snake_case, durations in seconds (keys ending in _seconds),
// points in time as RFC 3339 strings (keys ending in _at, left out when
// the event never happened), 64-bit identifiers (epochs) as decimal
// strings, which JSON tools that read numbers as doubles cannot round.
type Stats struct {
	Node          string        `json:"node"`
	Build         Build         `json:"build"`
	UptimeSeconds float64       `json:"uptime_seconds"`
	Started       time.Time     `json:"started_at"`
	Ready         bool          `json:"ready"`
	Mode          string        `json:"mode"` // commit.mode: commit or hot
	Role          string        `json:"role"` // the last keepalived transition: master, backup, fault, or "" before any
	Kernel        Kernel        `json:"kernel"`
	Internal      Internal      `json:"internal_cache"`
	External      []Origin      `json:"external_cache"`
	Commit        Commit        `json:"commit"`
	Purge         Purge         `json:"purge"`
	Hot           Hot           `json:"hot"`
	Gate          Gate          `json:"gate"`
	Sync          Sync          `json:"sync"`
	Control       Control       `json:"control"`
	Transitions   uint64        `json:"transitions"`
	LastNotify    *NotifyResult `json:"last_notify,omitempty"`
	LastNotifyAt  time.Time     `json:"last_notify_at,omitzero"`
	// Takeovers are the durations of the master transitions, from the
	// notify to the gate's removal (for metrics; not in JSON).
	Takeovers Histogram `json:"-"`
	// Insecure is cluster.insecure: cluster traffic is neither encrypted
	// nor authenticated (`ctsync stats` shows a warning first).
	Insecure bool `json:"insecure"`
}

// Build describes the running binary.
type Build struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
}

// Kernel counts what came from the kernel.
type Kernel struct {
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

// Internal describes the internal cache.
type Internal struct {
	Flows     int    `json:"flows"`
	Version   uint64 `json:"version"`
	Upserts   uint64 `json:"changes"`
	Deletes   uint64 `json:"deletes"`
	Unchanged uint64 `json:"unchanged_updates"`
	Full      uint64 `json:"dropped_full"`
	LogLen    int    `json:"change_log"`
	Lost      uint64 `json:"readers_lost"`
}

// Commit describes commits.
type Commit struct {
	Commits   uint64        `json:"commits"`
	Committed uint64        `json:"flows_committed"`
	Failed    uint64        `json:"flows_failed"`
	Skipped   uint64        `json:"flows_skipped"` // peers' flows this node refuses: not written
	Last      *CommitResult `json:"last,omitempty"`
	LastAt    time.Time     `json:"last_at,omitzero"` // when the last commit ended
	// Durations of the commits (for metrics; not in JSON).
	Durations Histogram `json:"-"`
}

// Hot describes hot standby (commit.mode: hot): the peers' flows this
// node keeps in its kernel table ahead of a failover.
type Hot struct {
	Active  bool   `json:"active"`  // hot mode on and this node is not master
	Flows   int    `json:"flows"`   // peers' flows held in the kernel table
	Pending int    `json:"pending"` // changes not yet written to the kernel
	Created uint64 `json:"created"`
	Updated uint64 `json:"updated"` // timeouts refreshed and attributes changed
	Deleted uint64 `json:"deleted"`
	Failed  uint64 `json:"failed"`
	Skipped uint64 `json:"skipped"` // peers' flows this node refuses, not written (each time one is looked at)
}

// Gate describes the commit gate (commit.gate): while this node is
// backup or fault, packets of flows its kernel table does not know are
// dropped, so that none is answered with a reset or creates a new NAT
// mapping before the takeover has put the flows in place.
type Gate struct {
	Enabled     bool    `json:"enabled"`
	Armed       bool    `json:"armed"`
	Dropped     uint64  `json:"dropped"`      // packets dropped while armed (now, or in the last armed period)
	LastSeconds float64 `json:"last_seconds"` // from the last notify master to the gate's removal
}

// Purge describes purges.
type Purge struct {
	Scheduled uint64     `json:"scheduled"`
	Runs      uint64     `json:"runs"`
	Deleted   uint64     `json:"flows_deleted"`
	Pending   *time.Time `json:"pending_at,omitempty"`
}

// Control describes the control socket. The control server fills it in;
// the agent leaves it zero.
type Control struct {
	// Rejected counts requests refused because the peer was neither root
	// nor the daemon's own user.
	Rejected uint64 `json:"rejected"`
}
