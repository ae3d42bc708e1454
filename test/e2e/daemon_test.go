package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHealthAndReload: a lone node is not ready to take over (health exit
// 1, with the reason); once its peer is in sync it is. SIGHUP applies a new
// replication filter: flows it excludes leave the internal cache, and the
// peer sees them withdrawn.
func TestHealthAndReload(t *testing.T) {
	l := newLab(t, 2)
	a, b := l.nodes[0], l.nodes[1]
	a.start("")
	// Once its table is loaded, a lone node says what it waits for.
	var out string
	var err error
	a.waitFor("health to name the missing peer", 20*time.Second, func() bool {
		out, err = a.ctl("health")
		return err == nil || !strings.Contains(err.Error(), "not loaded from the kernel yet")
	})
	if err == nil || !strings.Contains(err.Error(), "peer") {
		t.Fatalf("health of a lone node: %v (%s), want not ready with a reason", err, out)
	}
	b.start("")
	a.waitFor("health", 20*time.Second, func() bool { _, err := a.ctl("health"); return err == nil })

	a.conntrack("-I", "-s", "192.168.10.2", "-d", "198.51.100.7", "-p", "tcp", "--sport", "40000", "--dport", "443",
		"--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600")
	a.conntrack("-I", "-s", "192.168.10.3", "-d", "198.51.100.53", "-p", "udp", "--sport", "5353", "--dport", "53", "-t", "120")
	b.waitFor("both flows", 20*time.Second, func() bool { return b.count("external") == 2 })

	// Replicate UDP only from now on.
	cfg, err := os.ReadFile(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.cfg, append(cfg, []byte("filter:\n  protocols: [udp]\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.waitFor("the TCP flow to leave a's cache", 20*time.Second, func() bool { return a.count("internal") == 1 })
	b.waitFor("the TCP flow to leave b's copy", 20*time.Second, func() bool {
		return b.count("external") == 1 && b.count("external", "-p", "udp") == 1
	})
	// A configuration with problems is refused on reload; the daemon keeps running.
	if err := os.WriteFile(a.cfg, append(cfg, []byte("filter:\n  protocols: [bogus]\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	a.waitFor("the refusal to be logged", 20*time.Second, func() bool {
		b, _ := os.ReadFile(a.log)
		return strings.Contains(string(b), "reload refused")
	})
	a.mustCtl("stats")
}
