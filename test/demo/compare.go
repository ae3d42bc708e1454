package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ctsync/ctsync/test/internal/labkit"
)

// profile is a keepalived timing profile.
type profile struct {
	name        string
	vrrpVersion int      // global_defs vrrp_version
	advertInt   string   // advert_int of every instance, seconds
	globals     []string // more global_defs lines
	after       time.Duration
}

// The profiles, as shipped in contrib/keepalived: keepalived.conf (default)
// and keepalived-fast.conf (fast). A backup declares the master dead after
// 3 advertisement intervals plus a skew: about 3.6 s by default, 0.36 s
// fast. after is how long the demo watches the connections after the
// failure by default: TCP's retransmissions back off exponentially, so a
// stall of 3.6 s becomes one of about 6 s.
var profiles = map[string]profile{
	"default": {name: "default", vrrpVersion: 2, advertInt: "1", after: 10 * time.Second},
	"fast":    {name: "fast", vrrpVersion: 3, advertInt: "0.1", after: 5 * time.Second},
}

func (p profile) String() string {
	return fmt.Sprintf("%s (VRRPv%d, advert_int %s)", p.name, p.vrrpVersion, p.advertInt)
}

// scenario is what varies between the runs of a comparison.
type scenario struct {
	daemon  string // ctsync, conntrackd or none
	mode    string // ctsync's commit.mode: commit or hot
	profile profile
	pb      string // a primary-backup.sh to run as keepalived's notify script ("" with ctsync: ctsync notify)
}

func (sc scenario) String() string {
	switch sc.daemon {
	case "ctsync":
		if sc.pb != "" {
			return "ctsync " + sc.mode + ", primary-backup.sh"
		}
		return "ctsync " + sc.mode
	case "conntrackd":
		return "conntrackd, primary-backup.sh"
	}
	return "no sync daemon"
}

// comparison is what -compare (make demo) runs, in this order.
var comparison = []scenario{
	{daemon: "ctsync", mode: "hot", profile: profiles["fast"]},
	{daemon: "ctsync", mode: "commit", profile: profiles["fast"]},
	{daemon: "conntrackd", profile: profiles["fast"]},
	{daemon: "ctsync", mode: "commit", profile: profiles["default"]},
	{daemon: "conntrackd", profile: profiles["default"]},
}

// result is what one run measured.
type result struct {
	sc       scenario
	conns    int
	survived int
	worst    time.Duration // the longest stall of a surviving connection
	vip      time.Duration // from the failure to the VIPs on the new master
	// falseTakeovers counts VRRP transitions to master between the
	// connections opening and the failure.
	falseTakeovers int
}

func (r result) stall() string {
	if r.survived == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", r.worst.Seconds())
}

func (r result) summary() string {
	return fmt.Sprintf("%s, profile %s: %d/%d connections survived, longest stall %s, VIPs moved after %.2f s, %d false takeovers before",
		r.sc, r.sc.profile.name, r.survived, r.conns, r.stall(), r.vip.Seconds(), r.falseTakeovers)
}

// longestGap is the longest time without an answer from from to now:
// between from and the first answer after it, between answers, and from
// the last answer to now. Answers before from count only as the start of
// the first gap (a gap that began before the failure).
func longestGap(answers []time.Time, from, now time.Time) time.Duration {
	var worst time.Duration
	prev := from
	for _, a := range answers {
		if a.Before(from) {
			prev = a
			continue
		}
		worst = max(worst, a.Sub(prev))
		prev = a
	}
	return max(worst, now.Sub(prev))
}

// debianPrimaryBackup is where Debian's conntrackd package ships the script.
const debianPrimaryBackup = "/usr/share/doc/conntrackd/examples/sync/primary-backup.sh"

