package test

import (
	"context"
	"testing"
	"time"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestCommitSemantics: an existing entry is replaced by the replica, a
// RELATED flow is committed after its master (the kernel refuses it
// before), and every flow is counted.
func TestCommitSemantics(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	b := startAgent(t, "fw-b", key, bk, a.agent.Addr())

	master := natFlow(1)
	related := natFlow(2)
	related.Orig.DstPort, related.Reply.SrcPort = 20, 20 // an FTP data connection
	m := master.Orig
	related.Master = &m
	a.kern.Insert(master)
	a.kern.Insert(related)
	for i := 10; i < 20; i++ {
		a.kern.Insert(natFlow(i))
	}
	waitFor(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 12 })

	// b's kernel already has one of the flows, with another mark.
	stale := natFlow(10)
	stale.Mark = 999
	bk.Insert(stale)

	res, err := b.agent.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if res.Created != 11 || res.Replaced != 1 || res.Failed != 0 {
		t.Fatalf("commit result %+v, want 11 created, 1 replaced, 0 failed", res)
	}
	got, ok := bk.Get(stale.Key())
	if !ok || got.Mark != natFlow(10).Mark {
		t.Fatalf("replaced entry has mark %d, want the replica's %d", got.Mark, natFlow(10).Mark)
	}
	rel, ok := bk.Get(related.Key())
	if !ok || rel.Status&flow.StatusExpected == 0 {
		t.Fatalf("RELATED flow not committed with its master link: %+v", rel)
	}
}

// TestCommitTimeout: commit.timeout replaces every flow's remaining timeout.
func TestCommitTimeout(t *testing.T) {
	key := clusterKey(t)
	a := startAgent(t, "fw-a", key, nil)
	bk := kerneltest.NewMemTable()
	b := startAgentWith(t, "fw-b", key, bk, func(c *config.Config) { c.Commit.Timeout = config.Duration(180 * time.Second) }, a.agent.Addr())
	for i := 0; i < 5; i++ {
		a.kern.Insert(natFlow(i))
	}
	waitFor(t, "replication", 15*time.Second, func() bool { return cacheLen(t, b, "external", "fw-a") == 5 })
	if _, err := b.agent.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range bk.Flows() {
		if f.Timeout != 180 {
			t.Fatalf("committed flow has timeout %d, want commit.timeout 180", f.Timeout)
		}
	}
	if bk.Len() != 5 {
		t.Fatalf("b's kernel holds %d flows, want 5", bk.Len())
	}
}
