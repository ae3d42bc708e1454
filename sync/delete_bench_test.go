package sync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
)

// BenchmarkDelete100k: 100k deletes on the owner until the peer holds none.
func BenchmarkDelete100k(b *testing.B) {
	key := make([]byte, 32)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nodes := make([]*Node, 2)
		ins := []*cache.Internal{cache.NewInternal(cache.InternalOptions{Clock: monoClock}), cache.NewInternal(cache.InternalOptions{Clock: monoClock})}
		exts := []*cache.External{cache.NewExternal(cache.ExternalOptions{Clock: monoClock}), cache.NewExternal(cache.ExternalOptions{Clock: monoClock})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		var join []string
		for j := range nodes {
			n, err := New(Config{Node: fmt.Sprint("n", j), Bind: "127.0.0.1:0", Join: join, Keys: [][]byte{key}, Label: "bench",
				Internal: ins[j], External: exts[j], LocalTimings: true, JoinEvery: 100 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			nodes[j] = n
			join = []string{n.Addr()}
			go func() { n.Run(ctx); done <- struct{}{} }()
		}
		for len(nodes[0].Members()) < 2 || !nodes[0].Stats().Peers[0].Connected {
			time.Sleep(5 * time.Millisecond)
		}
		for j := 0; j < 100_000; j++ {
			f := tflow(j)
			ins[0].Upsert(&f)
		}
		for exts[1].Len("n0") < 100_000 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
		for j := 0; j < 100_000; j++ {
			f := tflow(j)
			ins[0].Delete(&f)
		}
		for exts[1].Len("n0") > 0 {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		cancel()
		<-done
		<-done
	}
}
