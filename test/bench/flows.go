package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// writeFlows writes n conntrack -R lines: established TCP flows from
// 10.0.0.0/12 (up to 1M), a quarter of them SNATed.
func writeFlows(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "-I -s 10.%d.%d.%d -d 198.51.100.%d -p tcp --sport %d --dport 443 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 3600",
			(i>>16)&255, (i>>8)&255, i&255, i%200, 1024+i%50000)
		if i%4 == 0 {
			fmt.Fprintf(w, " --src-nat 203.0.113.%d:%d", (i>>16)%250+1, 1024+(i>>2)%60000)
		}
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// churnFlow is background flow k: from 172.16.0.0/12, to 192.0.2.1:80,
// established.
func churnFlow(k int) flow.Flow {
	k &= 1<<20 - 1
	f := flow.Flow{
		Orig: flow.Tuple{
			Src:   netip.AddrFrom4([4]byte{172, byte(16 + k>>16), byte(k >> 8), byte(k)}),
			Dst:   netip.AddrFrom4([4]byte{192, 0, 2, 1}),
			Proto: flow.ProtoTCP, SrcPort: uint16(10000 + k%50000), DstPort: 80,
		},
		Status:  flow.StatusSeenReply | flow.StatusAssured,
		Timeout: 60,
		Attrs:   flow.AttrTCP,
		TCP:     flow.TCPInfo{State: flow.TCPEstablished},
	}
	f.Reply = f.Orig.Invert()
	return f
}

// churn creates rate flows a second on node A and deletes each again
// churnLife later, in chunks every churnTick. It talks netlink itself (the
// kernel package's batched creates and deletes by tuple): conntrack -D,
// even with a full tuple, dumps the whole table for every line, which
// cannot keep up with thousands of deletes a second.
type churn struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	inserted int
	elapsed  time.Duration
	err      error
}

const (
	churnTick = 20 * time.Millisecond
	churnLife = 2 // ticks: each background flow lives 40 ms
)

func startChurn(l *lab, rate int) *churn {
	c := &churn{stop: make(chan struct{}), done: make(chan struct{})}
	per := rate * int(churnTick) / int(time.Second)
	conn, err := kernel.Dial(kernel.Config{NetNS: l.ns[0], Parallel: 1})
	if err != nil {
		c.err = err
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		defer conn.Close()
		if per <= 0 {
			return
		}
		t := time.NewTicker(churnTick)
		defer t.Stop()
		start := time.Now()
		var live [][]flow.Flow // chunks still in the table, oldest first
		next := 0
		ctx := context.Background()
		for {
			select {
			case <-c.stop:
				for _, chunk := range live {
					conn.Bulk(ctx, kernel.OpDelete, chunk, kernel.BulkOptions{}, nil)
				}
				return
			case <-t.C:
			}
			chunk := make([]flow.Flow, per)
			for j := range chunk {
				chunk[j] = churnFlow(next + j)
			}
			next += per
			failed, err := conn.Bulk(ctx, kernel.OpCreate, chunk, kernel.BulkOptions{}, nil)
			live = append(live, chunk)
			if len(live) > churnLife {
				f2, err2 := conn.Bulk(ctx, kernel.OpDelete, live[0], kernel.BulkOptions{}, nil)
				failed += f2
				if err == nil {
					err = err2
				}
				live = live[1:]
			}
			c.mu.Lock()
			if err == nil && failed > 0 {
				err = fmt.Errorf("%d creates or deletes failed", failed)
			}
			if err != nil && c.err == nil {
				c.err = fmt.Errorf("churn: %w", err)
			}
			c.inserted += per
			c.elapsed = time.Since(start)
			c.mu.Unlock()
		}
	}()
	return c
}

// end stops the churn and returns the insert rate it achieved.
func (c *churn) end() (float64, error) {
	select {
	case <-c.done:
	default:
		close(c.stop)
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.elapsed <= 0 {
		return 0, c.err
	}
	return float64(c.inserted) / c.elapsed.Seconds(), c.err
}

// probeAddr is the source address of latency probe k: 100.64.0.0/16.
func probeAddr(k int) netip.Addr {
	return netip.AddrFrom4([4]byte{100, 64, byte(k >> 8), byte(k)})
}

type latencyResult struct {
	p50, p99     float64 // ms
	probes       int     // probes made
	missed       int
	resolutionMs float64 // median half-width of the interval the appearance was in
	churnRate    float64
}

// latency inserts samples single flows on A, one at a time, while churn
// runs, and times each from the return of its create to its appearance in
// B's external cache. The create is conntrack -I's request (ctnetlink
// IPCTNL_MSG_CT_NEW), sent by the bench itself: the conntrack tool under
// ip netns exec takes about 7 ms to start and exit, longer than
// replication itself, so its return would come after the flow reached B. B is polled back to back with
// a 1 ms pause (d.hasExternal). The flow appeared after the last look
// that missed it and by the first that saw it; the latency is the
// midpoint of that interval, and its half-width the resolution (median
// reported as resolutionMs). The background flows live only 40 ms, so
// that B's external cache stays small (about a thousand flows) and
// conntrackd's full dump stays cheap.
func latency(l *lab, d daemon, samples, rate int, timeout time.Duration) (latencyResult, error) {
	var r latencyResult
	conn, err := kernel.Dial(kernel.Config{NetNS: l.ns[0], Parallel: 1})
	if err != nil {
		return r, err
	}
	defer conn.Close()
	c := startChurn(l, rate)
	time.Sleep(time.Second) // let the churn reach its steady state
	var lat, widths []float64
	for k := 0; k < samples; k++ {
		src := probeAddr(k)
		f := churnFlow(0)
		f.Orig.Src, f.Orig.Dst, f.Orig.SrcPort, f.Orig.DstPort = src, netip.AddrFrom4([4]byte{192, 0, 2, 2}), 40000, 22
		f.Reply = f.Orig.Invert()
		f.Timeout = 600
		if err := conn.Create(context.Background(), &f, kernel.CreateOptions{}); err != nil {
			c.end()
			return r, fmt.Errorf("probe %d: %w", k, err)
		}
		t0 := time.Now()
		// The flow appeared after the last look that missed it (which
		// happened after prevLo) and by the first look that saw it
		// (before its hi).
		prevLo := t0
		found := false
		for time.Since(t0) < timeout {
			ok, lo, hi, err := d.hasExternal(1, src)
			if err != nil {
				c.end()
				return r, err
			}
			if ok {
				mid := prevLo.Add(hi.Sub(prevLo) / 2)
				lat = append(lat, float64(mid.Sub(t0).Microseconds())/1000)
				widths = append(widths, float64(hi.Sub(prevLo).Microseconds())/2000)
				found = true
				break
			}
			prevLo = lo
			time.Sleep(time.Millisecond)
		}
		r.probes++
		if !found {
			r.missed++
			lat = append(lat, float64(timeout.Milliseconds()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.churnRate, err = c.end()
	r.p50, r.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	r.resolutionMs = percentile(widths, 0.50)
	return r, err
}

// percentile is the nearest-rank percentile of v (which it sorts).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	i := int(p*float64(len(v))+0.5) - 1
	i = max(0, min(i, len(v)-1))
	return v[i]
}
