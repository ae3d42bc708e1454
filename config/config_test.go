package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// problems returns err's Problems as "PATH: MESSAGE" strings; it fails the
// test if err is not Problems.
func problems(t *testing.T, err error) []string {
	t.Helper()
	ps, ok := errors.AsType[Problems](err)
	if !ok {
		t.Fatalf("error %v (%T), want Problems", err, err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestDefault(t *testing.T) {
	c := Default()
	host, _ := os.Hostname()
	checks := []struct {
		name      string
		got, want any
	}{
		{"node", c.Node, host},
		{"cluster.bind", c.Cluster.Bind, ""}, // derived at start from cluster.join
		{"cluster.advertise", c.Cluster.Advertise, ""},
		{"cluster.join", c.Cluster.Join, []string{}},
		{"cluster.key_file", c.Cluster.KeyFile, "/etc/ctsync/cluster.key"},
		{"cluster.insecure", c.Cluster.Insecure, false},
		{"cluster.name", c.Cluster.Name, "ctsync"},
		{"control.socket", c.Control.Socket, "/run/ctsync/ctsync.sock"},
		{"filter.protocols", c.Filter.Protocols, []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "udplite"}},
		{"filter.ignore_addresses", c.Filter.IgnoreAddresses, []string{"127.0.0.0/8", "::1/128"}},
		{"filter.tcp_states", c.Filter.TCPStates, []string{}},
		{"commit.timeout", c.Commit.Timeout, Duration(0)},
		{"commit.mode", c.Commit.Mode, "commit"},
		{"commit.gate", c.Commit.Gate, true},
		{"purge_timeout", c.PurgeTimeout, Duration(60 * time.Second)},
		{"metrics.listen", c.Metrics.Listen, ""},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"kernel.netns", c.Kernel.Netns, ""},
		{"kernel.event_buffer", c.Kernel.EventBuffer, 64 * MiB},
		{"cache.max_flows", c.Cache.MaxFlows, 2097152},
	}
	for _, tt := range checks {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default %s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	// Default must not share slices between calls.
	c.Filter.Protocols[0] = "changed"
	if Default().Filter.Protocols[0] != "tcp" {
		t.Fatal("Default shares its protocol list between calls")
	}
}

func TestDefaultYAMLParsesToDefault(t *testing.T) {
	got, err := Parse([]byte(DefaultYAML()))
	if err != nil {
		t.Fatalf("Parse(DefaultYAML()): %v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(DefaultYAML()) =\n%+v\nwant Default() =\n%+v", got, want)
	}
}

func TestDefaultYAMLNamesEveryKey(t *testing.T) {
	text := DefaultYAML()
	for _, path := range keyPaths(reflect.TypeFor[Config](), "") {
		key := path[strings.LastIndex(path, ".")+1:]
		if !strings.Contains(text, key+":") {
			t.Errorf("DefaultYAML does not mention %s", path)
		}
	}
	// Uncommenting the commented-out keys gives a file that still parses.
	uncommented := strings.NewReplacer("#node:", "node:", "#key_file:", "key_file:").Replace(text)
	c, err := Parse([]byte(uncommented))
	if err != nil {
		t.Fatalf("DefaultYAML with node and key_file uncommented: %v", err)
	}
	if c.Node != "fw-a" || c.Cluster.KeyFile != DefaultKeyFile {
		t.Fatalf("uncommented node, key_file = %q, %q", c.Node, c.Cluster.KeyFile)
	}
}

// keyPaths lists the dotted paths of every leaf key of struct type t.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		path := join(prefix, f.Tag.Get("yaml"))
		if f.Type.Kind() == reflect.Struct {
			out = append(out, keyPaths(f.Type, path)...)
		} else {
			out = append(out, path)
		}
	}
	return out
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`
node: fw-a
cluster:
  bind: 10.0.3.1:7946
  advertise: 10.0.3.1:7946
  join: ["10.0.3.2:7946", fw-b.example:7946]
  insecure: true
  name: pair-1
filter:
  protocols: [TCP, Udp]
  ignore_addresses: [10.0.3.1, "fd00::/64"]
  tcp_states: [established, SYN_SENT2]
commit: {timeout: 180s, mode: commit}
purge_timeout: 1m30s
kernel: {netns: fw-a, event_buffer: 512KiB}
cache: {max_flows: 1000}
`))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"node", c.Node, "fw-a"},
		{"join", c.Cluster.Join, []string{"10.0.3.2:7946", "fw-b.example:7946"}},
		{"name", c.Cluster.Name, "pair-1"},
		{"socket (default kept)", c.Control.Socket, DefaultSocket},
		{"protocols (lower-cased)", c.Filter.Protocols, []string{"tcp", "udp"}},
		{"tcp_states (upper-cased)", c.Filter.TCPStates, []string{"ESTABLISHED", "SYN_SENT2"}},
		{"commit.timeout", c.Commit.Timeout.Duration(), 180 * time.Second},
		{"commit.mode", c.Commit.Mode, ModeCommit},
		{"purge_timeout", c.PurgeTimeout.Duration(), 90 * time.Second},
		{"netns", c.Kernel.Netns, "fw-a"},
		{"event_buffer", c.EventBufferBytes(), 512 << 10},
		{"max_flows", c.Cache.MaxFlows, 1000},
		{"ignore prefixes", ignorePrefixes(c), []netip.Prefix{
			netip.MustParsePrefix("10.0.3.1/32"), netip.MustParsePrefix("fd00::/64")}},
	}
	for _, tt := range checks {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n"} {
		c, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Fatalf("Parse(%q) = %+v, want Default()", in, c)
		}
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"unknown top-level key", "node: a\nnodes: b\n",
			[]string{"nodes: unknown key (line 2)"}},
		{"unknown nested key", "node: a\ncluster:\n  bind: 1.2.3.4:5\n  bnd: x\n",
			[]string{"cluster.bnd: unknown key (line 4)"}},
		{"unknown keys everywhere", "foo: 1\nlog: {level: info, colour: red}\nkernel:\n  buffer: 1\n",
			[]string{"foo: unknown key (line 1)", "log.colour: unknown key (line 2)", "kernel.buffer: unknown key (line 4)"}},
		{"key set twice", "node: a\nnode: b\n",
			[]string{"node: set twice (lines 1 and 2)"}},
		{"nested key set twice", "log:\n  level: info\n  level: debug\n",
			[]string{"log.level: set twice (lines 2 and 3)"}},
		{"not a number", "cache:\n  max_flows: many\n",
			[]string{`cache.max_flows: want a whole number, got "many" (line 2)`}},
		{"not a bool", "cluster: {insecure: maybe}\n",
			[]string{`cluster.insecure: want true or false, got "maybe" (line 1)`}},
		{"not a string", "node: {a: b}\n",
			[]string{"node: want a string, got a mapping (line 1)"}},
		{"list wanted", "filter:\n  protocols: tcp\n",
			[]string{`filter.protocols: want a list such as [a, b], got "tcp" (line 2)`}},
		{"list element", "cluster:\n  join:\n  - a:1\n  - [x]\n",
			[]string{"cluster.join[1]: want a string, got a list (line 4)"}},
		{"section wanted", "cluster: 10.0.0.1\n",
			[]string{`cluster: want a mapping of keys, got "10.0.0.1" (line 1)`}},
		{"duration without unit", "purge_timeout: 60\n",
			[]string{`purge_timeout: want a duration such as "60s" or "1m30s", got "60" (line 1)`}},
		{"bad duration", "commit:\n  timeout: soon\n",
			[]string{`commit.timeout: want a duration such as "60s" or "1m30s", got "soon" (line 2)`}},
		{"bad size", "kernel: {event_buffer: 64MB}\n",
			[]string{`kernel.event_buffer: want a size such as 64MiB, 512KiB, 1GiB or plain bytes, got "64MB" (line 1)`}},
		{"top level not a mapping", "- node\n",
			[]string{"want a mapping of keys, got a list (line 1)"}},
		{"unknown key through a merge", "cluster: &c {bind: \"1.2.3.4:5\"}\ncontrol: {<<: *c}\n",
			[]string{"control.bind: unknown key (line 1)"}},
		{"all at once", "nod: a\ncache: {max_flows: x}\nlog:\n  lvl: debug\n",
			[]string{"nod: unknown key (line 1)", `cache.max_flows: want a whole number, got "x" (line 2)`, "log.lvl: unknown key (line 4)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if c != nil {
				t.Errorf("Parse returned a config along with an error")
			}
			if got := problems(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("Parse problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "cluster: [\n", "yaml: line 1"},
		{"two documents", "node: a\n---\nnode: b\n", "a second YAML document"},
		{"tabs", "cluster:\n\tbind: x\n", "yaml: line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error %v, want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}

// valid returns a configuration that passes Validate without a key file.
func valid() *Config {
	c := Default()
	c.Node = "fw-a"
	c.Cluster.Bind = "10.0.3.1:7946"
	c.Cluster.Insecure = true
	return c
}

// TestWildcardBindNeedsKey: listening on every address is allowed with a
// key (memberlist then advertises a guessed address; the agent warns), and
// refused without one.
func TestWildcardBindNeedsKey(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, bind := range []string{"0.0.0.0:7946", "[::]:7946"} {
		c := valid()
		c.Cluster.Bind = bind
		c.Cluster.Insecure = false
		c.Cluster.KeyFile = writeKeyFile(t, key, 0o600)
		if err := c.Validate(); err != nil {
			t.Errorf("bind %s with a key: %v", bind, err)
		}
		c.Cluster.Insecure, c.Cluster.KeyFile = true, ""
		if got := problems(t, c.Validate()); len(got) != 1 || !strings.HasPrefix(got[0], "cluster.bind: ") {
			t.Errorf("bind %s, insecure: %q, want one cluster.bind problem", bind, got)
		}
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	c := valid()
	c.Cluster.Bind = "" // derived at start from the first join peer
	c.Cluster.Advertise = "[fd00::1]:7946"
	c.Cluster.Join = []string{"10.0.3.2:7946", "fw-b:7946", "[fd00::2]:7946"}
	c.Filter.Protocols = []string{"TCP", "udplite", "igmp", "99"}
	c.Filter.IgnoreAddresses = []string{"10.0.3.1", "192.168.0.0/16", "fe80::/10"}
	c.Filter.TCPStates = []string{"ESTABLISHED", "syn_sent2"}
	c.Filter.Zones = []int{0, 65535}
	c.Filter.Marks = []string{"0x10/0xf0", "5", "0/0"}
	c.Filter.IgnorePorts = []string{"udp/53", "TCP/6000-6063", "sctp/1-65535"}
	c.Filter.Labels = []string{"0", "127", "ALL"}
	c.Filter.MinAge = Duration(2 * time.Second)
	c.PurgeTimeout = 0
	c.Log = Log{Level: "debug", Format: "json"}
	c.Kernel = Kernel{Netns: "/proc/1/ns/net", EventBuffer: MaxEventBuffer} // the largest valid size
	c.Cache.MaxFlows = 1000
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.Kernel.EventBuffer = 64 * KiB
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, listen := range []string{"127.0.0.1:9469", ":9469", "[::1]:9469"} {
		c.Metrics.Listen = listen
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate with metrics.listen %q: %v", listen, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		path   string
		msg    string // substring of the message
	}{
		{"empty node", func(c *Config) { c.Node = "" }, "node", "must not be empty"},
		{"node with a space", func(c *Config) { c.Node = "fw a" }, "node", "at most 64 letters"},
		{"node too long", func(c *Config) { c.Node = strings.Repeat("a", 65) }, "node", "at most 64"},
		{"bind without port", func(c *Config) { c.Cluster.Bind = "10.0.0.1" }, "cluster.bind", "want host:port"},
		{"bind hostname", func(c *Config) { c.Cluster.Bind = "fw-a:7946" }, "cluster.bind", "not an IP address"},
		{"bind port 0", func(c *Config) { c.Cluster.Bind = "10.0.0.1:0" }, "cluster.bind", "from 1 to 65535"},
		{"bind port too big", func(c *Config) { c.Cluster.Bind = "10.0.0.1:65536" }, "cluster.bind", "from 1 to 65535"},
		{"bind port name", func(c *Config) { c.Cluster.Bind = "10.0.0.1:http" }, "cluster.bind", "from 1 to 65535"},
		{"bind empty host", func(c *Config) { c.Cluster.Bind = ":7946" }, "cluster.bind", "missing host"},
		{"no bind and no join", func(c *Config) { c.Cluster.Bind, c.Cluster.Join = "", nil }, "cluster.bind",
			"not set, and cluster.join is empty: set it to this node's address on the sync link"},
		{"wildcard bind when insecure", func(c *Config) { c.Cluster.Bind = "0.0.0.0:7946" }, "cluster.bind",
			"0.0.0.0 listens on every address: refused with insecure: true"},
		{"v6 wildcard bind when insecure", func(c *Config) { c.Cluster.Bind = "[::]:7946" }, "cluster.bind",
			":: listens on every address: refused with insecure: true"},
		{"advertise unspecified", func(c *Config) { c.Cluster.Advertise = "0.0.0.0:7946" }, "cluster.advertise", "unspecified"},
		{"advertise v6 unspecified", func(c *Config) { c.Cluster.Advertise = "[::]:7946" }, "cluster.advertise", "unspecified"},
		{"advertise hostname", func(c *Config) { c.Cluster.Advertise = "fw-a:7946" }, "cluster.advertise", "not an IP address"},
		{"join without port", func(c *Config) { c.Cluster.Join = []string{"10.0.0.2:7946", "fw-b"} }, "cluster.join[1]", "want host:port"},
		{"join bad host", func(c *Config) { c.Cluster.Join = []string{"fw b:7946"} }, "cluster.join[0]", "neither an IP address nor a host name"},
		{"join empty host", func(c *Config) { c.Cluster.Join = []string{":7946"} }, "cluster.join[0]", "missing host"},
		{"insecure with explicit key file", func(c *Config) { c.keyFileSet = true }, "cluster.insecure", "insecure: true and key_file both set; choose one"},
		{"insecure with other key file", func(c *Config) { c.Cluster.KeyFile = "/k" }, "cluster.insecure", "choose one"},
		{"no key file", func(c *Config) { c.Cluster.Insecure, c.Cluster.KeyFile = false, "" }, "cluster.key_file", "ctsync keygen >"},
		{"cluster name", func(c *Config) { c.Cluster.Name = "" }, "cluster.name", "must not be empty"},
		{"relative socket", func(c *Config) { c.Control.Socket = "ctsync.sock" }, "control.socket", "absolute path"},
		{"empty socket", func(c *Config) { c.Control.Socket = "" }, "control.socket", "absolute path"},
		{"unknown protocol", func(c *Config) { c.Filter.Protocols = []string{"tcp", "ipv5"} }, "filter.protocols[1]", `unknown name "ipv5"`},
		{"duplicate protocol", func(c *Config) { c.Filter.Protocols = []string{"tcp", "TCP"} }, "filter.protocols[1]", "listed twice"},
		{"duplicate protocol by number", func(c *Config) { c.Filter.Protocols = []string{"igmp", "2"} }, "filter.protocols[1]", "listed twice"},
		{"protocol number too big", func(c *Config) { c.Filter.Protocols = []string{"256"} }, "filter.protocols[0]", `unknown name "256"`},
		{"no protocols", func(c *Config) { c.Filter.Protocols = nil }, "filter.protocols", "nothing would be replicated"},
		{"bad address", func(c *Config) { c.Filter.IgnoreAddresses = []string{"10.0.0.300"} }, "filter.ignore_addresses[0]", "want a CIDR"},
		{"bad prefix length", func(c *Config) { c.Filter.IgnoreAddresses = []string{"10.0.0.0/33"} }, "filter.ignore_addresses[0]", "want a CIDR"},
		{"host bits set", func(c *Config) { c.Filter.IgnoreAddresses = []string{"::1/128", "10.0.3.1/24"} }, "filter.ignore_addresses[1]", "write 10.0.3.1 for the address alone or 10.0.3.0/24"},
		{"zoned address", func(c *Config) { c.Filter.IgnoreAddresses = []string{"fe80::1%eth0"} }, "filter.ignore_addresses[0]", "want a CIDR"},
		{"unknown TCP state", func(c *Config) { c.Filter.TCPStates = []string{"OPEN"} }, "filter.tcp_states[0]", `unknown name "OPEN"`},
		{"duplicate TCP state", func(c *Config) { c.Filter.TCPStates = []string{"close", "CLOSE"} }, "filter.tcp_states[1]", "listed twice"},
		{"zone out of range", func(c *Config) { c.Filter.Zones = []int{0, 65536} }, "filter.zones[1]", "want a zone from 0 to 65535, got 65536"},
		{"negative zone", func(c *Config) { c.Filter.Zones = []int{-1} }, "filter.zones[0]", "got -1"},
		{"duplicate zone", func(c *Config) { c.Filter.Zones = []int{3, 3} }, "filter.zones[1]", "listed twice"},
		{"bad mark", func(c *Config) { c.Filter.Marks = []string{"5", "x5"} }, "filter.marks[1]", "want VALUE or VALUE/MASK"},
		{"bad mark mask", func(c *Config) { c.Filter.Marks = []string{"0x10/0xfffffffff"} }, "filter.marks[0]", "want VALUE or VALUE/MASK"},
		{"mark outside its mask", func(c *Config) { c.Filter.Marks = []string{"0x11/0xf0"} }, "filter.marks[0]", "bits outside mask 0xf0"},
		{"port rule without protocol", func(c *Config) { c.Filter.IgnorePorts = []string{"53"} }, "filter.ignore_ports[0]", "want PROTO/PORT"},
		{"port rule for icmp", func(c *Config) { c.Filter.IgnorePorts = []string{"icmp/8"} }, "filter.ignore_ports[0]", "want PROTO/PORT"},
		{"port 0", func(c *Config) { c.Filter.IgnorePorts = []string{"udp/0"} }, "filter.ignore_ports[0]", "want PROTO/PORT"},
		{"port too big", func(c *Config) { c.Filter.IgnorePorts = []string{"udp/53", "tcp/65536"} }, "filter.ignore_ports[1]", "want PROTO/PORT"},
		{"port range reversed", func(c *Config) { c.Filter.IgnorePorts = []string{"tcp/200-100"} }, "filter.ignore_ports[0]", "ends before it starts"},
		{"label bit out of range", func(c *Config) { c.Filter.Labels = []string{"1", "128"} }, "filter.labels[1]", "out of range 0-127"},
		{"label name without a map", func(c *Config) {
			ConnlabelFile = "/nonexistent/connlabel.conf"
			c.Filter.Labels = []string{"blue"}
		}, "filter.labels[0]", `label name "blue"`},
		{"negative min_age", func(c *Config) { c.Filter.MinAge = Duration(-time.Second) }, "filter.min_age", "must not be negative"},
		{"negative commit timeout", func(c *Config) { c.Commit.Timeout = Duration(-time.Second) }, "commit.timeout", "must not be negative"},
		{"commit mode", func(c *Config) { c.Commit.Mode = "warm" }, "commit.mode", `want commit or hot, got "warm"`},
		{"negative purge timeout", func(c *Config) { c.PurgeTimeout = -1 }, "purge_timeout", "must not be negative"},
		{"metrics without port", func(c *Config) { c.Metrics.Listen = "127.0.0.1" }, "metrics.listen", "want host:port"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", `want debug, info, warn or error, got "trace"`},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format", `want text or json, got "logfmt"`},
		{"relative netns path", func(c *Config) { c.Kernel.Netns = "run/netns/x" }, "kernel.netns", "absolute path"},
		{"netns dot-dot", func(c *Config) { c.Kernel.Netns = ".." }, "kernel.netns", "absolute path"},
		{"event buffer too small", func(c *Config) { c.Kernel.EventBuffer = 64*KiB - 1 }, "kernel.event_buffer", "want 64KiB to 2147483647 bytes"},
		// 2GiB does not fit the C int of SO_RCVBUFFORCE: it would wrap negative.
		{"event buffer 2GiB", func(c *Config) { c.Kernel.EventBuffer = 2 * GiB }, "kernel.event_buffer",
			"want 64KiB to 2147483647 bytes (2GiB less one byte: the kernel's SO_RCVBUFFORCE takes a C int), got 2GiB"},
		{"event buffer too big", func(c *Config) { c.Kernel.EventBuffer = 3 * GiB }, "kernel.event_buffer", "got 3GiB"},
		{"max flows", func(c *Config) { c.Cache.MaxFlows = 999 }, "cache.max_flows", "want at least 1000, got 999"},
	}
	oldLabels := ConnlabelFile
	t.Cleanup(func() { ConnlabelFile = oldLabels })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(c)
			ps, ok := errors.AsType[Problems](c.Validate())
			if !ok || len(ps) != 1 {
				t.Fatalf("Validate = %v, want one problem at %s", ps, tt.path)
			}
			if ps[0].Path != tt.path || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("Validate = %q, want %s: ...%s...", ps[0], tt.path, tt.msg)
			}
		})
	}
}

func TestValidateListsAllProblems(t *testing.T) {
	c := valid()
	c.Node = ""
	c.Cluster.Bind = "nowhere"
	c.Filter.Protocols = []string{"tcp", "ipx"}
	c.Log.Level = "loud"
	c.Cache.MaxFlows = 0
	err := c.Validate()
	want := []string{
		"node: must not be empty",
		`cluster.bind: want host:port such as 10.0.3.1:7946 ([::1]:7946 for IPv6), got "nowhere"`,
		`filter.protocols[1]: unknown name "ipx"; want one of tcp udp icmp icmpv6 sctp dccp gre udplite, another protocol's name or a number 0-255`,
		`log.level: want debug, info, warn or error, got "loud"`,
		"cache.max_flows: want at least 1000, got 0",
	}
	if got := problems(t, err); !slices.Equal(got, want) {
		t.Fatalf("Validate problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := err.Error(), strings.Join(want, "\n"); got != want {
		t.Fatalf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestInsecureWithKeyFile(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  bool
	}{
		{"insecure alone (default key_file)", "node: a\ncluster: {bind: 10.0.3.1:7946, insecure: true}\n", false},
		{"insecure and empty key_file", "node: a\ncluster: {bind: 10.0.3.1:7946, insecure: true, key_file: \"\"}\n", false},
		{"insecure and key_file", "node: a\ncluster: {bind: 10.0.3.1:7946, insecure: true, key_file: /etc/ctsync/cluster.key}\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("Validate = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && err.Error() != "cluster.insecure: insecure: true and key_file both set; choose one" {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
}

// writeKeyFile writes content to a new file in a temporary directory.
func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // despite the umask
		t.Fatal(err)
	}
	return path
}

// chownKeyFile gives path to uid (and its group); it skips the test when
// not root.
func chownKeyFile(t *testing.T, path string, uid int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKeyFile(t *testing.T) {
	good, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		path func(t *testing.T) string
		want []string // substrings, one per problem; none = valid
	}{
		{"good key", func(t *testing.T) string { return writeKeyFile(t, good+"\n", 0o600) }, nil},
		{"16-byte key, read-only", func(t *testing.T) string { return writeKeyFile(t, "AAAAAAAAAAAAAAAAAAAAAA==", 0o400) }, nil},
		{"missing", func(t *testing.T) string { return filepath.Join(dir, "nope") },
			[]string{"does not exist; create it with `ctsync keygen > " + filepath.Join(dir, "nope")}},
		{"directory", func(t *testing.T) string { return dir }, []string{"is not a regular file"}},
		{"world-readable", func(t *testing.T) string { return writeKeyFile(t, good, 0o644) },
			[]string{"accessible by group or others (mode 0644); run `chmod 600 "}},
		{"group-writable", func(t *testing.T) string { return writeKeyFile(t, good, 0o620) }, []string{"mode 0620"}},
		{"not base64", func(t *testing.T) string { return writeKeyFile(t, "not a key!", 0o600) },
			[]string{"key is not base64: illegal base64 data at input byte 3; run `ctsync keygen > "}},
		{"wrong length", func(t *testing.T) string { return writeKeyFile(t, "AAAA", 0o600) },
			[]string{"key is 3 bytes long, want 16, 24 or 32"}},
		{"empty", func(t *testing.T) string { return writeKeyFile(t, "", 0o600) }, []string{"key is 0 bytes long"}},
		{"both wrong", func(t *testing.T) string { return writeKeyFile(t, "AAAA", 0o666) },
			[]string{"chmod 600", "key is 3 bytes long"}},
		{"owned by another user", func(t *testing.T) string { return chownKeyFile(t, writeKeyFile(t, good, 0o600), 65534) },
			[]string{"is owned by uid 65534, neither root nor the daemon's user (uid " + strconv.Itoa(os.Geteuid()) + "): anyone acting as uid 65534 can replace the key; run `chown root:root "}},
		{"owned by another user, world-readable", func(t *testing.T) string { return chownKeyFile(t, writeKeyFile(t, good, 0o604), 65534) },
			[]string{"owned by uid 65534", "mode 0604"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.Cluster.Insecure = false
			c.Cluster.KeyFile = tt.path(t)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				key, err := c.Key()
				if err != nil || (len(key) != 32 && len(key) != 16) {
					t.Fatalf("Key() = %d bytes, %v", len(key), err)
				}
				return
			}
			ps, _ := errors.AsType[Problems](err)
			if len(ps) != len(tt.want) {
				t.Fatalf("Validate = %v, want %d problems", err, len(tt.want))
			}
			for i, p := range ps {
				if p.Path != "cluster.key_file" || !strings.Contains(p.Message, tt.want[i]) {
					t.Errorf("problem %d = %q, want cluster.key_file: ...%s...", i, p, tt.want[i])
				}
			}
		})
	}
}

func TestKey(t *testing.T) {
	c := valid()
	if key, err := c.Key(); key != nil || err != nil {
		t.Fatalf("Key() with insecure = %v, %v; want nil, nil", key, err)
	}
	c.Cluster.Insecure = false
	c.Cluster.KeyFile = filepath.Join(t.TempDir(), "missing")
	if _, err := c.Key(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Key() of a missing file = %v, want ErrNotExist", err)
	}
	c.Cluster.KeyFile = writeKeyFile(t, "AAAA", 0o600)
	if _, err := c.Key(); err == nil {
		t.Fatal("Key() of a 3-byte key: no error")
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	key, err := ParseKey(" " + a + "\n")
	if err != nil || len(key) != 32 {
		t.Fatalf("ParseKey(GenerateKey()) = %d bytes, %v; want 32", len(key), err)
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in   string
		size int // 0 = error
	}{
		{"AAAAAAAAAAAAAAAAAAAAAA==", 16},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 24},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 32},
		{"AAAAAAAAAAAAAAAAAAAAAA", 0}, // unpadded
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 0},
		{"", 0},
		{"!!!!", 0},
	}
	for _, tt := range tests {
		key, err := ParseKey(tt.in)
		if got := len(key); got != tt.size || (err == nil) != (tt.size > 0) {
			t.Errorf("ParseKey(%q) = %d bytes, %v; want %d", tt.in, got, err, tt.size)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize // -1 = error
		text string
	}{
		{"64MiB", 64 << 20, "64MiB"},
		{"512KiB", 512 << 10, "512KiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"2048MiB", 2 << 30, "2GiB"},
		{"1048576", 1 << 20, "1MiB"},
		{"65537", 65537, "65537"},
		{"100B", 100, "100"},
		{" 8 MiB ", 8 << 20, "8MiB"},
		{"0", 0, "0"},
		{"64MB", -1, ""},
		{"-1KiB", -1, ""},
		{"1.5GiB", -1, ""},
		{"MiB", -1, ""},
		{"99999999999999999GiB", -1, ""},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want || got.String() != tt.text {
			t.Errorf("ParseByteSize(%q) = %d (%s), %v; want %d (%s)", tt.in, got, got, err, tt.want, tt.text)
		}
	}
}

func TestEventBufferBytes(t *testing.T) {
	c := valid()
	for _, tt := range []struct {
		size ByteSize
		want int
	}{{64 * MiB, 64 << 20}, {MaxEventBuffer, 1<<31 - 1}, {2 * GiB, 1<<31 - 1}} {
		c.Kernel.EventBuffer = tt.size
		if got := c.EventBufferBytes(); got != tt.want {
			t.Errorf("EventBufferBytes with %s = %d, want %d", tt.size, got, tt.want)
		}
	}
}

// ignorePrefixes returns filter.ignore_addresses as prefixes (a plain
// address as a /32 or /128), leaving out the entries Validate would refuse:
// what parsePrefix makes of the list.
func ignorePrefixes(c *Config) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.Filter.IgnoreAddresses))
	for _, s := range c.Filter.IgnoreAddresses {
		if p, msg := parsePrefix(s); msg == "" {
			out = append(out, p)
		}
	}
	return out
}

func TestIgnorePrefixes(t *testing.T) {
	c := valid()
	c.Filter.IgnoreAddresses = []string{"127.0.0.0/8", "::1/128", "10.0.3.1", "fd00::1", "bogus"}
	want := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.3.1/32"), netip.MustParsePrefix("fd00::1/128"),
	}
	if got := ignorePrefixes(c); !slices.Equal(got, want) {
		t.Fatalf("ignorePrefixes = %v, want %v", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctsync.yaml")
	if err := os.WriteFile(path, []byte("node: fw-a\ncluster: {insecure: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.Node != "fw-a" || !c.Cluster.Insecure {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("nod: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if got, want := problems(t, err), []string{"nod: unknown key (line 1)"}; !slices.Equal(got, want) {
		t.Fatalf("Load problems = %q, want %q", got, want)
	}
	if !strings.HasPrefix(err.Error(), "config "+bad+": ") {
		t.Fatalf("Load error %q does not name the file", err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	if _, err := Check(write("good.yaml", "node: fw-a\ncluster: {join: [\"10.0.3.2:7946\"], insecure: true}\n")); err != nil {
		t.Fatalf("Check(good) = %v", err)
	}

	// Decoding and validation problems come together; values that did not
	// decode stay at their (valid) defaults and are reported once.
	_, err := Check(write("bad.yaml", `node: "fw a"
cluster:
  bnd: 1.2.3.4:5
  insecure: true
  join: [nowhere]
cache: {max_flows: lots}
log: {level: loud}
purge_timeout: 10
`))
	want := []string{
		"cluster.bnd: unknown key (line 3)",
		`cache.max_flows: want a whole number, got "lots" (line 6)`,
		`purge_timeout: want a duration such as "60s" or "1m30s", got "10" (line 8)`,
		`node: want at most 64 letters, digits, '.', '-' or '_', got "fw a"`,
		`cluster.join[0]: want host:port such as 10.0.3.1:7946 ([::1]:7946 for IPv6), got "nowhere"`,
		`log.level: want debug, info, warn or error, got "loud"`,
	}
	if got := problems(t, err); !slices.Equal(got, want) {
		t.Fatalf("Check problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if _, err := Check(write("syntax.yaml", "cluster: [\n")); err == nil || !strings.Contains(err.Error(), "yaml: line 1") {
		t.Fatalf("Check(syntax error) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(DefaultYAML()))
	f.Add([]byte(""))
	f.Add([]byte("node: a\ncluster:\n  bnd: x\n"))
	f.Add([]byte("cluster: [\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("a: &a [*a]\ncluster: &c {<<: *c}\n"))
	f.Add([]byte("filter: {protocols: [tcp, {a: b}], ignore_addresses: 1}\n"))
	f.Add([]byte("kernel: {event_buffer: 99999999999GiB}\npurge_timeout: -5s\n"))
	f.Add([]byte("node: a\n---\nnode: b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of config and error", c, err)
		}
		if c != nil {
			c.Cluster.Insecure = true // keep Validate away from the fuzzed key_file path
			_ = c.Validate()
			_ = ignorePrefixes(c)
			_ = c.EventBufferBytes()
		}
		if ps, ok := errors.AsType[Problems](err); ok && len(ps) == 0 {
			t.Fatal("Parse returned empty Problems")
		}
	})
}

// TestFilterKeysParse: the filter keys added for richer filters decode from
// YAML (labels mixing numbers and names, zones as numbers) and report
// problems with their key paths.
func TestFilterKeysParse(t *testing.T) {
	old := ConnlabelFile
	ConnlabelFile = filepath.Join(t.TempDir(), "connlabel.conf")
	t.Cleanup(func() { ConnlabelFile = old })
	if err := os.WriteFile(ConnlabelFile, []byte("3 blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte("filter:\n  zones: [0, 7]\n  marks: [\"0x10/0xf0\", 5]\n  ignore_ports: [udp/53]\n  labels: [1, blue]\n  min_age: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Filter
	if !slices.Equal(f.Zones, []int{0, 7}) || !slices.Equal(f.Marks, []string{"0x10/0xf0", "5"}) ||
		!slices.Equal(f.IgnorePorts, []string{"udp/53"}) || !slices.Equal(f.Labels, []string{"1", "blue"}) || f.MinAge != Duration(2*time.Second) {
		t.Fatalf("filter = %+v", f)
	}
	m, err := f.LabelMask()
	if err != nil || m[0] != 0x0a {
		t.Fatalf("LabelMask = %x, %v; want bits 1 and 3", m, err)
	}
	if d := Default().Filter; !slices.Equal(d.Labels, []string{"all"}) || d.MinAge != 0 || len(d.Zones)+len(d.Marks)+len(d.IgnorePorts) != 0 {
		t.Fatalf("default filter = %+v", d)
	}
	_, err = Parse([]byte("filter:\n  zones: [a]\n  min_age: soon\n"))
	for _, want := range []string{"filter.zones[0]: want a whole number", "filter.min_age: want a duration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse error %v, want %q", err, want)
		}
	}
}