// readScript reads a script, gunzipping a .gz one (Debian compresses some
// examples).
func readScript(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !strings.HasSuffix(path, ".gz") {
		return io.ReadAll(f)
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(z)
}

// prepare checks what a scenario needs before any namespace is made,
// finds conntrackd's primary-backup.sh for a conntrackd run that names
// none, and makes room in the kernel's tables for the flows.
func prepare(sc scenario) (scenario, error) {
	if sc.daemon == "conntrackd" {
		if _, err := exec.LookPath("conntrackd"); err != nil {
			return sc, fmt.Errorf("conntrackd not found (make deps installs Debian's conntrackd): %w", err)
		}
		if sc.pb == "" {
			p, err := findPrimaryBackup()
			if err != nil {
				return sc, err
			}
			sc.pb = p
		}
	}
	// The table limit applies to each namespace's table: the master holds
	// the connections and the background flows, a hot standby the same.
	if want := *conns + *extra + 100000; want > 0 {
		if err := sysctls.Raise(labkit.CtMaxPath, want); err != nil {
			return sc, err
		}
	}
	return sc, nil
}

func findPrimaryBackup() (string, error) {
	for _, p := range []string{debianPrimaryBackup, debianPrimaryBackup + ".gz"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("conntrackd's primary-backup.sh not found at %s (Debian package conntrackd); give it with -primary-backup", debianPrimaryBackup)
}

// primaryBackup writes fw's copy of a primary-backup.sh with conntrackd,
// its configuration and its lock file substituted, and returns its path.
func (l *lab) primaryBackup(fw, src, conntrackd, config string) (string, error) {
	script, err := readScript(src)
	if err != nil {
		return "", err
	}
	body := strings.NewReplacer(
		"CONNTRACKD_BIN=/usr/sbin/conntrackd", "CONNTRACKD_BIN="+conntrackd,
		"CONNTRACKD_CONFIG=/etc/conntrackd/conntrackd.conf", "CONNTRACKD_CONFIG="+config,
		"CONNTRACKD_LOCK=/var/lock/conntrack.lock", "CONNTRACKD_LOCK="+l.lockFile(fw),
	).Replace(string(script))
	if body == string(script) {
		return "", fmt.Errorf("%s: no CONNTRACKD_BIN=/usr/sbin/conntrackd line to substitute", src)
	}
	path := filepath.Join(l.dir, fw+"-primary-backup.sh")
	return path, os.WriteFile(path, []byte(body), 0o755)
}

func (l *lab) lockFile(fw string) string { return filepath.Join(l.dir, fw+".lock") }
func (l *lab) ctdConf(fw string) string  { return filepath.Join(l.dir, fw+"-conntrackd.conf") }

// startConntrackd runs conntrackd (FTFW over UDP on the sync network) on
// fw i in the foreground and waits until it answers on its socket.
func (l *lab) startConntrackd(i int) error {
	fw := l.fws[i]
	peer := syncAddr(2 - i) // two firewalls: 10.30.0.1 and .2
	conf := labkit.FTFW{
		Local:     syncAddr(i + 1),
		Peer:      peer,
		Interface: "sync0",
		Flows:     *conns + *extra,
		LogFile:   filepath.Join(l.dir, fw+"-conntrackd.log"),
		LockFile:  l.lockFile(fw),
		Socket:    filepath.Join(l.dir, fw+"-conntrackd.ctl"),
		Ignore:    []string{fwAddr(i+1, "10.10.1"), fwAddr(i+1, "10.20.0"), syncAddr(i + 1), lanVIP, wanVIP},
	}.Config()
	if err := os.WriteFile(l.ctdConf(fw), []byte(conf), 0o644); err != nil {
		return err
	}
	os.Remove(l.lockFile(fw)) // left by a conntrackd killed with SIGKILL
	if _, err := l.start(fw, fw+"-conntrackd.out", "conntrackd", "-C", l.ctdConf(fw)); err != nil {
		return err
	}
	if err := waitUntil(30*time.Second, func() bool { _, err := l.ctdStats(fw); return err == nil }); err != nil {
		out, _ := os.ReadFile(filepath.Join(l.dir, fw+"-conntrackd.out"))
		return fmt.Errorf("conntrackd on %s never answered: %w: %s", fw, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ctdStats is conntrackd -s on fw, parsed.
func (l *lab) ctdStats(fw string) (labkit.ConntrackdStats, error) {
	out, err := exec.Command("ip", "netns", "exec", l.name(fw), "conntrackd", "-C", l.ctdConf(fw), "-s").Output()
	if err != nil {
		return labkit.ConntrackdStats{}, err
	}
	return labkit.ParseConntrackdStats(out)
}

// loadavg is the 1-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// runComparison runs every scenario of the comparison in a lab of its
// own and prints the table. It fails if a ctsync run did not keep every
// connection; conntrackd's results are reported, not judged.
func runComparison() error {
	load := loadavg()
	fmt.Printf("== Comparison: %d runs, each in a fresh lab: %d long-lived TCP connections (a request every %v), %d background flows, a ruleset that resets TCP packets of unknown flows\n",
		len(comparison), *conns, *interval, *extra)
	var results []result
	var failed []string
	for i, sc := range comparison {
		fmt.Printf("\n######## run %d/%d: %s, keepalived profile %s\n", i+1, len(comparison), sc, sc.profile)
		sc, err := prepare(sc)
		if err != nil {
			return err
		}
		res, err := runOne(sc, i+1)
		if err != nil {
			fmt.Fprintf(os.Stderr, "demo: run %d (%s, %s): %v\n", i+1, sc, sc.profile.name, err)
			failed = append(failed, fmt.Sprintf("%s/%s: %v", sc, sc.profile.name, err))
			if res.conns == 0 {
				continue // no measurement at all
			}
		}
		results = append(results, res)
	}
	fmt.Println()
	fmt.Print(comparisonTable(results))
	fmt.Printf("   load average (1 min) %s at the start, %s at the end, %d CPUs\n", load, loadavg(), runtime.NumCPU())
	if len(failed) > 0 {
		return fmt.Errorf("%d run(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	fmt.Println("== PASS: ctsync kept every connection in every run")
	return nil
}

// comparisonTable formats the results as the README shows them.
func comparisonTable(results []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "== Takeover comparison (%d background flows, reset-on-unknown ruleset)\n", *extra)
	fmt.Fprintf(&b, "   %-32s %-30s %-9s %-14s %-17s %s\n", "daemon / notify", "keepalived profile", "survived", "longest stall", "VIPs moved after", "false takeovers")
	for _, r := range results {
		fmt.Fprintf(&b, "   %-32s %-30s %-9s %-14s %-17s %d\n", r.sc, r.sc.profile, fmt.Sprintf("%d/%d", r.survived, r.conns), r.stall(),
			fmt.Sprintf("%.2f s", r.vip.Seconds()), r.falseTakeovers)
	}
	return b.String()
}
