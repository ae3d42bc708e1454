package e2e

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// faultCfg keeps the sync link's own connections (10.99.0.0/24) out of
// replication, so that a node's kernel table minus the sync link is exactly
// what its peers must hold.
const faultCfg = "filter:\n  ignore_addresses: [127.0.0.0/8, \"::1/128\", 10.99.0.0/24]\n"

// convergeWithin bounds the convergence after every fault: from the moment
// the fault is over (or the churn has stopped), every peer's copy of every
// node's flows, and each node's internal cache, must equal that node's
// kernel table within it.
const convergeWithin = 30 * time.Second

// TestFaults injects faults into a running cluster while its nodes' tables
// change, and checks that every cache converges to the kernel tables it
// mirrors — no flow missing, none stale, the same attributes — within
// convergeWithin. Each fault runs on a lab of its own and logs the
// measured convergence time ("converged in").
func TestFaults(t *testing.T) {
	kerneltest.RequirePrivileged(t)
	kerneltest.RequireTools(t, "ip", "conntrack", "nft")
	t.Run("sync-link-loss", faultLoss)
	t.Run("partition-and-heal", faultPartition)
	t.Run("peer-restart-during-churn", faultPeerRestart)
	t.Run("owner-restart", faultOwnerRestart)
	t.Run("kill-9", faultKill)
	t.Run("event-overrun", faultOverrun)
	t.Run("commit-during-event-flood", faultCommitFlood)
}

// faultLab starts n daemons with faultCfg (plus extra for the first) and
// waits until every one is in sync with its peers.
func faultLab(t *testing.T, n int, extra string) *lab {
	t.Helper()
	l := newLab(t, n)
	for i, nd := range l.nodes {
		if i == 0 {
			nd.start(faultCfg + extra)
		} else {
			nd.start(faultCfg)
		}
	}
	for _, nd := range l.nodes {
		nd.waitFor("health (peers in sync)", 20*time.Second, func() bool { _, err := nd.ctl("health"); return err == nil })
	}
	return l
}

// ---------------------------------------------------------------------------
// Flow generation.

// flowGen creates, updates and deletes flows in one node's kernel table and
// remembers which are alive. Node k's flows come from 10.(100+k).0.0/16,
// one source address per flow, so two nodes' flows never collide.
type flowGen struct {
	nd    *node
	k     int
	next  int
	live  []int       // indices of the flows alive in the kernel
	pos   map[int]int // index -> position in live
	marks map[int]int
	rnd   *mrand.Rand

	inserted, updated, deleted int
}

func newFlowGen(nd *node, k int) *flowGen {
	return &flowGen{nd: nd, k: k, pos: map[int]int{}, marks: map[int]int{}, rnd: mrand.New(mrand.NewPCG(uint64(k)+1, 42))}
}

// tuple is flow i's original tuple in conntrack syntax.
func (g *flowGen) tuple(i int) string {
	src := fmt.Sprintf("10.%d.%d.%d", 100+g.k, (i>>8)&255, i&255)
	if i%3 == 2 {
		return fmt.Sprintf("-s %s -d 198.51.100.53 -p udp --sport 40000 --dport 53", src)
	}
	return fmt.Sprintf("-s %s -d 198.51.100.7 -p tcp --sport 40000 --dport 443", src)
}

// insert is the -I line of flow i: TCP established (every fourth one
// source-NATed) or UDP, an hour's timeout, a mark.
func (g *flowGen) insert(i, mark int) string { return g.line("-I", i, mark) }

// line is flow i in full after cmd: -I creates it, -A creates or updates it.
func (g *flowGen) line(cmd string, i, mark int) string {
	line := cmd + " " + g.tuple(i)
	if i%3 != 2 {
		line += " --state ESTABLISHED -u SEEN_REPLY,ASSURED"
	}
	line += fmt.Sprintf(" -t 3600 -m %d", mark)
	if i%4 == 0 {
		line += fmt.Sprintf(" --src-nat 203.0.113.%d:%d", g.k+1, 1024+i/4)
	}
	return line
}

