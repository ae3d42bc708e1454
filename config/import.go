package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NoteKind says what an ImportNote means for the translated configuration.
type NoteKind int

const (
	// NoteDropped: the directive has no ctsync equivalent (or is not
	// valid) and is ignored; what is replicated, and how a takeover
	// works, stay as they were.
	NoteDropped NoteKind = iota
	// NoteChanged: ctsync behaves differently from conntrackd with this
	// directive; the reason says how.
	NoteChanged
	// NoteNotNeeded: ctsync does this itself, or needs no setting for it.
	NoteNotNeeded
)

// String returns the note's tag: "dropped", "changed" or "not needed".
func (k NoteKind) String() string {
	switch k {
	case NoteChanged:
		return "changed"
	case NoteNotNeeded:
		return "not needed"
	}
	return "dropped"
}

// ImportNote is a conntrackd.conf directive that Import did not translate
// as it is, what that means (Kind), and why.
type ImportNote struct {
	Kind      NoteKind
	Line      int    // 1-based line of the directive; 0 for the file as a whole
	Directive string // e.g. "General.HashSize 32768"
	Reason    string
}

// String returns "TAG: line N: DIRECTIVE: REASON" ("TAG: DIRECTIVE:
// REASON" for the file as a whole): the tag first, so that grep finds
// each kind.
func (n ImportNote) String() string {
	if n.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", n.Kind, n.Directive, n.Reason)
	}
	return fmt.Sprintf("%s: line %d: %s: %s", n.Kind, n.Line, n.Directive, n.Reason)
}

// Changed reports whether any note is NoteChanged.
func Changed(notes []ImportNote) bool {
	return slices.ContainsFunc(notes, func(n ImportNote) bool { return n.Kind == NoteChanged })
}

// ImportError is a syntax error in a conntrackd.conf.
type ImportError struct {
	Line int
	Msg  string
}

func (e *ImportError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Import translates a conntrackd.conf (conntrack-tools 1.4 syntax) into a
// ctsync configuration file. It returns the YAML, which Parse accepts, and
// one note per directive not translated as it is, tagged dropped, changed
// or not needed (NoteKind); the YAML lists the notes too, as comments at
// its top. conntrackd has no encryption, so the file sets
// cluster.insecure: true, with a comment telling how to switch to a key.
// The control socket stays ctsync's own (DefaultSocket), which the
// shipped systemd unit can write; conntrackd's UNIX Path is noted. A
// syntax error is an *ImportError naming the line. Import never panics on
// any input.
func Import(data []byte) ([]byte, []ImportNote, error) {
	root, err := parseConntrackdConf(string(data))
	if err != nil {
		return nil, nil, err
	}
	im := &importer{}
	for _, n := range root {
		im.top(n)
	}
	body := im.yaml()
	slices.SortStableFunc(im.notes, func(a, b ImportNote) int { return a.Line - b.Line })
	out := append([]byte(importIntro), importNotesComment(im.notes)...)
	out = append(out, body...)
	if _, err := Parse(out); err != nil {
		// A bug of the translation, not of the input: every value was
		// checked before it was written.
		return nil, nil, fmt.Errorf("import: the translated configuration does not parse: %w", err)
	}
	return out, im.notes, nil
}

// importIntro starts every imported file.
const importIntro = `# ctsync configuration imported from conntrackd.conf by ` + "`ctsync config import`" + `.
# Keys not written here keep their defaults (` + "`ctsync config default`" + ` lists
# them all). Check the result with ` + "`ctsync config check -c FILE`" + `.
`

// importNotesComment lists the notes as YAML comments, one per line,
// "# TAG: line N: DIRECTIVE: REASON".
func importNotesComment(notes []ImportNote) string {
	if len(notes) == 0 {
		return "\n"
	}
	var b strings.Builder
	b.WriteString("#\n# What was not translated as it is (dropped: ignored, no equivalent;\n")
	b.WriteString("# changed: ctsync behaves differently; not needed: ctsync does it itself):\n")
	for _, n := range notes {
		b.WriteString("# ")
		b.WriteString(commentSafe(n.String()))
		b.WriteString("\n")
	}
	b.WriteString("\n")
	return b.String()
}

// commentSafe escapes every byte but printable ASCII as \xNN, so that a
// directive's text cannot end the comment (a line break) or make the YAML
// invalid (a control character, invalid UTF-8).
func commentSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}

