package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// importFile imports a testdata conntrackd.conf and returns the parsed,
// validated result and the notes as strings.
func importFile(t *testing.T, name string) (*Config, string, []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "conntrackd", name))
	if err != nil {
		t.Fatal(err)
	}
	out, notes, err := Import(data)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	c, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse of the imported YAML: %v\n%s", err, out)
	}
	c.Node = "fw-a" // the hostname may not be a valid node name
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate of the imported YAML: %v\n%s", err, out)
	}
	ns := make([]string, len(notes))
	for i, n := range notes {
		ns[i] = n.String()
	}
	return c, string(out), ns
}

func TestImport(t *testing.T) {
	tests := []struct {
		file    string
		check   func(t *testing.T, c *Config)
		notes   []string // substrings, each of a different note, in order
		count   int      // number of notes
		changed int      // number of notes tagged changed
	}{
		{file: "ftfw-udp.conf", count: 16, changed: 1,
			check: func(t *testing.T, c *Config) {
				want := Default()
				want.Node = "fw-a"
				want.Cluster = Cluster{Bind: "192.168.2.100:3780", Join: []string{"192.168.2.101:3780"},
					Insecure: true, KeyFile: DefaultKeyFile, Name: DefaultClusterName}
				// Not conntrackd's /var/run/conntrackd.ctl, which the
				// ctsync unit cannot write.
				want.Control.Socket = DefaultSocket
				// The keys conntrackd has no equivalent for keep their
				// defaults (labels: [all], as conntrackd sends them).
				want.Filter.Protocols = []string{"tcp", "sctp", "dccp"}
				want.Filter.IgnoreAddresses = []string{"127.0.0.1", "192.168.0.100", "192.168.1.100", "192.168.0.1",
					"192.168.1.1", "192.168.100.100", "::1"}
				want.Filter.TCPStates = []string{"ESTABLISHED", "CLOSE", "TIME_WAIT", "CLOSE_WAIT"}
				want.Commit.Timeout = Duration(180 * time.Second)
				want.PurgeTimeout = Duration(60 * time.Second)
				want.Kernel.EventBuffer = 128 * MiB
				want.Cache.MaxFlows = 131072
				if !reflect.DeepEqual(c, want) {
					t.Errorf("imported\n%+v\nwant\n%+v", c, want)
				}
			},
			notes: []string{
				"not needed: line 5: Sync.Mode FTFW.ResendQueueSize 131072: ",
				"line 16: Sync.UDP Default.Interface eth2: ",
				"changed: line 24: Sync.Options.ExpectationSync { ... }: ctsync replicates expectations (with their master flow) of every helper, not only of ftp, sip",
				"dropped: line 35: General.LogFile on: ",
				"not needed: line 37: General.LockFile /var/lock/conntrack.lock: ",
				"not needed: line 39: General.UNIX.Path /var/run/conntrackd.ctl: control.socket stays ctsync's own, /run/ctsync/ctsync.sock",
			}},
		{file: "notrack-multicast.conf", count: 14, changed: 5,
			check: func(t *testing.T, c *Config) {
				if c.Cluster.Bind != "10.0.0.1:3780" || len(c.Cluster.Join) != 0 {
					t.Errorf("cluster: %+v, want bind 10.0.0.1:3780 (IPv4_interface, Group) and no join", c.Cluster)
				}
				if c.Control.Socket != "/run/ctsync/ctsync.sock" {
					t.Errorf("control.socket %q", c.Control.Socket)
				}
				if want := []string{"tcp", "sctp", "dccp"}; !reflect.DeepEqual(c.Filter.Protocols, want) {
					t.Errorf("filter.protocols %q, want %q (Ignore inverted)", c.Filter.Protocols, want)
				}
				if s := c.Filter.TCPStates; len(s) != len(tcpStates)-2 || strings.Contains(strings.Join(s, " "), "SYN_SENT ") {
					t.Errorf("filter.tcp_states %q: want all but SYN_SENT and SYN_RECV", s)
				}
				if c.PurgeTimeout != Duration(15*time.Second) || c.Commit.Timeout != 0 {
					t.Errorf("purge_timeout %s, commit.timeout %s; want 15s and 0s", c.PurgeTimeout, c.Commit.Timeout)
				}
				if c.Kernel.EventBuffer != DefaultEventBuffer {
					t.Errorf("kernel.event_buffer %s, want the default", c.Kernel.EventBuffer)
				}
			},
			notes: []string{
				"changed: line 3: Sync.Mode NOTRACK: ctsync has one replication mode",
				"changed: line 4: Sync.Mode NOTRACK.DisableInternalCache on: ctsync always keeps an internal cache",
				"changed: line 8: Sync.Multicast Default { ... }: a multicast group has no peer addresses",
				"changed: line 9: Sync.Multicast Default.IPv4_address 225.0.0.50: ctsync does not use multicast",
				"changed: line 17: Sync.Multicast { ... }: ctsync uses one cluster address",
				"dropped: line 27: General.Scheduler { ... }",
			}},
		{file: "tcp-ipv6.conf", count: 4, changed: 2,
			check: func(t *testing.T, c *Config) {
				if c.Cluster.Bind != "[fd00::1]:7946" || !reflect.DeepEqual(c.Cluster.Join, []string{"[fd00::2]:7946"}) {
					t.Errorf("cluster: %+v, want [fd00::1]:7946 joining [fd00::2]:7946", c.Cluster)
				}
				if !reflect.DeepEqual(c.Filter.IgnoreAddresses, []string{"fe80::/10"}) {
					t.Errorf("filter.ignore_addresses %q", c.Filter.IgnoreAddresses)
				}
				if c.Cache.MaxFlows != DefaultMaxFlows {
					t.Errorf("cache.max_flows %d: HashLimit 500 is too small and must be left out", c.Cache.MaxFlows)
				}
			},
			notes: []string{
				"changed: line 12: General.HashLimit 500: cache.max_flows is at least 1000",
				"changed: line 14: General.Filter.Address Accept { ... }: ctsync has no address accept list",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, out, notes := importFile(t, tt.file)
			tt.check(t, c)
			if !strings.Contains(out, "insecure: true") || !strings.Contains(out, "ctsync keygen") {
				t.Errorf("output lacks insecure: true and the keygen warning:\n%s", out)
			}
			if len(notes) != tt.count {
				t.Errorf("%d notes, want %d:\n%s", len(notes), tt.count, strings.Join(notes, "\n"))
			}
			changed := 0
			for _, n := range notes {
				tag, _, _ := strings.Cut(n, ": ")
				switch tag {
				case "changed":
					changed++
				case "dropped", "not needed":
				default:
					t.Errorf("note without a tag: %q", n)
				}
				// The file lists every note, as a comment.
				if !strings.Contains(out, "\n# "+n+"\n") {
					t.Errorf("note %q not among the file's comments:\n%s", n, out)
				}
			}
			if changed != tt.changed {
				t.Errorf("%d notes tagged changed, want %d", changed, tt.changed)
			}
			i := 0
			for _, want := range tt.notes {
				for i < len(notes) && !strings.Contains(notes[i], want) {
					i++
				}
				if i == len(notes) {
					t.Errorf("no note %q (in order) among:\n%s", want, strings.Join(notes, "\n"))
					break
				}
			}
		})
	}
}

