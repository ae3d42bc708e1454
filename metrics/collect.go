package metrics

import (
	"time"

	"github.com/ctsync/ctsync/agent"
)

// Render returns s in the text exposition format.
func Render(s agent.Stats) ([]byte, error) {
	b := newBuilder()
	collect(b, s)
	return b.render()
}

// collect turns one agent.Stats into metric families. Every family is
// documented in README.md ("Metrics"); keep the two in step.
func collect(b *builder, s agent.Stats) {
	// The node.
	b.gauge("ctsync_up", "Always 1: the daemon answered this scrape.", 1)
	b.gauge("ctsync_node_info", "Always 1; the node label is this node's name (node in the configuration).", 1, "node", s.Node)
	b.gaugeBool("ctsync_ready", "1 once the internal cache is loaded from the kernel table.", s.Ready)
	b.gaugeBool("ctsync_cluster_insecure", "1 when cluster.insecure is true: cluster traffic is neither encrypted nor authenticated.", s.Insecure)
	b.gauge("ctsync_uptime_seconds", "Seconds since the daemon started.", s.UptimeSeconds)
	b.gauge("ctsync_mode", "Always 1; the mode label is commit.mode (commit or hot).", 1, "mode", s.Mode)
	b.gauge("ctsync_role", `Always 1; the role label is the state of the last keepalived transition (master, backup, fault, stop; "" before any).`, 1, "role", s.Role)
	b.counter("ctsync_transitions_total", "keepalived transitions (ctsync notify) handled.", s.Transitions)
	if n := s.LastNotify; n != nil {
		var secs float64
		for _, st := range n.Steps {
			secs += st.Seconds
		}
		b.gauge("ctsync_notify_last_duration_seconds", "Duration of the last keepalived transition, all its steps.", secs)
	}

	// The kernel table.
	k := s.Kernel
	const events = "Conntrack events received from the kernel, by type."
	b.counter("ctsync_kernel_events_total", events, k.EventsNew, "type", "new")
	b.counter("ctsync_kernel_events_total", events, k.EventsUpdate, "type", "update")
	b.counter("ctsync_kernel_events_total", events, k.EventsDestroy, "type", "destroy")
	b.counter("ctsync_kernel_events_filtered_total", "Kernel events left out by the filter.", k.Filtered)
	b.counter("ctsync_kernel_overruns_total", "Kernel event socket overruns (events lost; each triggers a resync).", k.Overruns)
	b.counter("ctsync_kernel_watch_restarts_total", "Restarts of the kernel event watch.", k.WatchRestarts)
	b.counter("ctsync_kernel_resyncs_total", "Internal cache rebuilds from a dump of the kernel table.", k.Resyncs)
	b.counter("ctsync_kernel_resync_failures_total", "Kernel resyncs that failed.", k.ResyncFailures)
	b.gauge("ctsync_kernel_last_resync_duration_seconds", "Duration of the last kernel resync (0 before any).", k.LastResyncSecs)

	// The internal cache: this node's own flows.
	in := s.Internal
	b.gaugeInt("ctsync_internal_flows", "Flows in the internal cache (this node's own).", int64(in.Flows))
	b.gaugeInt("ctsync_internal_change_log_entries", "Entries in the internal cache's change log.", int64(in.LogLen))
	b.counter("ctsync_internal_changes_total", "Flows created or changed in the internal cache.", in.Upserts)
	b.counter("ctsync_internal_deletes_total", "Flows deleted from the internal cache.", in.Deletes)
	b.counter("ctsync_internal_unchanged_updates_total", "Kernel updates that changed nothing replicated.", in.Unchanged)
	b.counter("ctsync_internal_dropped_full_total", "Flows not cached because the internal cache was full (cache.max_flows).", in.Full)
	b.counter("ctsync_internal_readers_lost_total", "Change-log readers (peer streams) that fell behind and needed a snapshot.", in.Lost)

	// The external cache: the peers' flows, by origin node.
	for _, o := range s.External {
		l := []string{"origin", o.Origin}
		b.gaugeInt("ctsync_external_flows", "Flows held in the external cache, by origin node.", int64(o.Flows), l...)
		b.gaugeBool("ctsync_external_synced", "1 when the origin's last snapshot is complete.", o.Synced, l...)
		b.gaugeUint("ctsync_external_epoch", "The origin's incarnation (a random number per start) whose flows are held.", o.Epoch, l...)
		b.gauge("ctsync_external_owner_last_word_seconds", "Seconds since the origin last vouched for its flows.", o.VouchedAge, l...)
		b.counter("ctsync_external_applied_total", "Updates and deletes from the origin applied.", o.Applied, l...)
		b.counter("ctsync_external_stale_total", "Updates from the origin rejected as older than what is held.", o.Stale, l...)
		b.counter("ctsync_external_dropped_full_total", "Flows from the origin dropped because the external cache was full (cache.max_flows, all origins together).", o.Full, l...)
		b.counter("ctsync_external_expired_total", "Flows from the origin aged out.", o.Expired, l...)
		b.counter("ctsync_external_snapshots_total", "Snapshots received from the origin.", o.Snapshots, l...)
	}

	// Replication.
	y := s.Sync
	b.gaugeInt("ctsync_sync_members_alive", "Cluster members alive, this node included.", int64(y.Members))
	b.gaugeInt("ctsync_sync_memberlist_health_score", "memberlist's health score (0 is best).", int64(y.Health))
	b.gaugeUint("ctsync_sync_epoch", "This node's incarnation (a random number per start), as sent to its peers.", y.Epoch)
	b.counter("ctsync_sync_auth_failures_total", "Replication streams, frames or memberlist packets refused for a bad cluster key or label.", y.AuthFailures)
	b.counter("ctsync_sync_decode_errors_total", "Cluster messages that could not be decoded.", y.DecodeErrors)
	b.counter("ctsync_sync_bad_hellos_total", "Stream handshakes refused.", y.BadHellos)
	b.counter("ctsync_sync_unexpected_messages_total", "Cluster messages of an unexpected kind.", y.UnexpectedMsgs)
	b.counter("ctsync_sync_join_failures_total", "Failed attempts to join the cluster.", y.JoinFailures)
	b.counter("ctsync_sync_streams_refused_total", "Authenticated streams refused for their origin (not a live member, a member at another address, or an older session).", y.StreamsRefused)
	b.counter("ctsync_sync_preauth_refused_total", "Connections to the cluster port closed at once: too many unauthenticated ones, overall or from their source.", y.PreAuthRefused)
	for _, p := range y.Peers {
		l := []string{"peer", p.Peer}
		b.gaugeBool("ctsync_sync_peer_connected", "1 while the stream of this node's flows to the peer is up.", p.Connected, l...)
		b.gaugeBool("ctsync_sync_peer_caught_up", "1 when the peer has every change of this node's flows.", p.CaughtUp, l...)
		b.gaugeBool("ctsync_sync_peer_in_sync", "1 when caught up and the peer's flows held here are confirmed by a recent digest.", p.InSync, l...)
		b.gaugeInt("ctsync_sync_peer_pending", "Changes of this node's flows not yet sent to the peer (replication lag).", p.Pending, l...)
		age := -1.0
		if !p.LastDigestMatch.IsZero() {
			age = time.Since(p.LastDigestMatch).Seconds()
		}
		b.gauge("ctsync_sync_peer_last_digest_match_seconds", "Seconds since the peer's digest last matched the flows held here (-1: never).", age, l...)
		b.counter("ctsync_sync_peer_sent_bytes_total", "Bytes sent to the peer.", p.SentBytes, l...)
		b.counter("ctsync_sync_peer_sent_messages_total", "Messages sent to the peer.", p.SentMsgs, l...)
		b.counter("ctsync_sync_peer_sent_entries_total", "Flow changes sent to the peer.", p.SentEntries, l...)
		b.counter("ctsync_sync_peer_snapshots_sent_total", "Full snapshots sent to the peer.", p.Snapshots, l...)
		b.counter("ctsync_sync_peer_send_errors_total", "Errors sending to the peer.", p.SendErrors, l...)
		b.counter("ctsync_sync_peer_recv_bytes_total", "Bytes received from the peer.", p.RecvBytes, l...)
		b.counter("ctsync_sync_peer_recv_messages_total", "Messages received from the peer.", p.RecvMsgs, l...)
		b.counter("ctsync_sync_peer_recv_entries_total", "Flow changes received from the peer.", p.RecvEntries, l...)
		b.counter("ctsync_sync_peer_stale_total", "Changes from the peer rejected as stale.", p.Stale, l...)
		b.counter("ctsync_sync_peer_digest_mismatches_total", "Digests from the peer that did not match the flows held here.", p.Mismatches, l...)
		b.counter("ctsync_sync_peer_resyncs_requested_total", "Snapshots asked of the peer (after a digest mismatch, or ctsync resync peers).", p.ResyncAsked, l...)
		b.gaugeBool("ctsync_sync_peer_copy_truncated", "1 while the peer's flows held here are incomplete because the external cache is full (cache.max_flows).", p.CopyTruncated, l...)
		b.counter("ctsync_sync_peer_resyncs_held_back_total", "Snapshots not asked of the peer after a digest mismatch because the external cache is full.", p.ResyncsHeld, l...)
	}

	// Commits and purges.
	c := s.Commit
	b.counter("ctsync_commits_total", "Commits of the external cache to the kernel table.", c.Commits)
	b.counter("ctsync_commit_flows_committed_total", "Flows written to the kernel table by commits (created or replaced).", c.Committed)
	b.counter("ctsync_commit_flows_failed_total", "Flows that commits failed to write.", c.Failed)
	b.counter("ctsync_commit_flows_skipped_total", "Peers' flows commits skipped: this node refuses them (its filter, loopback, its own addresses).", c.Skipped)
	if l := c.Last; l != nil {
		b.gauge("ctsync_commit_last_duration_seconds", "Duration of the last commit.", l.Seconds)
		b.gaugeInt("ctsync_commit_last_created_flows", "Flows the last commit created.", int64(l.Created))
		b.gaugeInt("ctsync_commit_last_replaced_flows", "Flows the last commit replaced (they existed already).", int64(l.Replaced))
		b.gaugeInt("ctsync_commit_last_failed_flows", "Flows the last commit failed to write.", int64(l.Failed))
		b.gaugeInt("ctsync_commit_last_skipped_flows", "Peers' flows the last commit skipped (this node refuses them).", int64(l.Skipped))
		b.gaugeInt("ctsync_commit_last_kept_local_flows", "Flows the last commit did not write because a live local entry stays.", int64(l.KeptLocal))
		b.gaugeInt("ctsync_commit_last_remaining_flows", "Flows the last commit did not write (failed or kept local); the next commit retries them.", int64(l.Remaining))
	}
	p := s.Purge
	b.counter("ctsync_purges_scheduled_total", "Purges scheduled (notify backup or fault).", p.Scheduled)
	b.counter("ctsync_purges_total", "Purges run.", p.Runs)
	b.counter("ctsync_purge_flows_deleted_total", "Flows deleted from the kernel table by purges.", p.Deleted)
	b.gaugeBool("ctsync_purge_pending", "1 while a purge is scheduled and has not run.", p.Pending != nil)
	if p.Pending != nil {
		b.gauge("ctsync_purge_pending_timestamp_seconds", "When the scheduled purge runs (Unix time).", float64(p.Pending.UnixNano())/1e9)
	}

	// Hot standby (commit.mode: hot).
	h := s.Hot
	b.gaugeBool("ctsync_hot_active", "1 while hot standby keeps the peers' flows in the kernel table (hot mode, not master).", h.Active)
	b.gaugeInt("ctsync_hot_flows", "Peers' flows held in the kernel table by hot standby.", int64(h.Flows))
	b.gaugeInt("ctsync_hot_pending", "Peers' flow changes not yet written to the kernel table.", int64(h.Pending))
	b.counter("ctsync_hot_created_total", "Peers' flows created in the kernel table by hot standby.", h.Created)
	b.counter("ctsync_hot_updated_total", "Peers' flows refreshed or changed in the kernel table by hot standby.", h.Updated)
	b.counter("ctsync_hot_deleted_total", "Peers' flows deleted from the kernel table by hot standby.", h.Deleted)
	b.counter("ctsync_hot_failed_total", "Hot standby kernel writes that failed.", h.Failed)
	b.counter("ctsync_hot_skipped_total", "Peers' flows hot standby did not write: this node refuses them (counted each time one is looked at).", h.Skipped)

	// The commit gate (commit.gate).
	g := s.Gate
	b.gaugeBool("ctsync_gate_enabled", "1 when the commit gate is configured (commit.gate).", g.Enabled)
	b.gaugeBool("ctsync_gate_armed", "1 while the gate drops packets of flows the kernel table does not know.", g.Armed)
	b.gaugeUint("ctsync_gate_dropped_packets", "Packets the gate dropped while armed, now or in its last armed period (restarts at each arming).", g.Dropped)
	b.gauge("ctsync_gate_last_open_seconds", "Seconds from the last notify master to the gate's removal.", g.LastSeconds)
}
