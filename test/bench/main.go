// Command bench measures ctsync between two firewalls in network
// namespaces joined by a veth pair: replication lag of a bulk load made
// with conntrack -R, commit time, the committing node's own cache after a
// commit, convergence of a restarted peer, delete propagation and daemon
// memory per cached flow. Run it as root:
//
//	go run ./test/bench -n 100000
//
// It prints a table and, with -json, a JSON document. It cleans up its
// namespaces and restores nf_conntrack_max, also when interrupted.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/control"
)

type result struct {
	Flows          int     `json:"flows"`
	LoadSeconds    float64 `json:"load_seconds"`      // conntrack -R on A
	LagAfterLoadMs float64 `json:"lag_after_load_ms"` // last insert on A → all on B
	CommitSeconds  float64 `json:"commit_seconds"`    // ctsync commit on B
	CommitCreated  int     `json:"commit_created"`    //
	// The same commit at failover: the owner (A) was killed first, so
	// nobody receives the re-announced flows.
	FailoverCommitSeconds float64 `json:"failover_commit_seconds"`
	FailoverCreated       int     `json:"failover_created"`
	OwnCacheAfter         int     `json:"own_cache_after"`     // B's internal cache after its commit
	RestartConvergeMs     float64 `json:"restart_converge_ms"` // B restarted: control socket up → all of A's flows
	DeleteLagMs           float64 `json:"delete_lag_ms"`       // conntrack -F on A → B's external cache empty
	RSSPerFlow            float64 `json:"rss_bytes_per_flow"`  // B's RSS growth / flows held
	WireBytesPerFlow      float64 `json:"wire_bytes_per_flow"` // A's bytes sent to B / flows
}

func main() {
	n := flag.Int("n", 100000, "flows")
	asJSON := flag.Bool("json", false, "print JSON")
	bin := flag.String("bin", "", "ctsync binary (default: build one)")
	flag.Parse()
	l, err := setup(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; l.cleanup(); os.Exit(130) }()
	r, err := l.run(*n)
	l.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	fmt.Printf("ctsync, %d flows, 2 nodes in namespaces over veth\n", r.Flows)
	defer fmt.Println(`  note: both nodes share one kernel here. A live node's event listener slows
  conntrack creates in every namespace (kernel: BenchmarkBulkCreateForeignListener),
  so "commit (A alive)" is slower than it would be on two machines; the failover
  row, with A gone, is the faithful one.`)
	rows := []struct {
		name, val string
	}{
		{"conntrack -R load on A", fmt.Sprintf("%.3f s", r.LoadSeconds)},
		{"lag: last insert on A -> all on B", fmt.Sprintf("%.1f ms", r.LagAfterLoadMs)},
		{"commit on B (A alive)", fmt.Sprintf("%.3f s (%d created)", r.CommitSeconds, r.CommitCreated)},
		{"commit on B at failover (A killed)", fmt.Sprintf("%.3f s (%d created)", r.FailoverCommitSeconds, r.FailoverCreated)},
		{"B's own cache after commit", fmt.Sprintf("%d of %d", r.OwnCacheAfter, r.Flows)},
		{"restarted B converged", fmt.Sprintf("%.1f ms", r.RestartConvergeMs)},
		{"deletes (conntrack -F on A) reach B", fmt.Sprintf("%.1f ms", r.DeleteLagMs)},
		{"daemon RSS per cached flow (B)", fmt.Sprintf("%.0f B", r.RSSPerFlow)},
		{"wire bytes per flow", fmt.Sprintf("%.1f B", r.WireBytesPerFlow)},
	}
	for _, row := range rows {
		fmt.Printf("  %-40s %s\n", row.name, row.val)
	}
}

