// Package wait is how tests wait for something to happen: they poll a
// condition until it holds or a deadline passes, never sleep for a fixed
// time and hope. Every test tier uses it (unit, kernel, cluster, e2e).
//
// Imported only by tests.
package wait

import (
	"testing"
	"time"
)

// For polls cond until it returns true, and fails the test with "timed out
// after TIMEOUT waiting for WHAT" if it does not within timeout. The first
// polls come quickly (from 1 ms), later ones at most every 20 ms, so a
// condition that holds almost at once costs almost nothing and a long wait
// does not spin.
func For(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Until polls cond like For and reports whether it held before timeout,
// for tests that check a condition that may rightly never come.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
	return true
}
