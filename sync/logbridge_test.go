package sync

import (
	"context"
	"log/slog"
	"net"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"

	"github.com/ctsync/ctsync/test/wait"
)

// countingHandler counts the records at WARN and above.
type countingHandler struct {
	n     *atomic.Int64
	mu    *stdsync.Mutex
	lines *[]string
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	h.n.Add(1)
	h.mu.Lock()
	if len(*h.lines) < 20 {
		var b strings.Builder
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
		*h.lines = append(*h.lines, b.String())
	}
	h.mu.Unlock()
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// startNodeLogger is startNode with a logger of the test's choosing.
func startNodeLogger(t *testing.T, name string, key []byte, log *slog.Logger) *testNode {
	t.Helper()
	return startNodeConfig(t, Config{Node: name, Keys: [][]byte{key}, Logger: log}, cache.ExternalOptions{})
}

// TestJunkUDPRateLimitedAndCounted: junk datagrams on the cluster port
// (spoofable: they need no connection) make memberlist log an error each;
// those lines go through the rate limiter, and count as authentication
// failures.
func TestJunkUDPRateLimitedAndCounted(t *testing.T) {
	var warnings atomic.Int64
	var mu stdsync.Mutex
	var lines []string
	log := slog.New(countingHandler{n: &warnings, mu: &mu, lines: &lines})
	a := startNodeLogger(t, "a", newKey(t), log)
	base := a.Stats()
	baseWarn := warnings.Load()

	uc, err := net.Dial("udp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	const junk = 3000
	for i := 0; i < junk; i++ {
		b := randBytes(1 + i%200)
		if i%2 == 0 {
			b[0] = 0 // not a label header: "unacceptable label"
		}
		_, _ = uc.Write(b)
		if sent := uint64(i + 1); sent%100 == 0 || sent == junk {
			// Paced, so that the socket's buffer does not overflow: loss
			// is not the point.
			wait.For(t, "junk counted", 10*time.Second, func() bool {
				return a.Stats().AuthFailures >= base.AuthFailures+sent*9/10
			})
		}
	}
	got := warnings.Load() - baseWarn
	mu.Lock()
	for _, l := range lines {
		t.Log(l)
	}
	mu.Unlock()
	t.Logf("%d junk datagrams: %d lines at WARN or above, auth failures +%d", junk, got, a.Stats().AuthFailures-base.AuthFailures)
	if got > 10 {
		t.Fatalf("%d junk datagrams made %d warning/error lines, want a handful", junk, got)
	}
}

func TestMemberlistKind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`discarding packet with unacceptable label "x\"y": from=127.0.0.2:4000`, "discarding packet with unacceptable label"},
		{`Decrypt packet failed: no installed keys could decrypt the message from=[::1]:1`, "Decrypt packet failed"},
		{`failed to receive: no installed keys could decrypt the message from=10.0.0.1:5`, "failed to receive"},
		{`Message type (12) not supported from=10.0.0.1:5 (packet handler)`, "Message type"},
		{`msg type 12 not supported from=10.0.0.1:5`, "msg type not supported"},
		{`Got ping for unexpected node 'evil-4711' from=1.2.3.4:5`, "Got ping for unexpected node"},
	} {
		if got := memberlistKind(tc.in); got != tc.want {
			t.Errorf("memberlistKind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOldHandshakeVersionLogged: a peer of handshake version 1 is refused
// with a line that names the mismatch, once however often it retries.
func TestOldHandshakeVersionLogged(t *testing.T) {
	var warnings atomic.Int64
	var mu stdsync.Mutex
	var lines []string
	log := slog.New(countingHandler{n: &warnings, mu: &mu, lines: &lines})
	a := startNodeLogger(t, "a", newKey(t), log)
	for i := 0; i < 20; i++ {
		c := dialRaw(t, a)
		_, _ = c.Write(append(append([]byte{streamMarker, 1, hsModeAESGCM}, randBytes(nonceLen)...), 0, 40))
		waitClosed(t, c, 5*time.Second, "a version 1 hello")
	}
	wait.For(t, "the version line", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			if strings.Contains(l, "handshake version 1, this node 2") {
				return true
			}
		}
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "handshake version") {
			n++
			t.Log(l)
		}
	}
	if n != 1 {
		t.Fatalf("%d lines about the handshake version for 20 attempts, want 1", n)
	}
}
