package metrics

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ctsync/ctsync/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// scrape is the time of the synthetic scrapes.
var scrape = time.Unix(1700000000, 0)

// hist observes durations (seconds) into an stats.Histogram.
func hist(secs ...float64) stats.Histogram {
	h := stats.Histogram{Counts: make([]uint64, len(stats.DurationBuckets))}
	for _, s := range secs {
		h.Count++
		h.Sum += s
		for i, le := range stats.DurationBuckets {
			if s <= le {
				h.Counts[i]++
				break
			}
		}
	}
	return h
}

// fullStats is a synthetic stats.Stats with every section filled in, names
// that need escaping, and distinct numbers so that a field wired to the
// wrong metric shows in the golden file.
func fullStats() stats.Stats {
	pending := time.Unix(1700000123, 500_000_000)
	commit := &stats.CommitResult{Created: 120, Replaced: 3, Failed: 2, Skipped: 4, Seconds: 0.25, Errors: []string{"x"}, KeptLocal: 1, Remaining: 3}
	return stats.Stats{
		Node: "fw-a", Build: stats.Build{Version: "1.2.0", Commit: "0123abc", GoVersion: "go1.26.8"}, UptimeSeconds: 3600.5, Started: scrape.Add(-3600500 * time.Millisecond), Ready: true, Mode: "hot", Role: "backup", Insecure: true,
		Kernel: stats.Kernel{EventsNew: 1001, EventsUpdate: 1002, EventsDestroy: 1003, Filtered: 1004,
			Overruns: 1005, WatchRestarts: 1006, Resyncs: 1007, ResyncFailures: 1008, LastResyncSecs: 0.125,
			LastResyncAt: scrape.Add(-time.Minute)},
		Internal: stats.Internal{Flows: 2001, Version: 2002, Upserts: 2003, Deletes: 2004, Unchanged: 2005,
			Full: 2006, LogLen: 2007, Lost: 2008},
		External: []stats.Origin{
			{Origin: "fw-b", Flows: 3001, Epoch: 18446744073709551615, Synced: true, Applied: 3002, Stale: 3003,
				Full: 3004, Expired: 3005, Snapshots: 3006, VouchedAge: 1.5},
			{Origin: "fw-\"c\"\\\n", Flows: 4001, Epoch: 4002, Applied: 4003, Stale: 4004, Full: 4005,
				Expired: 4006, Snapshots: 4007, VouchedAge: 90},
		},
		Commit: stats.Commit{Commits: 5001, Committed: 5002, Failed: 5003, Skipped: 5004, Last: commit,
			LastAt: scrape.Add(-10 * time.Minute), Durations: hist(0.25, 1.5, 0.004)},
		Purge: stats.Purge{Scheduled: 6001, Runs: 6002, Deleted: 6003, Pending: &pending},
		Hot:   stats.Hot{Active: true, Flows: 7001, Pending: 7002, Created: 7003, Updated: 7004, Deleted: 7005, Failed: 7006, Skipped: 7007},
		Gate:  stats.Gate{Enabled: true, Armed: true, Dropped: 8001, LastSeconds: 0.75},
		Sync: stats.Sync{Node: "fw-a", Epoch: 9001, Members: 3, Health: 1, AuthFailures: 9002, DecodeErrors: 9003,
			BadHellos: 9004, UnexpectedMsgs: 9005, JoinFailures: 9006, PreAuthRefused: 9007,
			Peers: []stats.Peer{
				{Peer: "fw-c", Addr: "10.0.3.3:7946"},
				{Peer: "fw-b", Addr: "10.0.3.2:7946", Connected: true, CaughtUp: true, Pending: 10001,
					SentBytes: 10002, SentMsgs: 10003, SentEntries: 10004, Snapshots: 10005, SendErrors: 10006,
					LastError: "boom", RecvBytes: 10007, RecvMsgs: 10008, RecvEntries: 10009, Stale: 10010,
					Mismatches: 10011, ResyncAsked: 10012, LastDigestMatch: scrape.Add(-2500 * time.Millisecond), InSync: true},
			}},
		Control:     stats.Control{Rejected: 12001},
		Transitions: 11001, LastNotifyAt: scrape.Add(-9 * time.Minute), Takeovers: hist(0.75, 120),
		LastNotify: &stats.NotifyResult{State: "backup", Commit: commit, Steps: []stats.NotifyStep{
			{Name: "arm gate", Seconds: 0.5}, {Name: "schedule purge", Seconds: 0.25}}},
	}
}

