package flow

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Filter selects flows as conntrack(8)'s list, delete, update and event filters
// do (docs/interface.md, "Kernel table"). The zero Filter matches every flow;
// each criterion takes part only when its Has flag is set (for the address
// prefixes: when the prefix is valid). All criteria must hold.
//
// Filter is a plain comparable value; Match does not allocate and does not
// modify the filter, so one Filter may be used by many goroutines at once.
type Filter struct {
	Family Family // -f; FamilyUnspec matches both

	HasProto bool // -p
	Proto    uint8

	// -s, -d, -r, -q: the original source and destination, the reply
	// source and destination. ParsePrefix makes one from an address or a
	// CIDR. The zero Prefix matches any address.
	OrigSrc, OrigDst, ReplySrc, ReplyDst netip.Prefix

	// --sport, --dport, --reply-port-src, --reply-port-dst. Only flows of a
	// protocol with ports (TCP, UDP, UDP-Lite, SCTP, DCCP) match them.
	HasSrcPort, HasDstPort, HasReplySrcPort, HasReplyDstPort bool
	SrcPort, DstPort, ReplySrcPort, ReplyDstPort             uint16

	// --state: a TCP, SCTP or DCCP state number (see ParseTCPState and
	// friends), compared with the state of the flow's own protocol. Use it
	// with Proto.
	HasState bool
	State    uint8

	// --state NAME without -p, a ctsync extension (conntrack(8) wants -p):
	// the name resolved in each protocol's own state table (see
	// ParseAnyState), so a flow of any protocol matches when its state has
	// that name. Not combined with HasState.
	HasAnyState bool
	AnyState    ProtoStates

	// -u: every bit of StatusSet must be set and every bit of StatusUnset
	// clear (see ParseStatusFilter).
	HasStatus   bool
	StatusSet   Status
	StatusUnset Status

	// -m VALUE/MASK: the flow's mark AND MarkMask equals Mark (see ParseMark).
	HasMark  bool
	Mark     uint32
	MarkMask uint32

	// -w, --orig-zone, --reply-zone. conntrack compares the zone the kernel
	// reports for both directions, the original tuple's and the reply
	// tuple's; a flow in zone 5 for both directions has orig and reply
	// zone 0, a flow with --orig-zone 5 has zone 0.
	HasZone, HasOrigZone, HasReplyZone bool
	Zone, OrigZone, ReplyZone          uint16

	// -n/--src-nat, -g/--dst-nat, -j/--any-nat; see NATSpec. With both
	// SrcNAT and DstNAT a flow must match both; AnyNAT matches either way
	// and is not combined with the other two.
	HasSrcNAT, HasDstNAT, HasAnyNAT bool
	SrcNAT, DstNAT, AnyNAT          NATSpec

	// --icmp-type, --icmp-code, --icmp-id (ICMP and ICMPv6 flows, original
	// tuple).
	HasICMPType, HasICMPCode, HasICMPID bool
	ICMPType, ICMPCode                  uint8
	ICMPID                              uint16

	// --orig-vtag, --reply-vtag (SCTP flows).
	HasOrigVTag, HasReplyVTag bool
	OrigVTag, ReplyVTag       uint32

	HasID bool // --id
	ID    uint32

	// -l: every label bit set in Labels must be set in the flow.
	HasLabels bool
	Labels    Labels
}

// Match reports whether the flow passes every criterion of the filter.
func (f *Filter) Match(fl *Flow) bool {
	return f.matchMeta(fl) && f.matchZones(fl) && f.matchL4(fl) &&
		f.matchLabels(fl) && f.matchAddrs(fl) && f.matchNAT(fl)
}

