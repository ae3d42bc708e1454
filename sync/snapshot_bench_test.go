package sync

import (
	"context"
	"testing"
	"time"

	"github.com/ctsync/ctsync/cache"
)

// BenchmarkSnapshot100k: a peer that (re)starts while the owner holds
// 100k flows, from its Run until its external cache holds them all (what
// a restarted node waits for).
func BenchmarkSnapshot100k(b *testing.B) { benchSnapshot(b, 100_000) }

// BenchmarkSnapshot1M is the same with a million flows: the index and the
// slab no longer fit in the CPU's caches.
func BenchmarkSnapshot1M(b *testing.B) { benchSnapshot(b, 1_000_000) }

func benchSnapshot(b *testing.B, flows int) {
	key := make([]byte, 32)
	inA := cache.NewInternal(cache.InternalOptions{Clock: monoClock})
	for j := 0; j < flows; j++ {
		f := tflow(j)
		inA.Upsert(&f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(Config{Node: "n0", Bind: "127.0.0.1:0", Keys: [][]byte{key}, Label: "bench",
		Internal: inA, External: cache.NewExternal(cache.ExternalOptions{Clock: monoClock}), LocalTimings: true, JoinEvery: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	go a.Run(ctx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ext := cache.NewExternal(cache.ExternalOptions{Clock: monoClock})
		bctx, bcancel := context.WithCancel(ctx)
		n, err := New(Config{Node: "n1", Bind: "127.0.0.1:0", Join: []string{a.Addr()}, Keys: [][]byte{key}, Label: "bench",
			Internal: cache.NewInternal(cache.InternalOptions{Clock: monoClock}), External: ext, LocalTimings: true, JoinEvery: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { n.Run(bctx); close(done) }()
		for ext.Len("n0") < flows {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		bcancel()
		<-done
		b.StartTimer()
	}
}
