package flow

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// Fuzz targets for the CLI parsers of conntrack(8)'s options; the NAT and
// mark parsers have theirs in filter_test.go. Each checks, beyond not
// panicking, that what a parser accepts formats back to text it reads as
// the same value.

func FuzzParseProto(f *testing.F) {
	for _, s := range []string{"tcp", "TCP", "udp", "icmp", "icmpv6", "ipv6-icmp", "sctp", "dccp", "gre",
		"udplite", "igmp", "esp", "vrrp", "0", "6", "255", "256", "-1", "+6", "06", "", "tcp ", "unknown"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProto(s)
		if err != nil {
			return
		}
		if name := ProtoName(p); name != "unknown" {
			if again, err := ParseProto(name); err != nil || again != p {
				t.Fatalf("ParseProto(%q) = %d, named %q, which reads back as %d, %v", s, p, name, again, err)
			}
		}
		num := strconv.Itoa(int(p))
		if again, err := ParseProto(num); err != nil || again != p {
			t.Fatalf("ParseProto(%q) = %d; %q reads back as %d, %v", s, p, num, again, err)
		}
	})
}

// statusText formats a status set as ParseStatus reads it.
func statusText(s Status) string {
	if s == 0 {
		return "UNSET"
	}
	return strings.Join(s.Names(), ",")
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"ASSURED", "SEEN_REPLY,ASSURED", "assured , seen_reply", "UNSET", "EXPECTED,FIXED_TIMEOUT",
		"OFFLOAD,HW_OFFLOAD", "!ASSURED", "UNREPLIED", "UNREPLIED,!ASSURED", "ASSURED,!ASSURED", "", ",", "CONFIRMED", "!"} {
		f.Add(s)
	}
	var settable Status
	for _, n := range statusNames {
		settable |= n.bit
	}
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := ParseStatus(s); err == nil {
			if st&^settable != 0 {
				t.Fatalf("ParseStatus(%q) = %#x: bits -u cannot name", s, uint32(st))
			}
			if again, err := ParseStatus(statusText(st)); err != nil || again != st {
				t.Fatalf("ParseStatus(%q) = %#x; %q reads back as %#x, %v", s, uint32(st), statusText(st), uint32(again), err)
			}
		}
		set, unset, err := ParseStatusFilter(s)
		if err != nil {
			if set != 0 || unset != 0 {
				t.Fatalf("ParseStatusFilter(%q) failed but returned %#x/%#x", s, uint32(set), uint32(unset))
			}
			return
		}
		if set&unset != 0 || (set|unset)&^settable != 0 {
			t.Fatalf("ParseStatusFilter(%q) = set %#x, unset %#x", s, uint32(set), uint32(unset))
		}
		var parts []string
		if set != 0 {
			parts = append(parts, set.Names()...)
		}
		for _, n := range unset.Names() {
			parts = append(parts, "!"+n)
		}
		canon := strings.Join(parts, ",")
		if canon == "" {
			canon = "UNSET"
		}
		set2, unset2, err := ParseStatusFilter(canon)
		if err != nil || set2 != set || unset2 != unset {
			t.Fatalf("ParseStatusFilter(%q) = %#x/!%#x; %q reads back as %#x/!%#x, %v",
				s, uint32(set), uint32(unset), canon, uint32(set2), uint32(unset2), err)
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"1.1.1.1", "1.1.1.4/24", "10.0.0.0/8", "0.0.0.0/0", "2001:db8::1", "2001:db8::/32",
		"::/0", "::ffff:1.2.3.4", "1.1.1.1/33", "fe80::1%eth0", "[::1]", "1.1.1", "01.1.1.1", "1.1.1.1/", "/24", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			if p.IsValid() {
				t.Fatalf("ParsePrefix(%q) failed but returned %v", s, p)
			}
			return
		}
		if !p.IsValid() || p.Addr().Zone() != "" || p != p.Masked() {
			t.Fatalf("ParsePrefix(%q) = %v: want a valid masked prefix without zone", s, p)
		}
		if !strings.Contains(s, "/") && p.Bits() != p.Addr().BitLen() {
			t.Fatalf("ParsePrefix(%q) = %v: an address must be a host prefix", s, p)
		}
		again, err := ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, which reads back as %v, %v", s, p, again, err)
		}
		if a, err := ParsePrefix(p.Addr().String()); err != nil || a != netip.PrefixFrom(p.Addr(), p.Addr().BitLen()) {
			t.Fatalf("ParsePrefix(%q): the address %v reads back as %v, %v", s, p.Addr(), a, err)
		}
	})
}

// FuzzParseState covers the name parsers of --state (per protocol and
// without -p), --role and -f.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"ESTABLISHED", "established", "SYN_SENT", "SYN_SENT2", "LISTEN", "TIME_WAIT", "NONE",
		"MAX", "IGNORE", "INVALID", "COOKIE_WAIT", "SHUTDOWN_ACK_SENT", "PARTOPEN", "TIMEWAIT", "OPEN",
		"client", "SERVER", "ipv4", "inet6", "6", "", "UNKNOWN"} {
		f.Add(s)
	}
	type table struct {
		parse func(string) (uint8, error)
		name  func(uint8) string
	}
	tables := map[string]table{
		"TCP":  {ParseTCPState, TCPStateName},
		"SCTP": {ParseSCTPState, SCTPStateName},
		"DCCP": {ParseDCCPState, DCCPStateName},
		"role": {ParseDCCPRole, dccpRoleName},
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := map[string]uint8{}
		for what, tb := range tables {
			v, err := tb.parse(s)
			if err != nil {
				continue
			}
			ok[what] = v
			name := tb.name(v)
			if name == "UNKNOWN" {
				t.Fatalf("%s %q parses as %d, which has no name", what, s, v)
			}
			if again, err := tb.parse(name); err != nil || again != v {
				t.Fatalf("%s %q = %d, named %q, which reads back as %d, %v", what, s, v, name, again, err)
			}
		}
		ps, err := ParseAnyState(s)
		if err != nil {
			if ps != (ProtoStates{}) {
				t.Fatalf("ParseAnyState(%q) failed but returned %+v", s, ps)
			}
		}
		tcp, isTCP := ok["TCP"]
		sctp, isSCTP := ok["SCTP"]
		dccp, isDCCP := ok["DCCP"]
		if ps.HasTCP != isTCP || ps.HasSCTP != isSCTP || ps.HasDCCP != isDCCP ||
			isTCP && ps.TCP != tcp || isSCTP && ps.SCTP != sctp || isDCCP && ps.DCCP != dccp {
			t.Fatalf("ParseAnyState(%q) = %+v, %v; the protocols' own parsers say %v", s, ps, err, ok)
		}
		if fam, err := ParseFamily(s); err == nil {
			if again, err := ParseFamily(fam.String()); err != nil || again != fam {
				t.Fatalf("ParseFamily(%q) = %v, which reads back as %v, %v", s, fam, again, err)
			}
		}
	})
}

// dccpRoleName names a DCCP role, the inverse of ParseDCCPRole.
func dccpRoleName(r uint8) string { return stateName(dccpRoles, r) }
