package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration: the dotted key path it is
// about ("cluster.bind", "filter.protocols[2]"; empty for the file as a
// whole) and what is wrong, said so that the operator knows what to change.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems is the error Parse and Validate return for a configuration with
// problems: all of them, in file order. Get it with errors.As.
type Problems []Problem

// Error lists the problems one per line, as "PATH: MESSAGE".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps *Problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns ps as an error, or nil when there are none.
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Default returns the configuration with every key at its default. node is
// the hostname (empty if it cannot be read, which Validate reports).
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		Node: host,
		Cluster: Cluster{
			Join:    []string{},
			KeyFile: DefaultKeyFile,
			Name:    DefaultClusterName,
		},
		Control: Control{Socket: DefaultSocket},
		Filter: Filter{
			Protocols:       slices.Clone(protocols),
			IgnoreAddresses: []string{"127.0.0.0/8", "::1/128"},
			TCPStates:       []string{},
			Zones:           []int{},
			Marks:           []string{},
			IgnorePorts:     []string{},
			Labels:          []string{LabelsAll},
		},
		Commit:       Commit{Timeout: 0, Mode: ModeCommit, Gate: true},
		PurgeTimeout: Duration(60 * time.Second),
		Log:          Log{Level: "info", Format: "text"},
		Kernel:       Kernel{EventBuffer: DefaultEventBuffer},
		Cache:        Cache{MaxFlows: DefaultMaxFlows},
	}
}

// Load reads the configuration file at path; see Parse. It does not call
// Validate (Check does both).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Check reads the configuration file at path and validates it: Load and
// Validate in one step. When the file has decoding problems it still
// validates the values that did decode, so the Problems it returns (wrapped
// with the path; get them with errors.As) are all there are.
func Check(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, ps, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if vps, ok := errors.AsType[Problems](c.Validate()); ok {
		ps = append(ps, vps...)
	}
	if len(ps) > 0 {
		return nil, fmt.Errorf("config %s: %w", path, ps)
	}
	return c, nil
}

// Parse decodes a configuration file on top of Default, so keys left out
// keep their defaults. Decoding is strict: an unknown key, a key given twice
// or a value of the wrong type is an error, and all such problems are
// returned at once as Problems naming each key path and line. A YAML syntax
// error is returned as is. An empty file gives the defaults.
//
// Parse writes protocol names in lower case and TCP state names in upper
// case. It does not call Validate.
func Parse(data []byte) (*Config, error) {
	c, ps, err := parse(data)
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

// parse is Parse, except that on decoding problems it also returns the
// configuration decoded leniently: unknown keys ignored, values that do not
// decode left at their defaults. err is for files that cannot be read as
// YAML at all.
func parse(data []byte) (*Config, Problems, error) {
	cfg := Default()

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return cfg, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("a second YAML document starts at line %d; the file must hold one", next.Line)
	}
	if len(doc.Content) == 0 {
		return cfg, nil, nil
	}
	root := doc.Content[0]
	w := &walker{}
	w.check(root, reflect.TypeFor[Config](), "", 0)
	ps := w.ps
	if root.Kind != yaml.MappingNode && len(ps) > 0 {
		return nil, nil, ps // nothing to decode leniently
	}

	// The check above reports, with key paths, everything the strict
	// decoder refuses; the decoder does the actual work. With problems,
	// decode what can be decoded: yaml keeps going past values of the wrong
	// type (the unmarshalers here report theirs as *yaml.TypeError too).
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(len(ps) == 0)
	if err := d.Decode(cfg); err != nil && !errors.Is(err, io.EOF) && len(ps) == 0 {
		return nil, nil, err
	}
	if v := lookup(root, "cluster", "key_file"); v != nil && cfg.Cluster.KeyFile != "" {
		cfg.keyFileSet = true
	}
	for i, p := range cfg.Filter.Protocols {
		cfg.Filter.Protocols[i] = strings.ToLower(p)
	}
	for i, s := range cfg.Filter.TCPStates {
		cfg.Filter.TCPStates[i] = strings.ToUpper(s)
	}
	return cfg, ps, nil
}

// Bounds on the walk over a YAML tree: aliases may form cycles, and merge
// keys may fan out.
const (
	maxDepth = 32
	maxSteps = 10000
)

// walker checks a YAML tree against the Config type.
type walker struct {
	ps    Problems
	steps int
}

