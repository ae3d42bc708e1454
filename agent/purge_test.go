package agent

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestPurgeScheduleAndCancel: a scheduled purge runs when its delay has
// passed on the agent's clock, and not at all once cancelled.
func TestPurgeScheduleAndCancel(t *testing.T) {
	clock := newFakeClock()
	a := testAgentClock(t, config.Filter{}, clock)
	a.log = slog.New(slog.DiscardHandler)
	k := kerneltest.NewMemTable()
	a.kern = k
	for i := range 3 {
		k.Insert(testFlow(flow.ProtoTCP, "192.168.10.2", uint16(1000+i)))
	}

	a.schedulePurge(200 * time.Millisecond)
	clock.Advance(100 * time.Millisecond)
	if !a.cancelPurge() {
		t.Fatal("no purge armed to cancel")
	}
	clock.Advance(time.Second)
	if k.Len() != 3 {
		t.Fatalf("a cancelled purge deleted flows: %d left", k.Len())
	}

	a.schedulePurge(50 * time.Millisecond)
	clock.Advance(49 * time.Millisecond)
	if k.Len() != 3 {
		t.Fatalf("purged before its time: %d left", k.Len())
	}
	clock.Advance(time.Millisecond)
	if k.Len() != 0 {
		t.Fatalf("purge did not run at its time: %d left", k.Len())
	}
	if a.cancelPurge() {
		t.Fatal("a purge that ran is still armed")
	}
}
