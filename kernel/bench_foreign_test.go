package kernel_test

import (
	"context"
	"testing"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// BenchmarkBulkCreateForeignListener: a conntrack event listener in
// another network namespace of the same kernel slows creates here about
// 2.4x (measured 472k/s alone, 197k/s with one): the kernel does event work
// for every entry when any namespace listens. Two firewalls simulated on
// one host (the bench harness) therefore slow each other's commits; two
// real machines do not.
func BenchmarkBulkCreateForeignListener(b *testing.B) {
	for _, foreign := range []bool{false, true} {
		name := "alone"
		if foreign {
			name = "listener-elsewhere"
		}
		b.Run(name, func(b *testing.B) {
			c := benchConn(b)
			if foreign {
				other := kerneltest.NewNetNS(b)
				oc, err := kernel.Dial(kernel.Config{NetNS: other})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				ready := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					oc.Watch(ctx, kernel.WatchOptions{Ready: func() { close(ready) }}, func(*flow.Event) error { return nil })
				}()
				<-ready
				defer func() { cancel(); <-done; oc.Close() }()
			}
			benchCreate(b, c, benchFlows(100_000), nil)
		})
	}
}
