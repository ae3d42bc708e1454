package wait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	var n atomic.Int32
	if !Until(5*time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("a condition that holds on the third poll timed out")
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("polled %d times, want 3", got)
	}
	if Until(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported as held")
	}
}

// fakeTB records a Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestForFailsWithWhat(t *testing.T) {
	f := &fakeTB{TB: t}
	For(f, "the moon", 10*time.Millisecond, func() bool { return false })
	if f.failed == "" {
		t.Fatal("For did not fail the test on a timeout")
	}
	f.failed = ""
	For(f, "the sun", time.Second, func() bool { return true })
	if f.failed != "" {
		t.Fatal("For failed a test whose condition held")
	}
}
