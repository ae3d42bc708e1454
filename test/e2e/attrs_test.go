package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// attrCase is one attribute under test: conntrack -I arguments (without
// the source address, which is the case's own, so that its flows can be
// told apart), or a flow written over netlink for what conntrack(8) cannot
// set (labels without /etc/xtables/connlabel.conf, helper, sequence
// adjustment, TCP window scale and flags).
type attrCase struct {
	name string
	v6   bool
	args []string
	nl   func(src netip.Addr) flow.Flow
}

func tcpNL(src netip.Addr, fn func(f *flow.Flow)) flow.Flow {
	f := flow.Flow{Orig: flow.Tuple{Src: src, Dst: netip.MustParseAddr("198.51.100.70"), Proto: flow.ProtoTCP, SrcPort: 41000, DstPort: 21},
		Timeout: 600, Status: flow.StatusSeenReply | flow.StatusAssured, Attrs: flow.AttrTCP}
	f.Reply = f.Orig.Invert()
	f.TCP.State = 3 // ESTABLISHED
	fn(&f)
	return f
}

var attrCases = []attrCase{
	{name: "tcp-syn-sent", args: []string{"-d", "198.51.100.1", "-p", "tcp", "--sport", "40000", "--dport", "80", "--state", "SYN_SENT", "-t", "100"}},
	{name: "tcp-established", args: []string{"-d", "198.51.100.1", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600"}},
	{name: "tcp-fin-wait", args: []string{"-d", "198.51.100.1", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "FIN_WAIT", "-u", "SEEN_REPLY,ASSURED", "-t", "110"}},
	{name: "tcp-time-wait", args: []string{"-d", "198.51.100.1", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "TIME_WAIT", "-u", "SEEN_REPLY,ASSURED", "-t", "100"}},
	{name: "tcp-ipv6", v6: true, args: []string{"-d", "2001:db8:20::7", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600"}},
	{name: "udp-unreplied", args: []string{"-d", "198.51.100.53", "-p", "udp", "--sport", "5353", "--dport", "53", "-t", "30"}},
	{name: "udp-replied", args: []string{"-d", "198.51.100.53", "-p", "udp", "--sport", "5353", "--dport", "53", "-u", "SEEN_REPLY,ASSURED", "-t", "120"}},
	{name: "udp-ipv6", v6: true, args: []string{"-d", "2001:db8:20::53", "-p", "udp", "--sport", "1000", "--dport", "2000", "-t", "120"}},
	{name: "udplite", args: []string{"-d", "198.51.100.2", "-p", "udplite", "--sport", "1000", "--dport", "2000", "-t", "120"}},
	{name: "icmp", args: []string{"-d", "198.51.100.3", "-p", "icmp", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "77", "-t", "30"}},
	{name: "icmpv6", v6: true, args: []string{"-d", "2001:db8:20::3", "-p", "icmpv6", "--icmpv6-type", "128", "--icmpv6-code", "0", "--icmpv6-id", "78", "-t", "30"}},
	{name: "sctp-established", args: []string{"-d", "198.51.100.4", "-p", "sctp", "--sport", "3868", "--dport", "3868", "--state", "ESTABLISHED", "--orig-vtag", "5", "--reply-vtag", "6", "-t", "3600"}},
	{name: "sctp-shutdown-sent", args: []string{"-d", "198.51.100.4", "-p", "sctp", "--sport", "3869", "--dport", "3868", "--state", "SHUTDOWN_SENT", "--orig-vtag", "7", "--reply-vtag", "8", "-t", "100"}},
	// Linux 6.16 removed DCCP tracking: the kernel keeps a generic entry
	// (no ports, no state, no role). What it keeps must still survive.
	{name: "dccp", args: []string{"-d", "198.51.100.5", "-p", "dccp", "--sport", "1000", "--dport", "2000", "--state", "OPEN", "--role", "SERVER", "-t", "100"}},
	{name: "gre-keys", args: []string{"-d", "198.51.100.6", "-p", "gre", "--srckey", "5", "--dstkey", "6", "-t", "100"}},
	{name: "unknown-proto-99", args: []string{"-d", "198.51.100.7", "-p", "99", "-t", "100"}},
	{name: "igmp", args: []string{"-d", "198.51.100.8", "-p", "igmp", "-t", "100"}},
	{name: "snat-port", args: []string{"-d", "198.51.100.9", "-p", "tcp", "--sport", "40000", "--dport", "443", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600", "--src-nat", "203.0.113.1:50000"}},
	{name: "dnat-port", args: []string{"-d", "203.0.113.1", "-p", "tcp", "--sport", "40000", "--dport", "80", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600", "--dst-nat", "192.168.20.5:8080"}},
	{name: "snat-udp-ipv6", v6: true, args: []string{"-d", "2001:db8:20::9", "-p", "udp", "--sport", "1000", "--dport", "53", "-t", "120", "--src-nat", "[2001:db8:ff::1]:60000"}},
	{name: "snat-icmp", args: []string{"-d", "198.51.100.10", "-p", "icmp", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "79", "-t", "30", "--src-nat", "203.0.113.2"}},
	{name: "mark", args: []string{"-d", "198.51.100.11", "-p", "tcp", "--sport", "40000", "--dport", "22", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "3600", "-m", "42"}},
	{name: "zone", args: []string{"-d", "198.51.100.12", "-p", "tcp", "--sport", "40000", "--dport", "22", "--state", "ESTABLISHED", "-t", "3600", "-w", "7"}},
	{name: "orig-zone", args: []string{"-d", "198.51.100.13", "-p", "udp", "--sport", "1000", "--dport", "2000", "-t", "120", "--orig-zone", "3"}},
	{name: "reply-zone", args: []string{"-d", "198.51.100.14", "-p", "udp", "--sport", "1000", "--dport", "2000", "-t", "120", "--reply-zone", "4"}},
	{name: "labels", nl: func(src netip.Addr) flow.Flow {
		return tcpNL(src, func(f *flow.Flow) { f.Labels = flow.Labels{0: 0x21, 15: 0x80}; f.Set(flow.AttrLabels) })
	}},
	{name: "helper-ftp", nl: func(src netip.Addr) flow.Flow {
		return tcpNL(src, func(f *flow.Flow) { f.Helper = "ftp"; f.Set(flow.AttrHelper) })
	}},
	{name: "seqadj", nl: func(src netip.Addr) flow.Flow {
		return tcpNL(src, func(f *flow.Flow) {
			f.SeqAdjOrig = flow.SeqAdj{CorrectionPos: 1000, OffsetBefore: 0, OffsetAfter: 12}
			f.SeqAdjReply = flow.SeqAdj{CorrectionPos: 2000, OffsetBefore: 3, OffsetAfter: 5}
			f.Set(flow.AttrSeqAdjOrig | flow.AttrSeqAdjReply)
		})
	}},
	{name: "tcp-wscale-flags", nl: func(src netip.Addr) flow.Flow {
		return tcpNL(src, func(f *flow.Flow) {
			f.TCP.WScaleOrig, f.TCP.WScaleReply = 7, 9
			f.TCP.FlagsOrig = flow.TCPFlagWindowScale | flow.TCPFlagSACKPerm
			f.TCP.FlagsReply = flow.TCPFlagWindowScale
		})
	}},
}

// hotSubset is the representative subset run in hot standby.
var hotSubset = []string{"tcp-established", "tcp-ipv6", "udp-replied", "udplite", "icmpv6", "sctp-established", "dccp",
	"gre-keys", "unknown-proto-99", "snat-port", "dnat-port", "snat-udp-ipv6", "mark", "zone", "orig-zone", "reply-zone",
	"labels", "helper-ftp", "seqadj", "tcp-wscale-flags"}

// src is case i's own original source address.
func (c attrCase) src(i int) netip.Addr {
	if c.v6 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:50::%x", i+1))
	}
	return netip.MustParseAddr(fmt.Sprintf("192.168.50.%d", i+1))
}

// attrFilter keeps the sync link local and adds two protocols beyond the
// default list (tracked without ports).
const attrFilter = "filter:\n  ignore_addresses: [127.0.0.0/8, \"::1/128\", 10.99.0.0/24]\n" +
	"  protocols: [tcp, udp, icmp, icmpv6, sctp, dccp, gre, udplite, igmp, 99]\n"

// TestAttrReplicateCommit: every attribute, one case at a time, created on
// a, replicated to b and committed there; b's kernel entry must equal a's.
func TestAttrReplicateCommit(t *testing.T) { attrRun(t, false, attrCases) }

// TestAttrHotStandby: the same (a representative subset) written by hot
// standby ahead of a takeover.
func TestAttrHotStandby(t *testing.T) {
	var cases []attrCase
	for _, c := range attrCases {
		if slices.Contains(hotSubset, c.name) {
			cases = append(cases, c)
		}
	}
	attrRun(t, true, cases)
}

func attrRun(t *testing.T, hot bool, cases []attrCase) {
	l := newLab(t, 2)
	a, b := l.nodes[0], l.nodes[1]
	cfg := attrFilter
	if hot {
		kerneltest.RequireTools(t, "nft")
		cfg += "commit:\n  mode: hot\n"
	} else {
		cfg += "commit:\n  gate: false\n"
	}
	for _, nd := range l.nodes {
		// ct labels are stored only where the ruleset uses them.
		kerneltest.MustExec(t, nd.ns, "nft", "add table inet lbl; add chain inet lbl c { type filter hook prerouting priority 0; }; add rule inet lbl c ct label 127 counter")
		nd.start(cfg)
	}
	if hot {
		a.mustCtl("notify", "master")
		b.mustCtl("notify", "backup")
	}
	ka := dialNS(t, a.ns)
	var nl []flow.Flow
	for i, c := range cases {
		src := c.src(i)
		if c.nl != nil {
			nl = append(nl, c.nl(src))
			continue
		}
		a.conntrack(append([]string{"-I", "-s", src.String()}, c.args...)...)
	}
	if len(nl) > 0 {
		errs := make([]error, len(nl))
		if _, err := ka.Bulk(context.Background(), kernel.OpCreate, nl, kernel.BulkOptions{}, errs); err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("create %+v: %v", nl[i], err)
			}
		}
	}
	n := len(cases)
	if !wait.Until(20*time.Second, func() bool { return b.count("external", "--origin", "fw1") == n }) {
		t.Fatalf("b holds %d of a's flows, a's internal cache %d; want %d\na:\n%s\nb:\n%s", b.count("external", "--origin", "fw1"),
			a.count("internal"), n, a.mustCtl("cache", "internal"), b.mustCtl("cache", "external"))
	}
	kb := dialNS(t, b.ns)
	if hot {
		b.waitFor("a's flows in b's kernel", 20*time.Second, func() bool { return len(bySrc(t, kb, cases)) == n })
	} else {
		out := b.mustCtl("commit")
		if !strings.Contains(out, "0 failed") {
			t.Fatalf("commit: %s", out)
		}
	}
	fa, fb := bySrc(t, ka, cases), bySrc(t, kb, cases)
	xa, xb := extended(a), extended(b)
	for i, c := range cases {
		src := c.src(i)
		t.Run(c.name, func(t *testing.T) {
			ga, gb := fa[src], fb[src]
			if len(ga) != 1 || len(gb) != 1 {
				t.Fatalf("%d flows on a, %d on b; want 1 each", len(ga), len(gb))
			}
			if d := int(ga[0].Timeout) - int(gb[0].Timeout); d > 2 || d < -2 {
				t.Errorf("timeout %d on a, %d on b", ga[0].Timeout, gb[0].Timeout)
			}
			if sa, sb := comparableText(ga[0]), comparableText(gb[0]); sa != sb {
				t.Errorf("kernel entries differ\na: %s\nb: %s", sa, sb)
			}
			if xa[src.String()] != xb[src.String()] || xa[src.String()] == "" {
				t.Errorf("conntrack -o extended differs\na: %s\nb: %s", xa[src.String()], xb[src.String()])
			}
			t.Logf("%s\n%s", xb[src.String()], comparableText(gb[0]))
		})
	}
	if hot {
		hotLabelUpdate(t, ka, kb, cases)
	} else {
		reloadFilters(t, a, b, cases)
	}
}

// hotLabelUpdate: a label change on the owner reaches the standby's kernel
// entry in place (hot standby updated only timeout, mark and TCP state).
func hotLabelUpdate(t *testing.T, ka, kb *kernel.Conn, cases []attrCase) {
	i := slices.IndexFunc(cases, func(c attrCase) bool { return c.name == "labels" })
	if i < 0 {
		return
	}
	src := cases[i].src(i)
	own := bySrc(t, ka, cases)[src]
	if len(own) != 1 {
		t.Fatalf("%d flows from %s on a, want 1", len(own), src)
	}
	f := own[0]
	f.Labels = flow.Labels{1: 0x04}
	errs := make([]error, 1)
	if _, err := ka.Bulk(context.Background(), kernel.OpUpdate, []flow.Flow{f}, kernel.BulkOptions{Update: kernel.UpdateFields{Labels: true}}, errs); err != nil || errs[0] != nil {
		t.Fatalf("update labels on a: %v %v", err, errs[0])
	}
	var got []flow.Flow
	if wait.Until(20*time.Second, func() bool {
		got = bySrc(t, kb, cases)[src]
		return len(got) == 1 && got[0].Labels == f.Labels
	}) {
		return
	}
	if len(got) != 1 {
		t.Fatalf("%d flows from %s on b after a's labels changed to %x, want 1", len(got), src, f.Labels)
	}
	t.Fatalf("b's labels %x after a's changed to %x", got[0].Labels, f.Labels)
}

func dialNS(t *testing.T, ns string) *kernel.Conn {
	t.Helper()
	k, err := kernel.Dial(kernel.Config{NetNS: "/run/netns/" + ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// bySrc dumps a kernel table and groups the cases' flows by original source.
func bySrc(t *testing.T, k *kernel.Conn, cases []attrCase) map[netip.Addr][]flow.Flow {
	t.Helper()
	srcs := map[netip.Addr]bool{}
	for i, c := range cases {
		srcs[c.src(i)] = true
	}
	out := map[netip.Addr][]flow.Flow{}
	err := k.Dump(context.Background(), kernel.DumpFilter{}, func(f *flow.Flow) error {
		if srcs[f.Orig.Src] {
			out[f.Orig.Src] = append(out[f.Orig.Src], *f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// comparableText prints every attribute of a kernel entry but those that are the
// node's own: id, use count, counters, timestamps, the ticking timeout, and
// BE_LIBERAL, which a commit sets on purpose (docs/interface.md, "Behaviour": a
// taken-over TCP flow must not be dropped by window tracking that never saw its
// sequence numbers).
func comparableText(f flow.Flow) string {
	f.ID, f.Use, f.Timeout, f.Start, f.Stop = 0, 0, 0, 0, 0
	f.CountersOrig, f.CountersReply = flow.Counters{}, flow.Counters{}
	f.Attrs &^= flow.AttrID | flow.AttrUse | flow.AttrTimeout | flow.AttrCounters | flow.AttrTimestamp | flow.AttrTimestampStop
	f.TCP.FlagsOrig &^= flow.TCPFlagBeLiberal
	f.TCP.FlagsReply &^= flow.TCPFlagBeLiberal
	m := "-"
	if f.Master != nil {
		m = fmt.Sprintf("%+v", *f.Master)
	}
	f.Master = nil
	return fmt.Sprintf("%+v master=%s", f, m)
}

var extTimeout = regexp.MustCompile(`^(\S+\s+\d+\s+\S+\s+\d+ )\d+ `)
var extSrc = regexp.MustCompile(` src=(\S+) `)

// extended returns conntrack -L -o extended's line of each flow by original
// source, timeout and use count masked.
func extended(nd *node) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(nd.conntrack("-L", "-o", "extended"), "\n") {
		m := extSrc.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		l = extTimeout.ReplaceAllString(l, "${1}T ")
		l = regexp.MustCompile(` use=\d+`).ReplaceAllString(l, "")
		out[m[1]] = l
	}
	return out
}

// reloadFilters: SIGHUP with new filters withdraws flows from the peer and
// adds them back; label bits outside filter.labels never leave the node;
// min_age holds a new flow back.
func reloadFilters(t *testing.T, a, b *node, cases []attrCase) {
	base, err := os.ReadFile(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(filter string) {
		t.Helper()
		c := strings.Replace(string(base), attrFilter, attrFilter+filter, 1)
		if err := os.WriteFile(a.cfg, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	n := len(cases)
	count := func(args ...string) int { return b.count(append([]string{"external", "--origin", "fw1"}, args...)...) }
	// Only mark 42: every other flow is withdrawn from b.
	reload("  marks: [\"42\"]\n")
	b.waitFor("only the marked flow left", 20*time.Second, func() bool { return count() == 1 && count("-m", "42") == 1 })
	// Zones 0 and 7 with udp/53 ignored, and label bit 5 only: the flows
	// come back but the directional-zone ones and DNS; the labels flow
	// arrives with bit 5 alone.
	reload("  zones: [0, 7]\n  ignore_ports: [udp/53]\n  labels: [5]\n")
	dropped := 0
	for _, c := range cases {
		if c.name == "orig-zone" || c.name == "reply-zone" || slices.Contains(c.args, "53") {
			dropped++
		}
	}
	b.waitFor("the zone and port filters", 20*time.Second, func() bool { return count() == n-dropped })
	out, err := b.ctl("cache", "external", "--origin", "fw1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"labels":"20000000000000000000000000000000"`) {
		t.Errorf("labels on b after labels: [5]; want bit 5 alone:\n%s", out)
	}
	// min_age: a new flow reaches b only once it is 3 s old.
	reload("  min_age: 3s\n")
	a.waitFor("the reload", 20*time.Second, func() bool { return count() == n })
	start := time.Now()
	a.conntrack("-I", "-s", "192.168.51.1", "-d", "198.51.100.1", "-p", "tcp", "--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "-t", "100")
	b.waitFor("the aged flow", 20*time.Second, func() bool { return count() == n+1 })
	if el := time.Since(start); el < 2500*time.Millisecond {
		t.Errorf("a flow reached the peer %v after it was created, before min_age 3s", el)
	}
}
