package agent

import (
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// inNetNS runs fn with the calling thread in namespace ns: sockets fn
// opens stay in ns.
func inNetNS(t *testing.T, ns string, fn func()) {
	t.Helper()
	fd := kerneltest.NetNSFd(t, ns)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot return to the test's network namespace: " + err.Error())
		}
	}()
	fn()
}

// TestNftGate arms the gate on a node whose table lost an established
// flow (as a new master's table lacks the flows not committed yet): the
// flow's next segment, INVALID without state, is dropped rather than
// answered or delivered, while new connections to the node itself still
// work; once the gate is lifted the retransmission gets through.
func TestNftGate(t *testing.T) {
	kerneltest.RequireTools(t, "nft", "ip", "conntrack", "nsenter")
	gated := kerneltest.NewNetNS(t)
	peer := kerneltest.NewNetNS(t)
	kerneltest.MustExec(t, gated, "ip", "link", "add", "gt0", "type", "veth", "peer", "name", "gt1", "netns", peer)
	kerneltest.MustExec(t, gated, "ip", "addr", "add", "10.99.0.1/24", "dev", "gt0")
	kerneltest.MustExec(t, gated, "ip", "link", "set", "gt0", "up")
	kerneltest.MustExec(t, peer, "ip", "addr", "add", "10.99.0.2/24", "dev", "gt1")
	kerneltest.MustExec(t, peer, "ip", "link", "set", "gt1", "up")
	kerneltest.MustExec(t, gated, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0")
	// A ruleset that uses conntrack, so that the namespace tracks flows.
	kerneltest.MustExec(t, gated, "nft", "add table inet base; add chain inet base input { type filter hook input priority 0; policy accept; ct state established counter accept; }")

	var ln net.Listener
	inNetNS(t, gated, func() {
		var err error
		if ln, err = net.Listen("tcp", "10.99.0.1:9000"); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var client net.Conn
	inNetNS(t, peer, func() {
		var err error
		if client, err = net.DialTimeout("tcp", "10.99.0.1:9000", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	defer client.Close()
	server := <-accepted
	defer server.Close()
	got := make(chan string, 16)
	go func() {
		b := make([]byte, 64)
		for {
			n, err := server.Read(b)
			if err != nil {
				close(got)
				return
			}
			got <- string(b[:n])
		}
	}()
	if _, err := client.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "a" {
		t.Fatalf("got %q", s)
	}

	g, err := newNftGate(gated)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // arming twice is harmless
		if err := g.Arm(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if armed, n, err := g.State(ctx); err != nil || !armed || n != 0 {
		t.Fatalf("State after Arm: armed %v, dropped %d, %v", armed, n, err)
	}
	// The table forgets the flow.
	if out, err := kerneltest.Conntrack(t, gated, "-D", "-p", "tcp", "--dport", "9000"); err != nil {
		t.Fatalf("conntrack -D: %v %s", err, out)
	}
	if _, err := client.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the gate to drop the segment", 20*time.Second, func() bool {
		_, n, err := g.State(ctx)
		return err == nil && n >= 1
	})
	select {
	case s := <-got:
		t.Fatalf("the gate let %q through", s)
	default:
	}
	// The node's own service still takes new connections.
	inNetNS(t, peer, func() {
		c, err := net.DialTimeout("tcp", "10.99.0.1:9000", 10*time.Second)
		if err != nil {
			t.Fatalf("a new connection to the gated node: %v", err)
		}
		c.Close()
	})

	dropped, err := g.Lift(ctx)
	if err != nil || dropped < 1 {
		t.Fatalf("Lift: dropped %d, %v", dropped, err)
	}
	if _, err := g.Lift(ctx); err != nil {
		t.Fatalf("lifting twice: %v", err)
	}
	if armed, _, err := g.State(ctx); err != nil || armed {
		t.Fatalf("State after Lift: armed %v, %v", armed, err)
	}
	select {
	case s := <-got:
		if s != "b" {
			t.Fatalf("after the gate: got %q, want b", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the retransmitted segment did not arrive after the gate was lifted")
	}
	out := kerneltest.MustExec(t, gated, "nft", "list", "tables")
	if strings.Contains(out, gateTable) {
		t.Fatalf("gate table left behind:\n%s", out)
	}
}

// TestParseGate reads nft's JSON.
func TestParseGate(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "ctsync_gate", "handle": 2}},
{"counter": {"family": "inet", "name": "dropped", "table": "ctsync_gate", "handle": 3, "packets": 7, "bytes": 420}},
{"chain": {"family": "inet", "table": "ctsync_gate", "name": "forward", "handle": 1}},
{"rule": {"family": "inet", "table": "ctsync_gate", "chain": "forward", "handle": 4, "expr": [{"counter": "dropped"}, {"drop": null}]}}]}`
	armed, n, err := parseGate([]byte(js))
	if err != nil || !armed || n != 7 {
		t.Fatalf("parseGate = %v %d %v; want armed, 7", armed, n, err)
	}
	// Lifted but not yet removed: chains and counter, no rules.
	js = `{"nftables": [{"table": {"family": "inet", "name": "ctsync_gate"}}, {"counter": {"name": "dropped", "packets": 3}}, {"chain": {"name": "input"}}]}`
	if armed, n, err := parseGate([]byte(js)); err != nil || armed || n != 3 {
		t.Fatalf("parseGate (flushed) = %v %d %v; want not armed, 3", armed, n, err)
	}
	if _, _, err := parseGate([]byte("garbage")); err == nil {
		t.Fatal("garbage accepted")
	}
}
