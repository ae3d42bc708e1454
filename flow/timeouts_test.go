package flow

import (
	"slices"
	"testing"
)

func TestDefaultTimeout(t *testing.T) {
	tcp := func(state uint8) *Flow {
		f := &Flow{Attrs: AttrTCP, TCP: TCPInfo{State: state}}
		f.Orig.Proto = ProtoTCP
		return f
	}
	proto := func(p uint8, st Status) *Flow {
		f := &Flow{Status: st, Attrs: AttrStatus}
		f.Orig.Proto = p
		return f
	}
	sctp := &Flow{Attrs: AttrSCTP, SCTP: SCTPInfo{State: 4}}
	sctp.Orig.Proto = ProtoSCTP
	dccp := &Flow{Attrs: AttrDCCP, DCCP: DCCPInfo{State: 4}}
	dccp.Orig.Proto = ProtoDCCP
	const p = "net.netfilter.nf_conntrack_"
	tests := []struct {
		name    string
		f       *Flow
		sysctls []string
		seconds uint32
	}{
		{"tcp established", tcp(TCPEstablished), []string{p + "tcp_timeout_established"}, 432000},
		{"tcp none is syn_sent", tcp(TCPNone), []string{p + "tcp_timeout_syn_sent"}, 120},
		{"tcp syn_sent", tcp(TCPSynSent), []string{p + "tcp_timeout_syn_sent"}, 120},
		{"tcp syn_recv", tcp(TCPSynRecv), []string{p + "tcp_timeout_syn_recv"}, 60},
		{"tcp fin_wait", tcp(TCPFinWait), []string{p + "tcp_timeout_fin_wait"}, 120},
		{"tcp close_wait", tcp(TCPCloseWait), []string{p + "tcp_timeout_close_wait"}, 60},
		{"tcp last_ack", tcp(TCPLastAck), []string{p + "tcp_timeout_last_ack"}, 30},
		{"tcp time_wait", tcp(TCPTimeWait), []string{p + "tcp_timeout_time_wait"}, 120},
		{"tcp close", tcp(TCPClose), []string{p + "tcp_timeout_close"}, 10},
		{"tcp syn_sent2 has no sysctl", tcp(TCPSynSent2), nil, 120},
		{"tcp beyond the table", tcp(11), []string{p + "tcp_timeout_syn_sent"}, 120},
		{"udp", proto(ProtoUDP, 0), []string{p + "udp_timeout"}, 30},
		{"udp seen reply", proto(ProtoUDP, StatusSeenReply), []string{p + "udp_timeout_stream"}, 120},
		{"udp assured", proto(ProtoUDP, StatusAssured), []string{p + "udp_timeout_stream"}, 120},
		{"udplite", proto(ProtoUDPLite, 0), []string{p + "udp_timeout"}, 30},
		{"gre", proto(ProtoGRE, 0), []string{p + "gre_timeout"}, 30},
		{"gre stream", proto(ProtoGRE, StatusSeenReply), []string{p + "gre_timeout_stream"}, 180},
		{"icmp", proto(ProtoICMP, 0), []string{p + "icmp_timeout"}, 30},
		{"icmpv6", proto(ProtoICMPv6, 0), []string{p + "icmpv6_timeout"}, 30},
		{"generic", proto(ProtoIGMP, 0), []string{p + "generic_timeout"}, 600},
		{"sctp established", sctp, []string{p + "sctp_timeout_established"}, 210},
		{"sctp without state", proto(ProtoSCTP, 0), []string{p + "sctp_timeout_closed"}, 10},
		{"dccp open, or generic", dccp, []string{p + "dccp_timeout_open", p + "generic_timeout"}, 43200},
	}
	for _, tt := range tests {
		sysctls, seconds := DefaultTimeout(tt.f)
		if !slices.Equal(sysctls, tt.sysctls) || seconds != tt.seconds {
			t.Errorf("%s: got %q %d, want %q %d", tt.name, sysctls, seconds, tt.sysctls, tt.seconds)
		}
	}
}