// matchMeta matches the family, the protocol, the id, the mark and the
// status bits.
func (f *Filter) matchMeta(fl *Flow) bool {
	if f.Family != FamilyUnspec && fl.Family() != f.Family {
		return false
	}
	if f.HasProto && fl.Proto() != f.Proto {
		return false
	}
	if f.HasID && (!fl.Has(AttrID) || fl.ID != f.ID) {
		return false
	}
	if f.HasMark && (!fl.Has(AttrMark) || fl.Mark&f.MarkMask != f.Mark) {
		return false
	}
	return !f.HasStatus || fl.Has(AttrStatus) &&
		fl.Status&f.StatusSet == f.StatusSet && fl.Status&f.StatusUnset == 0
}

// matchZones matches the zone of each direction: a flow's zone counts for
// the direction it applies to, and as zone 0 for the others.
func (f *Filter) matchZones(fl *Flow) bool {
	if !f.HasZone && !f.HasOrigZone && !f.HasReplyZone {
		return true
	}
	var both, orig, reply uint16
	switch fl.ZoneDir {
	case ZoneBoth:
		both = fl.Zone
	case ZoneOrig:
		orig = fl.Zone
	case ZoneReply:
		reply = fl.Zone
	}
	return !(f.HasZone && both != f.Zone || f.HasOrigZone && orig != f.OrigZone ||
		f.HasReplyZone && reply != f.ReplyZone)
}

// matchL4 matches the protocol fields: ports, states, ICMP type, code and
// id, SCTP verification tags. A port or ICMP filter matches no flow of a
// protocol without them.
func (f *Filter) matchL4(fl *Flow) bool {
	proto := fl.Proto()
	if f.HasSrcPort || f.HasDstPort || f.HasReplySrcPort || f.HasReplyDstPort {
		if !HasPorts(proto) ||
			f.HasSrcPort && fl.Orig.SrcPort != f.SrcPort ||
			f.HasDstPort && fl.Orig.DstPort != f.DstPort ||
			f.HasReplySrcPort && fl.Reply.SrcPort != f.ReplySrcPort ||
			f.HasReplyDstPort && fl.Reply.DstPort != f.ReplyDstPort {
			return false
		}
	}
	if f.HasState && !f.matchState(fl) {
		return false
	}
	if f.HasAnyState && !f.AnyState.match(fl) {
		return false
	}

	if f.HasICMPType || f.HasICMPCode || f.HasICMPID {
		if !IsICMP(proto) ||
			f.HasICMPType && fl.Orig.ICMPType != f.ICMPType ||
			f.HasICMPCode && fl.Orig.ICMPCode != f.ICMPCode ||
			f.HasICMPID && fl.Orig.ICMPID != f.ICMPID {
			return false
		}
	}
	if f.HasOrigVTag || f.HasReplyVTag {
		if proto != ProtoSCTP || !fl.Has(AttrSCTP) ||
			f.HasOrigVTag && fl.SCTP.VTagOrig != f.OrigVTag ||
			f.HasReplyVTag && fl.SCTP.VTagReply != f.ReplyVTag {
			return false
		}
	}
	return true
}

// matchLabels matches when the flow carries every label bit of the filter.
func (f *Filter) matchLabels(fl *Flow) bool {
	if !f.HasLabels {
		return true
	}
	if !fl.Has(AttrLabels) {
		return false
	}
	for i := range f.Labels {
		if fl.Labels[i]&f.Labels[i] != f.Labels[i] {
			return false
		}
	}
	return true
}

// matchAddrs matches the four addresses against their prefixes.
func (f *Filter) matchAddrs(fl *Flow) bool {
	return !(f.OrigSrc.IsValid() && !f.OrigSrc.Contains(fl.Orig.Src) ||
		f.OrigDst.IsValid() && !f.OrigDst.Contains(fl.Orig.Dst) ||
		f.ReplySrc.IsValid() && !f.ReplySrc.Contains(fl.Reply.Src) ||
		f.ReplyDst.IsValid() && !f.ReplyDst.Contains(fl.Reply.Dst))
}

