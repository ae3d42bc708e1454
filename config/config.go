package config

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file (docs/interface.md, "Configuration
// file"). The yaml tags are the key names; DefaultYAML documents every key.
//
// A Config is plain data: copy it freely, and do not mutate one that other
// goroutines read. To reload, build a new one with Load and swap it.
type Config struct {
	Node         string   `yaml:"node"`
	Cluster      Cluster  `yaml:"cluster"`
	Control      Control  `yaml:"control"`
	Filter       Filter   `yaml:"filter"`
	Commit       Commit   `yaml:"commit"`
	PurgeTimeout Duration `yaml:"purge_timeout"`
	Metrics      Metrics  `yaml:"metrics"`
	Log          Log      `yaml:"log"`
	Kernel       Kernel   `yaml:"kernel"`
	Cache        Cache    `yaml:"cache"`

	// keyFileSet records that cluster.key_file was written in the file
	// (with a value), as opposed to inherited from the default, so that
	// Validate can refuse `insecure: true` next to an explicit key file
	// without tripping over the default path.
	keyFileSet bool
}

// Cluster is the "cluster" section: how this node talks to its peers.
type Cluster struct {
	// Bind is host:port for memberlist (TCP and UDP). "" = the local
	// address that routes to the first join peer that resolves, on that
	// peer's port, found at start by the agent (Validate then requires a
	// join peer).
	Bind      string   `yaml:"bind"`
	Advertise string   `yaml:"advertise"` // host:port peers should use; "" = derived from bind
	Join      []string `yaml:"join"`      // peers to contact at start, host:port
	KeyFile   string   `yaml:"key_file"`  // base64 AES key (16/24/32 bytes)
	Insecure  bool     `yaml:"insecure"`  // no encryption or authentication
	Name      string   `yaml:"name"`      // cluster label; nodes with another name ignore us
}

// Control is the "control" section: the local API for the CLI.
type Control struct {
	Socket string `yaml:"socket"` // absolute path of the UNIX socket
}

// Filter is the "filter" section: which flows are replicated, and which of
// their labels. A flow failing any rule stays local (and is withdrawn from
// the peers if it was replicated before).
type Filter struct {
	Protocols       []string `yaml:"protocols"`        // tcp udp icmp icmpv6 sctp dccp gre udplite, or others by name or number
	IgnoreAddresses []string `yaml:"ignore_addresses"` // CIDRs or plain addresses
	TCPStates       []string `yaml:"tcp_states"`       // ESTABLISHED, ...; empty = all
	Zones           []int    `yaml:"zones"`            // conntrack zones 0-65535; empty = all
	Marks           []string `yaml:"marks"`            // VALUE[/MASK] (see ParseMark); any matches; empty = all
	IgnorePorts     []string `yaml:"ignore_ports"`     // PROTO/PORT[-PORT] of the original destination (see ParsePortRule)
	// Labels are the ct label bits replicated: numbers 0-127, names from
	// ConnlabelFile, or "all". Other bits are cleared before a flow leaves
	// the node. Empty = no label is replicated.
	Labels []string `yaml:"labels"`
	// MinAge: a flow is replicated once this node has seen it for this
	// long; one that ends sooner is never sent.
	MinAge Duration `yaml:"min_age"`
}

// ConnlabelFile maps ct label names to bit numbers, as for conntrack(8)
// and iptables' connlabel match: lines "BIT NAME", # comments. A variable
// for tests.
var ConnlabelFile = "/etc/xtables/connlabel.conf"

// LabelsAll is the filter.labels entry that replicates every label bit.
const LabelsAll = "all"

// MarkRule is one filter.marks entry: a flow matches when mark&Mask == Value.
type MarkRule struct{ Value, Mask uint32 }

// ParseMark parses VALUE or VALUE/MASK, each decimal or 0x hex (VALUE alone
// means MASK 0xffffffff). VALUE must not have bits outside MASK.
func ParseMark(s string) (MarkRule, error) {
	v, m, hasMask := strings.Cut(strings.TrimSpace(s), "/")
	value, err := strconv.ParseUint(strings.TrimSpace(v), 0, 32)
	if err != nil {
		return MarkRule{}, fmt.Errorf("want VALUE or VALUE/MASK (decimal or 0x hex, 32 bits) such as 5 or 0x10/0xf0, got %q", s)
	}
	mask := uint64(0xffffffff)
	if hasMask {
		if mask, err = strconv.ParseUint(strings.TrimSpace(m), 0, 32); err != nil {
			return MarkRule{}, fmt.Errorf("want VALUE or VALUE/MASK (decimal or 0x hex, 32 bits) such as 5 or 0x10/0xf0, got %q", s)
		}
	}
	if value&^mask != 0 {
		return MarkRule{}, fmt.Errorf("%q: value 0x%x has bits outside mask 0x%x, so no mark can match", s, value, mask)
	}
	return MarkRule{Value: uint32(value), Mask: uint32(mask)}, nil
}

// PortRule is one filter.ignore_ports entry.
type PortRule struct {
	Proto    uint8 // IP protocol number
	Min, Max uint16
}

// portProtocols are the protocols with ports, for filter.ignore_ports.
var portProtocols = map[string]uint8{"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132, "dccp": 33}

// ParsePortRule parses PROTO/PORT or PROTO/FIRST-LAST (tcp, udp, udplite,
// sctp or dccp; ports 1-65535), e.g. udp/53 or tcp/6000-6063.
func ParsePortRule(s string) (PortRule, error) {
	bad := func() (PortRule, error) {
		return PortRule{}, fmt.Errorf("want PROTO/PORT or PROTO/FIRST-LAST with PROTO one of tcp udp udplite sctp dccp, such as udp/53 or tcp/6000-6063, got %q", s)
	}
	p, ports, ok := strings.Cut(strings.TrimSpace(s), "/")
	proto, known := portProtocols[strings.ToLower(p)]
	if !ok || !known {
		return bad()
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a == 0 || b == 0 {
		return bad()
	}
	if a > b {
		return PortRule{}, fmt.Errorf("%q: the range ends before it starts", s)
	}
	return PortRule{Proto: proto, Min: uint16(a), Max: uint16(b)}, nil
}

// LabelMask returns the filter.labels bits as a ct label bitmap, in the
// kernel's layout (bit N is bit N%64 of host-order 64-bit word N/64). Names
// are looked up in ConnlabelFile.
func (f *Filter) LabelMask() ([16]byte, error) {
	var words [2]uint64
	var names map[string]int
	for i, l := range f.Labels {
		l = strings.TrimSpace(l)
		bit := -1
		switch n, err := strconv.Atoi(l); {
		case strings.EqualFold(l, LabelsAll):
			words = [2]uint64{^uint64(0), ^uint64(0)}
			continue
		case err == nil:
			if n < 0 || n > 127 {
				return [16]byte{}, fmt.Errorf("filter.labels[%d]: label bit %d out of range 0-127", i, n)
			}
			bit = n
		default:
			if names == nil {
				var err error
				if names, err = readConnlabels(ConnlabelFile); err != nil {
					return [16]byte{}, fmt.Errorf("filter.labels[%d]: label name %q: %w", i, l, err)
				}
			}
			n, ok := names[l]
			if !ok {
				return [16]byte{}, fmt.Errorf("filter.labels[%d]: unknown label name %q (not in %s); give a bit number 0-127, a name from that file, or all", i, l, ConnlabelFile)
			}
			bit = n
		}
		words[bit/64] |= 1 << (bit % 64)
	}
	var m [16]byte
	binary.NativeEndian.PutUint64(m[0:], words[0])
	binary.NativeEndian.PutUint64(m[8:], words[1])
	return m, nil
}

// readConnlabels reads a connlabel.conf: "BIT NAME" lines, # comments.
func readConnlabels(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	names := map[string]int{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		n, err := strconv.Atoi(fields[0])
		if err != nil || n < 0 || n > 127 {
			continue
		}
		if _, dup := names[fields[1]]; !dup {
			names[fields[1]] = n
		}
	}
	return names, nil
}

// Commit is the "commit" section: how the external cache reaches the kernel.
type Commit struct {
	Timeout Duration `yaml:"timeout"` // 0 = each flow keeps its remaining timeout
	Mode    string   `yaml:"mode"`    // ModeCommit or ModeHot
	// Gate drops packets of flows the kernel table does not know while
	// this node is backup or fault, and until a takeover has put the
	// peers' flows in place (see README, "The commit gate").
	Gate bool `yaml:"gate"`
}

// Metrics is the "metrics" section.
type Metrics struct {
	Listen string `yaml:"listen"` // host:port for Prometheus /metrics; "" = off
}

// Log is the "log" section.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // text|json
}

// Kernel is the "kernel" section: the conntrack table the daemon serves.
type Kernel struct {
	Netns       string   `yaml:"netns"`        // name under /run/netns, or a path; "" = own
	EventBuffer ByteSize `yaml:"event_buffer"` // netlink event socket receive buffer
}

// Cache is the "cache" section.
type Cache struct {
	MaxFlows int `yaml:"max_flows"` // bound on the internal cache, and on the external cache as a whole (all origins together)
}

// Commit modes (commit.mode).
const (
	// ModeCommit keeps peers' flows in the external cache and writes them
	// to the kernel on `notify master` (conntrackd's behaviour).
	ModeCommit = "commit"
	// ModeHot keeps peers' flows in this node's kernel table ahead of time
	// (hot standby): a takeover has nothing left to write.
	ModeHot = "hot"
)

// Defaults of the keys whose default is not obvious from Default.
const (
	DefaultPort        = 7946 // memberlist's, the usual port of cluster.bind and cluster.join
	DefaultKeyFile     = "/etc/ctsync/cluster.key"
	DefaultClusterName = "ctsync"
	DefaultSocket      = "/run/ctsync/ctsync.sock"
	DefaultEventBuffer = 64 * MiB
	// MaxEventBuffer is the largest kernel.event_buffer: the kernel's
	// SO_RCVBUFFORCE takes a C int, so 2GiB does not fit (it would wrap to
	// a negative size, and the kernel would use its minimum instead).
	MaxEventBuffer ByteSize = math.MaxInt32
	// MinEventBuffer is the smallest kernel.event_buffer.
	MinEventBuffer  = 64 * KiB
	DefaultMaxFlows = 2097152
)

// protocols are the names filter.protocols accepts, in the order of the
// default list (all of them). Never modified.
var protocols = []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "udplite"}

// protoNumbers are the protocol names filter.protocols accepts (the
// tracked ones and, as /etc/protocols names them, a few others), as
// flow.ParseProto reads them; config imports nothing of ctsync's. Never
// modified.
var protoNumbers = map[string]uint8{
	"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "dccp": 33, "gre": 47, "udplite": 136,
	"igmp": 2, "ipv6-icmp": 58, "ipencap": 4, "ipip": 4, "egp": 8, "esp": 50, "ah": 51, "ospf": 89,
	"pim": 103, "vrrp": 112, "l2tp": 115, "mpls-in-ip": 137,
}

// protoNumber parses a filter.protocols entry: a name or a number 0-255.
func protoNumber(s string) (uint8, error) {
	if n, ok := protoNumbers[strings.ToLower(s)]; ok {
		return n, nil
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q", s)
	}
	return uint8(v), nil
}

// tcpStates are the conntrack TCP state names filter.tcp_states accepts.
// Never modified.
var tcpStates = []string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
	"LAST_ACK", "TIME_WAIT", "CLOSE", "LISTEN", "SYN_SENT2",
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("60s", "1m30s", "0s").
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(`want a duration such as "60s" or "1m30s"`)
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return typeError(fmt.Sprintf(`want a duration such as "60s" or "1m30s", got %q`, n.Value))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Binary size units for ByteSize.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

// ByteSize is a number of bytes, written in YAML as plain bytes (65536) or
// with a binary unit (512KiB, 64MiB, 1GiB).
type ByteSize int64

// ParseByteSize parses plain bytes or a number with a KiB, MiB or GiB suffix.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	num, unit := s, ByteSize(1)
	for _, u := range []struct {
		suffix string
		size   ByteSize
	}{{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}, {"B", 1}} {
		if before, ok := strings.CutSuffix(s, u.suffix); ok {
			num, unit = strings.TrimSpace(before), u.size
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/int64(unit) {
		return 0, fmt.Errorf("want a size such as 64MiB, 512KiB, 1GiB or plain bytes, got %q", s)
	}
	return ByteSize(n) * unit, nil
}

// String formats b in the largest binary unit that divides it exactly.
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		size   ByteSize
	}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML parses a size (see ParseByteSize).
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError("want a size such as 64MiB, 512KiB, 1GiB or plain bytes")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return typeError(err.Error())
	}
	*b = v
	return nil
}

// MarshalYAML writes b as String does.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// typeError reports a value an unmarshaler cannot take. As a *yaml.TypeError
// it lets the decoder carry on with the other keys instead of stopping.
func typeError(msg string) error { return &yaml.TypeError{Errors: []string{msg}} }
