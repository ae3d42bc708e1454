package kernel_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// benchFlows makes n distinct established TCP flows, a quarter of them SNATed.
func benchFlows(n int) []flow.Flow {
	flows := make([]flow.Flow, n)
	for i := range flows {
		f := flow.Flow{
			Orig: flow.Tuple{
				Src:   netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
				Dst:   netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 200)}),
				Proto: flow.ProtoTCP, SrcPort: uint16(1024 + i%50000), DstPort: 443,
			},
			Status:  flow.StatusSeenReply | flow.StatusAssured,
			Timeout: 3600,
			Attrs:   flow.AttrTCP,
			TCP:     flow.TCPInfo{State: flow.TCPEstablished},
		}
		f.Reply = f.Orig.Invert()
		if i%4 == 0 {
			f.Reply.Dst = netip.AddrFrom4([4]byte{203, 0, 113, byte(i >> 16)})
			f.Reply.DstPort = uint16(i)
		}
		flows[i] = f
	}
	return flows
}

// raiseConntrackMax lifts the host's table limit (which every namespace
// shares) to at least n for the benchmark, and restores it afterwards.
func raiseConntrackMax(b *testing.B, n int) {
	const path = "/proc/sys/net/netfilter/nf_conntrack_max"
	old, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("read nf_conntrack_max: %v", err)
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(old)))
	if err != nil || cur >= n {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(n)), 0o644); err != nil {
		b.Fatalf("raise nf_conntrack_max: %v", err)
	}
	b.Cleanup(func() { _ = os.WriteFile(path, old, 0o644) })
}

func benchConn(b *testing.B) *kernel.Conn {
	kerneltest.RequirePrivileged(b)
	ns := kerneltest.NewNetNS(b)
	c, err := kernel.Dial(kernel.Config{NetNS: ns, Parallel: runtime.GOMAXPROCS(0)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchCreate times Bulk creates of flows into c, each run after setup
// (untimed), and reports flows/s.
func benchCreate(b *testing.B, c *kernel.Conn, flows []flow.Flow, setup func()) {
	errs := make([]error, len(flows))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := c.Flush(ctx, 0); err != nil {
			b.Fatal(err)
		}
		if setup != nil {
			setup()
		}
		b.StartTimer()
		failed, err := c.Bulk(ctx, kernel.OpCreate, flows, kernel.BulkOptions{Create: kernel.CreateOptions{Liberal: true}}, errs)
		if err != nil || failed != 0 {
			b.Fatalf("bulk: %d failed, %v (first: %v)", failed, err, firstErr(errs))
		}
	}
	b.ReportMetric(float64(len(flows))*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkBulkCreate creates 100k flows per op (conntrackd commits 145-185k/s
// here, conntrack -R 70-140k/s, ti-mo's Create ~30k/s).
func BenchmarkBulkCreate(b *testing.B) {
	benchCreate(b, benchConn(b), benchFlows(100_000), nil)
}

// BenchmarkBulkCreateWatched is BenchmarkBulkCreate with an event listener
// in the namespace, as the daemon has one: every create also builds an
// event, unless the listener is muted (what a commit does).
func BenchmarkBulkCreateWatched(b *testing.B) {
	for _, mute := range []bool{false, true} {
		name := "listening"
		if mute {
			name = "muted"
		}
		b.Run(name, func(b *testing.B) {
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
			if err := c.Mute(mute); err != nil {
				b.Fatal(err)
			}
			benchCreate(b, c, benchFlows(100_000), nil)
		})
	}
}

// BenchmarkBulkCreateSlab shows what a commit costs depending on the
// kernel's conntrack slab: "grow" creates 100k entries while another
// namespace holds 100k (the slab must grow, as on a backup that just
// received a table), "reuse" right after 100k entries were flushed (their
// memory is free to reuse). Measured: within 10% of each other.
func BenchmarkBulkCreateSlab(b *testing.B) {
	for _, mode := range []string{"grow", "reuse"} {
		b.Run(mode, func(b *testing.B) {
			const n = 100_000
			other := kerneltest.NewNetNS(b)
			raiseConntrackMax(b, 4*n)
			oc, err := kernel.Dial(kernel.Config{NetNS: other})
			if err != nil {
				b.Fatal(err)
			}
			defer oc.Close()
			flows := benchFlows(n)
			ctx := context.Background()
			benchCreate(b, benchConn(b), flows, func() {
				oc.Flush(ctx, 0)
				if _, err := oc.Bulk(ctx, kernel.OpCreate, flows, kernel.BulkOptions{}, nil); err != nil {
					b.Fatal(err)
				}
				if mode == "reuse" {
					oc.Flush(ctx, 0)
				}
			})
		})
	}
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// BenchmarkDump streams a table of 100k (and 400k, to show memory is flat).
func BenchmarkDump(b *testing.B) {
	for _, n := range []int{100_000, 400_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := benchConn(b)
			raiseConntrackMax(b, n+1000)
			flows := benchFlows(n)
			if failed, err := c.Bulk(context.Background(), kernel.OpCreate, flows, kernel.BulkOptions{}, nil); err != nil || failed != 0 {
				b.Fatalf("fill: %d failed, %v", failed, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := 0
				if err := c.Dump(context.Background(), kernel.DumpFilter{}, func(*flow.Flow) error { got++; return nil }); err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("dumped %d, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}