// matchNAT matches the NAT rules: any NAT, or source and destination NAT.
func (f *Filter) matchNAT(fl *Flow) bool {
	switch {
	case f.HasAnyNAT:
		return f.AnyNAT.matchSrc(fl) || f.AnyNAT.matchDst(fl)
	case f.HasSrcNAT && !f.SrcNAT.matchSrc(fl):
		return false
	case f.HasDstNAT && !f.DstNAT.matchDst(fl):
		return false
	}
	return true
}

func (f *Filter) matchState(fl *Flow) bool {
	switch fl.Proto() {
	case ProtoTCP:
		return fl.Has(AttrTCP) && fl.TCP.State == f.State
	case ProtoSCTP:
		return fl.Has(AttrSCTP) && fl.SCTP.State == f.State
	case ProtoDCCP:
		return fl.Has(AttrDCCP) && fl.DCCP.State == f.State
	}
	return false
}

// ProtoStates is one state name resolved in the state table of each
// protocol that has states: what --state NAME means without -p (see
// ParseAnyState). A Has flag says whether that protocol has a state of the
// name, and the number beside it is that state. It is a plain comparable
// value.
type ProtoStates struct {
	HasTCP, HasSCTP, HasDCCP bool
	TCP, SCTP, DCCP          uint8
}

// ParseAnyState parses the name of --state given without -p: a TCP, SCTP or
// DCCP state name (case-insensitive), resolved with each protocol's own table
// (ParseTCPState and friends). ESTABLISHED, for instance, is both TCP's and
// SCTP's; NONE is every protocol's. A name no protocol has is an error that
// lists the valid names.
func ParseAnyState(s string) (ProtoStates, error) {
	var ps ProtoStates
	var err error
	ps.TCP, err = ParseTCPState(s)
	ps.HasTCP = err == nil
	ps.SCTP, err = ParseSCTPState(s)
	ps.HasSCTP = err == nil
	ps.DCCP, err = ParseDCCPState(s)
	ps.HasDCCP = err == nil
	if !ps.HasTCP && !ps.HasSCTP && !ps.HasDCCP {
		return ProtoStates{}, fmt.Errorf("unknown state %q (want a TCP state: %s; an SCTP state: %s; or a DCCP state: %s)",
			s, validStates(tcpStates, "LISTEN"), validStates(sctpStates), validStates(dccpStates))
	}
	return ps, nil
}

// has reports whether the protocol has a state of the name.
func (s *ProtoStates) has(proto uint8) bool {
	switch proto {
	case ProtoTCP:
		return s.HasTCP
	case ProtoSCTP:
		return s.HasSCTP
	case ProtoDCCP:
		return s.HasDCCP
	}
	return false
}

func (s *ProtoStates) match(fl *Flow) bool {
	switch fl.Proto() {
	case ProtoTCP:
		return s.HasTCP && fl.Has(AttrTCP) && fl.TCP.State == s.TCP
	case ProtoSCTP:
		return s.HasSCTP && fl.Has(AttrSCTP) && fl.SCTP.State == s.SCTP
	case ProtoDCCP:
		return s.HasDCCP && fl.Has(AttrDCCP) && fl.DCCP.State == s.DCCP
	}
	return false
}