func (g *flowGen) add(i int) {
	g.pos[i] = len(g.live)
	g.live = append(g.live, i)
}

func (g *flowGen) remove(i int) {
	p := g.pos[i]
	last := g.live[len(g.live)-1]
	g.live[p], g.pos[last] = last, p
	g.live = g.live[:len(g.live)-1]
	delete(g.pos, i)
	delete(g.marks, i)
}

// inserts returns n -I lines of new flows.
func (g *flowGen) inserts(n int) []string {
	lines := make([]string, 0, n)
	for range n {
		i := g.next
		g.next++
		g.marks[i] = 1 + g.rnd.IntN(1000)
		lines = append(lines, g.insert(i, g.marks[i]))
		g.add(i)
		g.inserted++
	}
	return lines
}

// batch returns n lines of churn: inserts, mark updates and deletes, mostly
// inserts below target live flows, mostly updates and deletes above. One
// update in five is a -U; the others are -A lines (create or update): like
// -D, a -U dumps the whole table to find its entry (conntrack(8)'s
// semantics), which would make a churn of thousands of flows slow.
func (g *flowGen) batch(n, target int) []string {
	var lines []string
	for range n {
		r := g.rnd.IntN(100)
		ins, upd := 60, 90
		if len(g.live) >= target {
			ins, upd = 20, 75
		}
		switch {
		case r < ins || len(g.live) == 0:
			lines = append(lines, g.inserts(1)...)
		case r < upd:
			i := g.live[g.rnd.IntN(len(g.live))]
			g.marks[i] = 1 + g.rnd.IntN(1000)
			if g.rnd.IntN(5) == 0 {
				lines = append(lines, fmt.Sprintf("-U %s -m %d", g.tuple(i), g.marks[i]))
			} else {
				lines = append(lines, g.line("-A", i, g.marks[i]))
			}
			g.updated++
		default:
			i := g.live[g.rnd.IntN(len(g.live))]
			lines = append(lines, "-D "+g.tuple(i))
			g.remove(i)
			g.deleted++
		}
	}
	return lines
}