// check walks the YAML node n that is to be decoded into a value of type t
// at key path path, and adds a problem for every unknown or repeated key and
// every value that does not decode into its field.
func (w *walker) check(n *yaml.Node, t reflect.Type, path string, depth int) {
	ps := &w.ps
	if w.steps++; w.steps == maxSteps {
		ps.add(path, "too many aliases and merges (line %d)", n.Line)
	}
	if w.steps >= maxSteps {
		return
	}
	line := n.Line
	for n.Kind == yaml.AliasNode {
		if depth++; depth > maxDepth || n.Alias == nil {
			ps.add(path, "alias nested too deeply (line %d)", line)
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // the decoder leaves the default (or empties a list)
	}
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			ps.add(path, "want a mapping of keys, got %s (line %d)", describe(n), line)
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				w.checkMerge(v, t, path, depth+1)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				ps.add(path, "a key must be a plain name, got %s (line %d)", describe(k), k.Line)
				continue
			}
			kpath := join(path, k.Value)
			f, ok := field(t, k.Value)
			if !ok {
				ps.add(kpath, "unknown key (line %d)", k.Line)
				continue
			}
			if first, dup := seen[k.Value]; dup {
				ps.add(kpath, "set twice (lines %d and %d)", first, k.Line)
				continue
			}
			seen[k.Value] = k.Line
			w.check(v, f.Type, kpath, depth+1)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			ps.add(path, "want a list such as [a, b], got %s (line %d)", describe(n), line)
			return
		}
		for i, el := range n.Content {
			w.check(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	default:
		v := reflect.New(t)
		err := n.Decode(v.Interface())
		te, ok := errors.AsType[*yaml.TypeError](err)
		switch {
		case err == nil:
		case ok && v.Type().Implements(reflect.TypeFor[yaml.Unmarshaler]()):
			ps.add(path, "%s (line %d)", strings.Join(te.Errors, "; "), line)
		case ok:
			ps.add(path, "want %s, got %s (line %d)", want(t), describe(n), line)
		default:
			ps.add(path, "%v (line %d)", err, line)
		}
	}
}

// checkMerge checks the value of a merge key ("<<: *a" or "<<: [*a, *b]")
// in a mapping decoded into struct type t.
func (w *walker) checkMerge(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind == yaml.SequenceNode {
		for _, el := range n.Content {
			w.check(el, t, path, depth+1)
		}
		return
	}
	w.check(n, t, path, depth)
}

// field finds the struct field of t whose yaml key is name.
func field(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); f.IsExported() && tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// lookup returns the value of the nested key path in mapping n, or nil.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, key := range keys {
		for depth := 0; n != nil && n.Kind == yaml.AliasNode && depth < maxDepth; depth++ {
			n = n.Alias
		}
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var found *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				found = n.Content[i+1]
			}
		}
		n = found
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a YAML node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// want names what a field of type t takes, for messages.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// UnitWritableDirs are the directories the shipped systemd unit
// (contrib/systemd/ctsync.service) lets the daemon write: its
// ReadWritePaths and RuntimeDirectory (/run/NAME; StateDirectory would be
// /var/lib/NAME). ProtectSystem=strict makes every other path read-only,
// so a control socket elsewhere cannot be created. A test keeps the list
// in step with the unit file. Never modified.
var UnitWritableDirs = []string{"/run/ctsync"}

// Warnings returns what is valid but likely wrong, one Problem each, for
// `config check` to show without failing: a control.socket outside
// UnitWritableDirs, which the daemon cannot create under the shipped unit
// (conntrackd's /var/run/conntrackd.ctl, say).
func (c *Config) Warnings() []Problem {
	var ps Problems
	if sock := c.Control.Socket; filepath.IsAbs(sock) && !unitWritable(sock) {
		ps.add("control.socket", "%s is outside what the shipped systemd unit lets the daemon write (%s; "+
			"ProtectSystem=strict makes the rest read-only): under it the daemon cannot create the socket; "+
			"use %s, or add the directory to ReadWritePaths= in a drop-in (systemctl edit ctsync)",
			sock, strings.Join(UnitWritableDirs, ", "), DefaultSocket)
	}
	return ps
}

