package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// metric is one row of the table.
type metric struct {
	key, label, unit string
	format           string
	higher           bool // higher is better (default: lower)
	info             bool // context, not a contest: no ratio verdict
}

var metrics = []metric{
	{key: "load_seconds", label: "conntrack -R load of N on A", unit: "s", format: "%.3f", info: true},
	{key: "lag_after_load_ms", label: "lag: A's load ends -> B holds all N", unit: "ms", format: "%.1f"},
	{key: "replicated_seconds", label: "A's load starts -> B holds all N", unit: "s", format: "%.3f"},
	{key: "commit_seconds", label: "commit of N on B (A alive)", unit: "s", format: "%.3f"},
	{key: "commit_created", label: "  flows in B's table after it", format: "%.0f", higher: true},
	{key: "own_cache_after", label: "B's own cache after its commit", format: "%.0f", higher: true},
	{key: "failover_commit_seconds", label: "commit of N on B (A killed)", unit: "s", format: "%.3f"},
	{key: "failover_created", label: "  flows in B's table after it", format: "%.0f", higher: true},
	{key: "resync_ms", label: "restarted B holds all N again", unit: "ms", format: "%.1f"},
	{key: "delete_lag_ms", label: "N deletes (conntrack -F on A) reach B", unit: "ms", format: "%.1f"},
	{key: "rss_bytes_per_flow", label: "daemon RSS per cached flow (B)", unit: "B", format: "%.0f"},
	{key: "cpu_a_per_100k", label: "CPU per 100k replicated flows, A", unit: "s", format: "%.2f"},
	{key: "cpu_b_per_100k", label: "CPU per 100k replicated flows, B", unit: "s", format: "%.2f"},
	{key: "wire_bytes_per_flow", label: "bytes on the wire per flow (A+B tx)", unit: "B", format: "%.1f"},
	{key: "latency_p50_ms", label: "single-flow latency p50 (churn)", unit: "ms", format: "%.2f"},
	{key: "latency_p99_ms", label: "single-flow latency p99 (churn)", unit: "ms", format: "%.2f"},
	{key: "latency_missed", label: "  probes not seen within the timeout", format: "%.0f", info: true},
	{key: "latency_resolution_ms", label: "  latency resolution (+/-)", unit: "ms", format: "%.2f", info: true},
	{key: "churn_rate", label: "  background churn achieved", unit: "flows/s", format: "%.0f", info: true},
}

// sample is one daemon's measurements for one size in one run. A key is
// missing when the step failed; Notes say why.
type sample struct {
	Metrics map[string]float64 `json:"metrics"`
	Notes   []string           `json:"notes,omitempty"`
}

func (s *sample) set(key string, v float64) { s.Metrics[key] = v }
func (s *sample) note(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	s.Notes = append(s.Notes, msg)
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintln(os.Stderr, "bench:", msg)
	}
}

