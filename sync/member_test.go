package sync

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/flow"
	"github.com/hashicorp/memberlist"

	"github.com/ctsync/ctsync/test/wait"
)

// A member with the cluster key can report its own flows and nothing
// else: a stream speaks for the live member at the address it comes from.

// fakeMember makes n believe that name is an alive member at 127.0.0.1 (a
// port where nothing listens: n's stream to it just retries), as a real
// member would be: tests that play a peer by hand stream from there.
func fakeMember(n *testNode, name string) {
	n.setMember(&memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 1, State: memberlist.StateAlive})
}

// handshakeFrom is handshake on a connection that leaves from local (an
// IP of the loopback range: "127.0.0.2" is another host for the node).
func handshakeFrom(t *testing.T, n *testNode, key []byte, name, local string) *conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", n.Addr(), local, err)
	}
	t.Cleanup(func() { c.Close() })
	kr, err := memberlist.NewKeyring([][]byte{key}, key)
	if err != nil {
		t.Fatal(err)
	}
	sec := Security{Keyring: kr, Label: "test"}
	s, err := sec.clientHandshake(c, name)
	if err != nil {
		t.Fatalf("handshake with the cluster key: %v", err)
	}
	return s
}

// sendStream writes a hello for origin and a snapshot of flows (announced
// as size) on s, in epoch, as a sender would, and flushes.
func sendStream(t *testing.T, s *conn, origin string, epoch, session, size uint64, flows []flow.Flow) {
	t.Helper()
	w := newWriter()
	cp := func(b []byte) []byte { return append([]byte(nil), b...) }
	msgs := [][]byte{cp(w.hello(origin, epoch, session)), cp(w.u64s(msgSnapBegin, epoch, size))}
	if len(flows) > 0 {
		w.startEntries(epoch)
		for i := range flows {
			e := cache.Entry{Key: cache.KeyOf(&flows[i]), Version: 1 << 60, Flow: flows[i]}
			w.entry(&e)
		}
		msgs = append(msgs, cp(w.endEntries(len(flows))))
	}
	msgs = append(msgs, cp(w.u64s(msgSnapEnd, epoch)))
	for _, m := range msgs {
		if err := s.writeFrame(m); err != nil {
			return // refused and closed already
		}
	}
	_ = s.flush()
}

func forged(n int) []flow.Flow {
	fs := make([]flow.Flow, n)
	for i := range fs {
		fs[i] = tflow(50000 + i)
	}
	return fs
}

// TestImpersonatorRefused: a key holder on another host names a live
// member, with its epoch (shown on the metrics endpoint) and a huge
// session number. It used to replace the receiver's copy of that member's
// flows and lock the member's own streams out as "older session"; it is
// refused and counted, the copy stays, the member's changes still arrive.
// A key holder on the member's own IP (the same host) may take its stream
// over, but the member gets it back once that stream ends.
func TestImpersonatorRefused(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 100; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "initial sync", 10*time.Second, func() bool { return inSync(a, b, "a") })
	base := b.Stats()

	s := handshakeFrom(t, b, key, "a", "127.0.0.2")
	sendStream(t, s, "a", a.Epoch(), 1<<62, 1<<40, forged(10))
	waitClosed(t, s.c, 5*time.Second, "impersonator")
	if got := b.ext.Len("a"); got != 100 {
		t.Errorf("b holds %d flows of a after the impersonator, want a's 100", got)
	}
	for i := 100; i < 120; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "a's changes after the impersonator", 10*time.Second, func() bool { return inSync(a, b, "a") })

	// The same host: its stream is taken, then given back.
	s = handshakeFrom(t, b, key, "a", "127.0.0.1")
	sendStream(t, s, "a", a.Epoch(), 1<<62, 0, nil)
	wait.For(t, "the same-host stream to take a's place", 10*time.Second, func() bool {
		b.mu.Lock()
		p := b.peers["a"]
		b.mu.Unlock()
		p.inMu.Lock()
		defer p.inMu.Unlock()
		return p.inSession == 1<<62
	})
	s.Close()
	for i := 120; i < 140; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "a's changes after the same-host stream ended", 10*time.Second, func() bool { return inSync(a, b, "a") })

	st := b.Stats()
	if st.StreamsRefused <= base.StreamsRefused {
		t.Fatalf("streams refused %d, was %d: the impersonator was not counted", st.StreamsRefused, base.StreamsRefused)
	}
	t.Logf("streams refused +%d", st.StreamsRefused-base.StreamsRefused)
}