// confNode is a statement of a conntrackd.conf: words on one line, and for
// a block ("Header words {"), its statements.
type confNode struct {
	line     int
	words    []string
	block    bool
	children []*confNode
}

// parseConntrackdConf splits the text into statements and blocks. A
// statement ends at a newline, ';', '{' (opening a block) or '}'.
// Comments run from '#' to the end of the line; strings may be quoted.
func parseConntrackdConf(src string) ([]*confNode, error) {
	type frame struct {
		node *confNode
		list *[]*confNode
	}
	var top []*confNode
	stack := []frame{{list: &top}}
	var cur *confNode
	line := 1
	endStatement := func() {
		if cur != nil {
			l := stack[len(stack)-1].list
			*l = append(*l, cur)
			cur = nil
		}
	}
	word := func(w string) {
		if cur == nil {
			cur = &confNode{line: line}
		}
		cur.words = append(cur.words, w)
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			endStatement()
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == ';':
			endStatement()
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '{':
			if cur == nil {
				return nil, &ImportError{line, "'{' without a section name before it"}
			}
			if len(stack) > 32 {
				return nil, &ImportError{line, "blocks nested too deep"}
			}
			cur.block = true
			stack = append(stack, frame{node: cur, list: &cur.children})
			cur = nil
			i++
		case c == '}':
			endStatement()
			if len(stack) == 1 {
				return nil, &ImportError{line, "'}' without a matching '{'"}
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			l := stack[len(stack)-1].list
			*l = append(*l, f.node)
			i++
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, &ImportError{line, "unterminated quoted string"}
			}
			word(src[i+1 : j])
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\f\v\n;{}#\"", rune(src[j])) {
				j++
			}
			word(src[i:j])
			i = j
		}
	}
	endStatement()
	if len(stack) > 1 {
		f := stack[len(stack)-1]
		return nil, &ImportError{line, fmt.Sprintf("missing '}' for %q opened on line %d", strings.Join(f.node.words, " "), f.node.line)}
	}
	return top, nil
}

// importer collects the translated values and the notes.
type importer struct {
	notes []ImportNote

	bind, bindFrom string // host of cluster.bind, and the directive it came from
	port           int    // 0 = DefaultPort
	join           []string
	transports     int
	protocols      []string
	ignore         []string
	ignoreSet      bool
	tcpStates      []string
	commitTimeout  *time.Duration
	purgeTimeout   *time.Duration
	hot            bool // DisableExternalCache On
	eventBuffer    ByteSize
	bufferLine     int    // the line eventBuffer came from
	bufferFrom     string // its directive
	maxFlows       int
}

// importDefaultPort is the port of cluster.bind and cluster.join when
// conntrackd.conf names none.
const importDefaultPort = 7946

func (im *importer) note(kind NoteKind, n *confNode, path, reason string) {
	d := strings.Join(n.words, " ")
	if path != "" {
		d = path + "." + d
	}
	if n.block {
		d += " { ... }"
	}
	im.notes = append(im.notes, ImportNote{Kind: kind, Line: n.line, Directive: d, Reason: reason})
}

// dropped, changed and notNeeded add a note of their kind.
func (im *importer) dropped(n *confNode, path, reason string) { im.note(NoteDropped, n, path, reason) }
func (im *importer) changed(n *confNode, path, reason string) { im.note(NoteChanged, n, path, reason) }
func (im *importer) notNeeded(n *confNode, path, reason string) {
	im.note(NoteNotNeeded, n, path, reason)
}

func (im *importer) top(n *confNode) {
	switch n.words[0] {
	case "Sync":
		if !n.block {
			im.dropped(n, "", "want a block: Sync { ... }")
			return
		}
		for _, c := range n.children {
			im.sync(c)
		}
	case "General":
		if !n.block {
			im.dropped(n, "", "want a block: General { ... }")
			return
		}
		for _, c := range n.children {
			im.general(c)
		}
	case "Stats":
		im.changed(n, "", "statistics-collector mode has no ctsync equivalent: ctsync replicates (`ctsync stats` has its counters)")
	case "Helper":
		im.changed(n, "", "user-space conntrack helpers are not part of ctsync: the protocols they track get no helper (use the kernel's helper where there is one)")
	default:
		im.dropped(n, "", "unknown section")
	}
}

