package sync

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ctsync/ctsync/test/wait"
)

// allInSync reports whether every node holds every other node's flows.
func allInSync(nodes ...*testNode) bool {
	for _, src := range nodes {
		for _, dst := range nodes {
			if src != dst && !inSync(src, dst, src.cfg.Node) {
				return false
			}
		}
	}
	return true
}

// addFlows inserts cnt new flows on each node, numbered from base.
func addFlows(base, cnt int, nodes ...*testNode) {
	for j, n := range nodes {
		for i := 0; i < cnt; i++ {
			f := tflow(base + j*cnt + i)
			n.in.Upsert(&f)
		}
	}
}

func keyFP(t *testing.T, res KeyResult, key []byte) KeyInfo {
	t.Helper()
	for _, k := range res.Keys {
		if k.Fingerprint == KeyFingerprint(key) {
			return k
		}
	}
	return KeyInfo{}
}

func checkAllAnswered(t *testing.T, what string, res KeyResult, err error, nodes int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if res.Nodes != nodes || res.Answered != nodes || len(res.Errors) != 0 {
		t.Fatalf("%s: %d nodes, %d answered, errors %v; want %d answers and no error", what, res.Nodes, res.Answered, res.Errors, nodes)
	}
}

// streamKeys returns the keys of the node's open replication streams.
func streamKeys(n *testNode) [][]byte {
	var out [][]byte
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if c := p.outConn.Load(); c != nil {
			out = append(out, c.key)
		}
		p.inMu.Lock()
		if p.inConn != nil {
			out = append(out, p.inConn.key)
		}
		p.inMu.Unlock()
	}
	return out
}

// TestKeyRotation: install a new key, make it primary, remove the old one,
// on a running three-node cluster: the flows inserted at every step reach
// every peer, and afterwards a node that knows only the old key is
// refused.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newKey(t), newKey(t)
	a := startNode(t, "a", k1)
	b := startNode(t, "b", k1, a.Addr())
	c := startNode(t, "c", k1, a.Addr())
	nodes := []*testNode{a, b, c}
	wait.For(t, "three members", 10*time.Second, func() bool {
		return len(a.aliveMembers()) == 2 && len(b.aliveMembers()) == 2 && len(c.aliveMembers()) == 2
	})
	addFlows(0, 200, nodes...)
	wait.For(t, "initial sync", 10*time.Second, func() bool { return allInSync(nodes...) })

	list, err := b.ListKeys(ctx)
	checkAllAnswered(t, "list", list, err, 3)
	if len(list.Keys) != 1 || list.Keys[0] != (KeyInfo{Fingerprint: KeyFingerprint(k1), Nodes: 3, Primary: 3}) {
		t.Fatalf("list before rotation: %+v", list.Keys)
	}

	// 1. Install.
	res, err := a.InstallKey(ctx, k2)
	checkAllAnswered(t, "install", res, err, 3)
	if got := keyFP(t, res, k2); got.Nodes != 3 || got.Primary != 0 {
		t.Fatalf("after install, new key: %+v", got)
	}
	for _, n := range nodes {
		if len(n.sec.Keyring.GetKeys()) != 2 || !bytes.Equal(n.sec.Keyring.GetPrimaryKey(), k1) {
			t.Fatalf("%s: keyring after install: %d keys", n.cfg.Node, len(n.sec.Keyring.GetKeys()))
		}
	}
	addFlows(1000, 100, nodes...)
	wait.For(t, "sync after install", 10*time.Second, func() bool { return allInSync(nodes...) })

	// The old key cannot be removed while it is primary.
	if _, err := c.RemoveKey(ctx, k1); !errors.Is(err, ErrPrimaryKey) {
		t.Fatalf("remove the primary key: %v, want ErrPrimaryKey", err)
	}

	// 2. Use: from another node.
	res, err = b.UseKey(ctx, k2)
	checkAllAnswered(t, "use", res, err, 3)
	for _, n := range nodes {
		if !bytes.Equal(n.sec.Keyring.GetPrimaryKey(), k2) {
			t.Fatalf("%s: primary key is not the new one after use", n.cfg.Node)
		}
	}
	list, err = c.ListKeys(ctx)
	checkAllAnswered(t, "list after use", list, err, 3)
	if got := keyFP(t, list, k2); got.Nodes != 3 || got.Primary != 3 || list.Keys[0].Fingerprint != KeyFingerprint(k2) {
		t.Fatalf("list after use: %+v", list.Keys)
	}
	addFlows(2000, 100, nodes...)
	wait.For(t, "sync after use", 10*time.Second, func() bool { return allInSync(nodes...) })

	// The new key cannot be removed now.
	if _, err := a.RemoveKey(ctx, k2); !errors.Is(err, ErrPrimaryKey) {
		t.Fatalf("remove the new primary key: %v, want ErrPrimaryKey", err)
	}

	// 3. Remove the old key: the streams it authenticated close and come
	// back with the new one.
	res, err = c.RemoveKey(ctx, k1)
	checkAllAnswered(t, "remove", res, err, 3)
	for _, n := range nodes {
		if keys := n.sec.Keyring.GetKeys(); len(keys) != 1 || !bytes.Equal(keys[0], k2) {
			t.Fatalf("%s: keyring after remove: %d keys", n.cfg.Node, len(keys))
		}
	}
	addFlows(3000, 100, nodes...)
	wait.For(t, "sync after remove", 15*time.Second, func() bool { return allInSync(nodes...) })
	wait.For(t, "every stream on the new key", 10*time.Second, func() bool {
		for _, n := range nodes {
			keys := streamKeys(n)
			if len(keys) != 4 {
				return false
			}
			for _, k := range keys {
				if !bytes.Equal(k, k2) {
					return false
				}
			}
		}
		return true
	})
	list, err = a.ListKeys(ctx)
	checkAllAnswered(t, "list after remove", list, err, 3)
	if len(list.Keys) != 1 || list.Keys[0] != (KeyInfo{Fingerprint: KeyFingerprint(k2), Nodes: 3, Primary: 3}) {
		t.Fatalf("list after rotation: %+v", list.Keys)
	}
	if b.ext.Len("a") != 500 {
		t.Fatalf("b holds %d of a's flows, want 500", b.ext.Len("a"))
	}

	// A node that knows only the old key: memberlist does not admit it,
	// and its replication stream is refused and counted.
	authBefore := a.Stats().AuthFailures
	old := startNode(t, "old", k1, a.Addr())
	addFlows(9000, 10, old)
	wait.For(t, "the old-key node's joins to fail", 10*time.Second, func() bool { return old.Stats().JoinFailures > 2 })
	oldRing, err := memberlist.NewKeyring([][]byte{k1}, k1)
	if err != nil {
		t.Fatal(err)
	}
	sec := Security{Keyring: oldRing, Label: "test"}
	conn, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := sec.clientHandshake(conn, "old"); err == nil {
		t.Fatal("a stream handshake with the removed key succeeded")
	}
	wait.For(t, "a to count the refused stream", 10*time.Second, func() bool { return a.Stats().AuthFailures > authBefore })
	for _, n := range nodes {
		if n.ext.Len("old") != 0 || len(n.aliveMembers()) != 2 {
			t.Fatalf("%s admitted the node with the removed key: %d of its flows, %d peers", n.cfg.Node, n.ext.Len("old"), len(n.aliveMembers()))
		}
	}
}