// TestNonMemberOriginRefused: a key holder naming nodes that are not
// members is refused before anything is kept of them: 40 invented origins
// each announcing a huge snapshot used to hold 32 MiB of index apiece.
func TestNonMemberOriginRefused(t *testing.T) {
	key := newKey(t)
	b := startNode(t, "b", key)
	base := b.Stats()
	s := handshakeFrom(t, b, key, "ghost", "127.0.0.1")
	sendStream(t, s, "ghost", 7, 1, 1<<40, forged(10))
	waitClosed(t, s.c, 5*time.Second, "non-member")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("invented-%d", i)
		s := handshakeFrom(t, b, key, name, "127.0.0.1")
		sendStream(t, s, name, 7, 1, 1<<40, nil)
		waitClosed(t, s.c, 5*time.Second, "invented origin")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("40 invented origins: heap %+d KiB after GC", (int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024)

	if n := b.ext.Len(""); n != 0 {
		t.Errorf("b holds %d flows of non-members", n)
	}
	if os := b.ext.Stats(); len(os) != 0 {
		t.Errorf("b keeps %d origins that were never members: %+v", len(os), os)
	}
	st := b.Stats()
	if len(st.Peers) != 0 {
		t.Errorf("b keeps peer state for non-members: %+v", st.Peers)
	}
	if got := st.StreamsRefused - base.StreamsRefused; got != 41 {
		t.Fatalf("streams refused +%d, want 41", got)
	}
}

// TestMemberHugeSnapshotBegin: a member (the key, its own address) that
// announces a snapshot of 2^40 flows reserves no more than a capped index.
func TestMemberHugeSnapshotBegin(t *testing.T) {
	key := newKey(t)
	b := startNode(t, "b", key)
	fakeMember(b, "m")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := handshakeFrom(t, b, key, "m", "127.0.0.1")
	w := newWriter()
	cp := func(x []byte) []byte { return append([]byte(nil), x...) }
	for _, m := range [][]byte{cp(w.hello("m", 7, 1)), cp(w.u64s(msgSnapBegin, 7, 1<<40))} {
		if err := s.writeFrame(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the snapshot to begin", 5*time.Second, func() bool {
		for _, o := range b.ext.Stats() {
			if o.Origin == "m" && o.Snapshots == 1 {
				return true
			}
		}
		return false
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("a member's snapshot-begin of 2^40 flows: heap %+d KiB after GC", grew/1024)
	if grew > 8<<20 {
		t.Fatalf("a snapshot announcement holds %d MiB", grew>>20)
	}
}

// TestDigestLoopStops: a receiver whose cache.max_flows is below the
// sender's flow count used to ask for a snapshot every two digest periods
// forever. It stops asking, says why in its stats, and resumes once there
// is room.
func TestDigestLoopStops(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNodeExt(t, "b", key, cache.ExternalOptions{MaxFlows: 50, Clock: monoClock}, a.Addr())
	for i := 0; i < 200; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	peer := func() PeerStats {
		for _, p := range b.Stats().Peers {
			if p.Peer == "a" {
				return p
			}
		}
		return PeerStats{}
	}
	// 20 digest mismatches later (2 s at DigestEvery 100 ms), it still has
	// not asked again.
	wait.For(t, "20 digests past the first mismatch", 20*time.Second, func() bool { return peer().ResyncsHeld >= 20 })
	p := peer()
	if p.ResyncAsked > 1 || !p.CopyTruncated {
		t.Fatalf("resyncs asked %d, copy truncated %v: want at most 1 and true", p.ResyncAsked, p.CopyTruncated)
	}
	if ok, why := b.Healthy(); ok {
		t.Fatalf("b is healthy with an incomplete copy")
	} else {
		t.Logf("b: %s; resyncs asked %d, held back %d", why, p.ResyncAsked, p.ResyncsHeld)
	}
	// Room frees up: a's flows now fit, b asks again and converges.
	for i := 40; i < 200; i++ {
		f := tflow(i)
		a.in.Delete(&f)
	}
	wait.For(t, "b's copy of a complete", 10*time.Second, func() bool { return inSync(a, b, "a") })
	wait.For(t, "the truncation cleared", 5*time.Second, func() bool { return !peer().CopyTruncated })
}

// startNodeExt is startNode with b's external cache made with opts.
func startNodeExt(t *testing.T, name string, key []byte, opts cache.ExternalOptions, join ...string) *testNode {
	t.Helper()
	return startNodeConfig(t, Config{Node: name, Join: join, Keys: [][]byte{key}}, opts)
}
