package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestMetricsScrape: the daemon's /metrics, scraped like Prometheus does,
// serves the ctsync families with the binary's build, the process and Go
// runtime ones, and after a takeover its histograms and timestamps; never
// ctsync_up (Prometheus has up) nor a -1 stand-in.
func TestMetricsScrape(t *testing.T) {
	kerneltest.RequireTools(t, "curl")
	l := newLab(t, 2)
	a, b := l.nodes[0], l.nodes[1]
	a.start("metrics:\n  listen: 10.99.0.1:9469\n")
	b.start("")
	a.waitFor("the peer", 20*time.Second, func() bool { _, err := a.ctl("health"); return err == nil })
	a.mustCtl("notify", "master")

	scrape := kerneltest.MustExec(t, a.ns, "curl", "-sSf", "--max-time", "10", "http://10.99.0.1:9469/metrics")
	t.Logf("scrape: %d lines", strings.Count(scrape, "\n"))
	for _, want := range []string{
		`(?m)^ctsync_ready 1$`,
		`(?m)^ctsync_build_info\{commit="[^"]*",go_version="go[^"]+",version="[^"]+"\} 1$`,
		`(?m)^ctsync_node_info\{node="[^"]+"\} 1$`,
		`(?m)^ctsync_role_info\{role="master"\} 1$`,
		`(?m)^ctsync_mode_info\{mode="commit"\} 1$`,
		`(?m)^ctsync_sync_epoch_info\{epoch="\d+"\} 1$`,
		`(?m)^ctsync_takeover_duration_seconds_count 1$`,
		`(?m)^ctsync_takeover_duration_seconds_bucket\{le="60"\} 1$`,
		`(?m)^ctsync_commit_duration_seconds_count 1$`,
		`(?m)^ctsync_commit_last_timestamp_seconds \d\.\d+e\+09$`,
		`(?m)^ctsync_start_timestamp_seconds \d\.\d+e\+09$`,
		`(?m)^ctsync_sync_peer_in_sync\{peer="[^"]+"\} [01]$`,
		`(?m)^process_cpu_seconds_total \S+$`,
		`(?m)^process_resident_memory_bytes \S+$`,
		`(?m)^go_goroutines \d+$`,
		`(?m)^go_info\{version="go`,
	} {
		if !regexp.MustCompile(want).MatchString(scrape) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	for _, bad := range []string{`(?m)^ctsync_up\b`, `(?m)^ctsync_\S+ -1$`} {
		if m := regexp.MustCompile(bad).FindString(scrape); m != "" {
			t.Errorf("the scrape has %q", m)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", scrape)
	}
}
