package metrics

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/ctsync/ctsync/stats"
)

// statsCollector is a prometheus.Collector of one stats.Stats: every
// scrape takes fresh statistics and collects them as constant metrics.
// It describes nothing (an unchecked collector: which families appear
// depends on the statistics); the registry still refuses a family
// declared twice with another type, help or label names, and a duplicate
// series, and so does the builder first.
type statsCollector struct {
	s   stats.Stats
	now time.Time // to turn ages into timestamps
}

func (statsCollector) Describe(chan<- *prometheus.Desc) {}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	b := &builder{ch: ch, descs: make(map[string]*family)}
	collect(b, c.s, c.now)
}

// family is what the builder knows of a metric name.
type family struct {
	desc   *prometheus.Desc
	help   string
	typ    prometheus.ValueType // 0 for a histogram
	labels string               // label names, comma-separated
}

// builder turns values into constant metrics, one Desc per name. A
// mistake (a name declared twice differently, a wrong label count) is sent
// as an invalid metric: the scrape fails with it rather than serving
// output a scraper would misread, and the daemon does not panic.
type builder struct {
	ch    chan<- prometheus.Metric
	descs map[string]*family
}

func (b *builder) desc(name, help string, typ prometheus.ValueType, labels []string) (*prometheus.Desc, []string, error) {
	if !model.LegacyValidation.IsValidMetricName(name) {
		// The client library accepts any UTF-8 name and escapes it in the
		// text format: refuse what a scraper would see renamed.
		return nil, nil, fmt.Errorf("invalid metric name %q", name)
	}
	if len(labels)%2 != 0 {
		return nil, nil, fmt.Errorf("metric %s: odd label list %q", name, labels)
	}
	names := make([]string, 0, len(labels)/2)
	values := make([]string, 0, len(labels)/2)
	for i := 0; i < len(labels); i += 2 {
		if !model.LegacyValidation.IsValidLabelName(labels[i]) {
			return nil, nil, fmt.Errorf("metric %s: invalid label name %q", name, labels[i])
		}
		names = append(names, labels[i])
		// Label values must be UTF-8; a peer's name is whatever it says.
		values = append(values, strings.ToValidUTF8(labels[i+1], "\uFFFD"))
	}
	key := strings.Join(names, ",")
	f := b.descs[name]
	if f == nil {
		f = &family{desc: prometheus.NewDesc(name, help, names, nil), help: help, typ: typ, labels: key}
		b.descs[name] = f
	} else if f.help != help || f.typ != typ || f.labels != key {
		return nil, nil, fmt.Errorf("metric %s declared twice with a different type, help or labels", name)
	}
	return f.desc, values, nil
}

func (b *builder) value(typ prometheus.ValueType, name, help string, v float64, labels ...string) {
	d, values, err := b.desc(name, help, typ, labels)
	if err == nil {
		var m prometheus.Metric
		if m, err = prometheus.NewConstMetric(d, typ, v, values...); err == nil {
			b.ch <- m
			return
		}
	}
	b.ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
}

func (b *builder) counter(name, help string, v uint64, labels ...string) {
	b.value(prometheus.CounterValue, name, help, float64(v), labels...)
}

func (b *builder) gauge(name, help string, v float64, labels ...string) {
	b.value(prometheus.GaugeValue, name, help, v, labels...)
}

func (b *builder) gaugeInt(name, help string, v int64, labels ...string) {
	b.value(prometheus.GaugeValue, name, help, float64(v), labels...)
}

func (b *builder) gaugeBool(name, help string, v bool, labels ...string) {
	f := 0.0
	if v {
		f = 1
	}
	b.value(prometheus.GaugeValue, name, help, f, labels...)
}

// info is an _info metric: always 1, its labels say what it describes.
func (b *builder) info(name, help string, labels ...string) {
	b.value(prometheus.GaugeValue, name, help, 1, labels...)
}

// timestamp is a _timestamp_seconds gauge (Unix time) of t, left out when
// t is zero: a thing that never happened has no time.
func (b *builder) timestamp(name, help string, t time.Time, labels ...string) {
	if t.IsZero() {
		return
	}
	b.value(prometheus.GaugeValue, name, help, float64(t.UnixNano())/1e9, labels...)
}

func (b *builder) histogram(name, help string, h stats.Histogram) {
	d, _, err := b.desc(name, help, 0, nil)
	if h.Counts == nil { // nothing observed, or a Stats made by hand
		h.Counts = make([]uint64, len(stats.DurationBuckets))
	}
	if err == nil && len(h.Counts) != len(stats.DurationBuckets) {
		err = fmt.Errorf("histogram %s: %d buckets, want %d", name, len(h.Counts), len(stats.DurationBuckets))
	}
	if err != nil {
		b.ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
		return
	}
	buckets := make(map[float64]uint64, len(stats.DurationBuckets))
	var cum uint64
	for i, le := range stats.DurationBuckets {
		cum += h.Counts[i]
		buckets[le] = cum
	}
	m, err := prometheus.NewConstHistogram(d, h.Count, h.Sum, buckets)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	b.ch <- m
}

