package sync

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"

	"github.com/ctsync/ctsync/test/wait"
)

// Garbage on the cluster port: whatever arrives on a node's memberlist port
// (TCP, with or without the replication marker, and UDP) must be refused
// and counted, must not crash the node, pin a goroutine or allocate without
// bound, and must not disturb the replication with the real peer.

func init() {
	// A stalled stream is dropped after max(minIdleTimeout, 20 DigestEvery):
	// 3 s in these tests (DigestEvery is 100 ms), not 30 s.
	minIdleTimeout = 3 * time.Second
}

// dialRaw opens a TCP connection to the node's cluster port.
func dialRaw(t *testing.T, n *testNode) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", n.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendAndClose writes b and closes the connection.
func sendAndClose(t *testing.T, n *testNode, b []byte) {
	t.Helper()
	c := dialRaw(t, n)
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(b)
	c.Close()
}

// waitClosed waits until the node closes c (a read returns an error other
// than a timeout of ours), at most within.
func waitClosed(t *testing.T, c net.Conn, within time.Duration, what string) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(within))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the node still holds the stream after %v", what, time.Since(start).Round(time.Millisecond))
		}
		return
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// handshake runs a client handshake with key (nil: a keyring of one random
// key) on a fresh connection, as node name.
func handshake(t *testing.T, n *testNode, key []byte, name string) (*conn, error) {
	t.Helper()
	if key == nil {
		key = newKey(t)
	}
	kr, err := memberlist.NewKeyring([][]byte{key}, key)
	if err != nil {
		t.Fatal(err)
	}
	sec := Security{Keyring: kr, Label: "test"}
	return sec.clientHandshake(dialRaw(t, n), name)
}

