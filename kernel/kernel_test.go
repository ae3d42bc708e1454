package kernel_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// dial opens a fresh namespace's table.
func dial(t *testing.T) (*kernel.Conn, string) {
	t.Helper()
	kerneltest.RequirePrivileged(t)
	ns := kerneltest.NewNetNS(t)
	c, err := kernel.Dial(kernel.Config{NetNS: ns})
	if err != nil {
		t.Fatalf("dial %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ns
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func conntrack(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := kerneltest.Conntrack(t, ns, args...)
	if err != nil {
		t.Fatalf("conntrack %s: %v", strings.Join(args, " "), err)
	}
	return out
}

var timeoutField = regexp.MustCompile(`^(\S+\s+\d+ )\d+ `)

// listing returns conntrack -L's lines, sorted, with timeouts and ids removed.
func listing(t *testing.T, ns string) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(conntrack(t, ns, "-L")), "\n") {
		if l == "" {
			continue
		}
		lines = append(lines, timeoutField.ReplaceAllString(l, "${1}T "))
	}
	sort.Strings(lines)
	return lines
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tcpFlow(src, dst string, sport, dport uint16) flow.Flow {
	f := flow.Flow{
		Orig:    flow.Tuple{Src: addr(src), Dst: addr(dst), Proto: flow.ProtoTCP, SrcPort: sport, DstPort: dport},
		Status:  flow.StatusSeenReply | flow.StatusAssured,
		Timeout: 300,
		Attrs:   flow.AttrTCP | flow.AttrStatus | flow.AttrTimeout,
	}
	f.TCP.State = flow.TCPEstablished
	f.Reply = f.Orig.Invert()
	return f
}

// oracleCase is one entry created both by kernel.Create and by conntrack -I.
type oracleCase struct {
	name string
	f    func() flow.Flow
	args string // conntrack -I arguments creating the same entry
}

var oracleCases = []oracleCase{
	{"tcp mark zone", func() flow.Flow {
		f := tcpFlow("1.1.1.1", "2.2.2.2", 10, 20)
		f.Mark, f.Zone = 42, 3
		return f
	}, "-s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300 -m 42 -w 3"},
	{"udp snat", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("10.0.0.1"), Dst: addr("8.8.8.8"), Proto: flow.ProtoUDP, SrcPort: 5353, DstPort: 53}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		f.Reply.Dst = addr("203.0.113.5")
		return f
	}, "-s 10.0.0.1 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 30 --src-nat 203.0.113.5"},
	{"tcp snat with port", func() flow.Flow {
		f := tcpFlow("10.0.0.9", "198.51.100.7", 33000, 443)
		f.Reply.Dst, f.Reply.DstPort = addr("203.0.113.1"), 40020
		return f
	}, "-s 10.0.0.9 -d 198.51.100.7 -p tcp --sport 33000 --dport 443 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300 --src-nat 203.0.113.1:40020"},
	{"udp dnat with port", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("10.0.0.2"), Dst: addr("8.8.8.8"), Proto: flow.ProtoUDP, SrcPort: 5353, DstPort: 53}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		f.Reply.Src, f.Reply.SrcPort = addr("9.9.9.9"), 5353
		return f
	}, "-s 10.0.0.2 -d 8.8.8.8 -p udp --sport 5353 --dport 53 -t 30 --dst-nat 9.9.9.9:5353"},
	{"icmp", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("1.1.1.1"), Dst: addr("2.2.2.2"), Proto: flow.ProtoICMP, ICMPType: 8, ICMPID: 77}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 1.1.1.1 -d 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30"},
	{"icmpv6", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("2001:db8::1"), Dst: addr("2001:db8::2"), Proto: flow.ProtoICMPv6, ICMPType: 128, ICMPID: 9}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 9 -t 30"},
	{"unknown protocol", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("1.1.1.9"), Dst: addr("224.0.0.22"), Proto: 2}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 1.1.1.9 -d 224.0.0.22 -p 2 -t 30"},
	{"sctp vtags", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("1.1.1.6"), Dst: addr("2.2.2.2"), Proto: flow.ProtoSCTP, SrcPort: 10, DstPort: 20}, Timeout: 30, Attrs: flow.AttrSCTP}
		f.SCTP = flow.SCTPInfo{State: 4, VTagOrig: 5, VTagReply: 6}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 1.1.1.6 -d 2.2.2.2 -p sctp --sport 10 --dport 20 --state ESTABLISHED --orig-vtag 5 --reply-vtag 6 -t 30"},
	{"gre keys", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("1.1.1.7"), Dst: addr("2.2.2.2"), Proto: flow.ProtoGRE, SrcPort: 5, DstPort: 6}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 1.1.1.7 -d 2.2.2.2 -p gre --srckey 5 --dstkey 6 -t 30"},
	{"dccp", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("1.1.1.8"), Dst: addr("2.2.2.2"), Proto: flow.ProtoDCCP, SrcPort: 1, DstPort: 2}, Timeout: 30, Attrs: flow.AttrDCCP}
		f.DCCP = flow.DCCPInfo{State: 4, Role: 0}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 1.1.1.8 -d 2.2.2.2 -p dccp --sport 1 --dport 2 --state OPEN --role client -t 30"},
	{"udplite", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("1.1.1.8"), Dst: addr("2.2.2.3"), Proto: flow.ProtoUDPLite, SrcPort: 1, DstPort: 2}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		return f
	}, "-s 1.1.1.8 -d 2.2.2.3 -p udplite --sport 1 --dport 2 -t 30"},
	{"ipv6 tcp orig zone", func() flow.Flow {
		f := tcpFlow("2001:db8::1", "2001:db8::2", 1000, 22)
		f.Status = 0
		f.TCP.State = flow.TCPSynSent
		f.Zone, f.ZoneDir = 4, flow.ZoneOrig
		return f
	}, "-s 2001:db8::1 -d 2001:db8::2 -p tcp --sport 1000 --dport 22 --state SYN_SENT -t 300 --orig-zone 4"},
	{"reply zone", func() flow.Flow {
		f := tcpFlow("1.1.1.2", "2.2.2.2", 10, 20)
		f.Zone, f.ZoneDir = 9, flow.ZoneReply
		return f
	}, "-s 1.1.1.2 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300 --reply-zone 9"},
	{"ipv6 snat", func() flow.Flow {
		f := flow.Flow{Orig: flow.Tuple{Src: addr("fd00::5"), Dst: addr("2001:db8::80"), Proto: flow.ProtoUDP, SrcPort: 1234, DstPort: 53}, Timeout: 30}
		f.Reply = f.Orig.Invert()
		f.Reply.Dst, f.Reply.DstPort = addr("2001:db8::1"), 4000
		return f
	}, "-s fd00::5 -d 2001:db8::80 -p udp --sport 1234 --dport 53 -t 30 --src-nat [2001:db8::1]:4000"},
	{"fixed timeout", func() flow.Flow {
		f := tcpFlow("1.1.1.3", "2.2.2.2", 10, 20)
		f.Status |= flow.StatusFixedTimeout
		return f
	}, "-s 1.1.1.3 -d 2.2.2.2 -p tcp --sport 10 --dport 20 --state ESTABLISHED -u SEEN_REPLY,ASSURED,FIXED_TIMEOUT -t 300"},
}