// collect turns one stats.Stats into metrics, one section after the other.
// Every family is documented in README.md ("Metrics"); keep the two in
// step.
func collect(b *builder, s stats.Stats, now time.Time) {
	collectNode(b, s)
	collectKernel(b, s.Kernel)
	collectInternal(b, s.Internal)
	for _, o := range s.External {
		collectOrigin(b, o, now)
	}
	collectSync(b, s.Sync)
	collectCommit(b, s.Commit)
	collectPurge(b, s.Purge)
	collectHot(b, s.Hot)
	collectGate(b, s.Gate, s.Takeovers.Count > 0)
	collectControl(b, s.Control)
}

// collectNode collects the node, its build, its role and its transitions.
func collectNode(b *builder, s stats.Stats) {
	b.info("ctsync_build_info", "Always 1; the labels describe the running binary: its version, its source commit and the Go release that built it.",
		"version", s.Build.Version, "commit", s.Build.Commit, "go_version", s.Build.GoVersion)
	b.info("ctsync_node_info", "Always 1; the node label is this node's name (node in the configuration).", "node", s.Node)
	b.info("ctsync_mode_info", "Always 1; the mode label is commit.mode (commit or hot).", "mode", s.Mode)
	if s.Role != "" {
		b.info("ctsync_role_info", "Always 1; the role label is the state of the last keepalived transition (master, backup, fault, stop); absent before any.", "role", s.Role)
	}
	b.gaugeBool("ctsync_ready", "1 once the internal cache is loaded from the kernel table.", s.Ready)
	b.gaugeBool("ctsync_cluster_insecure", "1 when cluster.insecure is true: cluster traffic is neither encrypted nor authenticated.", s.Insecure)
	b.timestamp("ctsync_start_timestamp_seconds", "When the daemon started (Unix time).", s.Started)
	b.counter("ctsync_transitions_total", "keepalived transitions (ctsync notify) handled.", s.Transitions)
	if n := s.LastNotify; n != nil {
		var secs float64
		for _, st := range n.Steps {
			secs += st.Seconds
		}
		b.gauge("ctsync_notify_last_duration_seconds", "Duration of the last keepalived transition, all its steps.", secs)
	}
	b.timestamp("ctsync_notify_last_timestamp_seconds", "When the last keepalived transition ended (Unix time).", s.LastNotifyAt)
	b.histogram("ctsync_takeover_duration_seconds", "Takeovers (notify master) from the notify to the gate's removal: the flows are in place.", s.Takeovers)
}

// collectKernel collects the kernel table's events and resyncs.
func collectKernel(b *builder, k stats.Kernel) {
	const events = "Conntrack events received from the kernel, by type."
	b.counter("ctsync_kernel_events_total", events, k.EventsNew, "type", "new")
	b.counter("ctsync_kernel_events_total", events, k.EventsUpdate, "type", "update")
	b.counter("ctsync_kernel_events_total", events, k.EventsDestroy, "type", "destroy")
	b.counter("ctsync_kernel_events_filtered_total", "Kernel events left out by the filter.", k.Filtered)
	b.counter("ctsync_kernel_overruns_total", "Kernel event socket overruns (events lost; each triggers a resync).", k.Overruns)
	b.counter("ctsync_kernel_watch_restarts_total", "Restarts of the kernel event watch.", k.WatchRestarts)
	b.counter("ctsync_kernel_resyncs_total", "Internal cache rebuilds from a dump of the kernel table.", k.Resyncs)
	b.counter("ctsync_kernel_resync_failures_total", "Kernel resyncs that failed.", k.ResyncFailures)
	if !k.LastResyncAt.IsZero() {
		b.gauge("ctsync_kernel_last_resync_duration_seconds", "Duration of the last kernel resync.", k.LastResyncSecs)
		b.timestamp("ctsync_kernel_last_resync_timestamp_seconds", "When the last kernel resync ended (Unix time).", k.LastResyncAt)
	}
}