func (im *importer) sync(n *confNode) {
	const path = "Sync"
	switch key := n.words[0]; key {
	case "Mode":
		mode := ""
		if len(n.words) > 1 {
			mode = n.words[1]
		}
		switch strings.ToUpper(mode) {
		case "FTFW", "NACK":
		case "NOTRACK", "ALARM", "PERSISTENT":
			im.changed(&confNode{line: n.line, words: n.words[:2]}, path,
				"ctsync has one replication mode, reliable and ordered per flow (like FTFW); it replaces "+mode)
		default:
			im.dropped(n, path, "unknown mode")
			return
		}
		for _, c := range n.children {
			im.syncOption(c, path+".Mode "+mode)
		}
	case "UDP", "TCP", "Multicast":
		im.transport(n, path)
	case "Options":
		for _, c := range n.children {
			switch c.words[0] {
			case "TCPWindowTracking":
				im.notNeeded(c, path+".Options", "ctsync replicates the TCP window data a committed flow needs")
			case "ExpectationSync":
				im.expectationSync(c, path+".Options")
			default:
				im.dropped(c, path+".Options", "unknown option")
			}
		}
	default:
		im.syncOption(n, path)
	}
}

// expectationSync notes Sync.Options.ExpectationSync: ctsync replicates
// every expectation whose master it replicates, whatever the helper.
func (im *importer) expectationSync(n *confNode, path string) {
	switch {
	case n.block:
		var helpers []string
		for _, c := range n.children {
			helpers = append(helpers, c.words...)
		}
		if len(helpers) == 0 {
			im.changed(n, path, "ctsync replicates expectations (with their master flow), of every helper; it cannot leave them out")
			return
		}
		im.changed(n, path, fmt.Sprintf("ctsync replicates expectations (with their master flow) of every helper, not only of %s",
			strings.Join(helpers, ", ")))
	case len(n.words) == 2 && strings.EqualFold(n.words[1], "on"):
		im.notNeeded(n, path, "ctsync always replicates expectations, with their master flow")
	case len(n.words) == 2 && strings.EqualFold(n.words[1], "off"):
		im.changed(n, path, "ctsync always replicates expectations (with their master flow); it cannot leave them out")
	default:
		im.dropped(n, path, "want On, Off or a block of helper names; ctsync replicates expectations anyway")
	}
}

// syncOption handles the options allowed in Mode blocks (and most of them
// directly in Sync).
func (im *importer) syncOption(n *confNode, path string) {
	switch n.words[0] {
	case "CommitTimeout":
		if d, ok := im.seconds(n, path); ok {
			im.commitTimeout = &d
		}
	case "PurgeTimeout":
		if d, ok := im.seconds(n, path); ok {
			im.purgeTimeout = &d
		}
	case "ResendQueueSize", "ACKWindowSize":
		im.notNeeded(n, path, "ctsync's peer streams are reliable and bounded on their own")
	case "DisableExternalCache":
		switch {
		case len(n.words) == 2 && strings.EqualFold(n.words[1], "on"):
			// conntrackd then injects the peers' flows into the kernel
			// as they arrive: ctsync's hot standby.
			im.hot = true
		case len(n.words) == 2 && strings.EqualFold(n.words[1], "off"):
			im.notNeeded(n, path, "the default: peers' flows wait in the external cache until notify master commits them (commit.mode: commit)")
		default:
			im.dropped(n, path, "want On or Off")
		}
	case "DisableInternalCache":
		if len(n.words) == 2 && strings.EqualFold(n.words[1], "on") {
			im.changed(n, path, "ctsync always keeps an internal cache (memory for up to cache.max_flows flows): peers can resync from it")
			return
		}
		im.notNeeded(n, path, "ctsync always keeps an internal cache")
	case "StartupResync":
		im.notNeeded(n, path, "ctsync always resyncs with its peers at start")
	case "RefreshTime", "CacheTimeout":
		im.notNeeded(n, path, "ALARM mode's refresh: ctsync peers check each other's caches and resend what differs")
	default:
		im.dropped(n, path, "unknown option")
	}
}