func TestRenderGolden(t *testing.T) {
	out, err := render(fullStats(), scrape)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "full.prom")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./metrics -update writes it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("Render differs from %s (go test ./metrics -update rewrites it after a deliberate change):\n%s",
			golden, lineDiff(string(want), string(out)))
	}
	// Stable: the same stats render the same bytes.
	for range 5 {
		again, err := render(fullStats(), scrape)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatal("a second Render of the same stats differs")
		}
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestRenderValid parses the output of full, empty and partial stats with
// the reference parser, and checks this package's rules: every family
// prefixed ctsync_ with a HELP, no -1 sentinel, no ctsync_up, timestamps
// only for what happened.
func TestRenderValid(t *testing.T) {
	partial := fullStats()
	partial.External, partial.Sync.Peers = nil, nil
	partial.Commit.Last, partial.LastNotify, partial.Purge.Pending = nil, nil, nil
	partial.Commit.LastAt, partial.LastNotifyAt, partial.Kernel.LastResyncAt = time.Time{}, time.Time{}, time.Time{}
	cases := map[string]stats.Stats{"full": fullStats(), "zero": {}, "partial": partial}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := render(s, scrape)
			if err != nil {
				t.Fatal(err)
			}
			fams, err := parseExposition(string(out))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, f := range fams {
				if !strings.HasPrefix(f.name, "ctsync_") {
					t.Errorf("%s: not prefixed ctsync_", f.name)
				}
				if f.help == "" {
					t.Errorf("%s: empty HELP", f.name)
				}
				if f.name == "ctsync_up" {
					t.Error("ctsync_up is rendered: Prometheus has up")
				}
				for _, m := range f.fam.Metric {
					if m.Gauge != nil && m.Gauge.GetValue() < 0 {
						t.Errorf("%s%v = %v: a negative gauge (a sentinel?)", f.name, m.Label, m.Gauge.GetValue())
					}
				}
				if name != "full" && strings.HasSuffix(f.name, "_timestamp_seconds") &&
					f.name != "ctsync_start_timestamp_seconds" && f.name != "ctsync_external_vouched_timestamp_seconds" {
					t.Errorf("%s is rendered though it never happened", f.name)
				}
			}
			for _, h := range []string{"ctsync_commit_duration_seconds", "ctsync_takeover_duration_seconds"} {
				if _, ok := sample(fams, h); !ok {
					t.Errorf("histogram %s missing", h)
				}
			}
		})
	}
}