// collectInternal collects the internal cache, this node's own flows.
func collectInternal(b *builder, in stats.Internal) {
	b.gaugeInt("ctsync_internal_flows", "Flows in the internal cache (this node's own).", int64(in.Flows))
	b.gaugeInt("ctsync_internal_change_log_entries", "Entries in the internal cache's change log.", int64(in.LogLen))
	b.counter("ctsync_internal_changes_total", "Flows created or changed in the internal cache.", in.Upserts)
	b.counter("ctsync_internal_deletes_total", "Flows deleted from the internal cache.", in.Deletes)
	b.counter("ctsync_internal_unchanged_updates_total", "Kernel updates that changed nothing replicated.", in.Unchanged)
	b.counter("ctsync_internal_dropped_full_total", "Flows not cached because the internal cache was full (cache.max_flows).", in.Full)
	b.counter("ctsync_internal_readers_lost_total", "Change-log readers (peer streams) that fell behind and needed a snapshot.", in.Lost)
}

// collectOrigin collects one origin node's part of the external cache (the peers'
// flows); now turns the age of its last word into a timestamp.
func collectOrigin(b *builder, o stats.Origin, now time.Time) {
	l := []string{"origin", o.Origin}
	b.gaugeInt("ctsync_external_flows", "Flows held in the external cache, by origin node.", int64(o.Flows), l...)
	b.gaugeBool("ctsync_external_synced", "1 when the origin's last snapshot is complete.", o.Synced, l...)
	b.info("ctsync_external_epoch_info", "Always 1; the epoch label is the origin's incarnation (a random number per start) whose flows are held.",
		"origin", o.Origin, "epoch", fmt.Sprint(o.Epoch))
	b.timestamp("ctsync_external_vouched_timestamp_seconds", "When the origin last vouched for its flows (Unix time).",
		now.Add(-time.Duration(o.VouchedAge*float64(time.Second))), l...)
	b.counter("ctsync_external_applied_total", "Updates and deletes from the origin applied.", o.Applied, l...)
	b.counter("ctsync_external_stale_total", "Updates from the origin rejected as older than what is held.", o.Stale, l...)
	b.counter("ctsync_external_dropped_full_total", "Flows from the origin dropped because the external cache was full (cache.max_flows, all origins together).", o.Full, l...)
	b.counter("ctsync_external_expired_total", "Flows from the origin aged out.", o.Expired, l...)
	b.counter("ctsync_external_snapshots_total", "Snapshots received from the origin.", o.Snapshots, l...)
}

// collectSync collects replication, this node's counters and one set per peer.
func collectSync(b *builder, y stats.Sync) {
	b.gaugeInt("ctsync_sync_members_alive", "Cluster members alive, this node included.", int64(y.Members))
	b.gaugeInt("ctsync_sync_memberlist_health_score", "memberlist's health score (0 is best).", int64(y.Health))
	b.info("ctsync_sync_epoch_info", "Always 1; the epoch label is this node's incarnation (a random number per start), as sent to its peers.", "epoch", fmt.Sprint(y.Epoch))
	b.counter("ctsync_sync_auth_failures_total", "Replication streams, frames or memberlist packets refused for a bad cluster key or label.", y.AuthFailures)
	b.counter("ctsync_sync_decode_errors_total", "Cluster messages that could not be decoded.", y.DecodeErrors)
	b.counter("ctsync_sync_bad_hellos_total", "Stream handshakes refused.", y.BadHellos)
	b.counter("ctsync_sync_unexpected_messages_total", "Cluster messages of an unexpected kind.", y.UnexpectedMsgs)
	b.counter("ctsync_sync_join_failures_total", "Failed attempts to join the cluster.", y.JoinFailures)
	b.counter("ctsync_sync_streams_refused_total", "Authenticated streams refused for their origin (not a live member, a member at another address, or an older session).", y.StreamsRefused)
	b.counter("ctsync_sync_preauth_refused_total", "Connections to the cluster port closed at once: too many unauthenticated ones, overall or from their source.", y.PreAuthRefused)
	for _, p := range y.Peers {
		collectPeer(b, p)
	}
}

