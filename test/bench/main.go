// Command bench runs ctsync and conntrackd side by side between two
// firewalls in network namespaces joined by a veth pair, on the same
// flows: replication lag of a bulk load made with conntrack -R, commit
// time (peer alive and at failover), the committing node's own cache after
// a commit, convergence of a restarted peer, delete propagation, daemon
// memory per cached flow, CPU time per replicated flow on each side, bytes
// on the wire per flow, and the latency of single flows under background
// churn. Run it as root:
//
//	go run ./test/bench -n 100000
//	go run ./test/bench -sizes 10000,100000,1000000 -runs 3 -json
//	go run ./test/bench -daemons ctsync -n 100000
//
// conntrackd runs in FTFW mode over UDP on the veth (see conntrackd.go for
// its tuning). Each value is the median of -runs runs; the table gives the
// ratio ctsync/conntrackd per row and which direction is better. It
// cleans up its namespaces and daemons and restores nf_conntrack_max and
// the conntrack hash size, also when interrupted.
//
// BENCH_PROFILE=prefix writes a CPU profile of every ctsync daemon
// (prefix.fwN.TIMESTAMP; not for a node killed with SIGKILL).
// BENCH_DEBUG=1 prints notes as they happen, makes ctsync log at debug and
// keeps the daemons' logs. BENCH_CONNTRACKD_NORMAL=1 runs conntrackd at the
// normal scheduling policy instead of its default real-time SCHED_RR 99,
// as ctsync runs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 100000, "flows (one size; see -sizes)")
	sizesFlag := flag.String("sizes", "", "comma-separated flow counts, e.g. 10000,100000,1000000 (overrides -n)")
	runs := flag.Int("runs", 1, "runs per size and daemon; the table shows medians")
	daemonsFlag := flag.String("daemons", "ctsync,conntrackd", "daemons to run: ctsync, conntrackd")
	asJSON := flag.Bool("json", false, "print JSON instead of the table")
	bin := flag.String("bin", "", "ctsync binary (default: build one)")
	samples := flag.Int("samples", 200, "single-flow latency probes per run (0: skip)")
	churn := flag.Int("churn", 20000, "background flows/s on A during the latency probes")
	probeTimeout := flag.Duration("probe-timeout", 2*time.Second, "a latency probe not seen on B by then counts as missed")
	settle := flag.Duration("settle", 10*time.Second, "how long B's own cache may take to fill after a commit")
	noFailover := flag.Bool("no-failover", false, "skip the failover commit (A is then stopped cleanly, so that BENCH_PROFILE gets its profile)")
	flag.Parse()

	sizes, err := parseSizes(*sizesFlag, *n)
	if err != nil {
		fail(err)
	}
	names := strings.Split(*daemonsFlag, ",")
	for _, name := range names {
		if name != "ctsync" && name != "conntrackd" {
			fail(fmt.Errorf("-daemons: unknown daemon %q (want ctsync, conntrackd)", name))
		}
	}
	if *runs < 1 {
		fail(fmt.Errorf("-runs must be at least 1"))
	}

	if err := ensureTools(names); err != nil {
		fail(err)
	}
	l, err := newLab()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted, cleaning up")
		l.cleanup()
		os.Exit(130)
	}()
	if err != nil {
		l.cleanup()
		fail(err)
	}
	rep, err := bench(l, sizes, *runs, names, *bin, options{samples: *samples, churn: *churn, timeout: *probeTimeout, settle: *settle, noFail: *noFailover})
	l.cleanup()
	if err != nil {
		fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	printReport(os.Stdout, rep)
}

