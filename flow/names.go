package flow

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Layer-4 protocol numbers with names in conntrack(8)'s output.
const (
	ProtoICMP    uint8 = 1
	ProtoIGMP    uint8 = 2
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoDCCP    uint8 = 33
	ProtoGRE     uint8 = 47
	ProtoICMPv6  uint8 = 58
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

var protoNames = map[uint8]string{
	ProtoICMP: "icmp", ProtoTCP: "tcp", ProtoUDP: "udp", ProtoDCCP: "dccp",
	ProtoGRE: "gre", ProtoICMPv6: "icmpv6", ProtoSCTP: "sctp", ProtoUDPLite: "udplite",
}

// ProtoName returns the name conntrack(8) prints for a protocol: one of the
// protocols it tracks specially, or "unknown".
func ProtoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return "unknown"
}

// extraProtos are names accepted on input (as /etc/protocols would) beyond the
// tracked ones.
var extraProtos = map[string]uint8{
	"igmp": ProtoIGMP, "ipv6-icmp": ProtoICMPv6, "ipencap": 4, "ipip": 4, "egp": 8,
	"esp": 50, "ah": 51, "ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "mpls-in-ip": 137,
}

// ProtoNames returns every protocol name ParseProto accepts, the tracked
// ones first (in conntrack(8)'s usual order), then the others, each group
// sorted; for shell completion.
func ProtoNames() []string {
	tracked := make([]string, 0, len(protoNames))
	for _, n := range protoNames {
		tracked = append(tracked, n)
	}
	other := make([]string, 0, len(extraProtos))
	for n := range extraProtos {
		other = append(other, n)
	}
	slices.Sort(tracked)
	slices.Sort(other)
	return append(tracked, other...)
}

// ParseProto parses a protocol name or a number from 0 to 255.
func ParseProto(s string) (uint8, error) {
	ls := strings.ToLower(s)
	for n, name := range protoNames {
		if name == ls {
			return n, nil
		}
	}
	if n, ok := extraProtos[ls]; ok {
		return n, nil
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q (want a name such as tcp or a number 0-255)", s)
	}
	return uint8(v), nil
}

// Status is the kernel's connection status bit set (IPS_*).
type Status uint32

// Status bits.
const (
	StatusExpected     Status = 1 << 0
	StatusSeenReply    Status = 1 << 1
	StatusAssured      Status = 1 << 2
	StatusConfirmed    Status = 1 << 3
	StatusSrcNAT       Status = 1 << 4
	StatusDstNAT       Status = 1 << 5
	StatusSeqAdjust    Status = 1 << 6
	StatusSrcNATDone   Status = 1 << 7
	StatusDstNATDone   Status = 1 << 8
	StatusDying        Status = 1 << 9
	StatusFixedTimeout Status = 1 << 10
	StatusTemplate     Status = 1 << 11
	StatusUntracked    Status = 1 << 12
	StatusHelper       Status = 1 << 13
	StatusOffload      Status = 1 << 14
	StatusHWOffload    Status = 1 << 15
)

// statusNames are the status bits conntrack(8) accepts with -u and prints
// with -o save, in its order.
var statusNames = []struct {
	bit  Status
	name string
}{
	{StatusExpected, "EXPECTED"},
	{StatusSeenReply, "SEEN_REPLY"},
	{StatusAssured, "ASSURED"},
	{StatusFixedTimeout, "FIXED_TIMEOUT"},
	{StatusOffload, "OFFLOAD"},
	{StatusHWOffload, "HW_OFFLOAD"},
}

// StatusNames returns the status names ParseStatus and ParseStatusFilter
// accept as bits (not UNSET or UNREPLIED), in conntrack(8)'s order.
func StatusNames() []string {
	out := make([]string, len(statusNames))
	for i, n := range statusNames {
		out[i] = n.name
	}
	return out
}

// allStatusNames names every bit, for JSON output.
var allStatusNames = []string{
	"EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
	"SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "UNTRACKED",
	"HELPER", "OFFLOAD", "HW_OFFLOAD",
}

