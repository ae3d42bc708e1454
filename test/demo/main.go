// Command demo shows ctsync keeping connections alive across a firewall
// failover. As root, after `make build`:
//
//	go run ./test/demo -bin bin/ctsync
//
// It builds, in network namespaces, a client, two firewalls (SNAT to a
// virtual address, a strict stateful nftables ruleset, nf_conntrack_tcp_loose
// off) running ctsync and real keepalived, and a server; opens long-lived
// TCP connections through the master; kills the master hard (processes
// killed, links down); and reports which connections survived, the longest
// stall, what the caches held and how long the takeover took. It removes
// everything it made, also when interrupted.
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
)

var execCommand = exec.Command

var (
	bin      = flag.String("bin", "bin/ctsync", "ctsync binary")
	conns    = flag.Int("conns", 30, "long-lived TCP connections")
	after    = flag.Duration("after", 8*time.Second, "how long to watch the connections after the failure")
	noCtsync = flag.Bool("without-ctsync", false, "control run: keepalived only, no ctsync")
	keep     = flag.Bool("keep", false, "keep the logs and configs (the directory is printed)")
	flips    = flag.Int("flips", 0, "after the failure: bring the dead firewall back and kill the master again, this many times")
	udp      = flag.Int("udp", 0, "also this many UDP sessions (their SNAT mapping, chosen at random, must survive)")
	pbScript = flag.String("primary-backup", "", "keepalived runs this conntrackd primary-backup.sh through a conntrackd symlink to ctsync, instead of ctsync notify")
	_        = time.Second
	verbose  = flag.Bool("v", false, "show the commands run")
)

// lab holds everything the demo made, for cleanup.
type lab struct {
	dir   string
	tag   string
	ns    map[string]string // role → namespace name
	procs []*exec.Cmd
	mu    stdsync.Mutex
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
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	return cmd, nil
}

func (l *lab) cleanup() {
	l.mu.Lock()
	for _, p := range l.procs {
		if p.Process != nil {
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			p.Wait()
		}
	}
	l.procs = nil
	l.mu.Unlock()
	for _, ns := range l.ns {
		exec.Command("ip", "netns", "pids", ns).Run()
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

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: run as root (it creates network namespaces)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "ctsync-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	l := &lab{dir: dir, tag: tag, ns: map[string]string{}}
	for _, r := range []string{"client", "fw1", "fw2", "server", "lan", "wan"} {
		l.ns[r] = "ctdemo-" + r + "-" + tag
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; fmt.Println("\ninterrupted: cleaning up"); l.cleanup(); os.Exit(130) }()
	err = run(l)
	l.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
