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

// TestFailoverDemo runs the failover demo (test/demo): a client, two
// firewalls with SNAT, a strict stateful ruleset, nf_conntrack_tcp_loose=0,
// real keepalived and ctsync, and a server. 30 long-lived TCP connections
// must all survive a hard failure of the master (processes killed, links
// down), then a fail-back, then 10 more flips in a row (the demo fails if
// any connection breaks); in the control run without ctsync they must all
// break.
func TestFailoverDemo(t *testing.T) {
	kerneltest.RequirePrivileged(t)
	kerneltest.RequireTools(t, "keepalived", "nft", "conntrack", "ip")
	_, self, _, _ := runtime.Caller(0)
	demo := filepath.Join(filepath.Dir(self), "..", "demo")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with ctsync", []string{"-flips", "11", "-after", "5s"}, `flip 11: `},
		// UDP through SNAT with random ports: each session must end on the
		// mapping it started with (the demo fails otherwise).
		{"udp keeps its mapping", []string{"-udp", "10", "-after", "5s"}, `original SNAT mapping: 10/10`},
		// keepalived runs conntrackd's own primary-backup.sh, its
		// CONNTRACKD_BIN pointed at a conntrackd symlink to ctsync.
		{"conntrackd primary-backup.sh", []string{"-primary-backup", "/usr/share/doc/conntrackd/examples/sync/primary-backup.sh", "-after", "5s"}, `after: 30/30`},
		{"control run without ctsync", []string{"-without-ctsync", "-udp", "10", "-after", "5s"}, `after: 0/30`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			args := append([]string{"run", demo, "-bin", binary}, tc.args...)
			out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(tc.want)).Match(out) {
				t.Fatalf("demo output lacks %q:\n%s", tc.want, out)
			}
			t.Logf("\n%s", out)
		})
	}
}
