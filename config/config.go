package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file (CONTRACT §2). The yaml tags are the
// key names; DefaultYAML documents every key.
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
	Bind      string   `yaml:"bind"`      // host:port for memberlist (TCP and UDP)
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

// Filter is the "filter" section: which flows are replicated.
type Filter struct {
	Protocols       []string `yaml:"protocols"`        // tcp udp icmp icmpv6 sctp dccp gre udplite
	IgnoreAddresses []string `yaml:"ignore_addresses"` // CIDRs or plain addresses
	TCPStates       []string `yaml:"tcp_states"`       // ESTABLISHED, ...; empty = all
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
	MaxFlows int `yaml:"max_flows"` // bound per cache (and per origin of the external cache)
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
	DefaultBind        = "0.0.0.0:7946"
	DefaultKeyFile     = "/etc/ctsync/cluster.key"
	DefaultClusterName = "ctsync"
	DefaultSocket      = "/run/ctsync/ctsync.sock"
	DefaultEventBuffer = 64 * MiB
	DefaultMaxFlows    = 2097152
)

// protocols are the names filter.protocols accepts, in the order of the
// default list (all of them). Never modified.
var protocols = []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "udplite"}

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
