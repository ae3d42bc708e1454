package kernel_test

import (
	"context"
	"testing"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// BenchmarkBulkCreateWatched is BenchmarkBulkCreate with an event listener
// in the namespace, as the daemon has one: every create also builds a NEW
// event, unless the listener is muted (what a commit does).
func BenchmarkBulkCreateWatched(b *testing.B) {
	for _, mute := range []bool{false, true} {
		name := "listening"
		if mute {
			name = "muted"
		}
		b.Run(name, func(b *testing.B) {
			const n = 100_000
			c := benchConn(b)
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				c.Watch(ctx, kernel.WatchOptions{Ready: func() { close(ready) }, OnOverrun: func() error { return nil }}, func(*flow.Event) error { return nil })
			}()
			<-ready
			defer func() { cancel(); <-done }()
			if err := c.MuteNew(mute); err != nil {
				b.Fatal(err)
			}
			flows := benchFlows(n)
			errs := make([]error, n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := c.Flush(ctx, 0); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				failed, err := c.Bulk(ctx, kernel.OpCreate, flows, kernel.BulkOptions{Create: kernel.CreateOptions{Liberal: true}}, errs)
				if err != nil || failed != 0 {
					b.Fatalf("bulk: %d failed, %v", failed, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}
