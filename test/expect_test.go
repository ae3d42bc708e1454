package test

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// startKernelAgent runs an agent on the real conntrack table of a fresh
// network namespace, and returns it with the namespace.
func startKernelAgent(t *testing.T, name string, key []byte, join ...string) (*clusterNode, string) {
	t.Helper()
	ns := kerneltest.NewNetNS(t)
	c, err := kernel.Dial(kernel.Config{NetNS: ns, Parallel: 1})
	if err != nil {
		t.Fatalf("dial %s: %v", ns, err)
	}
	cfg := config.Default()
	cfg.Node = name
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.Join = join
	cfg.Cluster.Name = "cluster-test"
	cfg.Filter.IgnoreAddresses = nil // the ftp helper's connections are on lo
	a, err := agent.New(agent.Options{Config: cfg, Kernel: c, Keys: [][]byte{key}, SyncTimings: true, DigestEvery: 100 * time.Millisecond})
	if err != nil {
		c.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	n := &clusterNode{name: name, agent: a, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- a.Run(ctx) }()
	t.Cleanup(n.stop)
	return n, ns
}

func cachedExpects(t *testing.T, n *clusterNode, which string) []string {
	t.Helper()
	var out []string
	err := n.agent.CacheExpect(context.Background(), control.CacheQuery{Cache: which}, func(_ string, x *flow.Expect) error {
		out = append(out, x.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var expectTimeoutField = regexp.MustCompile(`^\d+ `)

func kernelExpects(t *testing.T, ns string) []string {
	t.Helper()
	out, err := kerneltest.Conntrack(t, ns, "-L", "expect")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, expectTimeoutField.ReplaceAllString(l, "T "))
		}
	}
	sort.Strings(lines)
	return lines
}

// TestExpectationsReplicateAndCommit: an expectation the ftp helper makes
// on a reaches b's external cache; b's commit creates the master, then the
// expectation on it (as conntrack shows it on a); a second commit keeps
// both (the master is updated in place); the owner's deletion reaches b.
func TestExpectationsReplicateAndCommit(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack", "nft")
	key := clusterKey(t)
	a, nsA := startKernelAgent(t, "fw-a", key)
	b, nsB := startKernelAgent(t, "fw-b", key, a.agent.Addr())
	// Not on lo: b refuses to commit a peer's loopback flow. On a's
	// own address (its connection to itself), which b does not have.
	kerneltest.MustExec(t, nsA, "ip", "link", "add", "ftp0", "type", "veth", "peer", "name", "ftp1")
	kerneltest.MustExec(t, nsA, "ip", "addr", "add", "10.98.0.1/24", "dev", "ftp0")
	kerneltest.MustExec(t, nsA, "ip", "link", "set", "ftp0", "up")
	kerneltest.MustExec(t, nsA, "ip", "link", "set", "ftp1", "up")
	kerneltest.FTPExpectationAt(t, nsA, netip.MustParseAddr("10.98.0.1"), 21, 50000)
	wait.For(t, "a's internal cache to hold the expectation", 10*time.Second, func() bool { return len(cachedExpects(t, a, "internal")) == 1 })
	wait.For(t, "b's external cache to hold it", 10*time.Second, func() bool { return len(cachedExpects(t, b, "external")) == 1 })
	if got := cachedExpects(t, b, "external")[0]; !strings.Contains(got, "master-dst=10.98.0.1 sport=") || !strings.Contains(got, "helper=ftp") {
		t.Fatalf("b holds %q", got)
	}
	// The helper for the master must exist in b's namespace for the
	// committed master to carry it.
	kerneltest.ExecStdin(t, nsB, `table inet ctsync_ftp { ct helper ftp { type "ftp" protocol tcp; } }`, "nft", "-f", "-")

	res, err := b.agent.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Expectations != 1 || res.ExpectationsFailed != 0 {
		t.Fatalf("commit: %+v, want 1 expectation created", res)
	}
	want, got := kernelExpects(t, nsA), kernelExpects(t, nsB)
	if len(want) != 1 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("b's kernel:\n%s\na's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A second commit updates the master in place (the same connection):
	// its expectation stays, and is found there.
	if res, err := b.agent.Commit(context.Background()); err != nil || res.Replaced != 1 || res.ExpectationsExisting != 1 || res.ExpectationsFailed != 0 {
		t.Fatalf("second commit: %+v %v", res, err)
	}
	if got := kernelExpects(t, nsB); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after the second commit, b's kernel:\n%s", strings.Join(got, "\n"))
	}

	// Deleted on the owner, deleted on the peer.
	ca, err := kernel.Dial(kernel.Config{NetNS: nsA})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	if err := ca.FlushExpect(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the deletion to reach b", 10*time.Second, func() bool {
		return len(cachedExpects(t, a, "internal")) == 0 && len(cachedExpects(t, b, "external")) == 0
	})
}

// TestCommitExpectationWithoutMaster: an expectation whose master is not
// in the external cache fails (the kernel wants the master), counted.
func TestCommitExpectationWithoutMaster(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack", "nft")
	ns := kerneltest.NewNetNS(t)
	c, err := kernel.Dial(kernel.Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kerneltest.FTPExpectation(t, ns, 21, 50000)
	var xs []flow.Expect
	err = c.DumpExpect(context.Background(), kernel.ExpectFilter{}, func(x *flow.Expect) error {
		xs = append(xs, *x)
		return nil
	})
	if err != nil || len(xs) != 1 {
		t.Fatalf("%v %v", xs, err)
	}
	ns2 := kerneltest.NewNetNS(t)
	c2, err := kernel.Dial(kernel.Config{NetNS: ns2})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.CreateExpect(context.Background(), &xs[0]); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("create without master: %v", err)
	}
}
