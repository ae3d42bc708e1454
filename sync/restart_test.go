package sync

import (
	"testing"
	"time"

	"github.com/ctsync/ctsync/test/wait"
)

func TestDeletesAfterPeerRestart(t *testing.T) {
	key := newKey(t)
	a := startNode(t, "a", key)
	b := startNode(t, "b", key, a.Addr())
	for i := 0; i < 100000; i++ {
		f := tflow(i)
		a.in.Upsert(&f)
	}
	wait.For(t, "sync", 20*time.Second, func() bool { return inSync(a, b, "a") })
	b.stop()
	b2 := startNode(t, "b", key, a.Addr())
	wait.For(t, "resync", 20*time.Second, func() bool { return inSync(a, b2, "a") })
	// The stream has settled once a's digest matched b2's copy.
	wait.For(t, "a's digest to match b2's copy", 20*time.Second, func() bool {
		for _, p := range b2.Stats().Peers {
			if p.Peer == "a" && !p.LastDigestMatch.IsZero() {
				return true
			}
		}
		return false
	})

	for i := 0; i < 100000; i++ {
		f := tflow(i)
		a.in.Delete(&f)
	}
	wait.For(t, "deletes", 20*time.Second, func() bool { return b2.ext.Len("a") == 0 })
	for _, p := range b2.Stats().Peers {
		if p.Mismatches != 0 {
			t.Fatalf("b: %d digest mismatches: changes were lost and repaired", p.Mismatches)
		}
	}
}
