package stats

import "time"

// Peer describes the replication with one peer.
type Peer struct {
	Peer      string `json:"peer"`
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
	// Outgoing: this node's flows to the peer.
	CaughtUp    bool   `json:"caught_up"`
	Pending     int64  `json:"pending"` // changes not yet sent (replication lag)
	SentBytes   uint64 `json:"sent_bytes"`
	SentMsgs    uint64 `json:"sent_msgs"`
	SentEntries uint64 `json:"sent_entries"`
	Snapshots   uint64 `json:"snapshots_sent"`
	SendErrors  uint64 `json:"send_errors"`
	LastError   string `json:"last_error,omitempty"`
	// Incoming: the peer's flows to this node.
	RecvBytes   uint64 `json:"recv_bytes"`
	RecvMsgs    uint64 `json:"recv_msgs"`
	RecvEntries uint64 `json:"recv_entries"`
	Stale       uint64 `json:"stale_rejected"`
	Mismatches  uint64 `json:"digest_mismatches"`
	ResyncAsked uint64 `json:"resyncs_requested"`
	// LastDigestMatch is when the peer's digest last matched the flows
	// held here; the zero time (left out of JSON) if it never did.
	LastDigestMatch time.Time `json:"last_digest_match_at,omitzero"`
	InSync          bool      `json:"in_sync"`
	// Expectations, sent and received in whole sets.
	SentExpects   uint64 `json:"sent_expectations"`
	RecvExpects   uint64 `json:"recv_expectations"`
	ExpMismatches uint64 `json:"expectation_digest_mismatches"`
	// CopyTruncated: this node's copy of the peer's flows is incomplete
	// because the external cache is full (cache.max_flows); ResyncsHeld
	// counts the snapshots not asked for because of it (they would be cut
	// the same way) until there is room.
	CopyTruncated bool   `json:"copy_truncated"`
	ResyncsHeld   uint64 `json:"resyncs_held_back"`
}

// Sync are the replication counters of a node (sync.Node.Stats).
type Sync struct {
	Node           string `json:"node"`
	Epoch          uint64 `json:"epoch,string"` // a string: 64 bits do not fit a JSON tool's double
	Members        int    `json:"members_alive"`
	Health         int    `json:"memberlist_health"` // 0 is best
	AuthFailures   uint64 `json:"auth_failures"`
	DecodeErrors   uint64 `json:"decode_errors"`
	BadHellos      uint64 `json:"bad_hellos"`
	UnexpectedMsgs uint64 `json:"unexpected_messages"`
	JoinFailures   uint64 `json:"join_failures"`
	Peers          []Peer `json:"peers"`
	// StreamsRefused counts authenticated streams refused for the origin
	// their hello names: not a live member, a member alive at another
	// address, or an older session of an open stream.
	StreamsRefused uint64 `json:"streams_refused"`
	// PreAuthRefused counts connections to the cluster port closed at once
	// because the bound on unauthenticated connections, overall or from
	// their source address, was reached (preauth.go).
	PreAuthRefused uint64 `json:"preauth_refused"`
}