func TestImportSyntaxErrors(t *testing.T) {
	tests := []struct {
		in   string
		line int
		msg  string
	}{
		{"General {\n  HashSize 1\n", 3, `missing '}' for "General" opened on line 1`},
		{"General {\n}\n}\n", 3, "'}' without a matching '{'"},
		{"# c\n{\n}\n", 2, "'{' without a section name"},
		{"General {\n UNIX { Path \"/run/x }\n}\n", 2, "unterminated quoted string"},
		{strings.Repeat("A {", 40), 1, "nested too deep"},
	}
	for _, tt := range tests {
		_, _, err := Import([]byte(tt.in))
		ie, ok := errors.AsType[*ImportError](err)
		if !ok {
			t.Errorf("Import(%q) = %v, want an *ImportError", tt.in, err)
			continue
		}
		if ie.Line != tt.line || !strings.Contains(ie.Msg, tt.msg) {
			t.Errorf("Import(%q) = %v, want line %d: %s", tt.in, err, tt.line, tt.msg)
		}
	}
}

func TestImportOddInput(t *testing.T) {
	tests := []struct {
		in   string
		note string
	}{
		{"", ""},
		{"Sync\n", "want a block"},
		{"Frobnicate { }\n", "unknown section"},
		{"Sync { UDP { IPv4_address not-an-ip; Port 99999 } }\n", "want an IP address"},
		{"Sync { UDP { Port 99999 } }\n", "want a port number"},
		{"Sync { Mode FTFW { CommitTimeout -1 } }\n", "want a number of seconds"},
		{"General { UNIX { Path relative/sock } }\n", "not needed: line 1: General.UNIX.Path relative/sock: control.socket stays ctsync's own"},
		{"Sync { Options { ExpectationSync maybe } }\n", "dropped: line 1: Sync.Options.ExpectationSync maybe: want On, Off"},
		{"General { Filter { Protocol Ignore { IGMP } } }\n", "not needed: line 1: General.Filter.Protocol Ignore.IGMP: protocol not replicated by ctsync anyway"},
		{"General { Filter { Protocol Accept { TCP IGMP } } }\n", "changed: line 1: General.Filter.Protocol Accept.IGMP: protocol not replicated by ctsync"},
		{"Sync { Options { Bogus 1 } }\n", "dropped: line 1: Sync.Options.Bogus 1: unknown option"},
		{"General { Filter { Protocol Accept { FOO } } }\n", "protocol not replicated"},
		{"General { Filter { Address Ignore { IPv4_address 1.2.3.4/99 } } }\n", "Address Ignore.IPv4_address 1.2.3.4/99"},
		{"General { Filter { State Accept { BOGUS for TCP } } }\n", "unknown TCP state"},
	}
	for _, tt := range tests {
		out, notes, err := Import([]byte(tt.in))
		if err != nil {
			t.Errorf("Import(%q): %v", tt.in, err)
			continue
		}
		if _, err := Parse(out); err != nil {
			t.Errorf("Import(%q) output does not parse: %v", tt.in, err)
		}
		var all []string
		for _, n := range notes {
			all = append(all, n.String())
		}
		if tt.note != "" && !strings.Contains(strings.Join(all, "\n"), tt.note) {
			t.Errorf("Import(%q) notes %q, want one with %q", tt.in, all, tt.note)
		}
	}
}

