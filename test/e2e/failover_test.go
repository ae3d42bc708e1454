package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestFailoverDemo runs the failover demo (test/demo): a client, two or
// three firewalls with SNAT, a strict stateful ruleset,
// nf_conntrack_tcp_loose=0, real keepalived and ctsync, and a server. 30
// long-lived TCP connections must all survive a hard failure of the master
// (processes killed, links down), then a fail-back, then 10 more flips in a
// row (the demo fails if any connection breaks, or if the firewall that took
// over does not hold them in its table); in the control run without ctsync
// they must all break. Each case's output must hold want, and match every
// regexp of checks.
func TestFailoverDemo(t *testing.T) {
	kerneltest.RequirePrivileged(t)
	kerneltest.RequireTools(t, "keepalived", "nft", "conntrack", "ip")
	_, self, _, _ := runtime.Caller(0)
	demo := filepath.Join(filepath.Dir(self), "..", "demo")
	// The firewall that took over held the connections (in its kernel
	// table, after the failure).
	const tookOver = `took over: it holds the VIPs [\d.]+ s after the failure`
	const heldConns = `kernel table 30/30 of the connections`
	for _, tc := range []struct {
		name   string
		args   []string
		want   string
		checks []string
	}{
		{"with ctsync", []string{"-flips", "11", "-after", "5s"}, `flip 11: `, nil},
		// UDP through SNAT with random ports: each session must end on the
		// mapping it started with (the demo fails otherwise), and a probe
		// sending every 2 ms, whose datagrams reach the new master before
		// the commit, must never leave on another mapping: the gate holds
		// them (the demo fails otherwise).
		{"udp keeps its mapping", []string{"-udp", "10", "-probe", "2ms", "-after", "5s"}, `original SNAT mapping: 10/10`, []string{
			`UDP probe \(a datagram every 2ms, \d+ sent\): answered after the failure yes; SNAT mappings the server saw: 1 `,
		}},
		// keepalived runs conntrackd's own primary-backup.sh, its
		// CONNTRACKD_BIN pointed at a conntrackd symlink to ctsync.
		{"conntrackd primary-backup.sh", []string{"-primary-backup", "/usr/share/doc/conntrackd/examples/sync/primary-backup.sh", "-after", "5s"}, `after: 30/30`, nil},
		{"control run without ctsync", []string{"-without-ctsync", "-udp", "10", "-after", "5s"}, `after: 0/30`, nil},
		// Three firewalls on a sync bridge: before each failure every backup
		// holds the master's flows; whichever takes over must have them, at
		// the first failure and at each of the three flips after it.
		{"three firewalls", []string{"-firewalls", "3", "-flips", "3", "-after", "5s"}, "after: 30/30", []string{
			`fw1 \| fw2 \| fw3`,
			`fw\d external 30 from fw\d, fw\d external 30 from fw\d`, // both backups had the master's flows
			tookOver, heldConns,
			`flip  1: fw\d killed, fw\d master after [\d.]+ s; alive 30/30, longest stall [\d.]+ s; fw\d's table 30/30 connections`,
			`flip  2: fw\d killed, fw\d master after [\d.]+ s; alive 30/30, longest stall [\d.]+ s; fw\d's table 30/30 connections`,
			`flip  3: fw\d killed, fw\d master after [\d.]+ s; alive 30/30, longest stall [\d.]+ s; fw\d's table 30/30 connections`,
		}},
		// 100k more flows in the master's table, all replicated before the
		// failure and all committed at it; the ruleset resets any packet
		// that reaches the new master before its flow's state does.
		{"commit mode, 100k flows, reset ruleset", []string{"-extra", "100000", "-reset", "-probe", "2ms", "-after", "5s"}, "after: 30/30", []string{
			`reset ruleset ON`,
			`100000 extra flows loaded`,
			`external 1000\d\d from fw\d`,
			tookOver, heldConns,
			`notify master: commit +[\d.]+ s  \d+ created`,
			`commit: \d+ created, \d+ replaced, 0 failed`,
			`caches internal 1000\d\d `,
		}},
		// The same with hot standby: the backup holds the flows in its
		// kernel table ahead of the failure.
		{"hot mode, 100k flows, reset ruleset", []string{"-mode", "hot", "-extra", "100000", "-reset", "-probe", "2ms", "-after", "5s"}, "after: 30/30", []string{
			`reset ruleset ON`,
			`commit.mode hot`,
			`external 1000\d\d from fw\d`,
			`hot standby: fw\d 1000\d\d flows in its kernel table`,
			tookOver, heldConns,
			`caches internal 1000\d\d `,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			args := append([]string{"run", demo, "-bin", binary}, tc.args...)
			start := time.Now()
			out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(tc.want)).Match(out) {
				t.Fatalf("demo output lacks %q:\n%s", tc.want, out)
			}
			for _, re := range tc.checks {
				if !regexp.MustCompile(re).Match(out) {
					t.Errorf("demo output does not match %q", re)
				}
			}
			if t.Failed() {
				t.Fatalf("demo output:\n%s", out)
			}
			t.Logf("%.0f s\n%s", time.Since(start).Seconds(), out)
		})
	}
}