// TestCreateMatchesConntrack creates each entry with kernel.Create in one
// namespace and with conntrack -I in another: conntrack -L must list both
// tables the same.
func TestCreateMatchesConntrack(t *testing.T) {
	c, ns := dial(t)
	oracle := kerneltest.NewNetNS(t)
	for _, tc := range oracleCases {
		f := tc.f()
		if err := c.Create(ctx(t), &f, kernel.CreateOptions{}); err != nil {
			t.Fatalf("%s: create: %v", tc.name, err)
		}
		conntrack(t, oracle, append([]string{"-I"}, strings.Fields(tc.args)...)...)
	}
	got, want := listing(t, ns), listing(t, oracle)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tables differ\nctsync:\n%s\nconntrack:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(got) != len(oracleCases) {
		t.Fatalf("got %d entries, want %d", len(got), len(oracleCases))
	}
}

// TestDumpRoundTrip: entries made by conntrack -I, dumped by kernel.Dump and
// re-created by kernel.Create elsewhere, list the same (the replication path).
func TestDumpRoundTrip(t *testing.T) {
	src, srcNS := dial(t)
	dst, dstNS := dial(t)
	for _, tc := range oracleCases {
		conntrack(t, srcNS, append([]string{"-I"}, strings.Fields(tc.args)...)...)
	}
	flows, err := src.List(ctx(t), kernel.DumpFilter{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(flows) != len(oracleCases) {
		t.Fatalf("dumped %d entries, want %d", len(flows), len(oracleCases))
	}
	for i := range flows {
		if err := dst.Create(ctx(t), &flows[i], kernel.CreateOptions{}); err != nil {
			t.Fatalf("re-create %+v: %v", flows[i], err)
		}
	}
	got, want := listing(t, dstNS), listing(t, srcNS)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tables differ\ncopy:\n%s\noriginal:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSNATEntryIsTranslating checks the kernel set up real NAT: the SRC_NAT
// status bit is what nf_nat_packet is gated on.
func TestSNATEntryIsTranslating(t *testing.T) {
	c, _ := dial(t)
	f := oracleCases[2].f()
	if err := c.Create(ctx(t), &f, kernel.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := c.Get(ctx(t), &f, false)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	want := flow.StatusSrcNAT | flow.StatusSrcNATDone
	if got.Status&want != want {
		t.Fatalf("status %#x lacks SRC_NAT|SRC_NAT_DONE", got.Status)
	}
	if got.Reply != f.Reply {
		t.Fatalf("reply tuple %+v, want %+v", got.Reply, f.Reply)
	}
	// Get by reply tuple finds the same entry.
	byReply, err := c.Get(ctx(t), &f, true)
	if err != nil || byReply.ID != got.ID {
		t.Fatalf("get by reply: %v (id %d, want %d)", err, byReply.ID, got.ID)
	}
}

func TestGetUpdateDelete(t *testing.T) {
	c, ns := dial(t)
	f := tcpFlow("10.1.1.1", "10.2.2.2", 1111, 80)
	if _, err := c.Get(ctx(t), &f, false); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	if err := c.Create(ctx(t), &f, kernel.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Create(ctx(t), &f, kernel.CreateOptions{}); !errors.Is(err, kernel.ErrExist) {
		t.Fatalf("create twice: %v, want ErrExist", err)
	}
	f.Mark = 0x1234
	f.Timeout = 77
	if err := c.Update(ctx(t), &f, kernel.UpdateFields{Mark: true, Timeout: true}); err != nil {
		t.Fatalf("update: %v", err)
	}
	out := conntrack(t, ns, "-L", "-p", "tcp", "--sport", "1111")
	if !strings.Contains(out, "mark=4660") || !regexp.MustCompile(`tcp\s+6 7[0-7] `).MatchString(out) {
		t.Fatalf("after update conntrack lists %q, want mark=4660 and timeout ~77", out)
	}
	// Masked mark update: only the low byte changes.
	f.Mark = 0x00ff
	if err := c.Update(ctx(t), &f, kernel.UpdateFields{Mark: true, MarkMask: 0x00ff}); err != nil {
		t.Fatalf("masked update: %v", err)
	}
	got, err := c.Get(ctx(t), &f, false)
	if err != nil || got.Mark != 0x12ff {
		t.Fatalf("masked update gave mark %#x (%v), want 0x12ff", got.Mark, err)
	}
	if err := c.Delete(ctx(t), &f); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.Delete(ctx(t), &f); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
	if n := strings.TrimSpace(conntrack(t, ns, "-C")); n != "0" {
		t.Fatalf("conntrack -C = %s after delete, want 0", n)
	}
}

func TestDeleteByID(t *testing.T) {
	c, ns := dial(t)
	conntrack(t, ns, "-I", "-s", "1.2.3.4", "-d", "5.6.7.8", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "100")
	line := conntrack(t, ns, "-L", "-o", "id")
	m := regexp.MustCompile(`id=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no id in %q", line)
	}
	var id uint32
	fmt.Sscan(m[1], &id)
	if _, err := c.DeleteByID(ctx(t), id+1); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("delete wrong id: %v, want ErrNotFound", err)
	}
	if _, err := c.DeleteByID(ctx(t), id); err != nil {
		t.Fatalf("delete id %d: %v", id, err)
	}
	if n := strings.TrimSpace(conntrack(t, ns, "-C")); n != "0" {
		t.Fatalf("conntrack -C = %s, want 0", n)
	}
}

func TestFlushCountStats(t *testing.T) {
	c, ns := dial(t)
	for i := 0; i < 5; i++ {
		conntrack(t, ns, "-I", "-s", fmt.Sprintf("10.0.0.%d", i+1), "-d", "10.9.9.9", "-p", "udp", "--sport", "5", "--dport", "6", "-t", "100")
	}
	conntrack(t, ns, "-I", "-s", "fd00::1", "-d", "fd00::2", "-p", "udp", "--sport", "5", "--dport", "6", "-t", "100")
	n, limit, err := c.Count(ctx(t))
	if err != nil || n != 6 || limit == 0 {
		t.Fatalf("count = %d/%d (%v), want 6 and a limit", n, limit, err)
	}
	stats, err := c.Stats(ctx(t))
	if err != nil || len(stats) == 0 {
		t.Fatalf("stats: %v (%d cpus)", err, len(stats))
	}
	var inserts uint32
	for _, s := range stats {
		inserts += s.Insert
	}
	if inserts < 6 {
		t.Fatalf("stats count %d inserts, want >= 6", inserts)
	}
	if err := c.Flush(ctx(t), flow.IPv6); err != nil {
		t.Fatalf("flush ipv6: %v", err)
	}
	if n, _, _ := c.Count(ctx(t)); n != 5 {
		t.Fatalf("after ipv6 flush count = %d, want 5", n)
	}
	if err := c.Flush(ctx(t), 0); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if n := strings.TrimSpace(conntrack(t, ns, "-C")); n != "0" {
		t.Fatalf("conntrack -C = %s after flush, want 0", n)
	}
}

func TestDumpFilterInKernel(t *testing.T) {
	c, ns := dial(t)
	conntrack(t, ns, "-I", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "100", "-m", "0x10")
	conntrack(t, ns, "-I", "-s", "10.0.0.3", "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "100", "-m", "0x11")
	conntrack(t, ns, "-I", "-s", "fd00::1", "-d", "fd00::2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "100", "-m", "0x10", "-w", "5")
	count := func(f kernel.DumpFilter) int {
		n := 0
		if err := c.Dump(ctx(t), f, func(*flow.Flow) error { n++; return nil }); err != nil {
			t.Fatalf("dump %+v: %v", f, err)
		}
		return n
	}
	for _, tc := range []struct {
		f    kernel.DumpFilter
		want int
	}{
		{kernel.DumpFilter{}, 3},
		{kernel.DumpFilter{Family: flow.IPv4}, 2},
		{kernel.DumpFilter{Family: flow.IPv6}, 1},
		{kernel.DumpFilter{Mark: 0x10, MarkMask: 0xffffffff}, 2},
		{kernel.DumpFilter{Mark: 0x10, MarkMask: 0xf0}, 3},
		{kernel.DumpFilter{Zone: 5, HasZone: true}, 1},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("dump %+v: %d entries, want %d", tc.f, got, tc.want)
		}
	}
}

// TestBulkPerEntryErrors: duplicates and invalid entries fail exactly where
// they are; everything else is created.
func TestBulkPerEntryErrors(t *testing.T) {
	c, ns := dial(t)
	const n = 1500
	flows := make([]flow.Flow, n)
	for i := range flows {
		flows[i] = tcpFlow(fmt.Sprintf("10.%d.%d.1", i/250, i%250), "192.0.2.1", 1000, 80)
	}
	flows[700] = flows[10]                 // duplicate
	flows[900].Reply.Src = addr("fd00::1") // mixed families
	conntrack(t, ns, "-I", "-s", "10.5.5.1", "-d", "192.0.2.1", "-p", "tcp", "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED", "-t", "50")
	errs := make([]error, n)
	failed, err := c.Bulk(ctx(t), kernel.OpCreate, flows, kernel.BulkOptions{}, errs)
	if err != nil {
		t.Fatalf("bulk: %v", err)
	}
	pre := 5*250 + 5 // 10.5.5.1 exists already
	for i, e := range errs {
		switch i {
		case 700, pre:
			if !errors.Is(e, kernel.ErrExist) {
				t.Errorf("entry %d: %v, want ErrExist", i, e)
			}
		case 900:
			if e == nil || errors.Is(e, kernel.ErrExist) {
				t.Errorf("entry %d: %v, want a validation error", i, e)
			}
		default:
			if e != nil {
				t.Errorf("entry %d: %v", i, e)
			}
		}
	}
	if failed != 3 {
		t.Errorf("failed = %d, want 3", failed)
	}
	if got := strings.TrimSpace(conntrack(t, ns, "-C")); got != fmt.Sprint(n-2) {
		t.Fatalf("conntrack -C = %s, want %d", got, n-2)
	}
	// Bulk delete of all: the missing ones report ErrNotFound.
	failed, err = c.Bulk(ctx(t), kernel.OpDelete, flows, kernel.BulkOptions{}, errs)
	if err != nil || failed != 2 {
		t.Fatalf("bulk delete: failed %d (%v), want 2 (duplicate and invalid)", failed, err)
	}
	if got := strings.TrimSpace(conntrack(t, ns, "-C")); got != "0" {
		t.Fatalf("conntrack -C = %s after bulk delete, want 0", got)
	}
}

// TestWatchOrdered: NEW, UPDATE, DESTROY for each flow arrive in order, and
// the port id names the socket that caused them.
func TestWatchOrdered(t *testing.T) {
	c, ns := dial(t)
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	type seen struct {
		types []flow.EventType
	}
	got := map[flow.Key]*seen{}
	ready := make(chan struct{})
	done := make(chan error, 1)
	const n = 2000
	total := 0
	go func() {
		done <- c.Watch(wctx, kernel.WatchOptions{Ready: func() { close(ready) }}, func(ev *flow.Event) error {
			k := ev.Flow.Key()
			s := got[k]
			if s == nil {
				s = &seen{}
				got[k] = s
			}
			s.types = append(s.types, ev.Type)
			total++
			if total == 3*n {
				cancel()
			}
			return nil
		})
	}()
	<-ready
	flows := make([]flow.Flow, n)
	for i := range flows {
		flows[i] = tcpFlow(fmt.Sprintf("10.%d.%d.2", i/250, i%250), "192.0.2.1", 1000, 80)
	}
	if _, err := c.Bulk(ctx(t), kernel.OpCreate, flows, kernel.BulkOptions{}, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	for i := range flows {
		flows[i].Mark = 1
	}
	if _, err := c.Bulk(ctx(t), kernel.OpUpdate, flows, kernel.BulkOptions{Update: kernel.UpdateFields{Mark: true}}, nil); err != nil {
		t.Fatalf("update: %v", err)
	}
	conntrack(t, ns, "-F")
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
	if len(got) != n {
		t.Fatalf("events for %d flows, want %d", len(got), n)
	}
	for k, s := range got {
		if len(s.types) != 3 || s.types[0] != flow.EventNew || s.types[1] != flow.EventUpdate || s.types[2] != flow.EventDestroy {
			t.Fatalf("flow %v: events %v, want NEW UPDATE DESTROY", k, s.types)
		}
	}
}

// TestWatchOverrun: a tiny receive buffer and a slow reader under a burst
// yield ErrOverrun — never a hang, never silent loss.
func TestWatchOverrun(t *testing.T) {
	c, _ := dial(t)
	wctx, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(wctx, kernel.WatchOptions{ReadBuffer: 4096, Ready: func() { close(ready) }}, func(*flow.Event) error {
			time.Sleep(time.Millisecond)
			return nil
		})
	}()
	<-ready
	flows := make([]flow.Flow, 5000)
	for i := range flows {
		flows[i] = tcpFlow(fmt.Sprintf("10.%d.%d.3", i/250, i%250), "192.0.2.1", 1000, 80)
	}
	if _, err := c.Bulk(ctx(t), kernel.OpCreate, flows, kernel.BulkOptions{}, nil); err != nil {
		t.Fatalf("create: %v", err)
	}
	err := <-done
	if !errors.Is(err, kernel.ErrOverrun) {
		t.Fatalf("watch returned %v, want ErrOverrun", err)
	}

	// With OnOverrun the watch reports each overrun and keeps going.
	overruns := 0
	wctx2, cancel2 := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel2()
	ready2 := make(chan struct{})
	go func() {
		done <- c.Watch(wctx2, kernel.WatchOptions{ReadBuffer: 4096, Ready: func() { close(ready2) },
			OnOverrun: func() error { overruns++; cancel2(); return nil }}, func(*flow.Event) error {
			time.Sleep(time.Millisecond)
			return nil
		})
	}()
	<-ready2
	if _, err := c.Bulk(ctx(t), kernel.OpDelete, flows, kernel.BulkOptions{}, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("watch with OnOverrun: %v", err)
	}
	if overruns == 0 {
		t.Fatalf("no overrun reported")
	}
}

func TestDialUnknownNamespace(t *testing.T) {
	kerneltest.RequirePrivileged(t)
	if _, err := kernel.Dial(kernel.Config{NetNS: "ctsync-no-such-ns"}); err == nil {
		t.Fatalf("dial of a missing namespace succeeded")
	}
}

func TestContextCancelStopsDump(t *testing.T) {
	c, _ := dial(t)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Dump(cctx, kernel.DumpFilter{}, func(*flow.Flow) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("dump with cancelled context: %v, want context.Canceled", err)
	}
	// The Conn stays usable.
	if _, _, err := c.Count(ctx(t)); err != nil {
		t.Fatalf("count after cancelled dump: %v", err)
	}
}

// TestBulkRoundsReuseErrs: a caller reuses its errs slots from round to
// round (create, delete, create of one set), as a commit does. Only the
// failures and a batch's last request are answered, so every slot must
// say this round's result, not the last round's.
func TestBulkRoundsReuseErrs(t *testing.T) {
	c, ns := dial(t)
	const n = 600 // several batches, on both sockets
	flows := make([]flow.Flow, n)
	for i := range flows {
		flows[i] = tcpFlow(fmt.Sprintf("10.7.%d.%d", i/250, i%250+1), "192.0.2.7", 1000, 80)
	}
	errs := make([]error, n)
	round := func(op kernel.Op, o kernel.BulkOptions, want func(i int, e error) bool, what string) {
		t.Helper()
		failed, err := c.Bulk(ctx(t), op, flows, o, errs)
		if err != nil {
			t.Fatalf("bulk %s: %v", op, err)
		}
		bad := 0
		for i, e := range errs {
			if !want(i, e) {
				if bad < 3 {
					t.Errorf("bulk %s: entry %d: %v, want %s", op, i, e, what)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Fatalf("bulk %s: %d of %d entries wrong (failed = %d)", op, bad, n, failed)
		}
	}
	isNil := func(_ int, e error) bool { return e == nil }
	exists := func(_ int, e error) bool { return errors.Is(e, kernel.ErrExist) }
	round(kernel.OpCreate, kernel.BulkOptions{}, isNil, "nil")
	// The whole set exists: every entry fails, every slot says so.
	round(kernel.OpCreate, kernel.BulkOptions{}, exists, "ErrExist")
	// Each entry is fetched and deleted: no slot keeps ErrExist.
	got := make([]flow.Flow, n)
	round(kernel.OpGet, kernel.BulkOptions{Got: got}, isNil, "nil")
	for i := range got {
		if got[i].Orig != flows[i].Orig || got[i].Reply != flows[i].Reply || !got[i].Has(flow.AttrID) {
			t.Fatalf("get %d: %+v, want the entry of %+v with its id", i, got[i], flows[i])
		}
	}
	round(kernel.OpDelete, kernel.BulkOptions{}, isNil, "nil")
	if got := strings.TrimSpace(conntrack(t, ns, "-C")); got != "0" {
		t.Fatalf("conntrack -C = %s after the delete, want 0", got)
	}
	round(kernel.OpGet, kernel.BulkOptions{Got: got}, func(i int, e error) bool {
		return errors.Is(e, kernel.ErrNotFound) && got[i].Orig == flow.Tuple{}
	}, "ErrNotFound and no entry")
	round(kernel.OpCreate, kernel.BulkOptions{}, isNil, "nil")
	if got := strings.TrimSpace(conntrack(t, ns, "-C")); got != fmt.Sprint(n) {
		t.Fatalf("conntrack -C = %s, want %d", got, n)
	}
}