// transport translates a UDP, TCP or Multicast block into cluster.bind and
// cluster.join.
func (im *importer) transport(n *confNode, path string) {
	kind := n.words[0]
	im.transports++
	if !n.block {
		im.dropped(n, path, "want a block")
		return
	}
	p := path + "." + strings.Join(n.words, " ")
	if im.transports > 1 {
		im.changed(n, path, "ctsync uses one cluster address; this extra dedicated link is not translated (memberlist reaches peers over any route)")
		return
	}
	for _, c := range n.children {
		arg := ""
		if len(c.words) > 1 {
			arg = c.words[1]
		}
		switch key := c.words[0]; {
		case (key == "IPv4_address" || key == "IPv6_address") && kind != "Multicast",
			key == "IPv4_interface" && kind == "Multicast":
			if a, ok := im.addr(c, p, arg); ok {
				if netip.MustParseAddr(a).IsUnspecified() {
					// Every interface: refused for an insecure cluster,
					// which an imported one is.
					im.changed(c, p, "not this node's address on the sync link: cluster.bind must be one (an insecure cluster never listens on every address)")
					continue
				}
				im.bind, im.bindFrom = a, p+"."+key
			}
		case key == "IPv4_address" || key == "IPv6_address":
			im.changed(c, p, "ctsync does not use multicast: it sends to each peer of cluster.join")
		case key == "IPv4_Destination_Address" || key == "IPv6_Destination_Address":
			if a, ok := im.addr(c, p, arg); ok {
				if ip := netip.MustParseAddr(a); ip.IsUnspecified() || ip.IsMulticast() {
					// Not a peer anyone can reach (found by FuzzImport).
					im.dropped(c, p, "not a reachable peer address: put the peer's address in cluster.join")
					continue
				}
				im.join = append(im.join, a)
			}
		case key == "Port" || (key == "Group" && kind == "Multicast"):
			v, err := strconv.Atoi(arg)
			if err != nil || v < 1 || v > 65535 {
				im.dropped(c, p, "want a port number from 1 to 65535")
				continue
			}
			im.port = v
		case key == "Interface":
			im.notNeeded(c, p, "ctsync binds to an address, not an interface: cluster.bind holds the address")
		case key == "SndSocketBuffer" || key == "RcvSocketBuffer":
			im.notNeeded(c, p, "ctsync's cluster traffic is flow-controlled and retried")
		case key == "Checksum":
			im.notNeeded(c, p, "ctsync's cluster traffic is checked (and authenticated with a key)")
		case key == "ErrorQueueLength":
			im.notNeeded(c, p, "ctsync's peer streams retry on their own")
		case key == "IPv6_interface":
			im.dropped(c, p, "ignored by conntrackd too")
		default:
			im.dropped(c, p, "unknown option")
		}
	}
	if kind == "Multicast" && len(im.join) == 0 {
		im.changed(n, path, "a multicast group has no peer addresses: nothing is replicated until each peer's address:port is in cluster.join")
	}
}

func (im *importer) general(n *confNode) {
	const path = "General"
	arg := ""
	if len(n.words) > 1 {
		arg = n.words[1]
	}
	switch n.words[0] {
	case "UNIX":
		for _, c := range n.children {
			switch c.words[0] {
			case "Path":
				if len(c.words) == 2 && c.words[1] == DefaultSocket {
					continue // ctsync's already
				}
				// Not kept: the shipped unit can write only its own
				// runtime directory, and the conntrackd command (ctsync's
				// client) finds ctsync's socket without -C.
				im.notNeeded(c, path+".UNIX", fmt.Sprintf(
					"control.socket stays ctsync's own, %s (the ctsync unit can write only below %s); "+
						"the conntrackd command, ctsync's client, finds it without -C", DefaultSocket, filepath.Dir(DefaultSocket)))
			case "Backlog":
				im.notNeeded(c, path+".UNIX", "deprecated in conntrackd")
			default:
				im.dropped(c, path+".UNIX", "unknown option")
			}
		}
	case "LockFile":
		im.notNeeded(n, path, "the control socket guards against a second daemon, and a stale one after a crash does not block a restart")
	case "NetlinkBufferSize", "SocketBufferSize", "NetlinkBufferSizeMaxGrowth", "SocketBufferSizeMaxGrowth", "SocketBufferSizeMaxGrown":
		v, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || v < 0 {
			im.dropped(n, path, "want a number of bytes")
			return
		}
		// ctsync does not grow the buffer on overrun: it sets the largest
		// size at once.
		if b := ByteSize(v); b > im.eventBuffer {
			im.eventBuffer = b
			im.bufferLine, im.bufferFrom = n.line, "General."+n.words[0]+" "+arg
		}
	case "HashLimit":
		v, err := strconv.Atoi(arg)
		switch {
		case err != nil || v < 1:
			im.dropped(n, path, "want a number of at least 1000 (cache.max_flows)")
			return
		case v < 1000:
			im.changed(n, path, fmt.Sprintf("cache.max_flows is at least 1000: it keeps its default, %d, so more flows are replicated", DefaultMaxFlows))
			return
		}
		im.maxFlows = v
	case "HashSize":
		im.notNeeded(n, path, "ctsync sizes its tables itself (cache.max_flows bounds them)")
	case "Systemd":
		im.notNeeded(n, path, "`ctsync daemon` always speaks sd_notify under systemd")
	case "Nice", "Scheduler":
		im.dropped(n, path, "set the scheduling policy in the systemd unit (Nice=, CPUSchedulingPolicy=) if needed")
	case "LogFile", "Syslog":
		im.dropped(n, path, "ctsync logs to standard error (the journal under systemd); see log.level and log.format")
	case "NetlinkOverrunResync":
		im.notNeeded(n, path, "ctsync always resyncs with the kernel after an overrun")
	case "NetlinkEventsReliable":
		im.notNeeded(n, path, "ctsync detects lost events and resyncs instead")
	case "PollSecs":
		im.changed(n, path, "polling mode has no equivalent: ctsync follows kernel events instead of polling the table")
	case "EventIterationLimit":
		im.notNeeded(n, path, "ctsync bounds its event work itself")
	case "Filter":
		if len(n.words) > 1 {
			im.notNeeded(&confNode{line: n.line, words: n.words}, path, "ctsync filters in user space; the rules inside are translated")
		}
		for _, c := range n.children {
			im.filter(c, path+".Filter")
		}
	default:
		im.dropped(n, path, "unknown option")
	}
}

