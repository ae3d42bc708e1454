package e2e

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestHotStandbyKernel runs two daemons in hot standby on real kernel
// tables: the backup's table mirrors the master's flows (NAT, marks, zones,
// IPv6, SCTP...) without taking them as its own; a UDP flow kept alive on
// its owner by real packets (which refresh the owner's timeout without any
// event) has its timeout refreshed on the backup and never expires there;
// once its packets stop it expires on the owner and leaves the backup. The
// backup's commit gate is armed while it is backup; notify master lifts it
// and writes nothing more.
func TestHotStandbyKernel(t *testing.T) {
	kerneltest.RequireTools(t, "nft", "socat")
	l := newLab(t, 2)
	// The sync link is the boxes' own traffic: not replicated (the gate's
	// rules make the backup's kernel track it).
	hot := "commit:\n  mode: hot\nfilter:\n  ignore_addresses: [127.0.0.0/8, \"::1/128\", 10.99.0.0/24]\n"
	a, b := l.nodes[0], l.nodes[1]
	a.start(hot)
	b.start(hot)
	a.mustCtl("notify", "master")
	b.mustCtl("notify", "backup")
	if _, err := kerneltest.Exec(t, b.ns, "nft", "list", "table", "inet", "ctsync_gate"); err != nil {
		t.Fatalf("the backup's gate is not armed: %v", err)
	}

	for _, f := range flows {
		a.conntrack(append([]string{"-I"}, f...)...)
	}
	b.waitFor("the master's flows in the backup's kernel table", 20*time.Second, func() bool { return flowsOf(b) == flowsOf(a) })
	if got := b.count("internal"); got != 0 {
		t.Fatalf("the backup holds %d of the master's flows as its own", got)
	}
	if got := a.count("external", "--origin", "fw2"); got != 0 {
		t.Fatalf("the master got %d of its own flows back", got)
	}
	a.conntrack("-D", "-s", "192.168.10.6", "-p", "icmp")
	b.waitFor("a delete to reach the backup's table", 20*time.Second, func() bool { return flowsOf(b) == flowsOf(a) })

	// A quiet UDP flow: 6 s timeout on the owner, kept alive by packets.
	kerneltest.MustExec(t, a.ns, "sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=6")
	kerneltest.MustExec(t, a.ns, "nft", "add table inet t; add chain inet t out { type filter hook output priority 0; policy accept; ct state new counter accept; }")
	kerneltest.MustExec(t, a.ns, "ip", "addr", "add", "10.77.0.1/32", "dev", "lo")
	sender := exec.Command("ip", "netns", "exec", a.ns, "sh", "-c",
		"while :; do echo x | socat -u - UDP-SENDTO:10.77.0.1:5555,bind=10.77.0.1:4444,reuseaddr; sleep 0.5; done")
	sender.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	stopSender := func() {
		if sender.Process != nil {
			syscall.Kill(-sender.Process.Pid, syscall.SIGKILL)
			sender.Wait()
			sender.Process = nil
		}
	}
	defer stopSender()
	udp := regexp.MustCompile(`(?m)^udp\s+17 (\d+) src=10\.77\.0\.1 dst=10\.77\.0\.1 sport=4444 dport=5555`)
	timeout := func() int {
		out, err := kerneltest.Conntrack(t, b.ns, "-L", "-p", "udp", "--sport", "4444")
		if err != nil {
			return -1
		}
		m := udp.FindStringSubmatch(out)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	b.waitFor("the quiet UDP flow on the backup", 20*time.Second, func() bool { return timeout() >= 0 })
	// Its timeout on the backup goes down, then up again (refreshed), and
	// it outlives its 6 s several times over.
	first := time.Now()
	low, refreshes := timeout(), 0
	b.waitFor("three refreshes of the quiet flow's timeout", 40*time.Second, func() bool {
		n := timeout()
		if n < 0 {
			t.Fatalf("the quiet UDP flow expired on the backup after %v", time.Since(first))
		}
		if n > low {
			refreshes++
		}
		low = n
		return refreshes >= 3
	})
	t.Logf("quiet flow alive on the backup after %v, %d refreshes", time.Since(first).Round(time.Millisecond), refreshes)
	stopSender()
	b.waitFor("the quiet flow to leave the backup after it expired on its owner", 30*time.Second, func() bool { return timeout() < 0 })

	// Takeover: nothing left to write, gate lifted, flows owned.
	out := b.mustCtl("notify", "master")
	if !strings.Contains(out, "hot standby takeover") || !strings.Contains(out, "0 written now") {
		t.Fatalf("notify master:\n%s", out)
	}
	if out, _ := kerneltest.Exec(t, b.ns, "nft", "list", "tables"); strings.Contains(out, "ctsync_gate") {
		t.Fatalf("the gate is still armed after notify master:\n%s", out)
	}
	n := len(flows) - 1
	b.waitFor("the flows to become the new master's", 20*time.Second, func() bool { return b.count("internal") == n })
	a.waitFor("the old master to learn them as the new master's", 20*time.Second, func() bool { return a.count("external", "--origin", "fw2") == n })
}

// flowsOf is a node's table without the sync link's own connections.
func flowsOf(nd *node) string {
	var keep []string
	for _, l := range strings.Split(nd.table(), "\n") {
		if !strings.Contains(l, "10.99.0.") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