// Validate reports combinations conntrack(8) refuses: --any-nat with
// --src-nat or --dst-nat, protocol options without a protocol that has them,
// status bits both required and excluded, prefixes of different families.
func (f *Filter) Validate() error {
	var errs []error
	if f.HasAnyNAT && (f.HasSrcNAT || f.HasDstNAT) {
		errs = append(errs, errors.New("--any-nat cannot be combined with --src-nat or --dst-nat"))
	}
	if f.HasSrcPort || f.HasDstPort || f.HasReplySrcPort || f.HasReplyDstPort {
		if !f.HasProto || !HasPorts(f.Proto) {
			errs = append(errs, errors.New("port filters need -p with a protocol that has ports (tcp, udp, udplite, sctp, dccp)"))
		}
	}
	if f.HasState && (!f.HasProto || f.Proto != ProtoTCP && f.Proto != ProtoSCTP && f.Proto != ProtoDCCP) {
		errs = append(errs, errors.New("--state needs -p tcp, sctp or dccp"))
	}
	if f.HasAnyState {
		switch {
		case f.HasState:
			errs = append(errs, errors.New("--state: a state by name (without -p) and a protocol's state (with -p) cannot be combined"))
		case !f.AnyState.HasTCP && !f.AnyState.HasSCTP && !f.AnyState.HasDCCP:
			errs = append(errs, errors.New("--state: the state by name is a state of no protocol"))
		case f.HasProto && !f.AnyState.has(f.Proto):
			errs = append(errs, errors.New("--state needs -p tcp, sctp or dccp, one with a state of that name"))
		}
	}
	if (f.HasICMPType || f.HasICMPCode || f.HasICMPID) && (!f.HasProto || !IsICMP(f.Proto)) {
		errs = append(errs, errors.New("ICMP filters need -p icmp or -p icmpv6"))
	}
	if (f.HasOrigVTag || f.HasReplyVTag) && (!f.HasProto || f.Proto != ProtoSCTP) {
		errs = append(errs, errors.New("--orig-vtag and --reply-vtag need -p sctp"))
	}
	if f.HasStatus && f.StatusSet&f.StatusUnset != 0 {
		errs = append(errs, errors.New("status filter wants the same bit both set and unset"))
	}
	if f.HasProto && f.Family == IPv4 && f.Proto == ProtoICMPv6 ||
		f.HasProto && f.Family == IPv6 && f.Proto == ProtoICMP {
		errs = append(errs, fmt.Errorf("protocol %s does not exist in family %s", ProtoName(f.Proto), f.Family))
	}
	fam := f.Family
	for _, a := range []netip.Addr{f.OrigSrc.Addr(), f.OrigDst.Addr(), f.ReplySrc.Addr(), f.ReplyDst.Addr(),
		f.SrcNAT.Addr, f.DstNAT.Addr, f.AnyNAT.Addr} {
		if !a.IsValid() {
			continue
		}
		if fam == FamilyUnspec {
			fam = FamilyOf(a)
		} else if FamilyOf(a) != fam {
			errs = append(errs, errors.New("mismatched address family: IPv4 and IPv6 in one filter"))
			break
		}
	}
	return errors.Join(errs...)
}

// NATSpec is the optional argument of conntrack's -n/--src-nat,
// -g/--dst-nat and -j/--any-nat: IP, IP:PORT, or [IPv6]:PORT.
//
// In a Filter it matches as conntrack's filter does. A flow is source-NATed
// when its reply destination differs from its original source (the address
// is mapped) or its reply destination port differs from its original source
// port (the port is mapped), and, when the flow carries its status, the
// kernel marked it SRC_NAT_DONE; destination NAT likewise with the reply
// source. The zero NATSpec matches any NATed flow; an address matches flows
// whose address is mapped to it, a port flows whose port is mapped to it,
// both flows where both hold. A port mapping alone (same address) therefore
// does not match an address, as with conntrack.
type NATSpec struct {
	Addr    netip.Addr // invalid when no address was given
	Port    uint16
	HasPort bool
}

// String returns the spec as ParseNATSpec reads it.
func (n NATSpec) String() string {
	switch {
	case !n.Addr.IsValid():
		return ""
	case !n.HasPort:
		return n.Addr.String()
	}
	return netip.AddrPortFrom(n.Addr, n.Port).String()
}

func (n *NATSpec) matchSrc(fl *Flow) bool {
	return n.match(fl.isSNAT(), fl.isSPAT(), fl.Reply.Dst, fl.Reply.DstPort)
}

func (n *NATSpec) matchDst(fl *Flow) bool {
	return n.match(fl.isDNAT(), fl.isDPAT(), fl.Reply.Src, fl.Reply.SrcPort)
}