// load runs lines against the node's kernel table with `ctsync table load`.
func (g *flowGen) load(lines []string) error {
	cmd := exec.Command(binary, "table", "load", "--netns", g.nd.ns, "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: table load: %v: %s", g.nd.name, err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// loadR runs lines against the node's kernel table with conntrack -R.
func (g *flowGen) loadR(lines []string) error {
	f := filepath.Join(g.nd.lab.dir, fmt.Sprintf("%s-%d.ct", g.nd.name, g.next))
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	_, err := kerneltest.Conntrack(g.nd.lab.t, g.nd.ns, "-R", f)
	return err
}

func (g *flowGen) String() string {
	return fmt.Sprintf("%s: %d inserted, %d updated, %d deleted, %d alive", g.nd.name, g.inserted, g.updated, g.deleted, len(g.live))
}

// churn runs batches of n lines (see batch) on each generator, every
// generator in a goroutine of its own, until stop is closed and at least
// minRounds rounds are done. rounds receives each generator's completed round
// count as it grows. The returned wait gives the first error.
func churn(gens []*flowGen, n, target, minRounds int, stop <-chan struct{}, rounds chan<- int) (waitAll func() error) {
	var wg sync.WaitGroup
	errs := make(chan error, len(gens))
	for _, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 1; ; r++ {
				if err := g.load(g.batch(n, target)); err != nil {
					errs <- err
					return
				}
				if rounds != nil {
					select {
					case rounds <- r:
					default:
					}
				}
				if r >= minRounds {
					select {
					case <-stop:
						return
					default:
					}
				}
				// Pacing, so the churn lasts: not a synchronisation.
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	return func() error {
		wg.Wait()
		close(errs)
		return <-errs
	}
}

// waitRound waits until a churn reports round least or later and returns it.
func waitRound(t *testing.T, rounds <-chan int, least int) int {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case r := <-rounds:
			if r >= least {
				return r
			}
		case <-timeout:
			t.Fatalf("churn did not reach round %d within a minute", least)
		}
	}
}

// churnRounds runs rounds of churn on every generator concurrently and
// waits for them.
func churnRounds(t *testing.T, gens []*flowGen, rounds, n, target int) {
	t.Helper()
	stop := make(chan struct{})
	close(stop)
	if err := churn(gens, n, target, rounds, stop, nil)(); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Convergence.

var (
	useRE     = regexp.MustCompile(` use=\d+`)
	saveTORE  = regexp.MustCompile(` -t \d+ `)
	syncLinkN = "10.99.0."
)

// normalise drops the sync link's lines and empty ones, masks timeouts
// (conntrack's text and save formats) and use counts, and sorts.
func normalise(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, syncLinkN) {
			continue
		}
		l = timeoutRE.ReplaceAllString(l, "${1}T ")
		l = saveTORE.ReplaceAllString(l, " -t T ")
		l = useRE.ReplaceAllString(l, "")
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

// kernelFlows is the node's kernel table minus the sync link: conntrack -L
// (which shows marks) or, with save, conntrack -L -o save (which shows
// NAT, zones and status bits as load lines).
func (nd *node) kernelFlows(save bool) ([]string, error) {
	args := []string{"-L"}
	if save {
		args = append(args, "-o", "save")
	}
	out, err := kerneltest.Conntrack(nd.lab.t, nd.ns, args...)
	if err != nil {
		return nil, err
	}
	return normalise(out), nil
}

// cacheFlows lists a cache: "internal", or "external" of origin.
func (nd *node) cacheFlows(save bool, which string, origin string) ([]string, error) {
	args := []string{"cache", which}
	if origin != "" {
		args = append(args, "--origin", origin)
	}
	if save {
		args = append(args, "-o", "save")
	}
	out, err := nd.ctl(args...)
	if err != nil {
		return nil, err
	}
	return normalise(out), nil
}

// diff describes how got differs from want: counts and a few missing and
// stale lines.
func diff(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	for _, l := range want {
		w[l] = true
	}
	var missing, stale []string
	for _, l := range want {
		if !g[l] {
			missing = append(missing, l)
		}
	}
	for _, l := range got {
		if !w[l] {
			stale = append(stale, l)
		}
	}
	s := fmt.Sprintf("%d flows, want %d: %d missing, %d stale or different", len(got), len(want), len(missing), len(stale))
	for i, l := range missing {
		if i == 3 {
			break
		}
		s += "\n    missing: " + l
	}
	for i, l := range stale {
		if i == 3 {
			break
		}
		s += "\n    stale:   " + l
	}
	return s
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// inSync checks every node once: its internal cache and every other
// node's external cache of it against its kernel table, first by count,
// then line by line in conntrack's text format (marks) and save format
// (NAT, zones, status). It returns "" or what differs.
func (l *lab) inSync() string {
	var problems []string
	for _, owner := range l.nodes {
		for _, save := range []bool{false, true} {
			want, err := owner.kernelFlows(save)
			if err != nil {
				return err.Error()
			}
			check := func(what string, nd *node, which, origin string) bool {
				if !save {
					args := []string{which}
					if origin != "" {
						args = append(args, "--origin", origin)
					}
					if n := nd.count(args...); n != len(want) {
						problems = append(problems, fmt.Sprintf("%s: %d flows, want %d", what, n, len(want)))
						return false
					}
				}
				got, err := nd.cacheFlows(save, which, origin)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", what, err))
					return false
				}
				if !equal(got, want) {
					problems = append(problems, fmt.Sprintf("%s (save %v): %s", what, save, diff(got, want)))
					return false
				}
				return true
			}
			ok := check(owner.name+"'s internal cache", owner, "internal", "")
			for _, nd := range l.nodes {
				if nd != owner {
					ok = check(fmt.Sprintf("%s's external cache of %s", nd.name, owner.name), nd, "external", owner.name) && ok
				}
			}
			if !ok {
				break // the save pass only once the text pass agrees
			}
		}
	}
	return strings.Join(problems, "\n  ")
}

// exitedNode returns a node whose daemon has exited, with its error.
func (l *lab) exitedNode() (*node, error, bool) {
	for _, nd := range l.nodes {
		if nd.cmd == nil {
			continue
		}
		select {
		case err := <-nd.exited:
			nd.exited <- err
			return nd, err, true
		default:
		}
	}
	return nil, nil, false
}

// converge polls inSync until it holds or within has passed; it returns
// how long it took, or false with what still differed.
func (l *lab) converge(within time.Duration) (time.Duration, string, bool) {
	start := time.Now()
	var problem string
	exited := false
	wait.Until(within, func() bool {
		if problem = l.inSync(); problem == "" {
			return true
		}
		if nd, err, ok := l.exitedNode(); ok {
			problem, exited = fmt.Sprintf("%s's daemon exited: %v", nd.name, err), true
		}
		return exited
	})
	return time.Since(start), problem, problem == "" && !exited
}

// mustConverge is converge that fails the test, with every node's sync
// statistics, when the caches do not converge within convergeWithin. It
// logs the time taken ("converged in").
func (l *lab) mustConverge(t *testing.T, what string) time.Duration {
	t.Helper()
	took, problem, ok := l.converge(convergeWithin)
	if !ok {
		t.Fatalf("%s: not converged after %v:\n  %s\n%s", what, took.Round(time.Millisecond), problem, l.statsSummary())
	}
	t.Logf("%s: converged in %v (bound %v)\n%s", what, took.Round(time.Millisecond), convergeWithin, l.statsSummary())
	return took
}

// ---------------------------------------------------------------------------
// Statistics.

type faultStats struct {
	Kernel struct {
		Overruns uint64 `json:"overruns"`
		Resyncs  uint64 `json:"resyncs"`
	} `json:"kernel"`
	Sync struct {
		Epoch        string `json:"epoch"` // 64 bits, as a string
		DecodeErrors uint64 `json:"decode_errors"`
		Peers        []struct {
			Peer        string `json:"peer"`
			Connected   bool   `json:"connected"`
			Snapshots   uint64 `json:"snapshots_sent"`
			SendErrors  uint64 `json:"send_errors"`
			Stale       uint64 `json:"stale_rejected"`
			Mismatches  uint64 `json:"digest_mismatches"`
			ResyncAsked uint64 `json:"resyncs_requested"`
		} `json:"peers"`
	} `json:"sync"`
}

func (nd *node) stats() (faultStats, error) {
	var st faultStats
	out, err := nd.ctl("stats", "-o", "json")
	if err != nil {
		return st, err
	}
	err = json.Unmarshal([]byte(out), &st)
	return st, err
}

// statsSummary is one line per node: epoch, overruns, resyncs, and per
// peer snapshots sent, digest mismatches and snapshot requests.
func (l *lab) statsSummary() string {
	var b strings.Builder
	for _, nd := range l.nodes {
		st, err := nd.stats()
		if err != nil {
			fmt.Fprintf(&b, "    %s: stats: %v\n", nd.name, err)
			continue
		}
		fmt.Fprintf(&b, "    %s: epoch %s, overruns %d, resyncs %d, stream read errors %d;", nd.name, st.Sync.Epoch, st.Kernel.Overruns, st.Kernel.Resyncs, st.Sync.DecodeErrors)
		for _, p := range st.Sync.Peers {
			fmt.Fprintf(&b, " %s: connected %v, snapshots sent %d, send errors %d, stale %d, digest mismatches %d, snapshots asked %d;",
				p.Peer, p.Connected, p.Snapshots, p.SendErrors, p.Stale, p.Mismatches, p.ResyncAsked)
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// logEvents returns the lines of the node's log since offset that match re
// (at most limit of them, and how many there were), and the log's new size.
func (nd *node) logEvents(offset int, re *regexp.Regexp, limit int) ([]string, int, int) {
	b, _ := os.ReadFile(nd.log)
	if offset > len(b) {
		offset = 0
	}
	var out []string
	n := 0
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		if re.MatchString(l) {
			n++
			if len(out) < limit {
				out = append(out, l)
			}
		}
	}
	return out, n, len(b)
}

// streamEvents are the log lines that tell why replication restarted:
// streams ending, snapshots, digest mismatches; memberEvents are
// memberlist's suspicions and failure verdicts.
var (
	streamEvents = regexp.MustCompile(`stream to peer ended|dropping a replication stream|refused a replication stream|snapshot sent|digest mismatch`)
	memberEvents = regexp.MustCompile(`Suspect .* has failed|Marking .* as failed|Refuting a suspect`)
)

// logStreamEvents logs, per node, the stream events of its log and how
// many memberlist suspicions and failure verdicts it holds.
func (l *lab) logStreamEvents(t *testing.T) {
	t.Helper()
	for _, nd := range l.nodes {
		lines, n, _ := nd.logEvents(0, streamEvents, 12)
		failed, nf, _ := nd.logEvents(0, regexp.MustCompile(`Marking .* as failed`), 3)
		_, nm, _ := nd.logEvents(0, memberEvents, 0)
		t.Logf("%s: %d stream events, %d memberlist suspicions (%d marked failed) in its log%s", nd.name, n, nm, nf,
			strings.Join(append([]string{""}, append(lines, failed...)...), "\n      "))
	}
}

func nft(t *testing.T, nd *node, script string) {
	t.Helper()
	kerneltest.MustExec(t, nd.ns, "nft", script)
}

// ---------------------------------------------------------------------------
// Faults.

// faultLoss: 20% of the cluster packets dropped on arrival at every node
// while the owner churns a few thousand flows; the caches must converge
// with the loss still on.
func faultLoss(t *testing.T) {
	l := faultLab(t, 2, "")
	a := l.nodes[0]
	// 20% of the packets each node receives on the sync link (all of it
	// cluster traffic: memberlist's UDP and TCP, and the streams), one draw
	// per packet.
	const loss = `table inet loss {
	chain in {
		type filter hook input priority -300; policy accept;
		iifname "sync0" counter
		iifname "sync0" numgen random mod 100 < 20 counter drop
	}
}`
	for _, nd := range l.nodes {
		nft(t, nd, loss)
	}
	g := newFlowGen(a, 0)
	start := time.Now()
	churnRounds(t, []*flowGen{g}, 20, 200, 2500)
	t.Logf("churn under loss took %v: %v", time.Since(start).Round(time.Millisecond), g)
	// The property: replication converges with the loss still on.
	took, problem, ok := l.converge(convergeWithin)
	if !ok {
		l.logStreamEvents(t)
		t.Fatalf("with the loss still on: not converged after %v:\n  %s\n%s\n%s", took.Round(time.Millisecond), problem, l.statsSummary(), lossCounters(t, l))
	}
	t.Logf("with the loss still on: converged in %v (bound %v)\n%s\n%s", took.Round(time.Millisecond), convergeWithin, l.statsSummary(), lossCounters(t, l))
	l.logStreamEvents(t)
}

// lossCounters reports, per node, the packets the loss table counted: those
// that arrived on the sync link, and those of them it dropped.
func lossCounters(t *testing.T, l *lab) string {
	var b strings.Builder
	re := regexp.MustCompile(`counter packets (\d+)`)
	for _, nd := range l.nodes {
		out, err := kerneltest.Exec(t, nd.ns, "nft", "list", "table", "inet", "loss")
		if err != nil {
			continue
		}
		var n []string
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			n = append(n, m[1])
		}
		// The two counters of table inet loss, in rule order.
		fmt.Fprintf(&b, "    %s loss counters (arrived on sync0, dropped): %s\n", nd.name, strings.Join(n, " "))
	}
	return strings.TrimRight(b.String(), "\n")
}

// faultPartition: three nodes; fw1 and fw2 cannot reach each other (fw3
// still reaches both) while both churn; then the partition heals.
func faultPartition(t *testing.T) {
	l := faultLab(t, 3, "")
	a, b := l.nodes[0], l.nodes[1]
	cut := func(other string) string {
		return fmt.Sprintf(`table inet part {
	chain in { type filter hook input priority -300; policy accept; ip saddr %s drop; }
	chain out { type filter hook output priority -300; policy accept; ip daddr %s drop; }
}`, other, other)
	}
	nft(t, a, cut("10.99.0.2"))
	nft(t, b, cut("10.99.0.1"))
	start := time.Now()
	// Each side notices it no longer hears from the other: not ready to
	// take over (its copy of the other's flows is not confirmed).
	for _, nd := range []*node{a, b} {
		nd.waitFor("health to report the partition", 20*time.Second, func() bool { _, err := nd.ctl("health"); return err != nil })
		_, err := nd.ctl("health")
		t.Logf("%s during the partition: %v", nd.name, err)
	}
	gens := []*flowGen{newFlowGen(a, 0), newFlowGen(b, 1)}
	churnRounds(t, gens, 12, 200, 2000)
	// fw3 still gets both sides' changes during the partition.
	c := l.nodes[2]
	c.waitFor("fw3 to hold both sides' flows during the partition", convergeWithin, func() bool {
		return c.count("external", "--origin", a.name) == len(gens[0].live) && c.count("external", "--origin", b.name) == len(gens[1].live)
	})
	// A partition long enough for TCP's retransmission backoff to reach
	// tens of seconds on a stream that stayed open: the streams must not
	// wait it out (TCP_USER_TIMEOUT ends them; they redial).
	for time.Since(start) < partitionFor {
		a.waitFor("the partition to last", partitionFor, func() bool { return time.Since(start) >= partitionFor })
	}
	t.Logf("partitioned for %v: %v; %v\n%s", time.Since(start).Round(time.Millisecond), gens[0], gens[1], l.statsSummary())
	nft(t, a, "delete table inet part")
	nft(t, b, "delete table inet part")
	took, problem, ok := l.converge(healWithin)
	if !ok {
		t.Fatalf("after the partition healed: not converged after %v:\n  %s\n%s", took.Round(time.Millisecond), problem, l.statsSummary())
	}
	t.Logf("after the partition healed: converged in %v (bound %v)\n%s", took.Round(time.Millisecond), healWithin, l.statsSummary())
}

// partitionFor is how long the partition lasts; healWithin bounds the
// convergence after it heals.
const (
	partitionFor = 40 * time.Second
	healWithin   = 15 * time.Second
)

// faultPeerRestart: the backup's daemon is stopped (SIGTERM) and started
// again while the owner churns.
func faultPeerRestart(t *testing.T) {
	l := faultLab(t, 2, "")
	a, b := l.nodes[0], l.nodes[1]
	g := newFlowGen(a, 0)
	stop := make(chan struct{})
	rounds := make(chan int, 1)
	wait := churn([]*flowGen{g}, 200, 2500, 10, stop, rounds)
	before := waitRound(t, rounds, 3)
	b.stop()
	b.start(faultCfg)
	after := waitRound(t, rounds, before+3)
	close(stop)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's daemon restarted between churn rounds %d and %d: %v", b.name, before, after, g)
	l.mustConverge(t, "after the peer restart")
}

// faultOwnerRestart: the owner's daemon stops; its table changes while it
// is down (so the peer's copy is stale); it starts with a new epoch and
// the peer must converge to its table.
func faultOwnerRestart(t *testing.T) {
	l := faultLab(t, 2, "")
	a := l.nodes[0]
	g := newFlowGen(a, 0)
	churnRounds(t, []*flowGen{g}, 12, 200, 2000)
	l.mustConverge(t, "before the restart")
	st, _ := a.stats()
	a.stop()
	churnRounds(t, []*flowGen{g}, 6, 200, 2000)
	t.Logf("changed while %s was down: %v", a.name, g)
	a.start(faultCfg)
	st2, _ := a.stats()
	if st2.Sync.Epoch == st.Sync.Epoch {
		t.Errorf("the restarted owner kept its epoch %s", st.Sync.Epoch)
	}
	l.mustConverge(t, "after the owner restart")
}

// faultKill: kill -9 of each node in turn while both churn; the killed
// node's table keeps changing while it is down; then it starts again.
func faultKill(t *testing.T) {
	l := faultLab(t, 2, "")
	gens := []*flowGen{newFlowGen(l.nodes[0], 0), newFlowGen(l.nodes[1], 1)}
	for _, victim := range l.nodes {
		stop := make(chan struct{})
		rounds := make(chan int, 1)
		wait := churn(gens, 200, 2000, 8, stop, rounds)
		waitRound(t, rounds, 3)
		victim.kill()
		waitRound(t, rounds, 6)
		victim.start(faultCfg)
		close(stop)
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill -9 of %s: %v; %v", victim.name, gens[0], gens[1])
		l.mustConverge(t, "after kill -9 and restart of "+victim.name)
	}
}

// faultOverrun: the owner's event socket buffer is 64 KiB; a burst of 50k
// inserts overruns it; the daemon must count it and repair by a resync.
func faultOverrun(t *testing.T) {
	l := faultLab(t, 2, "kernel:\n  event_buffer: 64KiB\n")
	a := l.nodes[0]
	g := newFlowGen(a, 0)
	lines := g.inserts(50000)
	start := time.Now()
	if err := g.loadR(lines); err != nil {
		t.Fatal(err)
	}
	t.Logf("conntrack -R of 50000 inserts took %v", time.Since(start).Round(time.Millisecond))
	st, err := a.stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Kernel.Overruns == 0 {
		t.Fatalf("no overrun counted after a burst of 50000 inserts with a 64 KiB event buffer:\n%s", l.statsSummary())
	}
	t.Logf("overruns %d, resyncs %d", st.Kernel.Overruns, st.Kernel.Resyncs)
	l.mustConverge(t, "after the burst")
}

// faultCommitFlood: fw2 commits fw1's 20k flows while 20k flows of its own
// are inserted into its kernel concurrently. Afterwards its internal cache,
// and fw1's copy of it, hold all 40k (the committed flows are fw2's own
// now).
func faultCommitFlood(t *testing.T) {
	l := faultLab(t, 2, "")
	a, b := l.nodes[0], l.nodes[1]
	ga, gb := newFlowGen(a, 0), newFlowGen(b, 1)
	if err := ga.loadR(ga.inserts(20000)); err != nil {
		t.Fatal(err)
	}
	l.mustConverge(t, "fw1's 20k flows")
	own := gb.inserts(20000)
	var commitOut string
	var commitErr, loadErr error
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() { defer wg.Done(); loadErr = gb.loadR(own) }()
	go func() { defer wg.Done(); commitOut, commitErr = b.ctl("commit") }()
	wg.Wait()
	t.Logf("commit and flood done in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(commitOut))
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	if !strings.Contains(commitOut, "20000 created") || !strings.Contains(commitOut, "0 failed") {
		t.Fatalf("commit: %s", commitOut)
	}
	l.mustConverge(t, "after the commit during the flood")
	if n := b.count("internal"); n != 40000 {
		t.Fatalf("fw2's internal cache holds %d flows, want 40000", n)
	}
}
