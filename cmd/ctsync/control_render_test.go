package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ctsync/ctsync/stats"
)

// twoPeerStats is what a node of a three-node cluster reports after a day
// of traffic and a takeover.
func twoPeerStats(now time.Time) stats.Stats {
	commit := &stats.CommitResult{Created: 120345, Replaced: 3012, Failed: 2, Skipped: 4, Seconds: 0.2534567,
		Errors: []string{"create tcp 10.0.0.1:1000 -> 10.0.0.2:80: file exists (the kernel has a local entry with these tuples)"}, KeptLocal: 1, Remaining: 3}
	peer := func(name, addr string, in bool) stats.Peer {
		p := stats.Peer{Peer: name, Addr: addr, Connected: in, CaughtUp: in, Pending: 1234, SentBytes: 9876543210,
			SentMsgs: 1234567, SentEntries: 98765432, Snapshots: 12, SendErrors: 3, RecvBytes: 8765432109, RecvMsgs: 2345678,
			RecvEntries: 87654321, Stale: 17, Mismatches: 2, ResyncAsked: 2, InSync: in, SentExpects: 4567, RecvExpects: 5678}
		if in {
			p.LastDigestMatch = now.Add(-2345 * time.Millisecond)
		} else {
			p.LastError = "write tcp 10.0.3.1:40122->10.0.3.3:7946: write: connection reset by peer"
		}
		return p
	}
	return stats.Stats{
		Node: "fw-a", UptimeSeconds: 93784.123456, Started: now.Add(-93784 * time.Second), Ready: true, Mode: "commit", Role: "master",
		Kernel: stats.Kernel{EventsNew: 123456789, EventsUpdate: 987654321, EventsDestroy: 123456000, Filtered: 4567,
			Overruns: 1, Resyncs: 3, LastResyncSecs: 1.23456789, LastResyncAt: now.Add(-time.Hour)},
		Internal: stats.Internal{Flows: 250000, Version: 1234567890, Upserts: 1111111111, Deletes: 123456000, LogLen: 65536},
		External: []stats.Origin{
			{Origin: "fw-b", Flows: 180000, Epoch: 18446744073709551557, Synced: true, Applied: 123456789, Stale: 12, Expired: 345, Snapshots: 4, VouchedAge: 0.734567},
			{Origin: "fw-c", Flows: 170000, Epoch: 9223372036854775807, Applied: 23456789, Stale: 1, Expired: 45, Snapshots: 2, VouchedAge: 45.678},
		},
		Commit: stats.Commit{Commits: 2, Committed: 123357, Failed: 2, Skipped: 4, Last: commit, LastAt: now.Add(-5 * time.Minute)},
		Gate:   stats.Gate{Enabled: true, Dropped: 12345, LastSeconds: 0.3456789},
		Sync: stats.Sync{Node: "fw-a", Epoch: 18446744073709551615, Members: 3, AuthFailures: 2,
			Peers: []stats.Peer{peer("fw-b", "10.0.3.2:7946", true), peer("fw-c", "[2001:db8:3::3]:7946", false)}},
		Transitions: 3,
		LastNotify: &stats.NotifyResult{State: "master", Commit: commit, Steps: []stats.NotifyStep{
			{Name: "commit", Seconds: 0.2534567, Detail: "120345 created, 3012 replaced, 4 skipped (refused by this node), 1 kept local, 2 failed"},
			{Name: "lift commit gate", Seconds: 0.0012345}}},
		LastNotifyAt: now.Add(-5 * time.Minute),
	}
}

// TestStatsTextReadable: `ctsync stats` of a two-peer node fits in 100
// columns, and shows durations, sizes and times rounded with units.
func TestStatsTextReadable(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	raw, err := json.Marshal(twoPeerStats(now))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := renderJSONAt(&out, raw, now); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for i, l := range strings.Split(text, "\n") {
		if n := utf8.RuneCountInString(l); n > renderWidth {
			t.Errorf("line %d is %d columns wide (at most %d):\n%s", i+1, n, renderWidth, l)
		}
	}
	for _, want := range []string{
		`uptime: +26h3m4s\n`, // rounded
		`last_resync: +1.23s\n`,
		`vouched_age: 735ms\n`,
		`sent_bytes: 9.2 GiB `,
		`\n +epoch: +18446744073709551615\n`, // identifiers stay exact
		`\n +peer fw-b:\n`,
		`\n +origin fw-c:\n`,
		`\n +commit:\n +seconds: 253ms\n`, // a step
		`last_digest_match_at: 2026-12-03 \d\d:59:57 \(2.3\ds ago\)\n`,
		`last_error: write tcp 10.0.3.1:40122->10.0.3.3:7946: write: connection reset by peer\n`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("stats text lacks %q", want)
		}
	}
	for _, bad := range []string{"0.2534567", "93784.123456", "_seconds:", "9876543210"} {
		if strings.Contains(text, bad) {
			t.Errorf("stats text shows %q: not rounded or without its unit", bad)
		}
	}
	if t.Failed() {
		t.Logf("stats text:\n%s", text)
	}
}

func TestFormatUnits(t *testing.T) {
	secs := map[float64]string{0: "0s", 0.0000123: "12.3µs", 0.25: "250ms", 2.5: "2.5s", 59.94: "59.9s", 3600.5: "1h0m1s", 93784.1: "26h3m4s"}
	for v, want := range secs {
		if got := formatSeconds(v); got != want {
			t.Errorf("formatSeconds(%v) = %q, want %q", v, got, want)
		}
	}
	bytes := map[float64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 9876543210: "9.2 GiB"}
	for v, want := range bytes {
		if got := formatBytes(v); got != want {
			t.Errorf("formatBytes(%v) = %q, want %q", v, got, want)
		}
	}
}
