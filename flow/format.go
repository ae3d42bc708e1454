package flow

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// TextOptions selects the variants of conntrack(8)'s default output line.
// The zero value is conntrack -L's plain line.
type TextOptions struct {
	// Event, when set, prefixes the line with the event tag right-aligned
	// in nine columns, as conntrack -E does ("    [NEW] ", " [UPDATE] ",
	// "[DESTROY] "). conntrack -E's own " [USERSPACE] portid=N" suffix is
	// the caller's to add.
	Event EventType
	// Extended adds the address family name and number in front, as
	// conntrack -o extended does.
	Extended bool
	// ID appends id=N when the flow carries its id, as conntrack -o id does.
	ID bool
	// Now is the time delta-time counts to for a flow that has not stopped;
	// the zero value means time.Now().
	Now time.Time
	// LabelNames names connection label bits, indexed by bit number, as
	// connlabel.conf does. When non-nil, labels are printed as conntrack
	// -o labels prints them (named bits only); nil leaves them out, as
	// conntrack's default output does.
	LabelNames []string
}

// Text state names as libnetfilter_conntrack 1.0.9 prints them: it has no
// names for the SCTP heartbeat states and prints NONE for them and for any
// state beyond its tables.
const (
	textTCPStates  = 10 // NONE .. SYN_SENT2
	textSCTPStates = 8  // NONE .. SHUTDOWN_ACK_SENT
	textDCCPStates = 10 // NONE .. INVALID
)