// importProtocols maps conntrackd's protocol names (getprotobyname's) to
// filter.protocols names.
var importProtocols = map[string]string{
	"tcp": "tcp", "udp": "udp", "icmp": "icmp", "ipv6-icmp": "icmpv6", "icmpv6": "icmpv6",
	"sctp": "sctp", "dccp": "dccp", "gre": "gre", "udplite": "udplite", "udp-lite": "udplite",
}

func (im *importer) filter(n *confNode, path string) {
	if len(n.words) < 2 || (n.words[1] != "Accept" && n.words[1] != "Ignore") || !n.block {
		im.dropped(n, path, "want Protocol|Address|State Accept|Ignore { ... }")
		return
	}
	kind, accept := n.words[0], n.words[1] == "Accept"
	p := path + "." + kind + " " + n.words[1]
	switch kind {
	case "Protocol":
		var listed []string
		for _, c := range n.children {
			for _, w := range c.words {
				name, ok := importProtocols[strings.ToLower(w)]
				if !ok {
					pn := &confNode{line: c.line, words: []string{w}}
					if accept {
						im.changed(pn, p, "protocol not replicated by ctsync")
					} else {
						im.notNeeded(pn, p, "protocol not replicated by ctsync anyway")
					}
					continue
				}
				if !slices.Contains(listed, name) {
					listed = append(listed, name)
				}
			}
		}
		if !accept {
			listed = slices.DeleteFunc(slices.Clone(protocols), func(s string) bool { return slices.Contains(listed, s) })
		}
		if len(listed) == 0 {
			im.changed(n, path, "no protocol left to replicate; filter.protocols keeps its default (all)")
			return
		}
		im.protocols = listed
	case "Address":
		if accept {
			im.changed(n, path, "ctsync has no address accept list, only filter.ignore_addresses: not translated, every address is replicated")
			return
		}
		im.ignoreSet = true
		for _, c := range n.children {
			if len(c.words) != 2 || (c.words[0] != "IPv4_address" && c.words[0] != "IPv6_address") {
				im.dropped(c, p, "want IPv4_address A[/N] or IPv6_address A[/N]")
				continue
			}
			if _, msg := parsePrefix(c.words[1]); msg != "" {
				im.dropped(c, p, msg)
				continue
			}
			if !slices.Contains(im.ignore, c.words[1]) {
				im.ignore = append(im.ignore, c.words[1])
			}
		}
	case "State":
		var listed []string
		for _, c := range n.children {
			words := c.words
			if i := slices.Index(words, "for"); i >= 0 {
				if rest := words[i+1:]; len(rest) != 1 || !strings.EqualFold(rest[0], "TCP") {
					im.dropped(c, p, "ctsync filters states of TCP only")
				}
				words = words[:i]
			}
			for _, w := range words {
				s := strings.ToUpper(w)
				if s == "CLOSED" {
					s = "CLOSE"
				}
				if !slices.Contains(tcpStates, s) {
					im.dropped(&confNode{line: c.line, words: []string{w}}, p, "unknown TCP state")
					continue
				}
				if !slices.Contains(listed, s) {
					listed = append(listed, s)
				}
			}
		}
		if !accept {
			listed = slices.DeleteFunc(slices.Clone(tcpStates), func(s string) bool { return slices.Contains(listed, s) })
		}
		if len(listed) == 0 {
			im.changed(n, path, "no TCP state left to replicate; filter.tcp_states keeps its default (all)")
			return
		}
		im.tcpStates = listed
	default:
		im.dropped(n, path, "unknown filter")
	}
}