// unitWritable reports whether path lies inside one of UnitWritableDirs.
// /var/run is /run.
func unitWritable(path string) bool {
	path = filepath.Clean(path)
	if rest, ok := strings.CutPrefix(path, "/var/run/"); ok {
		path = "/run/" + rest
	}
	for _, d := range UnitWritableDirs {
		if strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// Validate checks the values of c and returns every problem at once as
// Problems, or nil. Besides the values themselves it checks, unless
// cluster.insecure is true, that the key file exists, holds valid keys, is
// private to its owner and is owned by root or the user running Validate
// (the daemon's user).
func (c *Config) Validate() error {
	var ps Problems
	if msg := checkName(c.Node); msg != "" {
		ps.add("node", "%s", msg)
	}
	c.checkCluster(&ps)
	c.checkControl(&ps)
	c.checkFilter(&ps)
	c.checkCommit(&ps)
	c.checkMetricsLog(&ps)
	c.checkKernelCache(&ps)
	return ps.err()
}

// checkCluster checks the cluster section: bind, advertise, join, the key
// (or insecure) and the name.
func (c *Config) checkCluster(ps *Problems) {
	c.checkBind(ps)
	if c.Cluster.Advertise != "" {
		if msg := checkHostPort(c.Cluster.Advertise, hostIP); msg != "" {
			ps.add("cluster.advertise", "%s", msg)
		}
	}
	for i, j := range c.Cluster.Join {
		if msg := checkHostPort(j, 0); msg != "" {
			ps.add(fmt.Sprintf("cluster.join[%d]", i), "%s", msg)
		}
	}

	c.checkKey(ps)
	if msg := checkName(c.Cluster.Name); msg != "" {
		ps.add("cluster.name", "%s", msg)
	}
}

// checkKey checks cluster.key_file against cluster.insecure: exactly one
// of them, and a key file that checkKeyFile accepts.
func (c *Config) checkKey(ps *Problems) {
	switch {
	case c.Cluster.Insecure:
		if c.keyFileSet || (c.Cluster.KeyFile != "" && c.Cluster.KeyFile != DefaultKeyFile) {
			ps.add("cluster.insecure", "insecure: true and key_file both set; choose one")
		}
	case c.Cluster.KeyFile == "":
		ps.add("cluster.key_file", "required unless insecure: true; create one with `ctsync keygen > %s && chmod 600 %s`",
			DefaultKeyFile, DefaultKeyFile)
	default:
		for _, msg := range checkKeyFile(c.Cluster.KeyFile) {
			ps.add("cluster.key_file", "%s", msg)
		}
	}
}

// checkControl checks the control section.
func (c *Config) checkControl(ps *Problems) {
	if !filepath.IsAbs(c.Control.Socket) {
		ps.add("control.socket", "want an absolute path, got %q", c.Control.Socket)
	}
}

// checkFilter checks the filter section, key by key in the order of the
// file.
func (c *Config) checkFilter(ps *Problems) {
	c.checkProtocols(ps)
	for i, a := range c.Filter.IgnoreAddresses {
		if _, msg := parsePrefix(a); msg != "" {
			ps.add(fmt.Sprintf("filter.ignore_addresses[%d]", i), "%s", msg)
		}
	}
	checkList(ps, "filter.tcp_states", c.Filter.TCPStates, tcpStates, strings.ToUpper)
	c.checkZones(ps)

	for i, m := range c.Filter.Marks {
		if _, err := ParseMark(m); err != nil {
			ps.add(fmt.Sprintf("filter.marks[%d]", i), "%v", err)
		}
	}
	for i, r := range c.Filter.IgnorePorts {
		if _, err := ParsePortRule(r); err != nil {
			ps.add(fmt.Sprintf("filter.ignore_ports[%d]", i), "%v", err)
		}
	}
	for i, l := range c.Filter.Labels {
		one := Filter{Labels: []string{l}}
		if _, err := one.LabelMask(); err != nil {
			_, msg, _ := strings.Cut(err.Error(), ": ")
			ps.add(fmt.Sprintf("filter.labels[%d]", i), "%s", msg)
		}
	}

	if c.Filter.MinAge < 0 {
		ps.add("filter.min_age", "must not be negative, got %s", c.Filter.MinAge)
	}
}

// checkProtocols checks filter.protocols: not empty, each known, none twice.
func (c *Config) checkProtocols(ps *Problems) {
	if len(c.Filter.Protocols) == 0 {
		ps.add("filter.protocols", "empty: nothing would be replicated; list protocols, or remove the key for all of them")
	}
	seen := map[uint8]bool{}
	for i, p := range c.Filter.Protocols {
		// The tracked protocols by name, and any other by number or by
		// its /etc/protocols name (igmp, esp, 99...).
		n, err := protoNumber(p)
		switch {
		case err != nil:
			ps.add(fmt.Sprintf("filter.protocols[%d]", i), "unknown name %q; want one of %s, another protocol's name or a number 0-255",
				p, strings.Join(protocols, " "))
		case seen[n]:
			ps.add(fmt.Sprintf("filter.protocols[%d]", i), "%q is listed twice", p)
		}
		seen[n] = err == nil
	}
}

// checkZones checks filter.zones: each in range, none twice.
func (c *Config) checkZones(ps *Problems) {
	seen := map[int]bool{}
	for i, z := range c.Filter.Zones {
		switch {
		case z < 0 || z > 65535:
			ps.add(fmt.Sprintf("filter.zones[%d]", i), "want a zone from 0 to 65535, got %d", z)
		case seen[z]:
			ps.add(fmt.Sprintf("filter.zones[%d]", i), "zone %d is listed twice", z)
		}
		seen[z] = true
	}
}

// checkCommit checks the commit section and purge_timeout.
func (c *Config) checkCommit(ps *Problems) {
	if c.Commit.Timeout < 0 {
		ps.add("commit.timeout", "must not be negative, got %s", c.Commit.Timeout)
	}
	switch c.Commit.Mode {
	case ModeCommit, ModeHot:
	default:
		ps.add("commit.mode", "want %s or %s, got %q", ModeCommit, ModeHot, c.Commit.Mode)
	}
	if c.PurgeTimeout < 0 {
		ps.add("purge_timeout", "must not be negative, got %s", c.PurgeTimeout)
	}
}

// checkMetricsLog checks the metrics and log sections.
func (c *Config) checkMetricsLog(ps *Problems) {
	if c.Metrics.Listen != "" {
		if msg := checkHostPort(c.Metrics.Listen, emptyHostOK); msg != "" {
			ps.add("metrics.listen", "%s", msg)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		ps.add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		ps.add("log.format", "want text or json, got %q", c.Log.Format)
	}
}

// checkKernelCache checks the kernel and cache sections.
func (c *Config) checkKernelCache(ps *Problems) {
	if ns := c.Kernel.Netns; ns == "." || ns == ".." || (strings.Contains(ns, "/") && !filepath.IsAbs(ns)) {
		ps.add("kernel.netns", "want a name under /run/netns or an absolute path, got %q", ns)
	}
	if b := c.Kernel.EventBuffer; b < MinEventBuffer || b > MaxEventBuffer {
		ps.add("kernel.event_buffer", "want %s to %d bytes (2GiB less one byte: the kernel's SO_RCVBUFFORCE takes a C int), got %s",
			MinEventBuffer, int64(MaxEventBuffer), b)
	}
	if c.Cache.MaxFlows < 1000 {
		ps.add("cache.max_flows", "want at least 1000, got %d", c.Cache.MaxFlows)
	}
}

// checkBind checks cluster.bind. Left empty, the agent binds at start to
// the local address that routes to the first join peer, so there must be
// one. The unspecified address (every interface) is allowed with a key,
// never on an insecure cluster: unauthenticated traffic must stay on the
// sync link.
func (c *Config) checkBind(ps *Problems) {
	bind := c.Cluster.Bind
	if bind == "" {
		if len(c.Cluster.Join) == 0 {
			ps.add("cluster.bind", "not set, and cluster.join is empty: set it to this node's address on the sync link, "+
				"such as 10.0.3.1:%d (without it, the address that routes to the first join peer is used)", DefaultPort)
		}
		return
	}
	if msg := checkHostPort(bind, hostIP|unspecifiedOK); msg != "" {
		ps.add("cluster.bind", "%s", msg)
		return
	}
	host, port, _ := net.SplitHostPort(bind)
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() && c.Cluster.Insecure {
		ps.add("cluster.bind", "%s listens on every address: refused with insecure: true, where anyone who reaches the port "+
			"can inject flows; give this node's address on the sync link, such as 10.0.3.1:%s (or leave bind out to use "+
			"the address that routes to the first join peer), or use a key_file", host, port)
	}
}

// checkName checks a node or cluster name.
func checkName(s string) string {
	if s == "" {
		return "must not be empty"
	}
	ok := len(s) <= 64
	for _, r := range s {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}
	if !ok {
		return fmt.Sprintf("want at most 64 letters, digits, '.', '-' or '_', got %q", s)
	}
	return ""
}

// checkList checks that every entry of list, normalised by norm, is one of
// valid, and that none repeats.
func checkList(ps *Problems, path string, list, valid []string, norm func(string) string) {
	seen := map[string]bool{}
	for i, v := range list {
		n := norm(v)
		switch {
		case !slices.Contains(valid, n):
			ps.add(fmt.Sprintf("%s[%d]", path, i), "unknown name %q; want one of %s", v, strings.Join(valid, " "))
		case seen[n]:
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%q is listed twice", v)
		}
		seen[n] = true
	}
}

// Host rules for checkHostPort.
const (
	hostIP        = 1 << iota // the host must be an IP address (else a hostname is allowed)
	unspecifiedOK             // the host may be 0.0.0.0 or ::
	emptyHostOK               // the host may be empty (":9469")
)

// checkHostPort checks a host:port address.
func checkHostPort(s string, rules int) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("want host:port such as 10.0.3.1:7946 ([::1]:7946 for IPv6), got %q", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("port %q is not a number from 1 to 65535", port)
	}
	addr, err := netip.ParseAddr(host)
	switch {
	case host == "" && rules&emptyHostOK != 0:
	case host == "":
		return fmt.Sprintf("missing host in %q", s)
	case err == nil && addr.IsUnspecified() && rules&unspecifiedOK == 0:
		return fmt.Sprintf("%s is the unspecified address; give an address peers can reach", host)
	case err != nil && rules&hostIP != 0:
		return fmt.Sprintf("%q is not an IP address", host)
	case err != nil && !validHostname(host):
		return fmt.Sprintf("%q is neither an IP address nor a host name", host)
	}
	return ""
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// parsePrefix parses a CIDR or a plain address (a /32 or /128). It returns
// a message instead of an error, for Validate.
func parsePrefix(s string) (netip.Prefix, string) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Sprintf("want a CIDR such as 10.0.0.0/8 or an address, got %q", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Sprintf("want a CIDR such as 10.0.0.0/8 or an address, got %q", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Sprintf("%s has host bits set: write %s for the address alone or %s for the whole network",
			s, p.Addr(), p.Masked())
	}
	return p, ""
}

// checkKeyFile checks that the key file exists, is a private regular file
// owned by root or the user running this (the daemon's user), and holds
// valid keys (one per line, see ParseKeys).
func checkKeyFile(path string) []string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []string{fmt.Sprintf("%s does not exist; create it with `ctsync keygen > %s && chmod 600 %s`", path, path, path)}
	case err != nil:
		return []string{err.Error()}
	case !fi.Mode().IsRegular():
		return []string{fmt.Sprintf("%s is not a regular file", path)}
	}
	var msgs []string
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		// Whoever owns the file can chmod it and write another key.
		msgs = append(msgs, fmt.Sprintf("%s is owned by uid %d, neither root nor the daemon's user (uid %d): anyone acting as uid %d "+
			"can replace the key; run `chown root:root %s`", path, st.Uid, os.Geteuid(), st.Uid, path))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		msgs = append(msgs, fmt.Sprintf("%s is accessible by group or others (mode %04o); run `chmod 600 %s`", path, perm, path))
	}
	data, err := readKeyFile(path)
	if err != nil {
		return append(msgs, err.Error())
	}
	if _, err := ParseKeys(data); err != nil {
		msgs = append(msgs, fmt.Sprintf("%s: %v; run `ctsync keygen > %s`", path, err, path))
	}
	return msgs
}