// AppendText appends the flow as conntrack(8) prints it with -L, -G, -D and
// -E, byte for byte as libnetfilter_conntrack formats it: protocol, timeout,
// state, the original tuple, [UNREPLIED], the reply tuple, [ASSURED],
// mark=, zone=, use= and so on. Optional parts appear only when the flow
// carries the attribute (see Attr). No trailing newline is written.
func (f *Flow) AppendText(b []byte, o TextOptions) []byte {
	start := len(b)
	b = appendEventTag(b, o.Event)
	b = f.appendTextHead(b, o.Extended)
	proto := f.Proto()

	b = appendTupleText(b, &f.Orig, proto)
	if f.ZoneDir == ZoneOrig && f.Zone != 0 {
		b = appendFieldU(b, "zone-orig=", uint64(f.Zone))
	}
	if f.Has(AttrCounters) {
		b = appendCounters(b, f.CountersOrig)
	}
	if f.Has(AttrStatus) && f.Status&StatusSeenReply == 0 {
		b = append(b, "[UNREPLIED] "...)
	}

	b = appendTupleText(b, &f.Reply, proto)
	if f.ZoneDir == ZoneReply && f.Zone != 0 {
		b = appendFieldU(b, "zone-reply=", uint64(f.Zone))
	}
	if f.Has(AttrCounters) {
		b = appendCounters(b, f.CountersReply)
	}

	b = f.appendTextStatus(b)
	b = f.appendTextAttrs(b, o)
	if o.LabelNames != nil && f.Has(AttrLabels) {
		b = f.appendTextLabels(b, o.LabelNames)
	}
	if len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// appendEventTag appends conntrack -E's event tag, right-aligned in nine
// columns, or nothing for EventNone.
func appendEventTag(b []byte, ev EventType) []byte {
	switch ev {
	case EventNew:
		b = append(b, "    [NEW] "...)
	case EventUpdate:
		b = append(b, " [UPDATE] "...)
	case EventDestroy:
		b = append(b, "[DESTROY] "...)
	}
	return b
}

// appendTextHead appends what comes before the tuples: the family (with
// -o extended), the protocol, the timeout and the protocol state.
func (f *Flow) appendTextHead(b []byte, extended bool) []byte {
	if extended {
		fam := f.Family()
		b = appendPadded(b, familyName(fam), 8)
		b = appendFieldU(b, " ", uint64(fam))
	}
	proto := f.Proto()
	b = appendPadded(b, ProtoName(proto), 8)
	b = appendFieldU(b, " ", uint64(proto))
	if f.Has(AttrTimeout) {
		b = appendFieldU(b, "", uint64(f.Timeout))
	}

	if f.Has(AttrTCP) {
		b = appendFieldS(b, "", textState(tcpStates, f.TCP.State, textTCPStates))
	}
	if f.Has(AttrSCTP) {
		b = appendFieldS(b, "", textState(sctpStates, f.SCTP.State, textSCTPStates))
	}
	if f.Has(AttrDCCP) {
		b = appendFieldS(b, "", textState(dccpStates, f.DCCP.State, textDCCPStates))
	}
	return b
}

// appendTextStatus appends the one status flag the line shows, the first
// of HW_OFFLOAD, OFFLOAD and ASSURED that is set.
func (f *Flow) appendTextStatus(b []byte) []byte {
	if !f.Has(AttrStatus) {
		return b
	}
	switch {
	case f.Status&StatusHWOffload != 0:
		b = append(b, "[HW_OFFLOAD] "...)
	case f.Status&StatusOffload != 0:
		b = append(b, "[OFFLOAD] "...)
	case f.Status&StatusAssured != 0:
		b = append(b, "[ASSURED] "...)
	}
	return b
}

// appendTextAttrs appends the key=value attributes after the tuples, in
// libnetfilter_conntrack's order, each when the flow carries it.
func (f *Flow) appendTextAttrs(b []byte, o TextOptions) []byte {
	if f.Has(AttrMark) {
		b = appendFieldU(b, "mark=", uint64(f.Mark))
	}
	if f.Has(AttrSecmark) {
		b = appendFieldU(b, "secmark=", uint64(f.Secmark))
	}
	if f.Has(AttrSecctx) {
		b = appendFieldS(b, "secctx=", f.Secctx)
	}
	if f.ZoneDir == ZoneBoth && f.Zone != 0 {
		b = appendFieldU(b, "zone=", uint64(f.Zone))
	}
	if f.Has(AttrTimestamp) {
		b = appendFieldU(b, "delta-time=", f.deltaTime(o.Now))
	}
	if f.Has(AttrHelper) {
		b = appendFieldS(b, "helper=", f.Helper)
	}
	if f.Has(AttrUse) {
		b = appendFieldU(b, "use=", uint64(f.Use))
	}
	if o.ID && f.Has(AttrID) {
		b = appendFieldU(b, "id=", uint64(f.ID))
	}
	return b
}

// appendTextLabels appends labels= with the named bits that are set, as
// conntrack -o labels does.
func (f *Flow) appendTextLabels(b []byte, names []string) []byte {
	b = append(b, "labels="...)
	for bit := 0; bit < len(f.Labels)*8; bit++ {
		if !f.Labels.bit(bit) || bit >= len(names) || names[bit] == "" {
			continue
		}
		b = append(b, names[bit]...)
		b = append(b, ',')
	}
	// libnetfilter_conntrack drops the last byte, the final comma (or
	// the '=' when no bit has a name), and ends with a blank.
	return append(b[:len(b)-1], ' ')
}

// deltaTime is conntrack's delta-time: whole seconds from the flow's start
// to its stop, or to now for a flow that has not stopped.
func (f *Flow) deltaTime(now time.Time) uint64 {
	var stop int64
	if f.Stop == 0 {
		if now.IsZero() {
			now = time.Now()
		}
		stop = now.Unix()
	} else {
		stop = int64(f.Stop / uint64(time.Second))
	}
	return uint64(stop - int64(f.Start/uint64(time.Second)))
}

// bit reports whether label bit n is set. Labels holds the kernel's label
// bitmap as ctnetlink sends it: bit n is bit n%8 of byte n/8.
func (l *Labels) bit(n int) bool { return l[n/8]&(1<<(n%8)) != 0 }

func familyName(fam Family) string {
	switch fam {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "unknown"
}

func textState(names []string, s uint8, known int) string {
	if int(s) >= known || int(s) >= len(names) {
		return names[0]
	}
	return names[s]
}

// appendPadded appends s left-aligned in a field of width w (printf "%-8s").
func appendPadded(b []byte, s string, w int) []byte {
	b = append(b, s...)
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return b
}

func appendTupleText(b []byte, t *Tuple, proto uint8) []byte {
	if fam := FamilyOf(t.Src); fam == IPv4 || fam == IPv6 {
		b = append(b, "src="...)
		b = appendIP(b, t.Src, fam)
		b = append(b, " dst="...)
		b = appendIP(b, t.Dst, fam)
		b = append(b, ' ')
	}
	switch {
	case HasPorts(proto):
		b = append(b, "sport="...)
		b = strconv.AppendUint(b, uint64(t.SrcPort), 10)
		b = append(b, " dport="...)
		b = strconv.AppendUint(b, uint64(t.DstPort), 10)
		b = append(b, ' ')
	case proto == ProtoGRE:
		b = append(b, "srckey=0x"...)
		b = strconv.AppendUint(b, uint64(t.SrcPort), 16)
		b = append(b, " dstkey=0x"...)
		b = strconv.AppendUint(b, uint64(t.DstPort), 16)
		b = append(b, ' ')
	case IsICMP(proto):
		b = append(b, "type="...)
		b = strconv.AppendUint(b, uint64(t.ICMPType), 10)
		b = append(b, " code="...)
		b = strconv.AppendUint(b, uint64(t.ICMPCode), 10)
		b = append(b, " id="...)
		b = strconv.AppendUint(b, uint64(t.ICMPID), 10)
		b = append(b, ' ')
	}
	return b
}

func appendCounters(b []byte, c Counters) []byte {
	b = append(b, "packets="...)
	b = strconv.AppendUint(b, c.Packets, 10)
	b = append(b, " bytes="...)
	b = strconv.AppendUint(b, c.Bytes, 10)
	return append(b, ' ')
}

// appendIP appends an address as glibc's inet_ntop writes it. That is Go's
// canonical form except for IPv4-compatible IPv6 addresses (96 zero bits,
// then anything not starting with a zero 16-bit group), which glibc writes
// as ::a.b.c.d. An invalid address is written as the family's zero address.
func appendIP(b []byte, a netip.Addr, fam Family) []byte {
	switch {
	case !a.IsValid() && fam == IPv6:
		return append(b, "::"...)
	case !a.IsValid():
		return append(b, "0.0.0.0"...)
	case a.Is6() && !a.Is4In6():
		s := a.As16()
		compat := s[12] != 0 || s[13] != 0
		for _, x := range s[:12] {
			if x != 0 {
				compat = false
				break
			}
		}
		if compat {
			b = append(b, "::"...)
			return netip.AddrFrom4([4]byte{s[12], s[13], s[14], s[15]}).AppendTo(b)
		}
	}
	return a.AppendTo(b)
}

// AppendSave appends the flow as conntrack -o save writes it (conntrack
// 1.4.7), a line conntrack -R and ctsync table load accept. op is the command
// letter: 'A' (what conntrack -L -o save writes), 'I', 'U' or 'D'; any other
// value writes no command, as conntrack does for message types it does not
// know. No trailing newline is written.
//
// Like conntrack, the line has -t, -u (only EXPECTED, SEEN_REPLY, ASSURED and
// FIXED_TIMEOUT; UNSET when none is set), -c, the zones, the four addresses
// (-g/-n instead of -r/-q for a DNATed/SNATed address, see Filter's NAT
// rules), -p and the protocol's options; it has no mark, labels, helper or
// secctx. A DCCP or SCTP flow without its protocol state and with all ports
// zero is one the kernel tracks generically (Linux 6.16+ has no DCCP
// tracker) and reports without ports; like conntrack, AppendSave writes no
// port options for it. A flow without addresses yields nothing.
func (f *Flow) AppendSave(b []byte, op byte) []byte {
	start := len(b)
	switch op {
	case 'A', 'I', 'U', 'D':
		b = append(b, '-', op, ' ')
	}
	b = f.appendSaveHead(b)

	fam := f.Family()
	if fam != IPv4 && fam != IPv6 {
		return b[:start]
	}
	b = f.appendSaveAddrs(b, fam)
	b = f.appendSaveProto(b)
	for len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// appendSaveHead appends the options before the addresses: -t, -u, -c and
// the zone.
func (f *Flow) appendSaveHead(b []byte) []byte {
	if f.Has(AttrTimeout) {
		b = appendFieldU(b, "-t ", uint64(f.Timeout))
	}
	if f.Has(AttrStatus) {
		b = append(b, "-u "...)
		b = appendSaveStatus(b, f.Status)
		b = append(b, ' ')
	}
	if f.Has(AttrSecmark) {
		b = appendFieldU(b, "-c ", uint64(f.Secmark))
	}
	if f.Zone != 0 {
		switch f.ZoneDir {
		case ZoneBoth:
			b = append(b, "-w "...)
		case ZoneOrig:
			b = append(b, "--orig-zone "...)
		case ZoneReply:
			b = append(b, "--reply-zone "...)
		}
		b = appendFieldU(b, "", uint64(f.Zone))
	}
	return b
}

// appendSaveAddrs appends the four addresses, -g and -n in place of -r and
// -q for a DNATed and an SNATed address.
func (f *Flow) appendSaveAddrs(b []byte, fam Family) []byte {
	b = appendSaveAddr(b, "-s ", f.Orig.Src, fam)
	b = appendSaveAddr(b, "-d ", f.Orig.Dst, fam)
	if f.isDNAT() {
		b = appendSaveAddr(b, "-g ", f.Reply.Src, fam)
	} else {
		b = appendSaveAddr(b, "-r ", f.Reply.Src, fam)
	}
	if f.isSNAT() {
		b = appendSaveAddr(b, "-n ", f.Reply.Dst, fam)
	} else {
		b = appendSaveAddr(b, "-q ", f.Reply.Dst, fam)
	}
	return b
}

// appendSaveProto appends -p and the protocol's options.
func (f *Flow) appendSaveProto(b []byte) []byte {
	switch proto := f.Proto(); proto {
	case ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoDCCP:
		b = appendFieldS(b, "-p ", ProtoName(proto))
		b = f.appendSavePorts(b, proto)
		b = f.appendSaveState(b, proto)
	case ProtoGRE:
		b = append(b, "-p gre "...)
		b = appendFieldU(b, "--srckey ", uint64(f.Orig.SrcPort))
		b = appendFieldU(b, "--dstkey ", uint64(f.Orig.DstPort))
		b = appendFieldU(b, "--reply-key-src ", uint64(f.Reply.SrcPort))
		b = appendFieldU(b, "--reply-key-dst ", uint64(f.Reply.DstPort))
	case ProtoICMP:
		b = append(b, "-p icmp "...)
		b = appendFieldU(b, "--icmp-type ", uint64(f.Orig.ICMPType))
		b = appendFieldU(b, "--icmp-code ", uint64(f.Orig.ICMPCode))
		b = appendFieldU(b, "--icmp-id ", uint64(f.Orig.ICMPID))
	case ProtoICMPv6:
		b = append(b, "-p icmpv6 "...)
		b = appendFieldU(b, "--icmpv6-type ", uint64(f.Orig.ICMPType))
		b = appendFieldU(b, "--icmpv6-code ", uint64(f.Orig.ICMPCode))
		b = appendFieldU(b, "--icmpv6-id ", uint64(f.Orig.ICMPID))
	default:
		b = append(b, "-p "...)
		b = strconv.AppendUint(b, uint64(proto), 10)
	}
	return b
}

// appendSavePorts appends the four ports of a protocol with ports. A DCCP
// or SCTP flow without its protocol state and with all ports zero is
// tracked generically (Linux 6.16+ has no DCCP tracker): the kernel sent
// no ports, and conntrack writes none.
func (f *Flow) appendSavePorts(b []byte, proto uint8) []byte {
	generic := proto == ProtoDCCP && !f.Has(AttrDCCP) || proto == ProtoSCTP && !f.Has(AttrSCTP)
	if generic && f.Orig.SrcPort|f.Orig.DstPort|f.Reply.SrcPort|f.Reply.DstPort == 0 {
		return b
	}
	b = appendFieldU(b, "--sport ", uint64(f.Orig.SrcPort))
	b = appendFieldU(b, "--dport ", uint64(f.Orig.DstPort))
	b = appendFieldU(b, "--reply-port-src ", uint64(f.Reply.SrcPort))
	return appendFieldU(b, "--reply-port-dst ", uint64(f.Reply.DstPort))
}

// appendSaveState appends the protocol state (and SCTP's verification
// tags, DCCP's role) of a TCP, SCTP or DCCP flow that carries it.
func (f *Flow) appendSaveState(b []byte, proto uint8) []byte {
	switch {
	case proto == ProtoTCP && f.Has(AttrTCP):
		if int(f.TCP.State) < textTCPStates {
			b = appendFieldS(b, "--state ", tcpStates[f.TCP.State])
		}
	case proto == ProtoSCTP && f.Has(AttrSCTP):
		// conntrack 1.4.7 has no names for the heartbeat states
		// (and crashes reading them): leave the state out.
		if int(f.SCTP.State) < textSCTPStates {
			b = appendFieldS(b, "--state ", sctpStates[f.SCTP.State])
		}
		b = appendFieldU(b, "--orig-vtag ", uint64(f.SCTP.VTagOrig))
		b = appendFieldU(b, "--reply-vtag ", uint64(f.SCTP.VTagReply))
	case proto == ProtoDCCP && f.Has(AttrDCCP):
		if int(f.DCCP.State) < textDCCPStates {
			b = appendFieldS(b, "--state ", dccpStates[f.DCCP.State])
		}
		if int(f.DCCP.Role) < len(dccpRoles) {
			b = appendFieldS(b, "--role ", dccpRoles[f.DCCP.Role])
		}
	}
	return b
}

func appendSaveAddr(b []byte, opt string, a netip.Addr, fam Family) []byte {
	b = append(b, opt...)
	b = appendIP(b, a, fam)
	return append(b, ' ')
}

// appendFieldU appends a field with a number and a blank: a save option
// ("--sport 80 ") or a text key ("mark=1 ").
func appendFieldU(b []byte, opt string, v uint64) []byte {
	b = append(b, opt...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, ' ')
}

// appendFieldS appends a field with a string and a blank, as appendFieldU.
func appendFieldS(b []byte, opt, v string) []byte {
	b = append(b, opt...)
	b = append(b, v...)
	return append(b, ' ')
}

// saveStatusBits are the status bits conntrack -o save names, in its order.
var saveStatusBits = [...]Status{StatusExpected, StatusSeenReply, StatusAssured, StatusFixedTimeout}

// appendSaveStatus appends the -u argument conntrack -o save writes.
func appendSaveStatus(b []byte, s Status) []byte {
	n := len(b)
	for _, bit := range saveStatusBits {
		if s&bit == 0 {
			continue
		}
		if len(b) > n {
			b = append(b, ',')
		}
		for _, sn := range statusNames {
			if sn.bit == bit {
				b = append(b, sn.name...)
				break
			}
		}
	}
	if len(b) == n {
		b = append(b, "UNSET"...)
	}
	return b
}

// AppendJSON appends the flow as one JSON object, the shape ctsync's -o json
// prints (docs/interface.md, "Output formats"):
//
//	{"family":"ipv4","proto":"tcp","protonum":6,"state":"ESTABLISHED","timeout":431999,
//	 "orig":{"src":"10.0.0.1","dst":"10.0.0.2","sport":1000,"dport":80},
//	 "reply":{"src":"10.0.0.2","dst":"10.0.0.1","sport":80,"dport":1000},
//	 "status":["SEEN_REPLY","ASSURED"],"mark":0,"zone":0,"id":3979507854,"origin":"fw-a"}
//
// "state" appears only for a protocol with a state (TCP, SCTP, DCCP) that
// the flow carries; tuples carry "sport"/"dport" for port protocols,
// "type"/"code"/"id" for ICMP and ICMPv6, "srckey"/"dstkey" for GRE and only
// the addresses otherwise; "status" lists every set bit (Status.Names);
// "zone_dir" ("orig" or "reply") appears only for a directional zone,
// "labels" (the 16 label bytes as the kernel sends them, hex) only when a
// label is set, "helper" only when the flow has one, "id" only when the
// flow has a kernel id (a cached flow has none) and "origin" only when
// origin is not empty. NAT shows in the tuples. No trailing newline is
// written.
func (f *Flow) AppendJSON(b []byte, origin string) []byte {
	proto := f.Proto()
	b = append(b, `{"family":"`...)
	b = append(b, familyName(f.Family())...)
	b = append(b, `","proto":"`...)
	b = append(b, ProtoName(proto)...)
	b = append(b, `","protonum":`...)
	b = strconv.AppendUint(b, uint64(proto), 10)
	if st := f.State(); st != "" {
		b = append(b, `,"state":"`...)
		b = append(b, st...)
		b = append(b, '"')
	}
	b = append(b, `,"timeout":`...)
	b = strconv.AppendUint(b, uint64(f.Timeout), 10)
	b = append(b, `,"orig":`...)
	b = appendTupleJSON(b, &f.Orig, proto)
	b = append(b, `,"reply":`...)
	b = appendTupleJSON(b, &f.Reply, proto)
	b = append(b, `,"status":[`...)
	first := true
	for i, name := range allStatusNames {
		if f.Status&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"')
	}
	b = append(b, `],"mark":`...)
	b = strconv.AppendUint(b, uint64(f.Mark), 10)
	b = append(b, `,"zone":`...)
	b = strconv.AppendUint(b, uint64(f.Zone), 10)
	switch f.ZoneDir {
	case ZoneOrig:
		b = append(b, `,"zone_dir":"orig"`...)
	case ZoneReply:
		b = append(b, `,"zone_dir":"reply"`...)
	}
	if !f.Labels.IsZero() {
		const hex = "0123456789abcdef"
		b = append(b, `,"labels":"`...)
		for _, x := range f.Labels {
			b = append(b, hex[x>>4], hex[x&0xf])
		}
		b = append(b, '"')
	}
	if f.Helper != "" {
		b = append(b, `,"helper":`...)
		b = appendJSONString(b, f.Helper)
	}
	if f.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, uint64(f.ID), 10)
	}
	if origin != "" {
		b = append(b, `,"origin":`...)
		b = appendJSONString(b, origin)
	}
	return append(b, '}')
}

func appendTupleJSON(b []byte, t *Tuple, proto uint8) []byte {
	b = append(b, `{"src":"`...)
	b = t.Src.AppendTo(b)
	b = append(b, `","dst":"`...)
	b = t.Dst.AppendTo(b)
	b = append(b, '"')
	switch {
	case HasPorts(proto):
		b = append(b, `,"sport":`...)
		b = strconv.AppendUint(b, uint64(t.SrcPort), 10)
		b = append(b, `,"dport":`...)
		b = strconv.AppendUint(b, uint64(t.DstPort), 10)
	case proto == ProtoGRE:
		b = append(b, `,"srckey":`...)
		b = strconv.AppendUint(b, uint64(t.SrcPort), 10)
		b = append(b, `,"dstkey":`...)
		b = strconv.AppendUint(b, uint64(t.DstPort), 10)
	case IsICMP(proto):
		b = append(b, `,"type":`...)
		b = strconv.AppendUint(b, uint64(t.ICMPType), 10)
		b = append(b, `,"code":`...)
		b = strconv.AppendUint(b, uint64(t.ICMPCode), 10)
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, uint64(t.ICMPID), 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
