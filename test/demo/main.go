// Command demo shows ctsync keeping connections alive across a firewall
// failover. As root, after `make build`:
//
//	go run ./test/demo -bin bin/ctsync
//
// It builds, in network namespaces, a client, two or three firewalls
// (-firewalls; SNAT to a virtual address, a strict stateful nftables
// ruleset, nf_conntrack_tcp_loose off, a sync network of their own) running
// ctsync (or conntrackd, -daemon) and real keepalived, and a server; opens
// long-lived TCP connections through the master, each sending a small
// request every 20 ms; optionally loads many more flows into the master's
// table (-extra); kills the master hard (processes killed, links down); and
// reports which firewall took over, which connections survived, the longest
// stall, what the caches held and how long the takeover and its commit took.
// -reset makes the firewalls answer TCP packets of unknown flows with a
// reset, so that any packet that beats the state to the new master breaks
// its connection; -mode hot runs ctsync in hot standby; -profile fast runs
// keepalived with VRRPv3 and a 0.1 s advertisement interval (the profile of
// contrib/keepalived/keepalived-fast.conf) instead of 1 s.
//
// -compare (what `make demo` runs) does it several times, each in a fresh
// lab with the reset ruleset and -extra background flows (100000 unless
// given): ctsync in hot standby, ctsync in commit mode, and conntrackd in
// FTFW mode driven by its own primary-backup.sh, under the fast profile,
// then ctsync and conntrackd under the default one for reference; and ends
// with a table of connections surviving and longest stalls.
//
// It removes everything it made, also when interrupted.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/test/internal/labkit"
)

var execCommand = exec.Command

var (
	bin      = flag.String("bin", "bin/ctsync", "ctsync binary")
	conns    = flag.Int("conns", 30, "long-lived TCP connections")
	after    = flag.Duration("after", 0, "how long to watch the connections after the failure (0: 5 s under the fast profile, 10 s under the default one)")
	noCtsync = flag.Bool("without-ctsync", false, "control run: keepalived only, no sync daemon (the same as -daemon none)")
	daemon   = flag.String("daemon", "ctsync", "sync daemon on the firewalls: ctsync, conntrackd (FTFW, with its primary-backup.sh as keepalived's notify script; 2 firewalls) or none")
	profName = flag.String("profile", "default", "keepalived profile: default (VRRPv2, advert_int 1, as contrib/keepalived/keepalived.conf) or fast (VRRPv3, advert_int 0.1, as keepalived-fast.conf)")
	compare  = flag.Bool("compare", false, "run the comparison: ctsync hot, ctsync commit and conntrackd under the fast profile, ctsync and conntrackd under the default one; reset ruleset, -extra background flows (100000 unless given); ends with a table")
	interval = flag.Duration("interval", 20*time.Millisecond, "each TCP connection sends a request this often; the stall is the longest gap between answers")
	keep     = flag.Bool("keep", false, "keep the logs and configs (the directory is printed)")
	flips    = flag.Int("flips", 0, "after the failure: bring the dead firewall back and kill the master again, this many times")
	udp      = flag.Int("udp", 0, "also this many UDP sessions (their SNAT mapping, chosen at random, must survive)")
	pbScript = flag.String("primary-backup", "", "with -daemon ctsync: keepalived runs this conntrackd primary-backup.sh through a conntrackd symlink to ctsync, instead of ctsync notify; with -daemon conntrackd: the script to run (default: the Debian package's copy)")
	nfw      = flag.Int("firewalls", 2, "firewalls in the cluster: 2 or 3 (fw1..fwN, keepalived priorities 150, 100, 50)")
	extra    = flag.Int("extra", 0, "before the failure, load this many extra (synthetic) flows into the master's table")
	reset    = flag.Bool("reset", false, "the firewalls answer TCP packets of unknown flows with a reset instead of dropping them")
	mode     = flag.String("mode", "commit", "ctsync commit.mode: commit or hot")
	noGate   = flag.Bool("no-gate", false, "commit.gate: false (the RST window stays open)")
	probe    = flag.Duration("probe", 0, "also a UDP probe stream sending a datagram this often (e.g. 2ms): shows the window between the VIP move and the takeover")
	verbose  = flag.Bool("v", false, "show the commands run")
)

// lab holds everything the demo made, for cleanup.
type lab struct {
	sc    scenario
	dir   string
	tag   string
	ns    map[string]string // role → namespace name
	fws   []string          // fw1..fwN
	procs []*exec.Cmd
	mu    stdsync.Mutex
	done  bool // cleaned up: start nothing more
	once  stdsync.Once
}

func (l *lab) name(role string) string { return l.ns[role] }

