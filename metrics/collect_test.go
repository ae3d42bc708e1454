package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/control"
	ctsync "github.com/ctsync/ctsync/sync"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fullStats is a synthetic agent.Stats with every section filled in, names
// that need escaping, and distinct numbers so that a field wired to the
// wrong metric shows in the golden file.
func fullStats() agent.Stats {
	pending := time.Unix(1700000123, 500_000_000)
	commit := &control.CommitResult{Created: 120, Replaced: 3, Failed: 2, Skipped: 4, Seconds: 0.25, Errors: []string{"x"}, KeptLocal: 1, Remaining: 3}
	return agent.Stats{
		Node: "fw-a", UptimeSeconds: 3600.5, Ready: true, Mode: "hot", Role: "backup", Insecure: true,
		Kernel: agent.KernelStats{EventsNew: 1001, EventsUpdate: 1002, EventsDestroy: 1003, Filtered: 1004,
			Overruns: 1005, WatchRestarts: 1006, Resyncs: 1007, ResyncFailures: 1008, LastResyncSecs: 0.125},
		Internal: agent.InternalStats{Flows: 2001, Version: 2002, Upserts: 2003, Deletes: 2004, Unchanged: 2005,
			Full: 2006, LogLen: 2007, Lost: 2008},
		External: []cache.OriginStats{
			{Origin: "fw-b", Flows: 3001, Epoch: 18446744073709551615, Synced: true, Applied: 3002, Stale: 3003,
				Full: 3004, Expired: 3005, Snapshots: 3006, Vouched: 1500 * time.Millisecond},
			{Origin: "fw-\"c\"\\\n", Flows: 4001, Epoch: 4002, Applied: 4003, Stale: 4004, Full: 4005,
				Expired: 4006, Snapshots: 4007, Vouched: 90 * time.Second},
		},
		Commit: agent.CommitStats{Commits: 5001, Committed: 5002, Failed: 5003, Skipped: 5004, Last: commit},
		Purge:  agent.PurgeStats{Scheduled: 6001, Runs: 6002, Deleted: 6003, Pending: &pending},
		Hot:    agent.HotStats{Active: true, Flows: 7001, Pending: 7002, Created: 7003, Updated: 7004, Deleted: 7005, Failed: 7006, Skipped: 7007},
		Gate:   agent.GateStats{Enabled: true, Armed: true, Dropped: 8001, LastSeconds: 0.75},
		Sync: ctsync.Stats{Node: "fw-a", Epoch: 9001, Members: 3, Health: 1, AuthFailures: 9002, DecodeErrors: 9003,
			BadHellos: 9004, UnexpectedMsgs: 9005, JoinFailures: 9006, PreAuthRefused: 9007,
			Peers: []ctsync.PeerStats{
				{Peer: "fw-c", Addr: "10.0.3.3:7946", Pending: -1, LastDigestAge: -1},
				{Peer: "fw-b", Addr: "10.0.3.2:7946", Connected: true, CaughtUp: true, Pending: 10001,
					SentBytes: 10002, SentMsgs: 10003, SentEntries: 10004, Snapshots: 10005, SendErrors: 10006,
					LastError: "boom", RecvBytes: 10007, RecvMsgs: 10008, RecvEntries: 10009, Stale: 10010,
					Mismatches: 10011, ResyncAsked: 10012, LastDigestAge: 2.5, InSync: true},
			}},
		Transitions: 11001,
		LastNotify: &control.NotifyResult{State: "backup", Commit: commit, Steps: []control.NotifyStep{
			{Name: "arm gate", Seconds: 0.5}, {Name: "schedule purge", Seconds: 0.25}}},
	}
}

func TestRenderGolden(t *testing.T) {
	out, err := Render(fullStats())
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
		again, err := Render(fullStats())
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
// the strict parser: valid names, HELP and TYPE once per family, no
// duplicate series, counters named and valued as counters.
func TestRenderValid(t *testing.T) {
	partial := fullStats()
	partial.External, partial.Sync.Peers = nil, nil
	partial.Commit.Last, partial.LastNotify, partial.Purge.Pending = nil, nil, nil
	cases := map[string]agent.Stats{"full": fullStats(), "zero": {}, "partial": partial}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseExposition(string(out))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, f := range p.families {
				if !strings.HasPrefix(f.name, "ctsync_") {
					t.Errorf("%s: not prefixed ctsync_", f.name)
				}
				if f.help == "" {
					t.Errorf("%s: empty HELP", f.name)
				}
			}
		})
	}
}

// TestRenderValues spot-checks that fields reach the right series.
func TestRenderValues(t *testing.T) {
	out, err := Render(fullStats())
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseExposition(string(out))
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, labels ...string) (float64, bool) {
		for _, f := range p.families {
			if f.name != name {
				continue
			}
		next:
			for _, s := range f.samples {
				if len(s.labels)*2 != len(labels) {
					continue
				}
				for i, l := range s.labels {
					if l[0] != labels[2*i] || l[1] != labels[2*i+1] {
						continue next
					}
				}
				return s.value, true
			}
		}
		return 0, false
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ctsync_up", nil, 1},
		{"ctsync_ready", nil, 1},
		{"ctsync_cluster_insecure", nil, 1},
		{"ctsync_role", []string{"role", "backup"}, 1},
		{"ctsync_mode", []string{"mode", "hot"}, 1},
		{"ctsync_node_info", []string{"node", "fw-a"}, 1},
		{"ctsync_kernel_events_total", []string{"type", "update"}, 1002},
		{"ctsync_internal_readers_lost_total", nil, 2008},
		{"ctsync_external_flows", []string{"origin", "fw-\"c\"\\\n"}, 4001},
		{"ctsync_external_synced", []string{"origin", "fw-\"c\"\\\n"}, 0},
		{"ctsync_external_owner_last_word_seconds", []string{"origin", "fw-b"}, 1.5},
		{"ctsync_sync_peer_pending", []string{"peer", "fw-b"}, 10001},
		{"ctsync_sync_peer_last_digest_match_seconds", []string{"peer", "fw-c"}, -1},
		{"ctsync_sync_peer_resyncs_requested_total", []string{"peer", "fw-b"}, 10012},
		{"ctsync_commit_last_replaced_flows", nil, 3},
		{"ctsync_commit_last_kept_local_flows", nil, 1},
		{"ctsync_commit_last_remaining_flows", nil, 3},
		{"ctsync_notify_last_duration_seconds", nil, 0.75},
		{"ctsync_purge_pending_timestamp_seconds", nil, 1700000123.5},
		{"ctsync_hot_failed_total", nil, 7006},
		{"ctsync_gate_dropped_packets", nil, 8001},
	}
	for _, tt := range tests {
		got, ok := get(tt.name, tt.labels...)
		if !ok || got != tt.want {
			t.Errorf("%s%q = %v (found %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	// uint64 counters and epochs are written exactly, not through float64.
	if !strings.Contains(string(out), "ctsync_external_epoch{origin=\"fw-b\"} 18446744073709551615\n") {
		t.Error("a uint64 epoch lost precision")
	}
}