// seconds reads "Key N" as N seconds.
func (im *importer) seconds(n *confNode, path string) (time.Duration, bool) {
	if len(n.words) != 2 {
		im.dropped(n, path, "want a number of seconds")
		return 0, false
	}
	v, err := strconv.ParseInt(n.words[1], 10, 32)
	if err != nil || v < 0 {
		im.dropped(n, path, "want a number of seconds")
		return 0, false
	}
	return time.Duration(v) * time.Second, true
}

// addr reads an IP address (conntrackd allows a /N, meaningless here).
func (im *importer) addr(n *confNode, path, s string) (string, bool) {
	s, _, _ = strings.Cut(s, "/")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		im.dropped(n, path, "want an IP address")
		return "", false
	}
	return a.String(), true
}

// yaml writes the configuration.
func (im *importer) yaml() []byte {
	var y yamlWriter
	port := im.port
	if port == 0 {
		port = importDefaultPort
	}
	y.w("# Unique name of this node in the cluster. Default: the hostname.\n#node: fw-a\n\n")
	im.yamlCluster(&y, port)
	yamlControl(&y)
	im.yamlFilter(&y)
	im.yamlCommit(&y)
	im.yamlKernelCache(&y)
	return []byte(y.String())
}

// yamlWriter collects the imported file.
type yamlWriter struct{ strings.Builder }

// w appends to the file as fmt.Fprintf does.
func (y *yamlWriter) w(format string, args ...any) { fmt.Fprintf(&y.Builder, format, args...) }

// yamlCluster writes the cluster section: always insecure, as conntrackd's
// sync traffic was, with a warning that says how to switch to a key.
func (im *importer) yamlCluster(y *yamlWriter, port int) {
	y.w("cluster:\n")
	if im.port == 0 {
		y.w("  # conntrackd.conf gave no port: ctsync's default, %d. Cluster traffic is\n", port)
	} else {
		y.w("  # Port %d, from conntrackd.conf. Cluster traffic is\n", port)
	}
	y.w("  # memberlist, TCP and UDP: allow both on the sync link.\n")
	im.yamlBind(y, port)

	join := make([]string, len(im.join))
	for i, a := range im.join {
		join[i] = yamlQuote(net.JoinHostPort(a, strconv.Itoa(port)))
	}
	y.w("  join: [%s]\n", strings.Join(join, ", "))
	y.w("  # !!! WARNING: conntrackd neither encrypts nor authenticates its sync\n")
	y.w("  # !!! traffic, and neither does this imported file: anyone on the sync link\n")
	y.w("  # !!! can read and forge connection state. Switch to a key now:\n")
	y.w("  # !!!   ctsync keygen > %s && chmod 600 %s\n", DefaultKeyFile, DefaultKeyFile)
	y.w("  # !!! copy the file to every node, then replace the next line with\n")
	y.w("  # !!!   key_file: %s\n", DefaultKeyFile)
	y.w("  insecure: true\n\n")
}