type lab struct {
	dir     string
	bin     string
	ns      [2]string
	daemons [2]*exec.Cmd
	oldMax  string
	cleaned bool
}

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func setup(bin string) (*lab, error) {
	dir, err := os.MkdirTemp("", "ctsync-bench-")
	if err != nil {
		return nil, err
	}
	l := &lab{dir: dir, bin: bin}
	if l.bin == "" {
		l.bin = filepath.Join(dir, "ctsync")
		if err := sh("go", "build", "-o", l.bin, "github.com/ctsync/ctsync/cmd/ctsync"); err != nil {
			return l, err
		}
	}
	tag := strconv.Itoa(os.Getpid())
	l.ns = [2]string{"ctbench-a-" + tag, "ctbench-b-" + tag}
	for _, ns := range l.ns {
		if err := sh("ip", "netns", "add", ns); err != nil {
			return l, err
		}
		sh("ip", "-n", ns, "link", "set", "lo", "up")
	}
	va, vb := "cba"+tag, "cbb"+tag
	if err := sh("ip", "link", "add", va, "netns", l.ns[0], "type", "veth", "peer", "name", vb, "netns", l.ns[1]); err != nil {
		return l, err
	}
	for i, v := range []string{va, vb} {
		sh("ip", "-n", l.ns[i], "addr", "add", fmt.Sprintf("10.98.0.%d/24", i+1), "dev", v)
		sh("ip", "-n", l.ns[i], "link", "set", v, "up")
	}
	if b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max"); err == nil {
		l.oldMax = strings.TrimSpace(string(b))
	}
	key, err := exec.Command(l.bin, "keygen").Output()
	if err != nil {
		return l, err
	}
	if err := os.WriteFile(filepath.Join(dir, "key"), key, 0o600); err != nil {
		return l, err
	}
	for i := range l.ns {
		cfg := fmt.Sprintf("node: fw%d\ncluster:\n  bind: 10.98.0.%d:7946\n  join: [\"10.98.0.%d:7946\"]\n  key_file: %s\ncontrol:\n  socket: %s\n",
			i+1, i+1, 2-i, filepath.Join(dir, "key"), l.sock(i))
		if os.Getenv("BENCH_DEBUG") != "" {
			cfg += "log:\n  level: debug\n"
		}
		if err := os.WriteFile(l.cfg(i), []byte(cfg), 0o600); err != nil {
			return l, err
		}
	}
	return l, nil
}

func (l *lab) sock(i int) string { return filepath.Join(l.dir, fmt.Sprintf("fw%d.sock", i+1)) }
func (l *lab) cfg(i int) string  { return filepath.Join(l.dir, fmt.Sprintf("fw%d.yaml", i+1)) }

