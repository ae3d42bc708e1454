package sync

import (
	"bytes"
	"net"
	"runtime"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"

	"github.com/ctsync/ctsync/test/wait"
)

// preAuthGoroutines counts the node-side goroutines busy with an
// unauthenticated connection: classifying it or in a server handshake.
func preAuthGoroutines() int {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "(*muxTransport).classify") || strings.Contains(s, "(*Security).serverHandshake") {
			n++
		}
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestPreAuthFlood: a stranger opening many connections from many
// addresses, each sending only the marker byte (or a partial hello), is
// held to the pre-authentication bounds: excess connections are closed at
// once and counted, the node never holds more than maxPreAuth of them, and
// replication with the real peer goes on meanwhile.
func TestPreAuthFlood(t *testing.T) {
	old := preAuthTimeout
	preAuthTimeout = time.Minute // none may time out during the test: the bounds alone must hold
	defer func() { preAuthTimeout = old }()

	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 100; i++ {
		f := tflow(i)
		b.in.Upsert(&f)
		g := tflow(10000 + i)
		a.in.Upsert(&g)
	}
	wait.For(t, "initial sync", 10*time.Second, func() bool { return inSync(b, a, "b") && inSync(a, b, "a") })
	heap0 := heapInUse()
	_, _, baseRefused := preAuthState(a.Node)

	// The flood: sources 127.0.0.2-41, 25 connections each, from a
	// stranger's side that never reads.
	const sources, perSource = 40, 25
	partial := append(append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen)...), 0, 200)
	partial = append(partial, randBytes(10)...)
	var mu stdsync.Mutex
	var conns []net.Conn
	var wg stdsync.WaitGroup
	for s := 0; s < sources; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+s))}}
			for i := 0; i < perSource; i++ {
				c, err := d.Dial("tcp", a.Addr())
				if err != nil {
					t.Errorf("dial from source %d: %v", s, err)
					return
				}
				msg := []byte{streamMarker}
				if i%5 == 4 {
					msg = partial
				}
				_, _ = c.Write(msg)
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	// Meanwhile the real peers replicate a change both ways.
	for i := 100; i < 200; i++ {
		f := tflow(i)
		b.in.Upsert(&f)
		g := tflow(10000 + i)
		a.in.Upsert(&g)
	}
	maxSeen := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(5 * time.Millisecond):
		}
		maxSeen = max(maxSeen, preAuthGoroutines())
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	flood := sources * perSource
	// Every flood connection is either held or refused.
	wait.For(t, "the flood accepted or refused", 10*time.Second, func() bool {
		open, _, refused := preAuthState(a.Node)
		return uint64(open)+refused-baseRefused >= uint64(flood)
	})
	maxSeen = max(maxSeen, preAuthGoroutines())
	heap1 := heapInUse()
	wait.For(t, "replication during the flood", 10*time.Second, func() bool { return inSync(b, a, "b") && inSync(a, b, "a") })
	open, peak, refused := preAuthState(a.Node)
	refused -= baseRefused
	t.Logf("flood of %d connections from %d sources: held %d (peak %d, goroutines seen %d), refused %d; heap in use %.1f MiB before, %.1f MiB during (%+.1f MiB)",
		flood, sources, open, peak, maxSeen, refused, float64(heap0)/(1<<20), float64(heap1)/(1<<20), (float64(heap1)-float64(heap0))/(1<<20))
	// The goroutine count may see a connection twice for a moment (the
	// classifier handing it to the handshake): a little slack.
	if peak > maxPreAuth || maxSeen > maxPreAuth+16 {
		t.Fatalf("the node held %d (goroutines: %d) unauthenticated connections at once, want at most %d", peak, maxSeen, maxPreAuth)
	}
	if refused < uint64(flood-maxPreAuth) {
		t.Fatalf("refused %d of %d flood connections, want at least %d", refused, flood, flood-maxPreAuth)
	}
	if n := a.ext.Len("b"); n != 200 {
		t.Fatalf("a holds %d of b's flows, want 200", n)
	}

	// A source over its own bound: 127.0.0.42 alone.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 42)}}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	wait.For(t, "the flood's slots released", 10*time.Second, func() bool { open, _, _ := preAuthState(a.Node); return open <= 2 })
	_, _, baseRefused = preAuthState(a.Node)
	for i := 0; i < 3*maxPreAuthPerSource; i++ {
		c, err := d.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte{streamMarker})
		conns = append(conns, c)
	}
	wait.For(t, "one source held to its bound", 10*time.Second, func() bool {
		_, _, refused := preAuthState(a.Node)
		return refused-baseRefused >= 2*maxPreAuthPerSource
	})
	if open, _, _ := preAuthState(a.Node); open > maxPreAuthPerSource+2 {
		t.Fatalf("one source holds %d unauthenticated connections, want at most %d", open, maxPreAuthPerSource)
	}
	// The real peer still gets through: its stream, cut, reconnects.
	b.mu.Lock()
	if c := b.peers["a"].outConn.Load(); c != nil {
		c.Close()
	}
	b.mu.Unlock()
	for i := 200; i < 250; i++ {
		f := tflow(i)
		b.in.Upsert(&f)
	}
	wait.For(t, "replication after a reconnect", 10*time.Second, func() bool { return inSync(b, a, "b") })
}

// BenchmarkPreAuthFloodHeap reports the heap a node holds for 2,000
// marker-only connections from 40 addresses (heap-B/conn, heap-MiB): the
// figure of the pre-authentication bounds, not a speed.
func BenchmarkPreAuthFloodHeap(b *testing.B) {
	old := preAuthTimeout
	preAuthTimeout = time.Minute
	defer func() { preAuthTimeout = old }()
	key := make([]byte, 32)
	for it := 0; it < b.N; it++ {
		n, err := New(Config{Node: "a", Bind: "127.0.0.1:0", Keys: [][]byte{key}, Label: "bench",
			Internal: cache.NewInternal(cache.InternalOptions{Clock: monoClock}), External: cache.NewExternal(cache.ExternalOptions{Clock: monoClock}), LocalTimings: true})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { n.Run(b.Context()); close(done) }()
		heap0 := heapInUse()
		_, _, refused0 := preAuthState(n)
		var conns []net.Conn
		const sources, per = 40, 50
		for s := 0; s < sources; s++ {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+s))}}
			for i := 0; i < per; i++ {
				c, err := d.Dial("tcp", n.Addr())
				if err != nil {
					b.Fatal(err)
				}
				_, _ = c.Write([]byte{streamMarker})
				conns = append(conns, c)
			}
		}
		// Wait until the node has taken every connection in (held or refused).
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			open, _, refused := preAuthState(n)
			if uint64(open)+refused-refused0 >= uint64(len(conns)) {
				break
			}
		}
		heap1 := heapInUse()
		open, _, refused := preAuthState(n)
		b.ReportMetric(float64(heap1-min(heap0, heap1))/float64(len(conns)), "heap-B/conn")
		b.ReportMetric(float64(heap1-min(heap0, heap1))/(1<<20), "heap-MiB")
		b.ReportMetric(float64(open), "held")
		b.ReportMetric(float64(refused-refused0), "refused")
		for _, c := range conns {
			c.Close()
		}
		n.Close()
		<-done
	}
}
