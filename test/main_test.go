package test

import (
	"testing"

	"go.uber.org/goleak"
)

// The cluster tests start agents, memberlist and streams: none may leak.
// memberlist's Shutdown does not wait for a probe in flight; it ends by
// its own timeout.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}