// ensureTools installs what the run needs and is missing (conntrack, and
// conntrackd when it is compared) with the repository's scripts/deps.sh:
// from a clean clone, on Debian as root, the bench needs nothing else.
func ensureTools(daemons []string) error {
	// The tools live in sbin directories that a non-login PATH may lack.
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin")
	need := []string{"conntrack", "ip"}
	if slices.Contains(daemons, "conntrackd") {
		need = append(need, "conntrackd")
	}
	var missing []string
	for _, t := range need {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("missing %s, and not run from the ctsync repository (run scripts/deps.sh)", strings.Join(missing, ", "))
	}
	fmt.Fprintf(os.Stderr, "bench: missing %s: running scripts/deps.sh\n", strings.Join(missing, ", "))
	cmd := exec.Command(filepath.Join(filepath.Dir(gomod), "scripts", "deps.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/deps.sh: %w", err)
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func parseSizes(s string, n int) ([]int, error) {
	if s == "" {
		return []int{n}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("-sizes: bad size %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// report is the whole result; it is also the -json document.
type report struct {
	Daemons []string     `json:"daemons"`
	Runs    int          `json:"runs"`
	Samples int          `json:"latency_samples"`
	Churn   int          `json:"churn_flows_per_second"`
	Sizes   []sizeReport `json:"sizes"`
}

type sizeReport struct {
	Flows   int                      `json:"flows"`
	Results map[string]*daemonResult `json:"results"`
	// Ratio is ctsync/conntrackd of the medians, per metric.
	Ratio map[string]float64 `json:"ratio_ctsync_over_conntrackd,omitempty"`
}

type daemonResult struct {
	Median map[string]float64 `json:"median"`
	Runs   []*sample          `json:"runs"`
	Errors []string           `json:"errors,omitempty"`
}

func bench(l *lab, sizes []int, runs int, names []string, bin string, o options) (*report, error) {
	rep := &report{Daemons: names, Runs: runs, Samples: o.samples, Churn: o.churn}
	var cs *ctsyncd
	for _, name := range names {
		if name == "ctsync" {
			var err error
			if cs, err = newCtsync(l, bin); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range sizes {
		l.raiseSysctls(n)
		file := filepath.Join(l.dir, fmt.Sprintf("flows-%d", n))
		if err := writeFlows(file, n); err != nil {
			return nil, err
		}
		ds := map[string]daemon{}
		for _, name := range names {
			switch name {
			case "ctsync":
				ds[name] = cs
			case "conntrackd":
				cd, err := newConntrackd(l, n)
				if err != nil {
					return nil, err
				}
				ds[name] = cd
			}
		}
		sr := sizeReport{Flows: n, Results: map[string]*daemonResult{}}
		for _, name := range names {
			sr.Results[name] = &daemonResult{}
		}
		// Interleave the daemons run by run, so that drift on the machine
		// touches both alike.
		for r := 0; r < runs; r++ {
			for _, name := range names {
				fmt.Fprintf(os.Stderr, "bench: %s, %d flows, run %d of %d\n", name, n, r+1, runs)
				t := time.Now()
				s, err := measure(l, ds[name], n, file, o)
				dr := sr.Results[name]
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
					dr.Errors = append(dr.Errors, err.Error())
				}
				for _, note := range s.Notes {
					fmt.Fprintf(os.Stderr, "bench: %s: %s\n", name, note)
				}
				fmt.Fprintf(os.Stderr, "bench: %s, %d flows, run %d took %.0f s\n", name, n, r+1, time.Since(t).Seconds())
				dr.Runs = append(dr.Runs, s)
			}
		}
		for _, dr := range sr.Results {
			dr.Median = medians(dr.Runs)
		}
		if a, b := sr.Results["ctsync"], sr.Results["conntrackd"]; a != nil && b != nil {
			sr.Ratio = map[string]float64{}
			for k, va := range a.Median {
				if vb, ok := b.Median[k]; ok && vb != 0 {
					sr.Ratio[k] = va / vb
				}
			}
		}
		os.Remove(file)
		rep.Sizes = append(rep.Sizes, sr)
	}
	return rep, nil
}

// medians is, per metric, the median of the runs that have it.
func medians(runs []*sample) map[string]float64 {
	vals := map[string][]float64{}
	for _, s := range runs {
		for k, v := range s.Metrics {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				vals[k] = append(vals[k], v)
			}
		}
	}
	out := map[string]float64{}
	for k, v := range vals {
		sort.Float64s(v)
		if len(v)%2 == 1 {
			out[k] = v[len(v)/2]
		} else {
			out[k] = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
	}
	return out
}