func (l *lab) start(i int) error {
	logf, err := os.OpenFile(filepath.Join(l.dir, fmt.Sprintf("fw%d.log", i+1)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"netns", "exec", l.ns[i], l.bin, "daemon", "--config", l.cfg(i)}
	if p := os.Getenv("BENCH_PROFILE"); p != "" {
		args = append(args, "--cpuprofile", fmt.Sprintf("%s.fw%d.%d", p, i+1, time.Now().UnixNano()))
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	l.daemons[i] = cmd
	return waitUntil(30*time.Second, func() bool {
		_, err := control.Dial(l.sock(i)).Health(context.Background())
		return err == nil
	})
}

func (l *lab) stop(i int) {
	if c := l.daemons[i]; c != nil && c.Process != nil {
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
		l.daemons[i] = nil
	}
}

func (l *lab) cleanup() {
	if l.cleaned {
		return
	}
	l.cleaned = true
	for i := range l.daemons {
		l.stop(i)
	}
	for _, ns := range l.ns {
		if ns != "" {
			sh("ip", "netns", "del", ns)
		}
	}
	if l.oldMax != "" {
		os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_max", []byte(l.oldMax), 0o644)
	}
	os.RemoveAll(l.dir)
}

func waitUntil(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func stats(i int, l *lab) (agent.Stats, error) {
	var s agent.Stats
	err := control.Dial(l.sock(i)).Stats(context.Background(), &s)
	return s, err
}

func external(s agent.Stats, origin string) int {
	for _, o := range s.External {
		if o.Origin == origin {
			return o.Flows
		}
	}
	return 0
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

// daemonPID finds the daemon process (ip netns exec execs into it).
func (l *lab) daemonPID(i int) int { return l.daemons[i].Process.Pid }

func (l *lab) run(n int) (*result, error) {
	r := &result{Flows: n}
	if l.oldMax != "" {
		if cur, _ := strconv.Atoi(l.oldMax); cur < 2*n+1000 {
			os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_max", []byte(strconv.Itoa(2*n+1000)), 0o644)
		}
	}
	for i := range l.ns {
		if err := l.start(i); err != nil {
			return nil, fmt.Errorf("start fw%d: %w", i+1, err)
		}
	}
	if err := waitUntil(30*time.Second, func() bool {
		h, err := control.Dial(l.sock(1)).Health(context.Background())
		return err == nil && h.Ready
	}); err != nil {
		return nil, fmt.Errorf("cluster never became healthy: %w", err)
	}
	rss0, _ := rss(l.daemonPID(1))
	file := filepath.Join(l.dir, "flows")
	if err := writeFlows(file, n); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := sh("ip", "netns", "exec", l.ns[0], "conntrack", "-R", file); err != nil {
		return nil, err
	}
	t1 := time.Now()
	r.LoadSeconds = t1.Sub(t0).Seconds()
	if err := waitUntil(60*time.Second, func() bool { s, err := stats(1, l); return err == nil && external(s, "fw1") == n }); err != nil {
		s, _ := stats(1, l)
		return nil, fmt.Errorf("node B holds %d of %d flows: %w", external(s, "fw1"), n, err)
	}
	r.LagAfterLoadMs = float64(time.Since(t1).Microseconds()) / 1000
	if rss1, err := rss(l.daemonPID(1)); err == nil {
		r.RSSPerFlow = float64(rss1-rss0) / float64(n)
	}
	if s, err := stats(0, l); err == nil {
		for _, p := range s.Sync.Peers {
			if p.Peer == "fw2" {
				r.WireBytesPerFlow = float64(p.SentBytes) / float64(n)
			}
		}
	}
	cr, err := control.Dial(l.sock(1)).Commit(context.Background())
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	r.CommitSeconds, r.CommitCreated = cr.Seconds, cr.Created
	if os.Getenv("BENCH_DEBUG") != "" {
		s, _ := stats(1, l)
		fmt.Fprintf(os.Stderr, "after commit: B events new=%d update=%d\n", s.Kernel.EventsNew, s.Kernel.EventsUpdate)
	}
	waitUntil(10*time.Second, func() bool { s, err := stats(1, l); return err == nil && s.Internal.Flows >= n })
	if s, err := stats(1, l); err == nil {
		r.OwnCacheAfter = s.Internal.Flows
	}
	// Restart B: it must get all of A's flows again. Flush B's table
	// first so that its own cache does not dominate its start-up.
	l.stop(1)
	sh("ip", "netns", "exec", l.ns[1], "conntrack", "-F")
	if err := l.start(1); err != nil {
		return nil, err
	}
	t3 := time.Now()
	if err := waitUntil(60*time.Second, func() bool { s, err := stats(1, l); return err == nil && external(s, "fw1") == n }); err != nil {
		return nil, fmt.Errorf("restarted B did not converge: %w", err)
	}
	r.RestartConvergeMs = float64(time.Since(t3).Microseconds()) / 1000
	t5 := time.Now()
	if err := sh("ip", "netns", "exec", l.ns[0], "conntrack", "-F"); err != nil {
		return nil, err
	}
	if err := waitUntil(60*time.Second, func() bool {
		s, err := stats(1, l)
		if os.Getenv("BENCH_DEBUG") != "" {
			sa, _ := stats(0, l)
			fmt.Fprintf(os.Stderr, "%6.0fms a.internal=%d b.external=%d\n", float64(time.Since(t5).Microseconds())/1000, sa.Internal.Flows, external(s, "fw1"))
		}
		return err == nil && external(s, "fw1") == 0
	}); err != nil {
		return nil, fmt.Errorf("deletes did not reach B: %w", err)
	}
	r.DeleteLagMs = float64(time.Since(t5).Microseconds()) / 1000

	// Failover: A holds N flows again, B has them in its external cache
	// and an empty kernel table; A dies hard; B commits.
	sh("ip", "netns", "exec", l.ns[1], "conntrack", "-F")
	if err := sh("ip", "netns", "exec", l.ns[0], "conntrack", "-R", file); err != nil {
		return nil, err
	}
	if err := waitUntil(60*time.Second, func() bool {
		s, err := stats(1, l)
		return err == nil && external(s, "fw1") == n && s.Internal.Flows == 0
	}); err != nil {
		return nil, fmt.Errorf("before failover: %w", err)
	}
	l.daemons[0].Process.Kill()
	l.daemons[0].Wait()
	l.daemons[0] = nil
	fr, err := control.Dial(l.sock(1)).Commit(context.Background())
	if err != nil {
		return nil, fmt.Errorf("failover commit: %w", err)
	}
	r.FailoverCommitSeconds, r.FailoverCreated = fr.Seconds, fr.Created
	if os.Getenv("BENCH_DEBUG") != "" {
		for i := range l.ns {
			s, _ := stats(i, l)
			b, _ := json.MarshalIndent(s, "", " ")
			fmt.Fprintf(os.Stderr, "fw%d: %s\n", i+1, b)
			log, _ := os.ReadFile(filepath.Join(l.dir, fmt.Sprintf("fw%d.log", i+1)))
			fmt.Fprintf(os.Stderr, "%s\n", log)
		}
	}
	return r, nil
}

// writeFlows writes n conntrack -R lines: established TCP flows, a quarter
// of them SNATed.
func writeFlows(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "-I -s 10.%d.%d.%d -d 198.51.100.%d -p tcp --sport %d --dport 443 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 3600",
			(i>>16)&255, (i>>8)&255, i&255, i%200, 1024+i%50000)
		if i%4 == 0 {
			fmt.Fprintf(w, " --src-nat 203.0.113.%d:%d", (i>>16)%250+1, 1024+(i>>2)%60000)
		}
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