// yamlBind writes cluster.bind from the conntrackd.conf's local address;
// without one, it is left out when there is a peer to route to, or set to
// loopback (with a note) when there is none.
func (im *importer) yamlBind(y *yamlWriter, port int) {
	switch {
	case im.bind != "":
		y.w("  # From %s.\n", im.bindFrom)
		y.w("  bind: %s\n", yamlQuote(net.JoinHostPort(im.bind, strconv.Itoa(port))))
	case len(im.join) > 0:
		// An insecure cluster never listens on every address; left out,
		// bind is the address that routes to the first peer.
		y.w("  # conntrackd.conf gave no local address: bind is left out, so ctsync\n")
		y.w("  # listens on the address that routes to the first join peer, port %d.\n", port)
		y.w("  # Better, write this node's address on the sync link:\n")
		y.w("  #bind: %s\n", yamlQuote(net.JoinHostPort("10.0.3.1", strconv.Itoa(port))))
	default:
		// Neither a local address nor a peer: a valid file that exposes
		// nothing until the operator says where the sync link is.
		y.w("  # !!! conntrackd.conf gave no local address and no peer: bind is this host's\n")
		y.w("  # !!! loopback, so no other node can reach it. Set bind to this node's address\n")
		y.w("  # !!! on the sync link and list the peers in join.\n")
		y.w("  bind: %s\n", yamlQuote(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))))
		im.notes = append(im.notes, ImportNote{Kind: NoteChanged, Directive: "Sync", Reason: fmt.Sprintf(
			"no local address and no peer address: cluster.bind is set to 127.0.0.1:%d (this host only); "+
				"set it to this node's address on the sync link and list the peers in cluster.join", port)})
	}
}

// yamlControl writes the control section: always ctsync's own socket,
// which the shipped unit can write (the conntrackd.conf's UNIX Path is
// noted).
func yamlControl(y *yamlWriter) {
	y.w("control:\n  # ctsync's own; conntrackd's UNIX Path is not kept: the ctsync unit may\n")
	y.w("  # write only below %s.\n  socket: %s\n\n", filepath.Dir(DefaultSocket), yamlQuote(DefaultSocket))
}

// yamlFilter writes the filter section, when the conntrackd.conf filtered.
func (im *importer) yamlFilter(y *yamlWriter) {
	if im.protocols != nil || im.ignoreSet || im.tcpStates != nil {
		y.w("filter:\n")
		if im.protocols != nil {
			y.w("  protocols: [%s]\n", strings.Join(im.protocols, ", "))
		}
		if im.ignoreSet {
			quoted := make([]string, len(im.ignore))
			for i, a := range im.ignore {
				quoted[i] = yamlQuote(a)
			}
			y.w("  # From Filter.Address Ignore: flows from or to these addresses stay local.\n")
			y.w("  ignore_addresses: [%s]\n", strings.Join(quoted, ", "))
		}
		if im.tcpStates != nil {
			y.w("  tcp_states: [%s]\n", strings.Join(im.tcpStates, ", "))
		}
		y.w("\n")
	}
}

// yamlCommit writes the commit section and purge_timeout.
func (im *importer) yamlCommit(y *yamlWriter) {
	if im.commitTimeout != nil || im.hot {
		y.w("commit:\n")
		if im.commitTimeout != nil {
			y.w("  # From CommitTimeout.\n  timeout: %s\n", im.commitTimeout)
		}
		if im.hot {
			y.w("  # From DisableExternalCache On: the peers' flows go into the kernel\n")
			y.w("  # table as they arrive (hot standby; ctsync keeps its external cache too).\n")
			y.w("  mode: hot\n")
		}
		y.w("\n")
	}
	if im.purgeTimeout != nil {
		y.w("# From PurgeTimeout.\npurge_timeout: %s\n\n", im.purgeTimeout)
	}
}

// yamlKernelCache writes the kernel and cache sections. A netlink buffer
// below ctsync's default keeps the default (with a note); a larger one is
// kept, up to MaxEventBuffer.
func (im *importer) yamlKernelCache(y *yamlWriter) {
	switch eb := im.eventBuffer; {
	case eb == 0:
	case eb < DefaultEventBuffer:
		im.notes = append(im.notes, ImportNote{Kind: NoteNotNeeded, Line: im.bufferLine, Directive: im.bufferFrom, Reason: fmt.Sprintf(
			"kept ctsync's default kernel.event_buffer, %s, larger than this: ctsync sets its buffer once and does not grow it on overrun",
			DefaultEventBuffer)})
	default:
		eb = min(eb, MaxEventBuffer)
		y.w("kernel:\n  # From the largest of NetlinkBufferSize and NetlinkBufferSizeMaxGrowth.\n  event_buffer: %s\n\n", eb)
	}
	if im.maxFlows != 0 {
		y.w("cache:\n  # From HashLimit.\n  max_flows: %d\n", im.maxFlows)
	}
}

// yamlQuote returns s as a YAML double-quoted scalar. Go's escapes are a
// subset of YAML's.
func yamlQuote(s string) string { return strconv.Quote(s) }
