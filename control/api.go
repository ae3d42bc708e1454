package control

import (
	"context"
	"errors"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// Backend is what the daemon exposes to the control socket. The agent
// implements it. Every method may block until its work is done (or ctx
// ends) and must be safe for concurrent use.
type Backend interface {
	// Commit writes the external cache into the kernel table.
	Commit(ctx context.Context) (CommitResult, error)
	// Flush empties the internal cache, the external cache, or both ("").
	Flush(ctx context.Context, which string) error
	// ResyncKernel rebuilds the internal cache from a kernel dump.
	ResyncKernel(ctx context.Context) (ResyncResult, error)
	// ResyncPeers asks every peer to send its flows again.
	ResyncPeers(ctx context.Context) (int, error)
	// SendBulk sends every internal flow to every peer again.
	SendBulk(ctx context.Context) (int, error)
	// Purge schedules the deletion from the kernel of every flow the
	// replication filter would replicate, after the given delay (0 means
	// the configured purge_timeout); a commit before then cancels it.
	Purge(ctx context.Context, after time.Duration) (PurgeResult, error)
	// Cache streams the flows of one cache that match q to fn.
	// fn writes to the client's connection and may block on a slow
	// reader (its error ends the listing): do not hold locks across it
	// that replication needs.
	Cache(ctx context.Context, q CacheQuery, fn func(origin string, f *flow.Flow) error) error
	// Stats returns the daemon's statistics. The server fills in
	// Stats.Control itself.
	Stats(ctx context.Context) (stats.Stats, error)
	// Members lists the cluster members.
	Members(ctx context.Context) ([]Member, error)
	// Notify performs a keepalived transition: master, backup, fault or stop.
	Notify(ctx context.Context, state string) (NotifyResult, error)
	// Health says whether this node is ready to take over.
	Health(ctx context.Context) (HealthResult, error)
	// Shutdown stops the daemon (asynchronously, after answering).
	Shutdown(ctx context.Context) error

	// ListKeys asks every cluster member which keys it holds.
	ListKeys(ctx context.Context) (KeysResult, error)
	// InstallKey adds a key (16, 24 or 32 bytes) to every member's keyring.
	InstallKey(ctx context.Context, key []byte) (KeysResult, error)
	// UseKey makes an installed key every member's primary key.
	UseKey(ctx context.Context, key []byte) (KeysResult, error)
	// RemoveKey drops a key that is not primary from every member.
	RemoveKey(ctx context.Context, key []byte) (KeysResult, error)
}

// ErrInvalid marks a Backend error caused by the request itself (an unknown
// origin node, a transition the node cannot make now): the server answers
// it with 400 instead of 500. Wrap it: fmt.Errorf("origin %q: %w", o, ErrInvalid).
var ErrInvalid = errors.New("invalid request")

// CommitResult is the outcome of a commit (defined in stats, whose Stats
// holds the last one).
type CommitResult = stats.CommitResult

// ResyncResult is the outcome of a kernel resync.
type ResyncResult struct {
	Flows   int     `json:"flows"`   // flows in the internal cache afterwards
	Removed int     `json:"removed"` // cached flows the kernel no longer had
	Seconds float64 `json:"seconds"`
}

// PurgeResult says when a scheduled purge will run.
type PurgeResult struct {
	At      time.Time `json:"at"`
	Seconds float64   `json:"after_seconds"`
}

// NotifyStep is one step of a transition.
type NotifyStep = stats.NotifyStep

// NotifyResult is the outcome of a keepalived transition (defined in
// stats, whose Stats holds the last one).
type NotifyResult = stats.NotifyResult

// HealthResult says whether the node can take over, and if not, why.
type HealthResult struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

// Member is a cluster member as this node's memberlist sees it now.
type Member struct {
	Name      string  `json:"name"`
	Addr      string  `json:"addr"`
	State     string  `json:"state"`         // alive, suspect, dead, left
	Since     float64 `json:"since_seconds"` // how long it has been in that state
	Self      bool    `json:"self"`
	Connected bool    `json:"connected"` // this node's stream to it is up
	InSync    bool    `json:"in_sync"`   // both directions caught up
}

// CacheQuery selects flows of a cache and how to print them.
type CacheQuery struct {
	Cache  string      `json:"cache"`  // "internal" or "external"
	Origin string      `json:"origin"` // external only: one origin node ("" = all)
	Filter flow.Filter `json:"filter"`
	// Extra holds table list's criteria that Filter does not cover (GRE
	// keys, DCCP role, exact timeout). The server applies it to what
	// Backend.Cache yields, so a Backend may ignore it.
	Extra flow.ExtraFilter `json:"extra"`
	Count bool             `json:"count"` // only count
	// Expect lists the cache's expectations instead of its flows, as
	// conntrack -L expect prints them (text only; Filter and Extra do not
	// apply). The Backend must implement ExpectBackend.
	Expect bool `json:"expect,omitempty"`
	// Output: the same formats as `ctsync table list`.
	Format   string `json:"format"` // text (default), save, json
	Extended bool   `json:"extended"`
	ID       bool   `json:"id"`
}

// KeyInfo is one cluster key as the members hold it. The key itself is
// never shown: Fingerprint is the first 8 hex digits of its SHA-256.
type KeyInfo struct {
	Fingerprint string `json:"fingerprint"`
	Nodes       int    `json:"nodes"`   // members holding it
	Primary     int    `json:"primary"` // members encrypting with it
}

// KeysResult is the outcome of a cluster-wide key operation.
type KeysResult struct {
	Op       string            `json:"op"`       // list, install, use or remove
	Key      string            `json:"key"`      // the fingerprint of the key installed, used or removed
	Nodes    int               `json:"nodes"`    // members asked, this node included
	Answered int               `json:"answered"` // members that answered
	Errors   map[string]string `json:"errors,omitempty"`
	Keys     []KeyInfo         `json:"keys,omitempty"` // list: primary first
}

// ExpectBackend is implemented by a Backend whose caches hold
// expectations (the agent's).
type ExpectBackend interface {
	// CacheExpect streams the expectations of one cache (q.Cache, and
	// q.Origin for the external one) to fn.
	CacheExpect(ctx context.Context, q CacheQuery, fn func(origin string, x *flow.Expect) error) error
}
