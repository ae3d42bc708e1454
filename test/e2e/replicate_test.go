package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// flows are created with conntrack -I on the owner: NAT, mark, zone, IPv6,
// UDP, ICMP, SCTP.
var flows = [][]string{
	{"-s", "192.168.10.2", "-d", "198.51.100.7", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600", "--src-nat", "203.0.113.1:50000"},
	{"-s", "192.168.10.3", "-d", "203.0.113.1", "-p", "tcp", "--sport", "40001", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600", "--dst-nat", "192.168.20.5:8080"},
	{"-s", "192.168.10.4", "-d", "198.51.100.8", "-p", "tcp", "--sport", "40002", "--dport", "22", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600", "-m", "42", "-w", "7"},
	{"-s", "2001:db8:10::2", "-d", "2001:db8:20::7", "-p", "tcp", "--sport", "40003", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600"},
	{"-s", "192.168.10.5", "-d", "198.51.100.53", "-p", "udp", "--sport", "5353", "--dport", "53", "-t", "120", "--src-nat", "203.0.113.1"},
	{"-s", "192.168.10.6", "-d", "198.51.100.9", "-p", "icmp", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "77", "-t", "30"},
	{"-s", "192.168.10.7", "-d", "198.51.100.10", "-p", "sctp", "--sport", "3868", "--dport", "3868", "--state", "ESTABLISHED", "--orig-vtag", "5", "--reply-vtag", "6", "-t", "3600"},
	{"-s", "2001:db8:10::3", "-d", "2001:db8:20::8", "-p", "udp", "--sport", "1000", "--dport", "2000", "-t", "120", "--orig-zone", "3"},
}

func TestReplicateAndCommit(t *testing.T) {
	for _, size := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d-nodes", size), func(t *testing.T) { replicateAndCommit(t, size) })
	}
}

func replicateAndCommit(t *testing.T, size int) {
	l := newLab(t, size)
	for _, nd := range l.nodes {
		nd.start("")
	}
	a, b := l.nodes[0], l.nodes[1]
	peers := l.nodes[1:]
	for _, f := range flows {
		a.conntrack(append([]string{"-I"}, f...)...)
	}
	n := len(flows)
	for _, nd := range peers {
		nd.waitFor("a's flows in the external cache", 20*time.Second, func() bool { return nd.count("external", "--origin", "fw1") == n })
	}
	if got := a.count("internal"); got != n {
		t.Fatalf("a's internal cache holds %d, want %d", got, n)
	}
	// An update and a delete on the owner propagate.
	a.conntrack("-U", "-s", "192.168.10.2", "-p", "tcp", "--sport", "40000", "-m", "99")
	a.conntrack("-D", "-s", "192.168.10.6", "-p", "icmp")
	for _, nd := range peers {
		nd.waitFor("update and delete", 20*time.Second, func() bool {
			return nd.count("external", "--origin", "fw1") == n-1 && nd.count("external", "-m", "99") == 1
		})
	}
	// Commit on b: its table becomes the owner's.
	out := b.mustCtl("commit")
	if !strings.Contains(out, "0 failed") {
		t.Fatalf("commit: %s", out)
	}
	if got, want := b.table(), a.table(); got != want {
		t.Fatalf("after commit b's table differs from a's\nb:\n%s\na:\n%s", got, want)
	}
	b.waitFor("b's internal cache to hold the committed flows", 20*time.Second, func() bool { return b.count("internal") == n-1 })
	// Every other node learns that b now holds them too.
	for _, nd := range l.nodes {
		if nd != b {
			nd.waitFor("b's flows", 20*time.Second, func() bool { return nd.count("external", "--origin", "fw2") == n-1 })
		}
	}
	last := l.nodes[size-1]
	last.waitFor("health", 20*time.Second, func() bool { _, err := last.ctl("health"); return err == nil })
}

func TestSecondDaemonRefusedAndRestartAfterKill(t *testing.T) {
	l := newLab(t, 1)
	a := l.nodes[0]
	a.start("")
	// A second daemon on the same control socket refuses to start.
	second := &node{lab: l, name: "dup", ns: a.ns, addr: "10.99.0.1:7947", sock: a.sock, cfg: a.cfg + ".dup", log: a.log + ".dup"}
	second.lab = l
	out, err := runDaemonOnce(a, second)
	if err == nil || !strings.Contains(out, "another ctsync daemon is running") {
		t.Fatalf("second daemon: %v: %s", err, out)
	}
	// kill -9 leaves a stale socket and lock: a restart must still work.
	a.kill()
	a.start("")
	a.mustCtl("stats")
	// ctsync shutdown stops the daemon cleanly (exit 0).
	a.mustCtl("shutdown")
	select {
	case err := <-a.exited:
		if err != nil {
			t.Fatalf("daemon after shutdown: %v", err)
		}
		a.cmd = nil
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon still running 15s after ctsync shutdown")
	}
}
