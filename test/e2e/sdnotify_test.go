package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdNotify: the daemon speaks systemd's notify protocol as the
// unit (Type=notify, WatchdogSec) expects: READY=1 once it serves, then
// WATCHDOG=1 at half of WATCHDOG_USEC while its loop answers, STOPPING=1
// on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	l := newLab(t, 1)
	nd := l.nodes[0]
	path := filepath.Join(l.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		b := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(b)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(b[:n])
		}
	}()
	expect := func(what string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed while waiting for %s", what)
				}
				if strings.Contains(m, what) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s within %v", what, within)
			}
		}
	}
	nd.env = []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=1000000"}
	nd.start("")
	expect("READY=1", 20*time.Second)
	expect("WATCHDOG=1", 10*time.Second)
	expect("WATCHDOG=1", 10*time.Second)
	nd.stop()
	expect("STOPPING=1", 10*time.Second)
}