func frameHeader(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func TestHostileClusterPort(t *testing.T) {
	before := goleak.IgnoreCurrent()
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 200; i++ {
		f := tflow(i)
		b.in.Upsert(&f)
		g := tflow(10000 + i)
		a.in.Upsert(&g)
	}
	wait.For(t, "initial sync", 10*time.Second, func() bool { return inSync(b, a, "b") && inSync(a, b, "a") })
	// mallory and eve hold the key and are members (at 127.0.0.1): what
	// they send after their hello is what is tried here.
	fakeMember(a, "mallory")
	fakeMember(a, "eve")
	base := a.Stats()

	// (e) Stalls, started first: they take the longest to be timed out.
	// Mid-handshake: the marker, the version and mode, half a nonce.
	stallHS := dialRaw(t, a)
	if _, err := stallHS.Write(append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen/2)...)); err != nil {
		t.Fatal(err)
	}
	// After the handshake (a peer that holds the key and hangs): half a
	// frame, first before the hello, then after it.
	stallHello, err := handshake(t, a, key, "mallory")
	if err != nil {
		t.Fatalf("handshake with the cluster key: %v", err)
	}
	if _, err := stallHello.c.Write(append(frameHeader(100), randBytes(10)...)); err != nil {
		t.Fatal(err)
	}
	stallMid, err := handshake(t, a, key, "eve")
	if err != nil {
		t.Fatalf("handshake with the cluster key: %v", err)
	}
	w := newWriter()
	if err := stallMid.sendLocked(w.hello("eve", 7, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := stallMid.c.Write(append(frameHeader(1000), randBytes(100)...)); err != nil {
		t.Fatal(err)
	}
	stallStart := time.Now()

	// (a) Random bytes and truncated frames, without the marker (they go
	// to memberlist) and with it.
	for i := 0; i < 20; i++ {
		junk := randBytes(1 + i*97)
		if junk[0] == streamMarker {
			junk[0] = 0
		}
		sendAndClose(t, a, junk)
	}
	for _, junk := range [][]byte{
		{streamMarker},                         // marker alone
		{streamMarker, hsVersion},              // truncated header
		{streamMarker, 99, hsModeAESGCM},       // unknown version
		{streamMarker, hsVersion, hsModeClear}, // insecure peer
		append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen-1)...),                  // truncated nonce
		append(append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen)...), 0, 200, 1), // truncated block
		append(append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen)...), randBytes(300)...),
	} {
		sendAndClose(t, a, junk)
	}
	for i := 0; i < 20; i++ {
		sendAndClose(t, a, append([]byte{streamMarker}, randBytes(1+i*53)...))
	}
	// A hello block sealed with garbage: the right size, no key opens it.
	block := binary.BigEndian.AppendUint16(nil, 60)
	sendAndClose(t, a, append(append(append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen)...), block...), randBytes(60)...))

	// (b) A well-formed handshake with a wrong key.
	for i := 0; i < 3; i++ {
		if s, err := handshake(t, a, nil, "b"); err == nil {
			s.Close()
			t.Fatalf("a handshake with a wrong key succeeded")
		}
	}

	// (d) Huge length prefixes: in the handshake (at most 1 KiB) and in
	// frames, before and after the hello, from a peer that holds the key.
	sendAndClose(t, a, append(append([]byte{streamMarker, hsVersion, hsModeAESGCM}, randBytes(nonceLen)...), 0xff, 0xff))
	for _, hello := range []bool{false, true} {
		s, err := handshake(t, a, key, "mallory")
		if err != nil {
			t.Fatalf("handshake with the cluster key: %v", err)
		}
		if hello {
			if err := s.sendLocked(w.hello("mallory", 7, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.c.Write(frameHeader(0xffffffff)); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, s.c, 5*time.Second, "huge frame")
	}
	// A frame that does not authenticate, and one that authenticates but
	// does not decode, after a good hello.
	s, err := handshake(t, a, key, "mallory")
	if err != nil {
		t.Fatalf("handshake with the cluster key: %v", err)
	}
	if err := s.sendLocked(w.hello("mallory", 7, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Write(append(frameHeader(64), randBytes(64)...)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s.c, 5*time.Second, "forged frame")
	s, err = handshake(t, a, key, "mallory")
	if err != nil {
		t.Fatalf("handshake with the cluster key: %v", err)
	}
	if err := s.sendLocked(w.hello("mallory", 7, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.sendLocked([]byte{wireVersion, byte(msgEntries), 0xdd, 0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, s.c, 5*time.Second, "undecodable entries")
	// A hello that is not one, and one that claims another name.
	for _, msg := range [][]byte{w.u64s(msgDigest, 1, 2, 3, 4), w.hello("a", 7, 1), {1}} {
		s, err := handshake(t, a, key, "mallory")
		if err != nil {
			t.Fatalf("handshake with the cluster key: %v", err)
		}
		if err := s.sendLocked(append([]byte(nil), msg...)); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, s.c, 5*time.Second, "bad hello")
	}

	// (c) Garbage UDP datagrams to the same port.
	uc, err := net.Dial("udp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		_, _ = uc.Write(randBytes(1 + i*7%1400))
	}
	_, _ = uc.Write(nil)
	uc.Close()

	// The stalls are timed out: the handshake's by preAuthTimeout, the
	// authenticated streams' by the idle timeout.
	waitClosed(t, stallHello.c, a.idleTimeout()+5*time.Second-time.Since(stallStart), "stall before the hello")
	waitClosed(t, stallMid.c, a.idleTimeout()+5*time.Second-time.Since(stallStart), "stall mid-frame")
	waitClosed(t, stallHS, preAuthTimeout+5*time.Second-time.Since(stallStart), "stall mid-handshake")

	// The counters say what happened.
	wait.For(t, "the counters", 5*time.Second, func() bool {
		st := a.Stats()
		return st.AuthFailures >= base.AuthFailures+5 && st.DecodeErrors >= base.DecodeErrors+10 &&
			st.BadHellos >= base.BadHellos+4
	})
	st := a.Stats()
	t.Logf("auth failures +%d, decode errors +%d, bad hellos +%d, unexpected messages +%d",
		st.AuthFailures-base.AuthFailures, st.DecodeErrors-base.DecodeErrors, st.BadHellos-base.BadHellos,
		st.UnexpectedMsgs-base.UnexpectedMsgs)

	// The real peers still replicate, both ways.
	for i := 200; i < 400; i++ {
		f := tflow(i)
		b.in.Upsert(&f)
		g := tflow(10000 + i)
		a.in.Upsert(&g)
	}
	for i := 0; i < 50; i++ {
		f := tflow(i)
		b.in.Delete(&f)
	}
	wait.For(t, "replication after the attacks", 10*time.Second, func() bool { return inSync(b, a, "b") && inSync(a, b, "a") })
	if n := a.ext.Len("b"); n != 350 {
		t.Fatalf("a holds %d of b's flows, want 350", n)
	}
	if ok, why := a.Healthy(); !ok {
		t.Fatalf("a is not healthy after the attacks: %s", why)
	}

	// Nothing is left running once the nodes stop.
	b.stop()
	a.stop()
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

// TestHostileHugeFrameAllocatesNothing: a length prefix over the limit is
// refused before a buffer is made for it.
func TestHostileHugeFrameAllocatesNothing(t *testing.T) {
	for _, n := range []uint32{maxFrame + 1, 0xffffffff} {
		s := &conn{br: bufio.NewReader(bytes.NewReader(append(frameHeader(n), make([]byte, 64)...)))}
		if _, err := s.readFrame(); err == nil {
			t.Fatalf("a frame of %d bytes was accepted", n)
		}
		if cap(s.rbuf) > 0 {
			t.Fatalf("a frame of %d bytes made a %d-byte buffer", n, cap(s.rbuf))
		}
	}
}
