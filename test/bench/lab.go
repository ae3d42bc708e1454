package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/test/internal/labkit"
)

// lab is two network namespaces, A and B, joined by a veth pair
// (10.98.0.1 on A, 10.98.0.2 on B). Every daemon runs in it in turn. It
// also raises nf_conntrack_max and the conntrack hash size for large runs
// and puts them back in cleanup.
type lab struct {
	dir  string
	ns   [2]string
	veth [2]string

	mu       sync.Mutex
	cleaned  bool
	cleanups []func() // daemons register their stop here
	sysctls  labkit.Sysctls
}

func addr(i int) string { return fmt.Sprintf("10.98.0.%d", i+1) }

func newLab() (*lab, error) {
	dir, err := os.MkdirTemp("", "ctsync-bench-")
	if err != nil {
		return nil, err
	}
	l := &lab{dir: dir}
	tag := strconv.Itoa(os.Getpid())
	l.ns = [2]string{"ctbench-a-" + tag, "ctbench-b-" + tag}
	l.veth = [2]string{"cba" + tag, "cbb" + tag}
	for _, ns := range l.ns {
		if err := sh("ip", "netns", "add", ns); err != nil {
			return l, err
		}
		sh("ip", "-n", ns, "link", "set", "lo", "up")
	}
	if err := sh("ip", "link", "add", l.veth[0], "netns", l.ns[0], "type", "veth", "peer", "name", l.veth[1], "netns", l.ns[1]); err != nil {
		return l, err
	}
	for i, v := range l.veth {
		if err := sh("ip", "-n", l.ns[i], "addr", "add", addr(i)+"/24", "dev", v); err != nil {
			return l, err
		}
		if err := sh("ip", "-n", l.ns[i], "link", "set", v, "up"); err != nil {
			return l, err
		}
	}
	return l, nil
}

// raiseSysctls makes room for n flows in each namespace plus churn:
// nf_conntrack_max at least 2n+200000 and, past 2n > 4 buckets per entry,
// a hash table of the next power of two.
func (l *lab) raiseSysctls(n int) {
	want := 2*n + 200000
	l.raise(labkit.CtMaxPath, want)
	buckets := 1
	for buckets < n {
		buckets <<= 1
	}
	if n >= 500000 {
		l.raise(labkit.HashsizePath, buckets)
	}
}

func (l *lab) raise(path string, want int) {
	if err := l.sysctls.Raise(path, want); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

func (l *lab) onCleanup(f func()) {
	l.mu.Lock()
	l.cleanups = append(l.cleanups, f)
	l.mu.Unlock()
}

// cleanup stops every daemon, deletes the namespaces, restores the sysctls
// and removes the temporary directory. It runs once; a signal handler may
// call it concurrently with the main goroutine.
func (l *lab) cleanup() {
	l.mu.Lock()
	if l.cleaned {
		l.mu.Unlock()
		return
	}
	l.cleaned = true
	cleanups := l.cleanups
	l.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, ns := range l.ns {
		if ns != "" {
			sh("ip", "netns", "del", ns)
		}
	}
	l.sysctls.Restore()
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "bench: daemon logs kept in %s\n", l.dir)
		return
	}
	os.RemoveAll(l.dir)
}

// flushTables empties both kernel tables.
func (l *lab) flushTables() {
	for i := range l.ns {
		l.conntrack(i, "-F")
	}
}

// conntrack runs conntrack(8) in node i's namespace.
func (l *lab) conntrack(i int, args ...string) error {
	return sh(append([]string{"ip", "netns", "exec", l.ns[i], "conntrack"}, args...)...)
}

// count is the number of entries in node i's kernel table.
func (l *lab) count(i int) int {
	out, err := exec.Command("ip", "netns", "exec", l.ns[i], "conntrack", "-C").Output()
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// txBytes is what node i's veth end has sent.
func (l *lab) txBytes(i int) int64 {
	out, err := exec.Command("ip", "-n", l.ns[i], "-j", "-s", "link", "show", "dev", l.veth[i]).Output()
	if err != nil {
		return 0
	}
	var links []struct {
		Stats struct {
			TX struct {
				Bytes int64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if json.Unmarshal(out, &links) != nil || len(links) == 0 {
		return 0
	}
	return links[0].Stats.TX.Bytes
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// waitUntil polls cond until it holds or d has passed: every 0.1 ms for
// the first 10 ms (short waits, such as the lag after a load, are measured
// to 0.1 ms), then every millisecond.
func waitUntil(d time.Duration, cond func() bool) error {
	start := time.Now()
	deadline := start.Add(d)
	for !cond() {
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		if now.Sub(start) < 10*time.Millisecond {
			time.Sleep(100 * time.Microsecond)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			var kb int64
			fmt.Sscan(strings.TrimPrefix(sc.Text(), "VmRSS:"), &kb)
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; 100
// on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds is a process's user plus system time, all threads, from
// /proc/PID/stat (10 ms resolution).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after ")".
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

func logFile(dir, name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// daemonAttr puts a daemon in its own process group, so that Ctrl-C
// reaches only the bench, which stops it, and kills it if the bench dies.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