type options struct {
	samples int           // latency probes
	churn   int           // background flows/s during the probes
	timeout time.Duration // per probe
	settle  time.Duration // wait for a daemon's own cache after a commit
	noFail  bool          // skip the failover step (A then stops cleanly, e.g. to write its profile)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// waitCount polls count until it equals want or the time is up, and
// returns how long it took.
func waitCount(d time.Duration, count func() (int, error), want int) (time.Duration, int, error) {
	t0 := time.Now()
	got := -1
	err := waitUntil(d, func() bool {
		n, err := count()
		if err == nil {
			got = n
		}
		return err == nil && n == want
	})
	return time.Since(t0), got, err
}

// measure runs the whole sequence for one daemon and n flows (in file). A
// daemon that cannot start or never becomes ready ends it with an error;
// a step that times out leaves its metric out and adds a note.
func measure(l *lab, d daemon, n int, file string, o options) (*sample, error) {
	s := &sample{Metrics: map[string]float64{}}
	bulk := max(60*time.Second, time.Duration(n)*100*time.Microsecond)
	startBoth := func() error {
		l.flushTables()
		for i := range 2 {
			if err := d.start(i); err != nil {
				return fmt.Errorf("%s: start node %d: %w", d.name(), i+1, err)
			}
		}
		return d.ready()
	}
	stopBoth := func() {
		d.stop(0)
		d.stop(1)
		l.flushTables()
	}
	defer stopBoth()

	// 1. Latency of single flows under churn, on fresh daemons.
	if o.samples > 0 {
		if err := startBoth(); err != nil {
			return s, err
		}
		lr, err := latency(l, d, o.samples, o.churn, o.timeout)
		if err != nil {
			s.note("latency: %v", err)
		}
		if lr.probes > 0 {
			s.set("latency_p50_ms", lr.p50)
			s.set("latency_p99_ms", lr.p99)
			s.set("latency_missed", float64(lr.missed))
			s.set("latency_resolution_ms", lr.resolutionMs)
			s.set("churn_rate", lr.churnRate)
		}
		stopBoth()
	}

	// 2. Bulk load on A.
	if err := startBoth(); err != nil {
		return s, err
	}
	pa, pb := d.pid(0), d.pid(1)
	rss0, _ := rss(pb)
	cpuA0, cpuB0 := cpuSeconds(pa), cpuSeconds(pb)
	txA0, txB0 := l.txBytes(0), l.txBytes(1)
	t0 := time.Now()
	if err := l.conntrack(0, "-R", file); err != nil {
		return s, err
	}
	t1 := time.Now()
	s.set("load_seconds", t1.Sub(t0).Seconds())
	if os.Getenv("BENCH_DEBUG") != "" {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/netlink", pa)); err == nil {
			s.note("load end: netfilter netlink sockets in A's namespace (sk eth pid groups rmem wmem ...): %q", netfilterSockets(b))
		}
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		// Where the lag is: A's own cache, then B.
		waitCount(bulk, func() (int, error) { return d.internal(0) }, n)
		s.note("load: A's own cache held all %d %v after the load ended", n, time.Since(t1))
		for range 3 {
			tp := time.Now()
			d.internal(0)
			s.note("load: the next look at A's cache took %v", time.Since(tp))
		}
		time.Sleep(100 * time.Millisecond)
		tp := time.Now()
		d.internal(0)
		s.note("load: a look 100 ms later took %v", time.Since(tp))
	}
	if _, got, err := waitCount(bulk, func() (int, error) { return d.external(1) }, n); err != nil {
		s.note("load: B held %d of %d flows after %v", got, n, bulk)
	} else {
		s.set("lag_after_load_ms", ms(time.Since(t1)))
		s.set("replicated_seconds", time.Since(t0).Seconds())
		if rss1, err := rss(pb); err == nil {
			s.set("rss_bytes_per_flow", float64(rss1-rss0)/float64(n))
		}
	}
	// Let acknowledgements and the last batches go out before reading
	// CPU time and the wire.
	time.Sleep(time.Second)
	s.set("cpu_a_per_100k", (cpuSeconds(pa)-cpuA0)/float64(n)*1e5)
	s.set("cpu_b_per_100k", (cpuSeconds(pb)-cpuB0)/float64(n)*1e5)
	txA, txB := l.txBytes(0)-txA0, l.txBytes(1)-txB0
	s.set("wire_bytes_per_flow", float64(txA+txB)/float64(n))
	s.set("wire_a_to_b_per_flow", float64(txA)/float64(n))
	s.set("wire_b_to_a_per_flow", float64(txB)/float64(n))

	// 3. Commit on B with A alive; B's own cache afterwards.
	t2 := time.Now()
	if err := d.commit(1); err != nil {
		s.note("commit: %v", err)
	} else {
		s.set("commit_seconds", time.Since(t2).Seconds())
		s.set("commit_created", float64(l.count(1)))
		// The committed flows come back to B as kernel events; give
		// them o.settle to reach B's own cache, then list it.
		waitCount(o.settle, func() (int, error) { return d.internal(1) }, n)
		if c, err := d.ownCache(1); err != nil {
			s.note("own cache: %v", err)
		} else {
			s.set("own_cache_after", float64(c))
		}
	}

	// 4. Restart B with an empty table: time until it holds all of A's
	// flows again, from the restart (the daemon's start-up counts: it is
	// part of what an operator waits for).
	d.stop(1)
	l.conntrack(1, "-F")
	t3 := time.Now()
	if err := d.start(1); err != nil {
		return s, fmt.Errorf("%s: restart B: %w", d.name(), err)
	}
	if err := d.restarted(1); err != nil {
		s.note("after restart: %v", err)
	}
	if _, got, err := waitCount(bulk, func() (int, error) { return d.external(1) }, n); err != nil {
		s.note("resync: restarted B held %d of %d flows after %v", got, n, bulk)
	} else {
		s.set("resync_ms", ms(time.Since(t3)))
	}

	// 5. Delete every flow on A.
	t4 := time.Now()
	if err := l.conntrack(0, "-F"); err != nil {
		return s, err
	}
	if _, got, err := waitCount(bulk, func() (int, error) { return d.external(1) }, 0); err != nil {
		s.note("delete: B still held %d of %d flows after %v", got, n, bulk)
	} else {
		s.set("delete_lag_ms", ms(time.Since(t4)))
	}

	if o.noFail {
		return s, nil
	}

	// 6. Failover: A holds N flows again, B has them in its external
	// cache and an empty table; A dies hard; B commits.
	l.conntrack(1, "-F")
	if err := l.conntrack(0, "-R", file); err != nil {
		return s, err
	}
	if _, got, err := waitCount(bulk, func() (int, error) { return d.external(1) }, n); err != nil {
		s.note("before failover: B held %d of %d flows after %v", got, n, bulk)
	}
	waitCount(10*time.Second, func() (int, error) { return d.internal(1) }, 0)
	d.kill(0)
	t5 := time.Now()
	if err := d.commit(1); err != nil {
		s.note("failover commit: %v", err)
	} else {
		s.set("failover_commit_seconds", time.Since(t5).Seconds())
		s.set("failover_created", float64(l.count(1)))
	}
	return s, nil
}

// netfilterSockets picks the NETLINK_NETFILTER lines of /proc/net/netlink.
func netfilterSockets(b []byte) []string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && f[1] == "12" {
			out = append(out, strings.Join(f[1:7], " "))
		}
	}
	return out
}