// Key reads and decodes the cluster key file and returns its primary (first)
// key. It returns nil and no error when cluster.insecure is true.
func (c *Config) Key() ([]byte, error) {
	keys, err := c.Keys()
	if len(keys) == 0 {
		return nil, err
	}
	return keys[0], err
}

// Keys reads and decodes the cluster key file: every key, the primary one
// first (see ParseKeys). It returns nil and no error when cluster.insecure
// is true.
func (c *Config) Keys() ([][]byte, error) {
	if c.Cluster.Insecure {
		return nil, nil
	}
	data, err := readKeyFile(c.Cluster.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w", c.Cluster.KeyFile, err)
	}
	return keys, nil
}

// readKeyFile reads a key file, refusing one far larger than a key.
func readKeyFile(path string) (string, error) {
	const limit = 16 << 10 // a few keys and comments
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > limit {
		return "", fmt.Errorf("%s is larger than %d bytes, too large for a key file", path, limit)
	}
	return string(data), nil
}

// EventBufferBytes returns kernel.event_buffer in bytes, as the kernel
// package's WatchOptions.ReadBuffer takes it: the one path from the key to
// setsockopt. Validate refuses sizes over MaxEventBuffer; the cap keeps an
// unvalidated Config from wrapping to a negative C int all the same.
func (c *Config) EventBufferBytes() int {
	return int(min(c.Kernel.EventBuffer, MaxEventBuffer))
}