// TestRenderValues spot-checks that fields reach the right series.
func TestRenderValues(t *testing.T) {
	out, err := render(fullStats(), scrape)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := parseExposition(string(out))
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) float64 { return float64(scrape.Add(-d).UnixNano()) / 1e9 }
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ctsync_ready", nil, 1},
		{"ctsync_cluster_insecure", nil, 1},
		{"ctsync_role_info", []string{"role", "backup"}, 1},
		{"ctsync_mode_info", []string{"mode", "hot"}, 1},
		{"ctsync_node_info", []string{"node", "fw-a"}, 1},
		{"ctsync_build_info", []string{"commit", "0123abc", "go_version", "go1.26.8", "version", "1.2.0"}, 1},
		{"ctsync_start_timestamp_seconds", nil, at(3600500 * time.Millisecond)},
		{"ctsync_kernel_events_total", []string{"type", "update"}, 1002},
		{"ctsync_kernel_last_resync_timestamp_seconds", nil, at(time.Minute)},
		{"ctsync_internal_readers_lost_total", nil, 2008},
		{"ctsync_external_flows", []string{"origin", "fw-\"c\"\\\n"}, 4001},
		{"ctsync_external_synced", []string{"origin", "fw-\"c\"\\\n"}, 0},
		{"ctsync_external_vouched_timestamp_seconds", []string{"origin", "fw-b"}, at(1500 * time.Millisecond)},
		{"ctsync_external_epoch_info", []string{"epoch", "18446744073709551615", "origin", "fw-b"}, 1},
		{"ctsync_sync_epoch_info", []string{"epoch", "9001"}, 1},
		{"ctsync_sync_peer_pending", []string{"peer", "fw-b"}, 10001},
		{"ctsync_sync_peer_last_digest_match_timestamp_seconds", []string{"peer", "fw-b"}, at(2500 * time.Millisecond)},
		{"ctsync_sync_peer_resyncs_requested_total", []string{"peer", "fw-b"}, 10012},
		{"ctsync_commit_last_replaced_flows", nil, 3},
		{"ctsync_commit_last_kept_local_flows", nil, 1},
		{"ctsync_commit_last_remaining_flows", nil, 3},
		{"ctsync_commit_last_timestamp_seconds", nil, at(10 * time.Minute)},
		{"ctsync_commit_duration_seconds", nil, 3}, // a histogram: its count
		{"ctsync_takeover_duration_seconds", nil, 2},
		{"ctsync_notify_last_duration_seconds", nil, 0.75},
		{"ctsync_notify_last_timestamp_seconds", nil, at(9 * time.Minute)},
		{"ctsync_purge_pending_timestamp_seconds", nil, 1700000123.5},
		{"ctsync_hot_failed_total", nil, 7006},
		{"ctsync_gate_dropped_packets", nil, 8001},
	}
	for _, tt := range tests {
		got, ok := sample(fams, tt.name, tt.labels...)
		if !ok || got != tt.want {
			t.Errorf("%s%q = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	// A peer that never matched a digest has no timestamp (not -1).
	if v, ok := sample(fams, "ctsync_sync_peer_last_digest_match_timestamp_seconds", "peer", "fw-c"); ok {
		t.Errorf("fw-c never matched a digest, yet has a timestamp %v", v)
	}
	// The buckets: 0.004 s, 0.25 s, 1.5 s observed; the last one above 60 s
	// only in the count.
	for _, f := range fams {
		if f.name != "ctsync_takeover_duration_seconds" {
			continue
		}
		h := f.fam.Metric[0].Histogram
		for _, b := range h.Bucket {
			want := uint64(0)
			if b.GetUpperBound() >= 1 {
				want = 1
			}
			if math.IsInf(b.GetUpperBound(), 1) {
				want = 2
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("takeover bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
		if h.GetSampleSum() != 120.75 {
			t.Errorf("takeover sum %v", h.GetSampleSum())
		}
	}
}

// TestCollectorRefusesMistakes: a family declared twice differently or a
// wrong label list fails the scrape with an error instead of serving
// output a scraper would misread; a label value that is not UTF-8 is
// repaired, and nothing panics.
func TestCollectorRefusesMistakes(t *testing.T) {
	tests := []struct {
		name string
		add  func(b *builder)
		want string
	}{
		{"bad metric name", func(b *builder) { b.gauge("ctsync-up", "h", 1) }, "ctsync-up"},
		{"bad label name", func(b *builder) { b.gauge("g", "h", 1, "a-b", "v") }, "invalid label name"},
		{"odd labels", func(b *builder) { b.gauge("g", "h", 1, "a") }, "odd label list"},
		{"type clash", func(b *builder) { b.gauge("x", "h", 1); b.counter("x", "h", 1) }, "declared twice"},
		{"help clash", func(b *builder) { b.gauge("g", "h", 1, "a", "1"); b.gauge("g", "other", 1, "a", "2") }, "declared twice"},
		{"labels clash", func(b *builder) { b.gauge("g", "h", 1, "a", "1"); b.gauge("g", "h", 1, "b", "2") }, "declared twice"},
		{"duplicate series", func(b *builder) { b.gauge("g", "h", 1, "a", "1"); b.gauge("g", "h", 2, "a", "1") }, "collected before"},
		{"histogram buckets", func(b *builder) { b.histogram("h_seconds", "h", stats.Histogram{Counts: []uint64{1}}) }, "buckets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(funcCollector(tt.add))
			_, err := reg.Gather()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Gather: %v; want an error containing %q", err, tt.want)
			}
		})
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(funcCollector(func(b *builder) { b.gauge("g", "h", 1, "peer", "fw-\xff") }))
	if _, err := reg.Gather(); err != nil {
		t.Errorf("a label value that is not UTF-8: %v", err)
	}
}

type funcCollector func(b *builder)

func (funcCollector) Describe(chan<- *prometheus.Desc) {}
func (f funcCollector) Collect(ch chan<- prometheus.Metric) {
	f(&builder{ch: ch, descs: make(map[string]*family)})
}