func (l *lab) sh(args ...string) error {
	if *verbose {
		fmt.Println("  $", strings.Join(args, " "))
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *lab) in(role string, args ...string) error {
	return l.sh(append([]string{"ip", "netns", "exec", l.name(role)}, args...)...)
}

func (l *lab) output(role string, args ...string) string {
	out, _ := exec.Command("ip", append([]string{"netns", "exec", l.name(role)}, args...)...).Output()
	return string(out)
}

func (l *lab) start(role, logName string, args ...string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(l.dir, logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.name(role)}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Under the lock, so that a cleanup (Ctrl-C) running now either sees
	// this process or stops it from starting.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		logf.Close()
		return nil, fmt.Errorf("interrupted")
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	l.procs = append(l.procs, cmd)
	return cmd, nil
}

// cleanup removes everything the demo made. It runs once; a second caller
// (Ctrl-C during the first) waits until it is done.
func (l *lab) cleanup() { l.once.Do(l.removeAll) }

func (l *lab) removeAll() {
	l.mu.Lock()
	l.done = true
	for _, p := range l.procs {
		if p.Process != nil {
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			p.Wait()
		}
	}
	l.procs = nil
	l.mu.Unlock()
	for _, ns := range l.ns {
		if pids, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, p := range strings.Fields(string(pids)) {
				exec.Command("kill", "-9", p).Run()
			}
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
	if !*keep {
		os.RemoveAll(l.dir)
	}
}

// sysctls are the kernel settings the demo raised; restored on exit.
var sysctls labkit.Sysctls

// current is the lab being run, for the interrupt handler.
var (
	currentMu stdsync.Mutex
	current   *lab
)

// newLab names the namespaces and makes the directory of one run.
func newLab(sc scenario, run int) (*lab, error) {
	dir, err := os.MkdirTemp("", "ctsync-demo-")
	if err != nil {
		return nil, err
	}
	tag := fmt.Sprintf("%d", (os.Getpid()*10+run)%1000000)
	l := &lab{sc: sc, dir: dir, tag: tag, ns: map[string]string{}}
	for i := 1; i <= *nfw; i++ {
		l.fws = append(l.fws, fmt.Sprintf("fw%d", i))
	}
	for _, r := range append([]string{"client", "server", "lan", "wan", "sync"}, l.fws...) {
		l.ns[r] = "ctdemo-" + r + "-" + tag
	}
	currentMu.Lock()
	current = l
	currentMu.Unlock()
	return l, nil
}

// runOne runs one scenario in a lab of its own and removes the lab.
func runOne(sc scenario, n int) (result, error) {
	l, err := newLab(sc, n)
	if err != nil {
		return result{}, err
	}
	res, err := run(l)
	l.cleanup()
	if err != nil && *keep {
		fmt.Fprintln(os.Stderr, "demo: logs and configs kept in", l.dir)
	}
	return res, err
}

func main() {
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *noCtsync {
		*daemon = "none"
	}
	fail := func(msg string) {
		fmt.Fprintln(os.Stderr, "demo:", msg)
		os.Exit(2)
	}
	if *nfw < 2 || *nfw > 3 {
		fail("-firewalls must be 2 or 3")
	}
	if *mode != "commit" && *mode != "hot" {
		fail("-mode must be commit or hot")
	}
	if _, ok := profiles[*profName]; !ok {
		fail("-profile must be default or fast")
	}
	switch *daemon {
	case "ctsync", "none":
	case "conntrackd":
		if *nfw != 2 {
			fail("-daemon conntrackd: FTFW over UDP syncs two firewalls; -firewalls must be 2")
		}
	default:
		fail("-daemon must be ctsync, conntrackd or none")
	}
	if *extra < 0 || *conns < 1 || *interval <= 0 {
		fail("-extra must be 0 or more, -conns 1 or more, -interval positive")
	}
	if *compare && (*nfw != 2 || *flips > 0) {
		fail("-compare runs two firewalls and no flips")
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: run as root (it creates network namespaces)")
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("\ninterrupted: cleaning up")
		currentMu.Lock()
		l := current
		currentMu.Unlock()
		if l != nil {
			l.cleanup()
		}
		sysctls.Restore()
		os.Exit(130)
	}()
	var err error
	if *compare {
		if !set["extra"] {
			*extra = 100000
		}
		*reset = true
		err = runComparison()
	} else {
		var sc scenario
		sc, err = prepare(scenario{daemon: *daemon, mode: *mode, profile: profiles[*profName], pb: *pbScript})
		if err == nil {
			var res result
			res, err = runOne(sc, 0)
			if err == nil {
				// Only ctsync's runs are judged; the others are measured.
				verdict := map[bool]string{true: "PASS", false: "RESULT"}[sc.daemon == "ctsync"]
				fmt.Printf("== %s: %s\n", verdict, res.summary())
			}
		}
	}
	sysctls.Restore()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