func (n *NATSpec) match(addrMapped, portMapped bool, addr netip.Addr, port uint16) bool {
	switch {
	case n.Addr.IsValid() && n.HasPort:
		return addrMapped && addr == n.Addr && portMapped && port == n.Port
	case n.Addr.IsValid():
		return addrMapped && addr == n.Addr
	case n.HasPort:
		return portMapped && port == n.Port
	}
	return addrMapped || portMapped
}

// natDone reports whether the kernel marked the flow as NATed in the given
// way, or, for a flow that does not carry its status, assumes so (as
// libnetfilter_conntrack does).
func (f *Flow) natDone(bit Status) bool { return !f.Has(AttrStatus) || f.Status&bit != 0 }

// isSNAT, isDNAT, isSPAT and isDPAT are libnetfilter_conntrack's
// NFCT_GOPT_IS_SNAT and friends: the address (port) is mapped.
func (f *Flow) isSNAT() bool { return f.natDone(StatusSrcNATDone) && f.Reply.Dst != f.Orig.Src }
func (f *Flow) isDNAT() bool { return f.natDone(StatusDstNATDone) && f.Reply.Src != f.Orig.Dst }
func (f *Flow) isSPAT() bool {
	return f.natDone(StatusSrcNATDone) && f.Reply.DstPort != f.Orig.SrcPort
}
func (f *Flow) isDPAT() bool {
	return f.natDone(StatusDstNATDone) && f.Reply.SrcPort != f.Orig.DstPort
}

// ParseNATSpec parses the argument of -n/--src-nat, -g/--dst-nat and
// -j/--any-nat (and of table insert's --src-nat/--dst-nat): "1.2.3.4",
// "1.2.3.4:80", "2001:db8::1" or "[2001:db8::1]:80", following conntrack's
// rules: an address is required, a port is 0-65535 in decimal digits, an
// IPv6 address with a port goes in brackets and brackets need a port, a
// network (CIDR) or a zone is not an address. It is stricter than conntrack
// in refusing text around the brackets and abbreviated IPv4 forms.
func ParseNATSpec(s string) (NATSpec, error) {
	var host, port string
	hasPort := false
	switch {
	case s == "":
		return NATSpec{}, errors.New("NAT: missing address (want IP, IP:PORT or [IPv6]:PORT)")
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		switch {
		case end < 0:
			return NATSpec{}, fmt.Errorf("NAT %q: no closing ']' around the IPv6 address", s)
		case end == 1:
			return NATSpec{}, fmt.Errorf("NAT %q: no IPv6 address between the brackets", s)
		case end == len(s)-1:
			return NATSpec{}, fmt.Errorf("NAT %q: brackets are only for an address with a port, write [ADDR]:PORT or the bare address", s)
		case s[end+1] != ':':
			return NATSpec{}, fmt.Errorf("NAT %q: want ':' and a port after ']'", s)
		}
		host, port, hasPort = s[1:end], s[end+2:], true
	case strings.ContainsAny(s, "[]"):
		return NATSpec{}, fmt.Errorf("NAT %q: a bracketed address must start the argument, as in [2001:db8::1]:80", s)
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		host, port, hasPort = s[:i], s[i+1:], true
		if host == "" {
			return NATSpec{}, fmt.Errorf("NAT %q: missing address before the port", s)
		}
	default:
		host = s
	}
	if strings.IndexByte(host, '/') >= 0 {
		return NATSpec{}, fmt.Errorf("NAT %q: CIDR notation is not allowed, give one address", s)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return NATSpec{}, fmt.Errorf("NAT %q: invalid IP address %q", s, host)
	}
	if hasPort && !addr.Is4() && s[0] != '[' {
		return NATSpec{}, fmt.Errorf("NAT %q: invalid IP address %q", s, host)
	}
	spec := NATSpec{Addr: addr}
	if hasPort {
		p, err := parsePort(port)
		if err != nil {
			return NATSpec{}, fmt.Errorf("NAT %q: %w", s, err)
		}
		spec.Port, spec.HasPort = p, true
	}
	return spec, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("no port after ':'")
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid port %q (want 0-65535)", s)
		}
		v = v*10 + int(c-'0')
		if v > 65535 {
			return 0, fmt.Errorf("invalid port %q (want 0-65535)", s)
		}
	}
	return uint16(v), nil
}

