package table

import (
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// parseArgs parses the options of a table subcommand as the CLI does.
func parseArgs(c ctCmd, args ...string) (*ctRequest, error) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := addCTFlags(fs, c, false)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return cf.request(fs.Args())
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func TestTableParseGood(t *testing.T) {
	tests := []struct {
		name  string
		cmd   ctCmd
		args  string
		check func(t *testing.T, r *ctRequest)
	}{
		{"CIDR with host bits", ctList, "-s 1.1.1.4/24", func(t *testing.T, r *ctRequest) {
			if r.filter.OrigSrc != pfx("1.1.1.0/24") || r.filter.Family != flow.IPv4 || r.dump.Family != flow.IPv4 {
				t.Errorf("filter %+v, dump %+v", r.filter, r.dump)
			}
		}},
		{"netmask v6", ctList, "-s 2001:db8::9 --mask-src ffff:ffff:: -f ipv6", func(t *testing.T, r *ctRequest) {
			if r.filter.OrigSrc != pfx("2001:db8::/32") {
				t.Errorf("OrigSrc %v", r.filter.OrigSrc)
			}
		}},
		{"netmask v4", ctDelete, "-d 2.2.2.2 --mask-dst 255.255.0.0", func(t *testing.T, r *ctRequest) {
			if r.filter.OrigDst != pfx("2.2.0.0/16") {
				t.Errorf("OrigDst %v", r.filter.OrigDst)
			}
		}},
		{"protocol, state and ports", ctList, "-p tcp --state ESTABLISHED --dport 80 --reply-port-dst 1000", func(t *testing.T, r *ctRequest) {
			f := r.filter
			if !f.HasProto || f.Proto != flow.ProtoTCP || !f.HasState || f.State != flow.TCPEstablished ||
				!f.HasDstPort || f.DstPort != 80 || !f.HasReplyDstPort || f.ReplyDstPort != 1000 || f.HasSrcPort {
				t.Errorf("filter %+v", f)
			}
		}},
		{"conntrack's aliases", ctList, "--orig-src 1.1.1.1 --orig-dst 2.2.2.2 --protonum udp --orig-port-src 5 --orig-port-dst 6", func(t *testing.T, r *ctRequest) {
			f := r.filter
			if f.OrigSrc != pfx("1.1.1.1/32") || f.OrigDst != pfx("2.2.2.2/32") || f.Proto != flow.ProtoUDP || f.SrcPort != 5 || f.DstPort != 6 {
				t.Errorf("filter %+v", f)
			}
		}},
		{"mark and mask go to the kernel too", ctList, "-m 0x10/0xf0", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasMark || r.filter.Mark != 0x10 || r.filter.MarkMask != 0xf0 ||
				r.dump.Mark != 0x10 || r.dump.MarkMask != 0xf0 {
				t.Errorf("filter %+v, dump %+v", r.filter, r.dump)
			}
		}},
		{"zone", ctList, "-w 3", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasZone || r.filter.Zone != 3 || !r.dump.HasZone || r.dump.Zone != 3 {
				t.Errorf("filter %+v, dump %+v", r.filter, r.dump)
			}
		}},
		{"zone 0 is filtered here only", ctList, "-w 0", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasZone || r.dump.HasZone {
				t.Errorf("filter %+v, dump %+v", r.filter, r.dump)
			}
		}},
		{"directional zones", ctDelete, "--orig-zone 4 --reply-zone 0x5", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasOrigZone || r.filter.OrigZone != 4 || !r.filter.HasReplyZone || r.filter.ReplyZone != 5 {
				t.Errorf("filter %+v", r.filter)
			}
		}},
		{"NAT address in the next word", ctList, "--src-nat 1.2.3.4 -p udp", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasSrcNAT || r.filter.SrcNAT.Addr != addr("1.2.3.4") || !r.filter.HasProto {
				t.Errorf("filter %+v", r.filter)
			}
		}},
		{"NAT with a port, short option", ctList, "-n 1.2.3.4:80", func(t *testing.T, r *ctRequest) {
			if n := r.filter.SrcNAT; n.Addr != addr("1.2.3.4") || !n.HasPort || n.Port != 80 {
				t.Errorf("SrcNAT %+v", n)
			}
		}},
		{"NAT IPv6 with a port", ctList, "--dst-nat=[2001:db8::1]:80", func(t *testing.T, r *ctRequest) {
			if n := r.filter.DstNAT; n.Addr != addr("2001:db8::1") || n.Port != 80 || r.filter.Family != flow.IPv6 {
				t.Errorf("DstNAT %+v family %v", n, r.filter.Family)
			}
		}},
		{"bare NAT options", ctList, "-n -g 1.1.1.1", func(t *testing.T, r *ctRequest) {
			f := r.filter
			if !f.HasSrcNAT || f.SrcNAT.Addr.IsValid() || !f.HasDstNAT || f.DstNAT.Addr != addr("1.1.1.1") {
				t.Errorf("filter %+v", f)
			}
		}},
		{"bare NAT before another option", ctList, "--any-nat -p tcp", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasAnyNAT || r.filter.AnyNAT.Addr.IsValid() {
				t.Errorf("filter %+v", r.filter)
			}
		}},
		{"status filter", ctList, "-u SEEN_REPLY,!ASSURED", func(t *testing.T, r *ctRequest) {
			if f := r.filter; f.StatusSet != flow.StatusSeenReply || f.StatusUnset != flow.StatusAssured {
				t.Errorf("filter %+v", f)
			}
		}},
		{"output list", ctList, "-o extended,id", func(t *testing.T, r *ctRequest) {
			if !r.output.text.Extended || !r.output.text.ID || r.output.save {
				t.Errorf("output %+v", r.output)
			}
		}},
		{"family", ctList, "-f ipv6", func(t *testing.T, r *ctRequest) {
			if r.filter.Family != flow.IPv6 || r.dump.Family != flow.IPv6 {
				t.Errorf("filter %+v", r.filter)
			}
		}},
		{"GRE keys and DCCP role filter", ctList, "-p gre --srckey 0x5 --reply-key-dst 6", func(t *testing.T, r *ctRequest) {
			if x := r.extra; !x.HasSrcKey || x.SrcKey != 5 || !x.HasReplyDstKey || x.ReplyDstKey != 6 {
				t.Errorf("extra %+v", x)
			}
		}},
		{"delete by timeout and id", ctDelete, "-t 50 --id 0x10", func(t *testing.T, r *ctRequest) {
			if !r.extra.HasTimeout || r.extra.Timeout != 50 || !r.filter.HasID || r.filter.ID != 16 {
				t.Errorf("extra %+v filter %+v", r.extra, r.filter)
			}
		}},
		{"get by the original tuple", ctGet, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 10 --dport 20 --id 7", func(t *testing.T, r *ctRequest) {
			want := flow.Tuple{Src: addr("1.1.1.1"), Dst: addr("2.2.2.2"), Proto: flow.ProtoTCP, SrcPort: 10, DstPort: 20}
			if r.flow.Orig != want || r.byReply || !r.filter.HasID || r.filter.ID != 7 {
				t.Errorf("flow %+v byReply %v", r.flow.Orig, r.byReply)
			}
		}},
		{"get by the reply tuple", ctGet, "-p udp -r 2.2.2.2 -q 1.1.1.1 --reply-port-src 20 --reply-port-dst 10", func(t *testing.T, r *ctRequest) {
			want := flow.Tuple{Src: addr("1.1.1.1"), Dst: addr("2.2.2.2"), Proto: flow.ProtoUDP, SrcPort: 10, DstPort: 20}
			if r.flow.Orig != want || r.flow.Reply != want.Invert() || !r.byReply {
				t.Errorf("flow %+v / %+v byReply %v", r.flow.Orig, r.flow.Reply, r.byReply)
			}
		}},
		{"insert tcp", ctCreate, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 10 --dport 20 --state ESTABLISHED -u SEEN_REPLY,ASSURED -t 300 -m 0x10/0xff -w 3", func(t *testing.T, r *ctRequest) {
			f := r.flow
			if f.Orig.Invert() != f.Reply || f.Timeout != 300 || f.Status != flow.StatusSeenReply|flow.StatusAssured ||
				f.Mark != 0x10 || f.Zone != 3 || f.ZoneDir != flow.ZoneBoth || f.TCP.State != flow.TCPEstablished ||
				!f.Has(flow.AttrTCP|flow.AttrTimeout|flow.AttrMark) {
				t.Errorf("flow %+v", f)
			}
		}},
		{"insert with source NAT", ctCreate, "-p udp -s 10.0.0.1 -d 8.8.8.8 --sport 5353 --dport 53 -t 30 --src-nat 203.0.113.5:2000", func(t *testing.T, r *ctRequest) {
			want := flow.Tuple{Src: addr("8.8.8.8"), Dst: addr("203.0.113.5"), Proto: flow.ProtoUDP, SrcPort: 53, DstPort: 2000}
			if r.flow.Reply != want {
				t.Errorf("reply %+v, want %+v", r.flow.Reply, want)
			}
		}},
		{"insert with destination NAT, address in the next word", ctCreate, "-p tcp -s 10.0.0.1 -d 203.0.113.5 --sport 1000 --dport 80 --state ESTABLISHED -t 30 --dst-nat 192.168.1.1", func(t *testing.T, r *ctRequest) {
			want := flow.Tuple{Src: addr("192.168.1.1"), Dst: addr("10.0.0.1"), Proto: flow.ProtoTCP, SrcPort: 80, DstPort: 1000}
			if r.flow.Reply != want {
				t.Errorf("reply %+v, want %+v", r.flow.Reply, want)
			}
		}},
		{"insert from the reply tuple", ctCreate, "-p tcp -r 2.2.2.2 -q 1.1.1.1 --reply-port-src 11 --reply-port-dst 21 --state LISTEN -t 50", func(t *testing.T, r *ctRequest) {
			want := flow.Tuple{Src: addr("1.1.1.1"), Dst: addr("2.2.2.2"), Proto: flow.ProtoTCP, SrcPort: 21, DstPort: 11}
			if r.flow.Orig != want || r.flow.Reply != want.Invert() || r.flow.TCP.State != flow.TCPSynSent2 {
				t.Errorf("flow %+v / %+v", r.flow.Orig, r.flow.Reply)
			}
		}},
		{"insert icmp", ctCreate, "-p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30", func(t *testing.T, r *ctRequest) {
			if o, rp := r.flow.Orig, r.flow.Reply; o.ICMPType != 8 || o.ICMPID != 77 || rp.ICMPType != 0 || rp.ICMPID != 77 {
				t.Errorf("flow %+v / %+v", o, rp)
			}
		}},
		{"insert icmpv6 with conntrack's option names", ctCreate, "-p icmpv6 -s 2001:db8::1 -d 2001:db8::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 30", func(t *testing.T, r *ctRequest) {
			if r.flow.Reply.ICMPType != 129 {
				t.Errorf("reply %+v", r.flow.Reply)
			}
		}},
		{"insert an unknown protocol", ctCreate, "-p 200 -s 1.1.1.1 -d 2.2.2.2 -t 30", nil},
		{"insert by protocol name", ctCreate, "-p igmp -s 1.1.1.1 -d 224.0.0.22 -t 30", nil},
		{"insert gre", ctCreate, "-p gre -s 1.1.1.1 -d 2.2.2.2 --srckey 5 --dstkey 6 -t 30", func(t *testing.T, r *ctRequest) {
			if r.flow.Orig.SrcPort != 5 || r.flow.Reply.SrcPort != 6 {
				t.Errorf("flow %+v / %+v", r.flow.Orig, r.flow.Reply)
			}
		}},
		{"insert sctp", ctCreate, "-p sctp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 --state ESTABLISHED --orig-vtag 5 --reply-vtag 6 -t 30", func(t *testing.T, r *ctRequest) {
			if s := r.flow.SCTP; s.VTagOrig != 5 || s.VTagReply != 6 || !r.flow.Has(flow.AttrSCTP) {
				t.Errorf("sctp %+v", s)
			}
		}},
		{"insert dccp without ports (tracked generically)", ctCreate, "-p dccp -s 1.1.1.1 -d 2.2.2.2 -t 30", nil},
		{"insert with an original-direction zone", ctCreate, "-p udp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 -t 30 --orig-zone 4", func(t *testing.T, r *ctRequest) {
			if r.flow.Zone != 4 || r.flow.ZoneDir != flow.ZoneOrig {
				t.Errorf("zone %d dir %d", r.flow.Zone, r.flow.ZoneDir)
			}
		}},
		{"update sets mark, filters by source", ctUpdate, "-s 10.0.0.0/8 -m 1/0xf", func(t *testing.T, r *ctRequest) {
			if r.mark != 1 || r.markMask != 0xf || r.filter.HasMark || r.dump.MarkMask != 0 || r.filter.OrigSrc != pfx("10.0.0.0/8") {
				t.Errorf("mark %d/%#x filter %+v dump %+v", r.mark, r.markMask, r.filter, r.dump)
			}
		}},
		{"update by id", ctUpdate, "--id 5 -t 100 -u ASSURED", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasID || r.flow.Timeout != 100 || r.status != flow.StatusAssured || r.filter.HasStatus {
				t.Errorf("request %+v", r)
			}
		}},
		// ctsync's extensions for the tutorial's command lines.
		{"--state without -p: any protocol's state of the name", ctList, "--state ESTABLISHED", func(t *testing.T, r *ctRequest) {
			want := flow.ProtoStates{HasTCP: true, TCP: flow.TCPEstablished, HasSCTP: true, SCTP: 4}
			if f := r.filter; f.HasState || f.HasProto || !f.HasAnyState || f.AnyState != want {
				t.Errorf("filter %+v", f)
			}
		}},
		{"--state without -p, lower case, with other filters", ctDelete, "--state time_wait -s 10.0.0.0/8", func(t *testing.T, r *ctRequest) {
			want := flow.ProtoStates{HasTCP: true, TCP: flow.TCPTimeWait}
			if f := r.filter; !f.HasAnyState || f.AnyState != want || f.OrigSrc != pfx("10.0.0.0/8") {
				t.Errorf("filter %+v", f)
			}
		}},
		{"--state without -p for events", ctEvents, "--state CLOSED", func(t *testing.T, r *ctRequest) {
			if f := r.filter; !f.HasAnyState || f.AnyState != (flow.ProtoStates{HasSCTP: true, SCTP: 1}) {
				t.Errorf("filter %+v", f)
			}
		}},
		{"--state with -p stays the protocol's state", ctList, "-p sctp --state ESTABLISHED", func(t *testing.T, r *ctRequest) {
			if f := r.filter; !f.HasState || f.State != 4 || f.HasAnyState {
				t.Errorf("filter %+v", f)
			}
		}},
		{"insert without -t: the kernel's default", ctCreate, "--proto tcp --src 192.168.1.100 --dst 8.8.8.8 --sport 12345 --dport 80 --state ESTABLISHED", func(t *testing.T, r *ctRequest) {
			if !r.defaultTimeout || r.flow.TCP.State != flow.TCPEstablished || !r.flow.Has(flow.AttrTimeout) {
				t.Errorf("request %+v", r)
			}
		}},
		{"insert with -t", ctCreate, "-p udp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 -t 0", func(t *testing.T, r *ctRequest) {
			if r.defaultTimeout || r.flow.Timeout != 0 {
				t.Errorf("request %+v", r)
			}
		}},
		{"delete ID", ctDelete, "3979507854", func(t *testing.T, r *ctRequest) {
			if f := r.filter; !f.HasID || f.ID != 3979507854 {
				t.Errorf("filter %+v", f)
			}
		}},
		{"delete ID is decimal, not octal", ctDelete, "-o id 0017", func(t *testing.T, r *ctRequest) {
			if f := r.filter; !f.HasID || f.ID != 17 {
				t.Errorf("filter %+v", f)
			}
		}},
		{"update ID", ctUpdate, "5 --timeout 600", func(t *testing.T, r *ctRequest) {
			if !r.filter.HasID || r.filter.ID != 5 || r.flow.Timeout != 600 {
				t.Errorf("request %+v", r)
			}
		}},
		{"get ID", ctGet, "7", func(t *testing.T, r *ctRequest) {
			if !r.byID || !r.filter.HasID || r.filter.ID != 7 {
				t.Errorf("request %+v", r)
			}
		}},
		{"get --id alone", ctGet, "--id 0x10 -o extended", func(t *testing.T, r *ctRequest) {
			if !r.byID || r.filter.ID != 16 || !r.output.text.Extended {
				t.Errorf("request %+v", r)
			}
		}},
		{"a NAT option still takes the number after it", ctDelete, "--src-nat 1.2.3.4", func(t *testing.T, r *ctRequest) {
			if r.filter.HasID || r.filter.SrcNAT.Addr != addr("1.2.3.4") {
				t.Errorf("filter %+v", r.filter)
			}
		}},
		{"events", ctEvents, "-e NEW,destroy -b 1000 --count 3 -o timestamp", func(t *testing.T, r *ctRequest) {
			want := kernel.WatchOptions{New: true, Destroy: true, ReadBuffer: 1000}
			if !reflect.DeepEqual(r.watch, want) || r.count != 3 || !r.output.timestamp {
				t.Errorf("watch %+v count %d", r.watch, r.count)
			}
		}},
		{"flush", ctFlush, "-f ipv6 --yes --netns fw-a", func(t *testing.T, r *ctRequest) {
			if r.family != flow.IPv6 || !r.yes || r.netns != "fw-a" {
				t.Errorf("request %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseArgs(tt.cmd, strings.Fields(tt.args)...)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.cmd, tt.args, err)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestTableParseBad(t *testing.T) {
	tests := []struct {
		cmd  ctCmd
		args string
		want string // in the error
	}{
		{ctList, "--bogus", "unknown flag: --bogus"},
		{ctList, "--count 1", "unknown flag: --count"},
		{ctList, "--yes", "unknown flag: --yes"},
		{ctList, "-t 5", "--timeout cannot be used with list"},
		{ctList, "--id 5", "--id cannot be used with list"},
		{ctList, "-j -n", "--any-nat cannot be combined with --src-nat or --dst-nat"},
		{ctList, "--any-nat 1.1.1.1 --dst-nat 1.1.1.1", "--any-nat cannot be combined"},
		{ctList, "--sport 1", "--sport needs -p with a protocol that has ports"},
		{ctList, "-p udp --state ESTABLISHED", "--state needs -p tcp, sctp or dccp"},
		{ctList, "-p tcp --icmp-type 8", "--icmp-type needs -p icmp or -p icmpv6"},
		{ctList, "-p tcp --orig-vtag 1", "--orig-vtag needs -p sctp"},
		{ctList, "--srckey 1", "--srckey needs -p gre"},
		{ctList, "-p tcp --state BOGUS", "unknown TCP state"},
		{ctList, "-p udp --state ESTABLISHED", "--state needs -p tcp, sctp or dccp"},
		{ctList, "-p tcp --state COOKIE_WAIT", `unknown TCP state "COOKIE_WAIT"`},
		{ctList, "--state BOGUS", `--state: unknown state "BOGUS" (want a TCP state: NONE, SYN_SENT, `},
		{ctList, "--state MAX", "an SCTP state: NONE, CLOSED, "},
		{ctList, "--state ESTABLISHED 5", `unexpected argument "5"`},
		{ctEvents, "--state ESTABLISHED,CLOSED", "unknown state"},
		{ctUpdate, "--state ESTABLISHED -m 1", "--state needs -p tcp"},
		{ctList, "-p foo", `-p "foo": unknown protocol`},
		{ctList, "-p 256", "unknown protocol"},
		{ctList, "-p tcp --sport 65536", `--sport "65536": want a port (0-65535)`},
		{ctList, "-s 1.1.1.1 -d ::1", "mismatched address family"},
		{ctList, "-f ipv6 -s 1.1.1.1", "mismatched address family"},
		{ctList, "-s 1.1.1.1 --src-nat ::1", "mismatched address family"},
		{ctList, "-p icmp -f ipv6", "does not exist in family ipv6"},
		{ctList, "-f ipv5", "--family \"ipv5\": want ipv4 or ipv6"},
		{ctList, "-s 1.1.1.1/33", "invalid address or network"},
		{ctList, "-s [::1]", "invalid address or network"},
		{ctList, "-r 1.1.1.0/24", "want an address, not a network"},
		{ctList, "--mask-src 255.255.255.0", "--mask-src needs --src"},
		{ctList, "-s 1.1.1.0 --mask-src 255.0.255.0", "only contiguous netmasks"},
		{ctList, "-s 1.1.1.0 --mask-src ffff::", "mismatched address family"},
		{ctList, "-o save,id", "-o save cannot be combined with -o id"},
		{ctList, "-o json,extended", "-o json cannot be combined"},
		{ctList, "-o xml", "-o xml is not supported"},
		{ctList, "-o bogus", "unknown output format"},
		{ctList, "-o timestamp", "-o timestamp applies to table events only"},
		{ctList, "-m 1/2/3", "--mark"},
		{ctList, "-m foo", "--mark"},
		{ctList, "-w 70000", `--zone "70000": want a zone (0-65535)`},
		{ctList, "-u FOO", "unknown status"},
		{ctList, "extra", `unexpected argument "extra"`},
		{ctList, "-n 1.2.3.4 5.6.7.8", `unexpected argument "5.6.7.8"`},
		{ctList, "-p tcp 1.2.3.4", `unexpected argument "1.2.3.4"`},
		{ctList, "--dst-nat 3.3.3.3:", "no port after ':'"},
		{ctList, "--dst-nat [2001:db8::3]", "brackets are only for an address with a port"},
		{ctGet, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 10 --dport 20 -w 3", "--zone cannot be used with get"},
		{ctGet, "-p tcp -s 1.1.1.1 -d 2.2.2.2", "needs --sport and --dport"},
		{ctGet, "-s 1.1.1.1 -d 2.2.2.2", "get needs -p PROTO"},
		{ctGet, "-p tcp -s 1.1.1.1 --sport 1 --dport 2", "needs --src and --dst (or --reply-src and --reply-dst)"},
		{ctGet, "-p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 8", "needs --icmp-type and --icmp-code"},
		{ctGet, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 --state ESTABLISHED", "--state cannot be used with get"},
		{ctCreate, "-s 1.1.1.1 -d 2.2.2.2 --sport 10 --dport 20 --state LISTEN", "--sport needs -p"},
		{ctCreate, "-s 1.1.1.1 -d 2.2.2.2 --state LISTEN", "--state needs -p tcp, sctp or dccp"},
		{ctCreate, "-s 1.1.1.1 -d 2.2.2.2 -t 5", "insert needs -p PROTO"},
		{ctCreate, "-p tcp -s 1.1.1.1 --sport 10 --dport 20 --state LISTEN -t 5", "needs --src and --dst"},
		{ctCreate, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 10 --state LISTEN -t 5", "needs --sport and --dport"},
		{ctCreate, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 10 --dport 20 -t 5", "insert -p tcp needs --state STATE"},
		{ctCreate, "-p sctp -s 1.1.1.1 -d 2.2.2.2 --sport 10 --dport 20 --state ESTABLISHED -t 5", "needs --orig-vtag and --reply-vtag"},
		{ctCreate, "-p gre -s 1.1.1.1 -d 2.2.2.2 -t 5", "needs --srckey and --dstkey"},
		{ctCreate, "-p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 8 -t 5", "needs --icmp-type and --icmp-code"},
		{ctCreate, "-p icmp -s ::1 -d ::2 --icmp-type 8 --icmp-code 0 -t 5", "-p icmp does not exist in family ipv6"},
		{ctCreate, "-p 2 -s 1.1.1.0/24 -d 2.2.2.2 -t 5", "insert needs an address, not a network"},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t 5 --src-nat", "--src-nat needs an address"},
		{ctCreate, "-p icmp -s 1.1.1.1 -d 2.2.2.2 --icmp-type 8 --icmp-code 0 -t 5 --src-nat 3.3.3.3:80", "a port needs a protocol with ports"},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t 5 -w 1 --orig-zone 2", "an entry has one zone"},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t 5 -f ipv4", "--family cannot be used with insert"},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t 5 -o save", "--output cannot be used with insert"},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t 5 --any-nat 1.1.1.1", "--any-nat cannot be used with insert"},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t -5", `--timeout "-5"`},
		{ctCreate, "-p 2 -s 1.1.1.1 -d 2.2.2.2 -t 5 -u UNREPLIED", "unknown status"},
		{ctUpdate, "-s 1.1.1.1", "table update needs something to set"},
		{ctUpdate, "-s 1.1.1.1 -w 3 -m 1", "--zone cannot be used with update"},
		{ctUpdate, "-j -m 1", "--any-nat cannot be used with update"},
		{ctUpdate, "-p sctp --state ESTABLISHED -m 1", "can set the state of TCP entries only"},
		{ctUpdate, "1.2.3.4 -m 1", "update selects entries with options, such as --id ID"},
		{ctDelete, "-j", "--any-nat cannot be used with delete"},
		{ctDelete, "1.2.3.9678", "delete selects entries with options, such as --id ID or -s IP, or by a decimal ID alone"},
		{ctDelete, "0x10", `unexpected argument "0x10"`},
		{ctDelete, "3979507854 --id 5", `unexpected argument "3979507854": the entry id is given already`},
		{ctDelete, "1 2", `unexpected argument "2": the entry id is given already (--id 1)`},
		{ctDelete, "4294967296", `entry id "4294967296": want a number 0-4294967295`},
		{ctDelete, "-n 5", `--src-nat: NAT "5": invalid IP address`},
		{ctUpdate, "5", "table update needs something to set"},
		{ctGet, "7 -p tcp", "get needs --src and --dst"},
		{ctGet, "-p tcp -s 1.1.1.1 -d 2.2.2.2 --sport 1 --dport 2 7 8", `unexpected argument "8"`},
		{ctEvents, "-t 5", "--timeout cannot be used with events"},
		{ctEvents, "-e FOO", `unknown event "FOO"`},
		{ctEvents, "-b 0", "--buffer-size"},
		{ctEvents, "--count -1", "--count"},
		{ctFlush, "-s 1.1.1.1", "--src cannot be used with flush"},
		{ctFlush, "--yes=maybe", "--yes"},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.String()+" "+tt.args, func(t *testing.T) {
			_, err := parseArgs(tt.cmd, strings.Fields(tt.args)...)
			if err == nil {
				t.Fatalf("%s %s: no error, want %q", tt.cmd, tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s %s: error %q, want it to contain %q", tt.cmd, tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q has more than one line", err)
			}
			var ue *usageError
			if !strings.HasPrefix(err.Error(), "unknown flag") && !errors.As(err, &ue) {
				t.Errorf("error %q (%T) is not a usage error", err, err)
			}
		})
	}
}

func TestUpdateOf(t *testing.T) {
	old := flow.Flow{Mark: 0x1234002a, Timeout: 50, Status: flow.StatusSeenReply | flow.StatusConfirmed,
		Attrs: flow.AttrMark | flow.AttrTimeout | flow.AttrStatus}
	old.Orig.Proto = flow.ProtoUDP
	tests := []struct {
		args    string
		mark    uint32
		changed bool
	}{
		{"-s 1.1.1.1 -m 0/0xffff0000", 0x2a, true},
		{"-s 1.1.1.1 -m 0x1234002a", 0x1234002a, false},
		{"-s 1.1.1.1 -m 42/0xffff", 0x1234002a, false},
		{"-s 1.1.1.1 -m 0xf/0", 0x12340025, true},
		{"-s 1.1.1.1 -m 1", 1, true},
		{"-s 1.1.1.1 -u SEEN_REPLY", 0x1234002a, false},
		{"-s 1.1.1.1 -u ASSURED", 0x1234002a, true},
		{"-s 1.1.1.1 -t 50", 0x1234002a, false},
		{"-s 1.1.1.1 -t 51", 0x1234002a, true},
	}
	for _, tt := range tests {
		r, err := parseArgs(ctUpdate, strings.Fields(tt.args)...)
		if err != nil {
			t.Fatal(err)
		}
		nf, u, changed := r.updateOf(&old)
		if nf.Mark != tt.mark || changed != tt.changed {
			t.Errorf("%s: mark %#x changed %v, want %#x %v", tt.args, nf.Mark, changed, tt.mark, tt.changed)
		}
		if strings.Contains(tt.args, "-m") != u.Mark || u.MarkMask != 0 {
			t.Errorf("%s: update fields %+v: want the whole new mark sent", tt.args, u)
		}
		if strings.Contains(tt.args, "-u ASSURED") && nf.Status != old.Status|flow.StatusAssured {
			t.Errorf("%s: status %v", tt.args, nf.Status)
		}
	}
}

func TestSplitLoadLine(t *testing.T) {
	for in, want := range map[string][]string{
		"-I -s 1.1.1.1  -d\t2.2.2.2": {"-I", "-s", "1.1.1.1", "-d", "2.2.2.2"},
		`-D "-s" "1.1.1.1"`:          {"-D", "-s", "1.1.1.1"},
		`-A "a b" "c\"d"`:            {"-A", "a b", `c"d`},
		"":                           nil,
	} {
		if got := splitLoadLine(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitLoadLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLoadLine(t *testing.T) {
	good := map[string]ctCmd{
		"-I -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2 --state LISTEN -t 5": ctCreate,
		"-s 1.1.1.1 -d 2.2.2.2 -p udp --sport 1 --dport 2 -t 5 -A":                ctAdd,
		"--add -s 1.1.1.1 -d 2.2.2.2 -p 2 -t 5 -m 5/0xff":                         ctAdd,
		"-U -s 1.1.1.1 -m 1":      ctUpdate,
		"-D -w 123":               ctDelete,
		"-D conntrack -s 1.1.1.1": ctDelete,
		"-F":                      ctFlush,
		"-F -f ipv6":              ctFlush,
		"-D -s 1.1.1.1 -o save":   ctDelete,
	}
	for line, want := range good {
		r, err := parseLoadLine(splitLoadLine(line))
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if r.cmd != want {
			t.Errorf("%q: command %v, want %v", line, r.cmd, want)
		}
		if r.cmd == ctAdd && r.given&optMark != 0 && r.markMask != 0xffffffff {
			t.Errorf("%q: -A sets the mark whole, got mask %#x", line, r.markMask)
		}
	}
	bad := map[string]string{
		"-s 1.1.1.1":                    "no command",
		"-L":                            "-L cannot be used in a load file",
		"-G -s 1.1.1.1":                 "-G cannot be used in a load file",
		"-I -D -s 1.1.1.1":              "more than one command",
		"-D expect":                     `table "expect" is not supported`,
		"-D --netns x -s 1.1.1.1":       "unknown flag: --netns",
		"-I -s 1.1.1.1 -d 2.2.2.2 -p 2": "needs -t SECONDS",
		"-D -w 10-s 1.1.1.1":            `unexpected argument "1.1.1.1"`,
		"-D -w 10-s":                    `--zone "10-s"`,
		"-U -w 3 -m 1":                  "--zone cannot be used with update",
		"-D -h":                         "-h cannot be used in a load file",
		"-D --help":                     "--help cannot be used in a load file",

		// ctsync's command-line extensions stay out of load files, which
		// follow conntrack -R.
		"-I -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2 --state LISTEN": "insert needs -t SECONDS",
		"-D --state ESTABLISHED":   "--state needs -p tcp, sctp or dccp",
		"-D 3979507854":            `table "3979507854" is not supported`,
		"-D -s 1.1.1.1 3979507854": `unexpected argument "3979507854"`,
		"-U -m 1 5":                `unexpected argument "5"`,
	}
	for line, want := range bad {
		_, err := parseLoadLine(splitLoadLine(line))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", line, err, want)
		}
	}
}

func TestReadLoadFile(t *testing.T) {
	in := "# comment\n\n   \n\t\t\n  # indented comment\n-I -s 1.1.1.1 -d 2.2.2.2 -p 2 -t 5\n-D -w 123\n"
	lines, err := readLoadFile(strings.NewReader(in), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].num != 6 || lines[1].num != 7 {
		t.Errorf("lines %+v, want lines 6 and 7", lines)
	}
	_, err = readLoadFile(strings.NewReader("-D -w 1\n\n-I -s 1.1.1.1\n"), "f.txt")
	var ue *usageError
	if err == nil || !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "f.txt line 3: ") {
		t.Errorf("bad line: error %v, want a usage error naming f.txt line 3", err)
	}
}