func FuzzImport(f *testing.F) {
	for _, name := range []string{"ftfw-udp.conf", "notrack-multicast.conf", "tcp-ipv6.conf"} {
		data, err := os.ReadFile(filepath.Join("testdata", "conntrackd", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("Sync { UDP { IPv6_address \"fe80::1%eth0\" } }"))
	f.Add([]byte("General { UNIX { Path \"/a\\\"b\" } }"))
	f.Add([]byte("}{;#\n\""))
	// Directives whose text would end a YAML comment or invalidate it.
	f.Add([]byte("General { Foo\u2028bar \x85 \xff\x00 }\nSync { Options { ExpectationSync { \"a\u0085b\" } } }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, notes, err := Import(data)
		if err != nil {
			if _, ok := errors.AsType[*ImportError](err); !ok {
				t.Fatalf("Import: %v (%T), want an *ImportError", err, err)
			}
			return
		}
		c, err := Parse(out)
		if err != nil {
			t.Fatalf("imported YAML does not parse: %v\n%s", err, out)
		}
		c.Node = "fw-a"
		if err := c.Validate(); err != nil {
			t.Fatalf("imported YAML does not validate: %v\n%s", err, out)
		}
		if c.Control.Socket != DefaultSocket {
			t.Fatalf("control.socket %q, want ctsync's own %q", c.Control.Socket, DefaultSocket)
		}
		for _, n := range notes {
			if n.Kind != NoteDropped && n.Kind != NoteChanged && n.Kind != NoteNotNeeded {
				t.Fatalf("note %v: kind %d", n, n.Kind)
			}
			if !strings.Contains(string(out), "\n# "+commentSafe(n.String())+"\n") {
				t.Fatalf("note %q not in the file:\n%s", n, out)
			}
		}
	})
}

// TestImportDisableExternalCache: conntrackd's direct injection becomes
// hot standby, with CommitTimeout kept beside it.
func TestImportDisableExternalCache(t *testing.T) {
	out, _, err := Import([]byte("Sync {\n Mode FTFW {\n  DisableExternalCache On\n  CommitTimeout 180\n }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if c.Commit.Mode != ModeHot || c.Commit.Timeout.Duration() != 180*time.Second || !c.Commit.Gate {
		t.Fatalf("commit %+v from:\n%s", c.Commit, out)
	}
	_, notes, _ := Import([]byte("Sync { Mode FTFW { DisableExternalCache maybe } }\n"))
	if len(notes) != 2 || !strings.Contains(notes[1].String(), "want On or Off") {
		t.Fatalf("notes %v, want the one about cluster.bind and one saying want On or Off", notes)
	}
}

// TestImportBind: an imported file is insecure, so its cluster.bind is never
// every address: conntrackd's local address when it gives one, else left
// out (the address that routes to the first peer), else loopback with a
// note; and the result validates.
func TestImportBind(t *testing.T) {
	tests := []struct {
		name, in  string
		bind      string
		join      []string
		line      string // in the YAML
		note      string // in one note; "" = none about the bind
		wantNotes int
	}{
		{"local address", "Sync { UDP { IPv4_address 10.0.3.1\n IPv4_Destination_Address 10.0.3.2\n Port 3780 } }\n",
			"10.0.3.1:3780", []string{"10.0.3.2:3780"}, "From Sync.UDP.IPv4_address", "", 0},
		{"unspecified local address", "Sync { UDP { IPv4_address 0.0.0.0\n IPv4_Destination_Address 10.0.3.2 } }\n",
			"", []string{"10.0.3.2:7946"}, "listens on the address that routes to the first join peer, port 7946",
			"line 1: Sync.UDP.IPv4_address 0.0.0.0: not this node's address on the sync link", 1},
		{"peer only", "Sync { TCP { IPv6_Destination_Address fd00::2\n Port 3780 } }\n",
			"", []string{"[fd00::2]:3780"}, "#bind: \"10.0.3.1:3780\"", "", 0},
		{"nothing", "General { HashLimit 5000 }\n",
			"127.0.0.1:7946", []string{}, "no other node can reach it",
			"Sync: no local address and no peer address: cluster.bind is set to 127.0.0.1:7946 (this host only)", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, notes, err := Import([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			c.Node = "fw-a"
			if err := c.Validate(); err != nil {
				t.Fatalf("imported file does not validate: %v\n%s", err, out)
			}
			if c.Cluster.Bind != tt.bind || !reflect.DeepEqual(c.Cluster.Join, tt.join) || !c.Cluster.Insecure {
				t.Errorf("cluster %+v, want bind %q, join %q, insecure", c.Cluster, tt.bind, tt.join)
			}
			if !strings.Contains(string(out), tt.line) {
				t.Errorf("output lacks %q:\n%s", tt.line, out)
			}
			if len(notes) != tt.wantNotes || (tt.note != "" && !strings.Contains(notes[0].String(), tt.note)) {
				t.Errorf("notes %q, want %d, the first with %q", notes, tt.wantNotes, tt.note)
			}
		})
	}
}

// TestImportSocket: conntrackd's socket path is never kept (the ctsync unit
// cannot write it); a note says so, naming the old path.
func TestImportSocket(t *testing.T) {
	for _, path := range []string{"/var/run/conntrackd.ctl", "/run/conntrackd.ctl", "relative", DefaultSocket} {
		out, notes, err := Import([]byte("General {\n UNIX {\n  Path " + path + "\n }\n}\n"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse(out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if c.Control.Socket != DefaultSocket {
			t.Errorf("Path %s: control.socket %q, want %q", path, c.Control.Socket, DefaultSocket)
		}
		var about []ImportNote
		for _, n := range notes {
			if strings.Contains(n.Directive, "UNIX.Path") {
				about = append(about, n)
			}
		}
		switch {
		case path == DefaultSocket && len(about) != 0:
			t.Errorf("Path %s: notes %v, want none (it is ctsync's)", path, about)
		case path != DefaultSocket && (len(about) != 1 || about[0].Kind != NoteNotNeeded ||
			about[0].Line != 3 || !strings.Contains(about[0].String(), path+": control.socket stays ctsync's own, "+DefaultSocket)):
			t.Errorf("Path %s: notes %v, want one, not needed, naming the old path", path, about)
		}
	}
}

// TestImportExpectationSync: expectations replicate, so ExpectationSync
// is accepted: On is what ctsync does anyway, Off and a list of helpers
// change behaviour (ctsync replicates every helper's).
func TestImportExpectationSync(t *testing.T) {
	tests := []struct {
		opt  string
		kind NoteKind
		msg  string
	}{
		{"ExpectationSync On", NoteNotNeeded, "ctsync always replicates expectations, with their master flow"},
		{"ExpectationSync on", NoteNotNeeded, "ctsync always replicates expectations"},
		{"ExpectationSync Off", NoteChanged, "it cannot leave them out"},
		{"ExpectationSync {\n ftp\n ras # for H.323\n q.931\n sip\n }", NoteChanged, "of every helper, not only of ftp, ras, q.931, sip"},
		{"ExpectationSync { }", NoteChanged, "it cannot leave them out"},
		{"ExpectationSync", NoteDropped, "want On, Off or a block of helper names"},
	}
	for _, tt := range tests {
		out, notes, err := Import([]byte("Sync {\n Options {\n " + tt.opt + "\n }\n}\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.opt, err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("%s: %v\n%s", tt.opt, err, out)
		}
		var got []ImportNote
		for _, n := range notes {
			if strings.Contains(n.Directive, "ExpectationSync") {
				got = append(got, n)
			}
		}
		if len(got) != 1 || got[0].Kind != tt.kind || !strings.Contains(got[0].Reason, tt.msg) || got[0].Line != 3 {
			t.Errorf("%s: notes %v, want one %s note with %q", tt.opt, got, tt.kind, tt.msg)
		}
		if strings.Contains(got[0].Reason, "not replicated") {
			t.Errorf("%s: %q says expectations are not replicated", tt.opt, got[0].Reason)
		}
	}
}

// TestImportChanged: Changed is what --strict tests.
func TestImportChanged(t *testing.T) {
	for in, want := range map[string]bool{
		"Sync { UDP { IPv4_address 10.0.3.1; IPv4_Destination_Address 10.0.3.2 } }\nGeneral { LockFile /x; UNIX { Path /var/run/conntrackd.ctl } }\n":    false,
		"Sync { UDP { IPv4_address 10.0.3.1; IPv4_Destination_Address 10.0.3.2 } }\nGeneral { Filter { Address Accept { IPv4_address 10.0.0.0/8 } } }\n": true,
		"Sync { Multicast { IPv4_address 225.0.0.50; IPv4_interface 10.0.3.1 } }\n":                                                                      true,
	} {
		_, notes, err := Import([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := Changed(notes); got != want {
			t.Errorf("Changed(%q) = %v, want %v; notes %v", in, got, want, notes)
		}
	}
}