// ParseMark parses -m/--mark's VALUE[/MASK]: each a decimal or 0x-prefixed
// hexadecimal 32-bit number; the mask defaults to 0xffffffff. In a filter a
// flow matches when mark&mask == value; in an update the new mark is
// (old &^ mask) ^ value. conntrack would read a number with a leading zero as
// octal; ParseMark refuses it rather than guess.
func ParseMark(s string) (value, mask uint32, err error) {
	v, m, hasMask := strings.Cut(s, "/")
	value, err = parseU32(v)
	if err != nil {
		return 0, 0, fmt.Errorf("mark %q: %w", s, err)
	}
	mask = 0xffffffff
	if hasMask {
		if mask, err = parseU32(m); err != nil {
			return 0, 0, fmt.Errorf("mark %q: mask: %w", s, err)
		}
	}
	return value, mask, nil
}

func parseU32(s string) (uint32, error) {
	base, digits := 10, s
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		base, digits = 16, s[2:]
	}
	switch {
	case digits == "":
		return 0, errors.New("want a number (decimal or 0x hex)")
	case base == 10 && len(digits) > 1 && digits[0] == '0':
		return 0, fmt.Errorf("%q has a leading zero: write it in decimal without it or in hex with 0x", s)
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !('0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return 0, fmt.Errorf("%q is not a number (want decimal or 0x hex)", s)
		}
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, fmt.Errorf("%q does not fit in 32 bits", s)
	}
	return uint32(v), nil
}

// ParsePrefix parses an address filter of -s, -d, -r and -q: an IPv4 or IPv6
// address ("1.1.1.1", a /32 or /128) or a CIDR network. A CIDR whose address
// has host bits set ("1.1.1.4/24") is taken as its network (1.1.1.0/24), as
// conntrack does. Zones and brackets are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid address or network %q (want IP or IP/BITS)", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address or network %q (want IP or IP/BITS)", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseStatusFilter parses -u as a list, list and event filter: a
// comma-separated list of EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT,
// OFFLOAD and HW_OFFLOAD (the bit must be set), the same names after '!'
// (the bit must be clear), UNREPLIED (SEEN_REPLY must be clear) and UNSET
// (adds nothing: "-u UNSET" alone matches every flow, as conntrack's own
// comparison does; conntrack 1.4.7 passes it to the kernel, which refuses it).
// Names are case-insensitive.
func ParseStatusFilter(s string) (set, unset Status, err error) {
	for _, part := range strings.Split(s, ",") {
		name := strings.ToUpper(strings.TrimSpace(part))
		neg := strings.HasPrefix(name, "!")
		if neg {
			name = name[1:]
		}
		switch name {
		case "UNSET":
			continue
		case "UNREPLIED":
			if neg {
				return 0, 0, fmt.Errorf("status %q: use SEEN_REPLY instead of !UNREPLIED", part)
			}
			unset |= StatusSeenReply
			continue
		}
		bit, ok := statusBit(name)
		if !ok {
			return 0, 0, fmt.Errorf("unknown status %q (want EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT, OFFLOAD, HW_OFFLOAD, UNREPLIED or UNSET, each optionally after '!')", part)
		}
		if neg {
			unset |= bit
		} else {
			set |= bit
		}
	}
	if set&unset != 0 {
		return 0, 0, fmt.Errorf("status %q wants the same bit both set and unset", s)
	}
	return set, unset, nil
}

func statusBit(name string) (Status, bool) {
	for _, n := range statusNames {
		if n.name == name {
			return n.bit, true
		}
	}
	return 0, false
}
