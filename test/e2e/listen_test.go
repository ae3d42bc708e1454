package e2e

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestListensOnlyWhereConfigured: a running node has exactly the sockets
// its configuration names, on the configured addresses (cluster.bind, TCP
// and UDP; metrics.listen), and no wildcard listener; the control socket
// is a root-only UNIX socket.
func TestListensOnlyWhereConfigured(t *testing.T) {
	kerneltest.RequireTools(t, "ss")
	l := newLab(t, 2)
	a, b := l.nodes[0], l.nodes[1]
	a.start("metrics:\n  listen: 10.99.0.1:9469\n")
	b.start("")
	a.waitFor("the peer", 20*time.Second, func() bool { _, err := a.ctl("health"); return err == nil })

	// Netid State Recv-Q Send-Q Local:Port Peer:Port
	out := kerneltest.MustExec(t, a.ns, "ss", "-Hltun")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 5 {
			got = append(got, f[0]+" "+f[4])
		}
	}
	slices.Sort(got)
	want := []string{"tcp 10.99.0.1:7946", "tcp 10.99.0.1:9469", "udp 10.99.0.1:7946"}
	if !slices.Equal(got, want) {
		t.Fatalf("listening sockets:\n%s\nwant exactly %q", out, want)
	}
	fi, err := os.Stat(a.sock)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 || !ok || st.Uid != 0 {
		t.Fatalf("control socket: mode %v, want a socket, 0600, owned by root", fi.Mode())
	}
}
