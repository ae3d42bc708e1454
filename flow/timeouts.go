package flow

// DefaultTimeout returns the timeout Linux gives an entry like f in its
// protocol, state and status: the sysctls that hold it (tried in order, as
// sysctl(8) names them; each network namespace has its own) and the value
// they have by default, the kernel's compiled-in one (Linux 6.x). The
// timeout of a new entry is a protocol's "new" one (TCP SYN_SENT, SCTP
// CLOSED, DCCP REQUEST) for state NONE. UDP and GRE entries with SEEN_REPLY
// or ASSURED set get the stream timeout. A state without a sysctl of its own
// (TCP SYN_SENT2) comes with no name. `ctsync table insert` without -t uses
// it, a ctsync extension: the kernel, like conntrack(8), wants a timeout.
func DefaultTimeout(f *Flow) (sysctls []string, seconds uint32) {
	const prefix = "net.netfilter.nf_conntrack_"
	one := func(name string, s uint32) ([]string, uint32) {
		if name == "" {
			return nil, s
		}
		return []string{prefix + name}, s
	}
	stream := f.Status&(StatusSeenReply|StatusAssured) != 0
	switch f.Proto() {
	case ProtoTCP:
		state := TCPNone
		if f.Has(AttrTCP) {
			state = f.TCP.State
		}
		if int(state) < len(tcpTimeouts) {
			t := tcpTimeouts[state]
			return one(t.name, t.seconds)
		}
		return one(tcpTimeouts[TCPNone].name, tcpTimeouts[TCPNone].seconds)
	case ProtoSCTP:
		var state uint8
		if f.Has(AttrSCTP) {
			state = f.SCTP.State
		}
		if int(state) >= len(sctpTimeouts) {
			state = 0
		}
		t := sctpTimeouts[state]
		return one(t.name, t.seconds)
	case ProtoDCCP:
		// Linux 6.16 dropped the DCCP tracker: there DCCP is tracked
		// generically, with the generic timeout.
		var state uint8
		if f.Has(AttrDCCP) {
			state = f.DCCP.State
		}
		if int(state) >= len(dccpTimeouts) {
			state = 0
		}
		t := dccpTimeouts[state]
		return []string{prefix + t.name, prefix + "generic_timeout"}, t.seconds
	case ProtoUDP, ProtoUDPLite:
		if stream {
			return one("udp_timeout_stream", 120)
		}
		return one("udp_timeout", 30)
	case ProtoGRE:
		if stream {
			return one("gre_timeout_stream", 180)
		}
		return one("gre_timeout", 30)
	case ProtoICMP:
		return one("icmp_timeout", 30)
	case ProtoICMPv6:
		return one("icmpv6_timeout", 30)
	}
	return one("generic_timeout", 600)
}

type stateTimeout struct {
	name    string // after nf_conntrack_; "" when the state has no sysctl
	seconds uint32
}

// tcpTimeouts are nf_conntrack_proto_tcp.c's tcp_timeouts, by state. The
// kernel's timeout for state NONE is SYN_SENT's.
var tcpTimeouts = [...]stateTimeout{
	TCPNone:        {"tcp_timeout_syn_sent", 120},
	TCPSynSent:     {"tcp_timeout_syn_sent", 120},
	TCPSynRecv:     {"tcp_timeout_syn_recv", 60},
	TCPEstablished: {"tcp_timeout_established", 432000},
	TCPFinWait:     {"tcp_timeout_fin_wait", 120},
	TCPCloseWait:   {"tcp_timeout_close_wait", 60},
	TCPLastAck:     {"tcp_timeout_last_ack", 30},
	TCPTimeWait:    {"tcp_timeout_time_wait", 120},
	TCPClose:       {"tcp_timeout_close", 10},
	TCPSynSent2:    {"", 120},
}

// sctpTimeouts are nf_conntrack_proto_sctp.c's sctp_timeouts (Linux 6.3
// and later: ESTABLISHED 210 s, HEARTBEAT_ACKED gone; older kernels still
// have its sysctl). NONE is CLOSED's.
var sctpTimeouts = [...]stateTimeout{
	{"sctp_timeout_closed", 10},
	{"sctp_timeout_closed", 10},
	{"sctp_timeout_cookie_wait", 3},
	{"sctp_timeout_cookie_echoed", 3},
	{"sctp_timeout_established", 210},
	{"sctp_timeout_shutdown_sent", 3},
	{"sctp_timeout_shutdown_recd", 3},
	{"sctp_timeout_shutdown_ack_sent", 3},
	{"sctp_timeout_heartbeat_sent", 30},
	{"sctp_timeout_heartbeat_acked", 210},
}

// dccpTimeouts are nf_conntrack_proto_dccp.c's (Linux 6.15 and earlier).
// NONE is REQUEST's.
var dccpTimeouts = [...]stateTimeout{
	{"dccp_timeout_request", 240},
	{"dccp_timeout_request", 240},
	{"dccp_timeout_respond", 480},
	{"dccp_timeout_partopen", 480},
	{"dccp_timeout_open", 43200},
	{"dccp_timeout_closereq", 64},
	{"dccp_timeout_closing", 64},
	{"dccp_timeout_timewait", 240},
}