// collectPeer collects the replication with one peer.
func collectPeer(b *builder, p stats.Peer) {
	l := []string{"peer", p.Peer}
	b.gaugeBool("ctsync_sync_peer_connected", "1 while the stream of this node's flows to the peer is up.", p.Connected, l...)
	b.gaugeBool("ctsync_sync_peer_caught_up", "1 when the peer has every change of this node's flows.", p.CaughtUp, l...)
	b.gaugeBool("ctsync_sync_peer_in_sync", "1 when caught up and the peer's flows held here are confirmed by a recent digest.", p.InSync, l...)
	b.gaugeInt("ctsync_sync_peer_pending", "Changes of this node's flows not yet sent to the peer (replication lag).", p.Pending, l...)
	b.timestamp("ctsync_sync_peer_last_digest_match_timestamp_seconds", "When the peer's digest last matched the flows held here (Unix time); absent if it never did.", p.LastDigestMatch, l...)
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

// collectCommit collects commits, and the last one.
func collectCommit(b *builder, c stats.Commit) {
	b.counter("ctsync_commits_total", "Commits of the external cache to the kernel table.", c.Commits)
	b.counter("ctsync_commit_flows_committed_total", "Flows written to the kernel table by commits (created or replaced).", c.Committed)
	b.counter("ctsync_commit_flows_failed_total", "Flows that commits failed to write.", c.Failed)
	b.counter("ctsync_commit_flows_skipped_total", "Peers' flows commits skipped: this node refuses them (its filter, loopback, its own addresses).", c.Skipped)
	b.histogram("ctsync_commit_duration_seconds", "Durations of the commits of the external cache to the kernel table.", c.Durations)
	if l := c.Last; l != nil {
		b.gauge("ctsync_commit_last_duration_seconds", "Duration of the last commit.", l.Seconds)
		b.gaugeInt("ctsync_commit_last_created_flows", "Flows the last commit created.", int64(l.Created))
		b.gaugeInt("ctsync_commit_last_replaced_flows", "Flows the last commit replaced (they existed already).", int64(l.Replaced))
		b.gaugeInt("ctsync_commit_last_failed_flows", "Flows the last commit failed to write.", int64(l.Failed))
		b.gaugeInt("ctsync_commit_last_skipped_flows", "Peers' flows the last commit skipped (this node refuses them).", int64(l.Skipped))
		b.gaugeInt("ctsync_commit_last_kept_local_flows", "Flows the last commit did not write because a live local entry stays.", int64(l.KeptLocal))
		b.gaugeInt("ctsync_commit_last_remaining_flows", "Flows the last commit did not write (failed or kept local); the next commit retries them.", int64(l.Remaining))
	}
	b.timestamp("ctsync_commit_last_timestamp_seconds", "When the last commit ended (Unix time).", c.LastAt)
}

// collectPurge collects purges, and the one scheduled.
func collectPurge(b *builder, p stats.Purge) {
	b.counter("ctsync_purges_scheduled_total", "Purges scheduled (notify backup or fault).", p.Scheduled)
	b.counter("ctsync_purges_total", "Purges run.", p.Runs)
	b.counter("ctsync_purge_flows_deleted_total", "Flows deleted from the kernel table by purges.", p.Deleted)
	b.gaugeBool("ctsync_purge_pending", "1 while a purge is scheduled and has not run.", p.Pending != nil)
	if p.Pending != nil {
		b.timestamp("ctsync_purge_pending_timestamp_seconds", "When the scheduled purge runs (Unix time).", *p.Pending)
	}
}

// collectHot collects hot standby (commit.mode: hot).
func collectHot(b *builder, h stats.Hot) {
	b.gaugeBool("ctsync_hot_active", "1 while hot standby keeps the peers' flows in the kernel table (hot mode, not master).", h.Active)
	b.gaugeInt("ctsync_hot_flows", "Peers' flows held in the kernel table by hot standby.", int64(h.Flows))
	b.gaugeInt("ctsync_hot_pending", "Peers' flow changes not yet written to the kernel table.", int64(h.Pending))
	b.counter("ctsync_hot_created_total", "Peers' flows created in the kernel table by hot standby.", h.Created)
	b.counter("ctsync_hot_updated_total", "Peers' flows refreshed or changed in the kernel table by hot standby.", h.Updated)
	b.counter("ctsync_hot_deleted_total", "Peers' flows deleted from the kernel table by hot standby.", h.Deleted)
	b.counter("ctsync_hot_failed_total", "Hot standby kernel writes that failed.", h.Failed)
	b.counter("ctsync_hot_skipped_total", "Peers' flows hot standby did not write: this node refuses them (counted each time one is looked at).", h.Skipped)
}

// collectGate collects the commit gate (commit.gate); the time it stayed open is
// shown once a takeover has happened.
func collectGate(b *builder, g stats.Gate, tookOver bool) {
	b.gaugeBool("ctsync_gate_enabled", "1 when the commit gate is configured (commit.gate).", g.Enabled)
	b.gaugeBool("ctsync_gate_armed", "1 while the gate drops packets of flows the kernel table does not know.", g.Armed)
	b.gauge("ctsync_gate_dropped_packets", "Packets the gate dropped while armed, now or in its last armed period (restarts at each arming).", float64(g.Dropped))
	if tookOver {
		b.gauge("ctsync_gate_last_open_seconds", "Seconds from the last notify master to the gate's removal.", g.LastSeconds)
	}
}

// collectControl collects the control socket.
func collectControl(b *builder, c stats.Control) {
	b.counter("ctsync_control_rejected_total", "Control socket requests refused: the peer was neither root nor the daemon's own user.", c.Rejected)
}
