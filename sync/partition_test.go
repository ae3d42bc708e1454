package sync

import (
	"testing"
	"time"

	"github.com/ctsync/ctsync/test/wait"
)

// TestPartitionDetectedAndHealed: memberlist's failure detection sees a
// node cut off, the node misses changes, and after the heal it converges by
// itself (snapshot on reconnect), deletions included.
func TestPartitionDetectedAndHealed(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	c := startNode(t, "c", key, a.Addr())
	for i := 0; i < 300; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "initial sync", 10*time.Second, func() bool { return inSync(a, c, "a") && inSync(a, b, "a") })
	cAddr := c.Addr()
	others := map[string]bool{a.Addr(): true, b.Addr(): true}
	c.net.Partition(func(addr string) bool { return others[addr] })
	a.net.Partition(func(addr string) bool { return addr == cAddr })
	b.net.Partition(func(addr string) bool { return addr == cAddr })
	wait.For(t, "a to declare c failed", 20*time.Second, func() bool { return a.ml.NumMembers() == 2 })
	for i := 0; i < 100; i++ {
		f := tflow(i)
		a.in.Delete(&f)
	}
	for i := 300; i < 400; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "b to follow a", 10*time.Second, func() bool { return inSync(a, b, "a") })
	if c.ext.Len("a") != 300 {
		t.Fatalf("c holds %d of a's flows while cut off, want the 300 it had", c.ext.Len("a"))
	}
	for _, n := range []*testNode{a, b, c} {
		n.net.Partition(nil)
	}
	wait.For(t, "c to converge after the heal", 30*time.Second, func() bool { return inSync(a, c, "a") })
	if c.ext.Len("a") != 300 {
		t.Fatalf("c holds %d of a's flows after the heal, want 300", c.ext.Len("a"))
	}
}

// TestHealthySurvivesPeerDeath: a node is not ready before it ever synced,
// is ready once in sync, and stays ready when its peer dies — that is when
// keepalived asks it to take over.
func TestHealthySurvivesPeerDeath(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	if ok, _ := a.Healthy(); ok {
		t.Fatalf("a lone node that never synced says it is ready")
	}
	b := startNode(t, "b", key, a.Addr())
	f := tflow(1)
	a.in.Upsert(&f)
	wait.For(t, "b ready", 10*time.Second, func() bool { ok, _ := b.Healthy(); return ok })
	a.stop()
	// b noticed (its stream from a ended) and is still ready.
	wait.For(t, "b to lose a's stream", 10*time.Second, func() bool { return !b.Stats().Peers[0].Connected })
	if ok, why := b.Healthy(); !ok {
		t.Fatalf("the survivor is not ready after its peer died: %s", why)
	}
}

// TestHealthyWhilePeerRejoins: a node stays ready while a peer that was
// gone reconnects and its first digest is on the way (keepalived must not
// demote a master because its backup came back).
func TestHealthyWhilePeerRejoins(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 50000; i++ { // a snapshot that takes a moment
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "b ready", 20*time.Second, func() bool { ok, _ := b.Healthy(); return ok })
	b.stop()
	// b stays down long enough for a's last confirmation to age out.
	wait.For(t, "a's confirmation of b to age", 10*time.Second, func() bool {
		a.mu.Lock()
		p := a.peers["b"]
		a.mu.Unlock()
		return p != nil && !a.recentDigest(p)
	})
	b2 := startNode(t, "b", key, a.Addr())
	for i := 0; i < 20000; i++ { // b comes back with a table to send
		f := tflow(1000000 + i)
		b2.in.Upsert(&f)
	}
	// While b2 comes back and streams to a, a must never look unready.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if ok, why := a.Healthy(); !ok {
			t.Fatalf("a turned unready while b rejoined: %s", why)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wait.For(t, "b2 ready", 20*time.Second, func() bool { ok, _ := b2.Healthy(); return ok })
}