func TestKeyOpsRefused(t *testing.T) {
	ctx := context.Background()
	plain := startNode(t, "plain", nil)
	if _, err := plain.ListKeys(ctx); !errors.Is(err, ErrInsecure) {
		t.Fatalf("list on an insecure node: %v, want ErrInsecure", err)
	}
	if _, err := plain.InstallKey(ctx, newKey(t)); !errors.Is(err, ErrInsecure) {
		t.Fatalf("install on an insecure node: %v, want ErrInsecure", err)
	}
	if _, err := plain.UseKey(ctx, newKey(t)); !errors.Is(err, ErrInsecure) {
		t.Fatalf("use on an insecure node: %v, want ErrInsecure", err)
	}
	if _, err := plain.RemoveKey(ctx, newKey(t)); !errors.Is(err, ErrInsecure) {
		t.Fatalf("remove on an insecure node: %v, want ErrInsecure", err)
	}

	k1 := newKey(t)
	a := startNode(t, "a", k1)
	if _, err := a.InstallKey(ctx, []byte("short")); err == nil {
		t.Fatal("install of a 5-byte key: no error")
	}
	if _, err := a.UseKey(ctx, newKey(t)); err == nil {
		t.Fatal("use of a key that is not installed: no error")
	}
	if _, err := a.RemoveKey(ctx, k1); !errors.Is(err, ErrPrimaryKey) {
		t.Fatalf("remove the only key: %v, want ErrPrimaryKey", err)
	}
}

// TestKeyRequestReplay: a recorded request is refused when it comes again
// or when its clock is too far off.
func TestKeyRequestReplay(t *testing.T) {
	k1, k3 := newKey(t), newKey(t)
	a := startNode(t, "a", k1)
	b := startNode(t, "b", k1, a.Addr())
	wait.For(t, "members", 10*time.Second, func() bool { return b.memberAddr("a") != "" })

	stale := keyRequest{ID: 1, From: "a", Time: time.Now().Add(-time.Hour).UnixNano(), Op: KeyInstall, Key: k3}
	b.keyRequest(&stale)
	if b.hasKey(k3) {
		t.Fatal("an hour-old request was applied")
	}
	req := keyRequest{ID: 2, From: "a", Time: time.Now().UnixNano(), Op: KeyInstall, Key: k3}
	b.keyRequest(&req)
	if !b.hasKey(k3) {
		t.Fatal("a fresh request was not applied")
	}
	again := req
	again.Op = KeyRemove
	b.keyRequest(&again)
	if !b.hasKey(k3) {
		t.Fatal("a request with an id seen before was applied")
	}
}
