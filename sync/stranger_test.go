package sync

import (
	"bytes"
	"net"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/test/wait"
)

// A stranger without the cluster key must get nothing but a closed
// connection: no stream, no memory beyond a small bound, no log flood.

// recordingConn records what is written to it.
type recordingConn struct {
	net.Conn
	mu  stdsync.Mutex
	out bytes.Buffer
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// TestReplayedHelloRefused: a client's whole handshake flight, recorded
// from a real handshake with the cluster key, replayed on fresh
// connections, must fail the handshake on each (the server's nonce is
// new) and count as an authentication failure.
func TestReplayedHelloRefused(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)

	rc := &recordingConn{Conn: dialRaw(t, a)}
	s, err := handshake(t, a, key, "b") // a first handshake, to make sure the key works
	if err != nil {
		t.Fatalf("handshake with the cluster key: %v", err)
	}
	s.Close()
	kr := a.sec.Keyring
	sec := Security{Keyring: kr, Label: "test"}
	s, err = sec.clientHandshake(rc, "b")
	if err != nil {
		t.Fatalf("recorded handshake: %v", err)
	}
	flight := append([]byte(nil), rc.out.Bytes()...)
	s.Close()

	const replays, parallel = 64, 8
	base := a.Stats()
	for i := 0; i < replays; i += parallel {
		var wg stdsync.WaitGroup
		for j := 0; j < parallel; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", a.Addr(), 5*time.Second)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				defer c.Close()
				if _, err := c.Write(flight); err != nil {
					return
				}
				// Read until the node closes: it answers the hello, then
				// must close at the confirmation.
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				var buf [512]byte
				for {
					if _, err := c.Read(buf[:]); err != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	wait.For(t, "the replays counted", 10*time.Second, func() bool {
		st := a.Stats()
		return st.AuthFailures+st.BadHellos+st.DecodeErrors >= base.AuthFailures+base.BadHellos+base.DecodeErrors+replays
	})
	st := a.Stats()
	t.Logf("%d replays of a recorded client flight: auth failures +%d, bad hellos +%d, decode errors +%d",
		replays, st.AuthFailures-base.AuthFailures, st.BadHellos-base.BadHellos, st.DecodeErrors-base.DecodeErrors)
	if got := st.AuthFailures - base.AuthFailures; got != replays {
		t.Fatalf("auth failures +%d after %d replayed hellos, want +%d: a replayed hello passed the handshake", got, replays, replays)
	}
	a.mu.Lock()
	_, known := a.peers["b"]
	a.mu.Unlock()
	if known {
		t.Fatalf("a replayed hello made a peer of b")
	}
}