// ParseStatus parses conntrack(8)'s -u argument: a comma-separated list of
// EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT, OFFLOAD, HW_OFFLOAD or UNSET.
func ParseStatus(s string) (Status, error) {
	var st Status
	for _, part := range strings.Split(s, ",") {
		part = strings.ToUpper(strings.TrimSpace(part))
		if part == "UNSET" {
			continue
		}
		found := false
		for _, n := range statusNames {
			if n.name == part {
				st |= n.bit
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown status %q (want EXPECTED, SEEN_REPLY, ASSURED, FIXED_TIMEOUT, OFFLOAD, HW_OFFLOAD or UNSET)", part)
		}
	}
	return st, nil
}

// SaveNames returns the status as conntrack -o save writes it: the set bits
// among EXPECTED, SEEN_REPLY, ASSURED and FIXED_TIMEOUT, or "UNSET" when
// none is set (conntrack 1.4.7 does not write OFFLOAD or HW_OFFLOAD).
func (s Status) SaveNames() string { return string(appendSaveStatus(nil, s)) }

// Names returns the names of every set bit, lowest first.
func (s Status) Names() []string {
	out := []string{}
	for i, n := range allStatusNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// TCP states as the kernel numbers them (TCP_CONNTRACK_*), named as conntrack(8) names them.
// State 9 is the kernel's SYN_SENT2 (simultaneous open); conntrack prints it
// so and still accepts the old name LISTEN for it.
var tcpStates = []string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
	"LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2", "MAX", "IGNORE",
}

// TCP state numbers used by the code.
const (
	TCPNone        uint8 = 0
	TCPSynSent     uint8 = 1
	TCPSynRecv     uint8 = 2
	TCPEstablished uint8 = 3
	TCPFinWait     uint8 = 4
	TCPCloseWait   uint8 = 5
	TCPLastAck     uint8 = 6
	TCPTimeWait    uint8 = 7
	TCPClose       uint8 = 8
	TCPSynSent2    uint8 = 9
	TCPStateMax    uint8 = 10
)

var sctpStates = []string{
	"NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT",
	"SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED",
}

var dccpStates = []string{
	"NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
	"IGNORE", "INVALID",
}

var dccpRoles = []string{"client", "server"}

func stateName(names []string, s uint8) string {
	if int(s) < len(names) {
		return names[s]
	}
	return "UNKNOWN"
}

func parseState(names []string, what, s string) (uint8, error) {
	u := strings.ToUpper(s)
	for i, n := range names {
		if n == u && n != "MAX" && n != "IGNORE" && n != "INVALID" {
			return uint8(i), nil
		}
	}
	if what == "TCP" && u == "LISTEN" {
		return TCPSynSent2, nil
	}
	return 0, fmt.Errorf("unknown %s state %q", what, s)
}

// acceptedStates returns the names parseState accepts from the table, in
// the kernel's order.
func acceptedStates(names []string) []string {
	var ok []string
	for _, n := range names {
		if n != "MAX" && n != "IGNORE" && n != "INVALID" {
			ok = append(ok, n)
		}
	}
	return ok
}

// validStates lists the names parseState accepts from the table, then the
// extra ones, comma-separated.
func validStates(names []string, extra ...string) string {
	return strings.Join(append(acceptedStates(names), extra...), ", ")
}

// StateNames returns the state names --state accepts for a protocol (tcp,
// sctp or dccp; nil for any other), in the kernel's order; for shell
// completion.
func StateNames(proto uint8) []string {
	switch proto {
	case ProtoTCP:
		return append(acceptedStates(tcpStates), "LISTEN")
	case ProtoSCTP:
		return acceptedStates(sctpStates)
	case ProtoDCCP:
		return acceptedStates(dccpStates)
	}
	return nil
}

// TCPStateName names a TCP state as conntrack(8) does.
func TCPStateName(s uint8) string { return stateName(tcpStates, s) }

// ParseTCPState parses a TCP state name (ESTABLISHED, SYN_SENT, ...).
func ParseTCPState(s string) (uint8, error) { return parseState(tcpStates, "TCP", s) }

// SCTPStateName names an SCTP state as conntrack(8) does.
func SCTPStateName(s uint8) string { return stateName(sctpStates, s) }

// ParseSCTPState parses an SCTP state name.
func ParseSCTPState(s string) (uint8, error) { return parseState(sctpStates, "SCTP", s) }

// DCCPStateName names a DCCP state as conntrack(8) does.
func DCCPStateName(s uint8) string { return stateName(dccpStates, s) }

// ParseDCCPState parses a DCCP state name.
func ParseDCCPState(s string) (uint8, error) { return parseState(dccpStates, "DCCP", s) }

// DCCPRoleNames returns the DCCP roles ParseDCCPRole accepts.
func DCCPRoleNames() []string { return slices.Clone(dccpRoles) }

// ParseDCCPRole parses a DCCP role (client or server).
func ParseDCCPRole(s string) (uint8, error) {
	for i, n := range dccpRoles {
		if strings.EqualFold(n, s) {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("unknown DCCP role %q (want client or server)", s)
}

// State returns the protocol state name of the flow, or "" when its protocol
// has no state or the state is not present.
func (f *Flow) State() string {
	switch {
	case f.Has(AttrTCP) && f.Proto() == ProtoTCP:
		return TCPStateName(f.TCP.State)
	case f.Has(AttrSCTP) && f.Proto() == ProtoSCTP:
		return SCTPStateName(f.SCTP.State)
	case f.Has(AttrDCCP) && f.Proto() == ProtoDCCP:
		return DCCPStateName(f.DCCP.State)
	}
	return ""
}
