package main

import (
	"fmt"
	"io"
)

// printReport writes one table per size: the daemons side by side, and
// with both, the ratio ctsync/conntrackd and which way is better.
func printReport(w io.Writer, rep *report) {
	both := len(rep.Daemons) == 2
	for _, sr := range rep.Sizes {
		fmt.Fprintf(w, "\nN = %d flows, 2 nodes in namespaces over veth, median of %d run(s)\n", sr.Flows, rep.Runs)
		fmt.Fprintf(w, "  %-40s", "")
		for _, name := range rep.Daemons {
			fmt.Fprintf(w, " %16s", name)
		}
		if both {
			fmt.Fprintf(w, " %9s  %s", "ratio", "(ctsync/conntrackd)")
		}
		fmt.Fprintln(w)
		for _, m := range metrics {
			fmt.Fprintf(w, "  %-40s", m.label)
			for _, name := range rep.Daemons {
				v, ok := sr.Results[name].Median[m.key]
				cell := "-"
				if ok {
					cell = fmt.Sprintf(m.format, v)
					if m.unit != "" {
						cell += " " + m.unit
					}
				}
				fmt.Fprintf(w, " %16s", cell)
			}
			if both {
				if r, ok := sr.Ratio[m.key]; ok {
					fmt.Fprintf(w, " %9.2f  %s", r, verdict(m, r))
				} else {
					fmt.Fprintf(w, " %9s", "-")
				}
			}
			fmt.Fprintln(w)
		}
		for _, name := range rep.Daemons {
			dr := sr.Results[name]
			for _, e := range dr.Errors {
				fmt.Fprintf(w, "  %s error: %s\n", name, e)
			}
			seen := map[string]bool{}
			for _, s := range dr.Runs {
				for _, n := range s.Notes {
					if !seen[n] {
						seen[n] = true
						fmt.Fprintf(w, "  %s note: %s\n", name, n)
					}
				}
			}
		}
	}
	fmt.Fprintln(w, `
Notes:
  - ratio = ctsync/conntrackd of the medians; "lower/higher is better" is the
    direction that favours a daemon, and "ctsync behind" marks rows where
    conntrackd is better by more than 5%.
  - Both nodes share one kernel and two vCPUs: a node's event listener slows
    conntrack creates in every namespace, so commits with A alive are slower
    than on two machines; the "A killed" commit is the faithful one.
  - CPU is utime+stime of each daemon process (all threads) from
    /proc/PID/stat, 10 ms ticks, from the start of the load to 1 s after B
    holds all N. Wire bytes are both veth ends' tx_bytes over the same span.
  - Latency: each probe flow is created on A over ctnetlink (conntrack -I's
    request, sent by the bench) while 20k flows/s are created and, 40 ms
    later, deleted on A; B's external cache is then polled back to back (1 ms
    pause): ctsync, a count filtered by source on its control socket;
    conntrackd, a dump of its external cache (the -e ct request, a forked
    snapshot) searched for the probe. The value is the midpoint between the
    last look that missed the flow and the first that saw it; the resolution
    row is the median half-width of that interval. When the resolution equals
    p50, the first look always saw the flow: the latency is below what the
    poll can resolve, and the difference between the daemons is the cost of
    one look.
  - The restart row runs from starting B's process (after a clean stop and
    an emptied table) until B holds all N: start-up included; conntrackd is
    then asked for a resync (-n) as soon as its socket answers.
  - Counts (B holds all N, deletes reached B) are polled every 0.1 ms for
    the first 10 ms of a wait, then every 1 ms; a wait includes one poll.
  - RSS per flow is B's VmRSS growth over the load divided by N.`)
}

func verdict(m metric, r float64) string {
	if m.info {
		return "(context)"
	}
	dir := "lower is better"
	behind := r > 1.05
	if m.higher {
		dir = "higher is better"
		behind = r < 0.95
	}
	if behind {
		return dir + "; ctsync behind"
	}
	return dir
}
