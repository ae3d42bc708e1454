package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// asConntrackd runs the binary as if invoked through a symlink named
// conntrackd.
func asConntrackd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runAs("conntrackd", args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func ctdBackend() *controltest.Backend {
	b := ctlBackend()
	b.StatsValue = stats.Stats{
		Node: "fw-a", UptimeSeconds: 185,
		Kernel:   stats.Kernel{EventsNew: 11, EventsUpdate: 22, EventsDestroy: 3, Overruns: 1, Resyncs: 2},
		Internal: stats.Internal{Flows: 8, Full: 1},
		External: []stats.Origin{{Origin: "fw-b", Flows: 5, Applied: 40}, {Origin: "fw-c", Flows: 2, Stale: 1}},
		Commit:   stats.Commit{Commits: 1, Committed: 7},
		Sync: stats.Sync{DecodeErrors: 4, Peers: []stats.Peer{
			{Peer: "fw-b", Addr: "10.0.3.2:7946", Connected: true, SentBytes: 112, RecvBytes: 556, SentMsgs: 7, RecvMsgs: 10},
		}},
	}
	return b
}

func TestConntrackdFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		setup    func(b *controltest.Backend)
		code     int
		stdout   string // substring; "" means empty
		stderr   string // substring; "" means empty
		wantCall *controltest.Call
	}{
		{name: "commit", args: []string{"-c"}, stdout: "committed 100000 flows",
			wantCall: &controltest.Call{Method: "Commit"}},
		{name: "commit ct", args: []string{"-c", "ct"}, stdout: "committed 100000 flows",
			wantCall: &controltest.Call{Method: "Commit"}},
		{name: "commit failures exit 1", args: []string{"-c"},
			setup: func(b *controltest.Backend) {
				b.CommitResult = stats.CommitResult{Created: 1, Failed: 2, Errors: []string{"boom"}}
			},
			code: exitFailure, stdout: "2 failed", stderr: "commit: 2 of 3 flows failed",
			wantCall: &controltest.Call{Method: "Commit"}},
		// Expectations commit with their masters: ct and expect are the
		// whole commit.
		{name: "commit expect", args: []string{"-c", "expect"}, stdout: "committed 100000 flows",
			wantCall: &controltest.Call{Method: "Commit"}},
		{name: "commit exp prefix", args: []string{"-c", "exp"}, stdout: "committed 100000 flows",
			wantCall: &controltest.Call{Method: "Commit"}},
		{name: "flush expect refused", args: []string{"-f", "expect"}, code: exitFailure, stderr: "unknown parameter `expect' for option `-f'"},
		{name: "flush", args: []string{"-f"}, wantCall: &controltest.Call{Method: "Flush", Arg: ""}},
		{name: "flush internal", args: []string{"-f", "internal"}, wantCall: &controltest.Call{Method: "Flush", Arg: "internal"}},
		{name: "flush external prefix", args: []string{"-f", "e"}, wantCall: &controltest.Call{Method: "Flush", Arg: "external"}},
		{name: "flush unknown", args: []string{"-f", "foo"}, code: exitFailure, stderr: "unknown parameter `foo' for option `-f'"},
		{name: "resync kernel", args: []string{"-R"}, wantCall: &controltest.Call{Method: "ResyncKernel"}},
		{name: "resync kernel ct", args: []string{"-R", "ct"}, wantCall: &controltest.Call{Method: "ResyncKernel"}},
		{name: "resync kernel expect", args: []string{"-R", "expect"}, wantCall: &controltest.Call{Method: "ResyncKernel"}},
		{name: "send bulk", args: []string{"-B"}, wantCall: &controltest.Call{Method: "SendBulk"}},
		{name: "resync peers", args: []string{"-n"}, wantCall: &controltest.Call{Method: "ResyncPeers"}},
		{name: "purge", args: []string{"-t"}, wantCall: &controltest.Call{Method: "Purge", Arg: time.Duration(0)}},
		{name: "kill", args: []string{"-k"}, wantCall: &controltest.Call{Method: "Shutdown"}},
		{name: "daemon error", args: []string{"-Flush"}, code: exitFailure, stderr: "Unknown option: -Flush"},
		{name: "backend failure", args: []string{"-B"}, setup: func(b *controltest.Backend) {
			b.Errors = map[string]error{"SendBulk": context.DeadlineExceeded}
		}, code: exitFailure, stderr: "deadline exceeded"},

		{name: "stats", args: []string{"-s"}, stdout: "cache internal:\ncurrent active connections:\t           8\n" +
			"connections created:\t\t          11\tfailed:\t           1\n",
			wantCall: &controltest.Call{Method: "Stats"}},
		{name: "stats external", args: []string{"-s"}, stdout: "cache external:\ncurrent active connections:\t           7\n"},
		{name: "stats link", args: []string{"-s"}, stdout: "sync traffic (peer=fw-b addr=10.0.3.2:7946 status=RUNNING):\n" +
			"                 112 Bytes sent                  556 Bytes recv\n"},
		{name: "stats tracking", args: []string{"-s"}, stdout: "message tracking:\n                   4 Malformed msgs"},
		{name: "stats cache", args: []string{"-s", "cache"}, stdout: "connections committed:\t\t           7"},
		{name: "stats c is cache", args: []string{"-s", "c"}, stdout: "cache external:"},
		{name: "stats runtime", args: []string{"-s", "runtime"}, stdout: "daemon uptime: 3 min\n"},
		{name: "stats network", args: []string{"-s", "network"}, stdout: "Malformed messages:\t                   4"},
		{name: "stats queue is empty", args: []string{"-s", "queue"}, wantCall: &controltest.Call{Method: "Stats"}},
		{name: "stats unknown", args: []string{"-s", "foo"}, code: exitFailure, stderr: "unknown parameter `foo' for option `-s'"},

		{name: "xml", args: []string{"-i", "-x"}, code: exitFailure, stderr: "XML output is not available"},
		{name: "xml without dump", args: []string{"-x"}, code: exitFailure, stderr: "Invalid parameters"},
		{name: "two commands", args: []string{"-c", "-f"}, code: exitFailure, stderr: "give one command per call"},
		{name: "daemon mode", args: []string{"-d"}, code: exitFailure, stderr: "run `ctsync daemon`"},
		{name: "no command", args: nil, code: exitFailure, stderr: "no client command given"},
		{name: "kernel flush", args: []string{"-F"}, code: exitFailure, stderr: "-F is not available"},
		{name: "kernel flush expect", args: []string{"-F", "expect"}, code: exitFailure, stderr: "`ctsync table flush --expect`"},
		{name: "xml expect", args: []string{"-e", "expect", "-x"}, code: exitFailure, stderr: "XML output is not available"},
		{name: "unknown option", args: []string{"-Z"}, code: exitFailure, stderr: "Unknown option: -Z\n"},
		{name: "stray word", args: []string{"-k", "now"}, code: exitFailure, stderr: "Unknown option: now"},
		{name: "help", args: []string{"-h"}, stdout: "Client mode commands:"},
		{name: "help expect", args: []string{"-h"}, stdout: "  -i [ct|expect], display content of the internal cache"},
		{name: "version", args: []string{"-v"}, stdout: "conntrackd-compatible client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ctdBackend()
			if tt.setup != nil {
				tt.setup(b)
			}
			sock := ctlDaemon(t, b)
			code, out, errOut := asConntrackd(t, append(tt.args, "--socket", sock)...)
			if code != tt.code {
				t.Errorf("conntrackd %q: exit %d, want %d (stderr %q)", tt.args, code, tt.code, errOut)
			}
			if tt.stdout == "" && out != "" || !strings.Contains(out, tt.stdout) {
				t.Errorf("conntrackd %q: stdout %q, want %q", tt.args, out, tt.stdout)
			}
			if tt.stderr == "" && errOut != "" || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("conntrackd %q: stderr %q, want %q", tt.args, errOut, tt.stderr)
			}
			calls := b.Calls()
			switch {
			case tt.wantCall == nil && tt.code == 0 && len(calls) > 0 && tt.args != nil && tt.args[0] != "-s":
				t.Errorf("conntrackd %q: calls %v, want none", tt.args, calls)
			case tt.wantCall != nil && (len(calls) != 1 || calls[0] != *tt.wantCall):
				t.Errorf("conntrackd %q: calls %v, want %v", tt.args, calls, *tt.wantCall)
			}
		})
	}
}

// TestConntrackdSubcommand checks that `ctsync conntrackd ARGS` is the same
// as the symlink, and that usage errors exit 1, not 2.
func TestConntrackdSubcommand(t *testing.T) {
	b := ctdBackend()
	sock := ctlDaemon(t, b)
	code, out, errOut := ctsync(t, "conntrackd", "-c", "--socket", sock)
	if code != exitOK || !strings.Contains(out, "committed") {
		t.Errorf("ctsync conntrackd -c: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if c := b.LastCall(); c.Method != "Commit" {
		t.Errorf("last call %v, want Commit", c)
	}
	code, _, errOut = ctsync(t, "conntrackd", "-Z")
	if code != exitFailure || !strings.Contains(errOut, "Usage: conntrackd") {
		t.Errorf("ctsync conntrackd -Z: exit %d, stderr %q; want 1 and the usage", code, errOut)
	}
	// Any other program name is ctsync's own command line.
	var o, e bytes.Buffer
	if code := runAs("ctsync", []string{"-c"}, strings.NewReader(""), &o, &e); code != exitUsage {
		t.Errorf("runAs(ctsync, -c) = %d, want %d (flag needs an argument)", code, exitUsage)
	}
}

func TestConntrackdNotRunning(t *testing.T) {
	sock := ctlSocketPath(t)
	code, _, errOut := asConntrackd(t, "-s", "--socket", sock)
	if code != exitFailure || errOut == "" {
		t.Errorf("conntrackd -s without a daemon: exit %d, stderr %q; want 1 and a message", code, errOut)
	}
}

// TestConntrackdConfigFile checks -C: a ctsync YAML names the socket; a
// conntrackd.conf is ignored.
func TestConntrackdConfigFile(t *testing.T) {
	b := ctdBackend()
	sock := ctlDaemon(t, b)
	dir := t.TempDir()
	yml := filepath.Join(dir, "ctsync.yaml")
	if err := os.WriteFile(yml, []byte("control:\n  socket: "+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := asConntrackd(t, "-C", yml, "-n"); code != exitOK {
		t.Fatalf("conntrackd -C %s -n: exit %d, stderr %q", yml, code, errOut)
	}
	if c := b.LastCall(); c.Method != "ResyncPeers" {
		t.Errorf("last call %v, want ResyncPeers", c)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("control: {sockt: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := asConntrackd(t, "-C", bad, "-n"); code != exitFailure || !strings.Contains(errOut, "sockt") {
		t.Errorf("conntrackd -C bad.yaml: exit %d, stderr %q; want 1 naming the key", code, errOut)
	}

	conf := filepath.Join(dir, "conntrackd.conf")
	if err := os.WriteFile(conf, []byte("General {\n UNIX { Path /var/run/conntrackd.ctl }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// --socket wins over the ignored conntrackd.conf.
	if code, _, errOut := asConntrackd(t, "-C", conf, "-t", "--socket", sock); code != exitOK {
		t.Errorf("conntrackd -C conntrackd.conf -t: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := asConntrackd(t, "-C", filepath.Join(dir, "missing.conf"), "-t"); code != exitFailure ||
		!strings.Contains(errOut, "can't open config file") {
		t.Errorf("conntrackd -C missing: exit %d, stderr %q", code, errOut)
	}
}

// TestConntrackdPrimaryBackup runs primary-backup.sh's sequences.
func TestConntrackdPrimaryBackup(t *testing.T) {
	b := ctdBackend()
	sock := ctlDaemon(t, b)
	for _, args := range [][]string{{"-c"}, {"-f"}, {"-R"}, {"-B"}, {"-s"}, {"-t"}, {"-n"}} {
		if code, _, errOut := asConntrackd(t, append([]string{"-C", "/etc/conntrackd/conntrackd.conf"}, append(args, "--socket", sock)...)...); code != exitOK {
			t.Errorf("conntrackd %q: exit %d, stderr %q", args, code, errOut)
		}
	}
	var got []string
	for _, c := range b.Calls() {
		got = append(got, c.Method)
	}
	if want := "Commit Flush ResyncKernel SendBulk Stats Purge ResyncPeers"; strings.Join(got, " ") != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func TestConntrackdCacheListing(t *testing.T) {
	web := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 40000, 80)
	b := &controltest.Backend{
		Internal: []controltest.Flow{{Origin: "fw-a", Flow: web}},
		External: []controltest.Flow{{Origin: "fw-b", Flow: web}},
	}
	sock := ctlDaemon(t, b)
	for _, flag := range []string{"-i", "-e"} {
		code, out, errOut := asConntrackd(t, flag, "--socket", sock)
		if code != exitOK || errOut != "" {
			t.Fatalf("conntrackd %s: exit %d, stderr %q", flag, code, errOut)
		}
		want := ctdCacheLine(strings.TrimSuffix(string(web.AppendText(nil, flow.TextOptions{})), "\n")) + "\n"
		if out != want {
			t.Errorf("conntrackd %s: %q, want %q", flag, out, want)
		}
		if strings.Contains(out, " 431999 ") || !strings.HasPrefix(out, "tcp      6 ESTABLISHED src=10.0.0.1") {
			t.Errorf("conntrackd %s: %q: want conntrackd's line, without the timeout", flag, out)
		}
	}
}

func TestCtdCacheLine(t *testing.T) {
	for in, want := range map[string]string{
		"tcp      6 431999 ESTABLISHED src=10.1.1.3 dst=10.2.2.9 [ASSURED] mark=0 use=1": "tcp      6 ESTABLISHED src=10.1.1.3 dst=10.2.2.9 [ASSURED] mark=0 use=1",
		"icmp     1 29 src=10.1.1.1 dst=10.2.2.2 type=8 code=0 id=9":                     "icmp     1 src=10.1.1.1 dst=10.2.2.2 type=8 code=0 id=9",
		"garbage": "garbage",
		"":        "",
	} {
		if got := ctdCacheLine(in); got != want {
			t.Errorf("ctdCacheLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConntrackdExpect runs conntrackd's expect variants against a daemon
// whose caches hold expectations: -i/-e expect list them, -s expect counts
// them, -c/-R expect run the commit and resync that carry them, and the
// help says they replicate.
func TestConntrackdExpect(t *testing.T) {
	a := netip.MustParseAddr
	x := flow.Expect{
		Tuple:   flow.Tuple{Src: a("10.0.0.2"), Dst: a("10.0.0.1"), Proto: flow.ProtoTCP, DstPort: 50000},
		Mask:    flow.Tuple{Src: a("255.255.255.255"), Dst: a("255.255.255.255"), Proto: flow.ProtoTCP, DstPort: 0xffff},
		Master:  flow.Tuple{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 21},
		Timeout: 297, Helper: "ftp",
	}
	x.Set(flow.ExpectAttrTimeout | flow.ExpectAttrHelper)
	y := x
	y.Tuple.DstPort = 50001
	web := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 40000, 21)
	b := &controltest.ExpectBackend{
		Backend: ctdBackend(),
		// The flows must not show in an expectation listing.
		InternalExpect: []controltest.Expect{{Origin: "fw-a", Expect: x}},
		ExternalExpect: []controltest.Expect{{Origin: "fw-b", Expect: x}, {Origin: "fw-c", Expect: y}},
	}
	b.Internal = []controltest.Flow{{Origin: "fw-a", Flow: web}}
	b.External = []controltest.Flow{{Origin: "fw-b", Flow: web}}
	sock := ctlDaemon(t, b)
	run := func(args ...string) (string, []controltest.Call) {
		t.Helper()
		before := len(b.Calls())
		code, out, errOut := asConntrackd(t, append(args, "--socket", sock)...)
		if code != exitOK || errOut != "" {
			t.Fatalf("conntrackd %q: exit %d, stderr %q", args, code, errOut)
		}
		return out, b.Calls()[before:]
	}
	xl, yl := x.String()+"\n", y.String()+"\n"
	for _, tt := range []struct {
		args  []string
		out   string
		cache string
	}{
		{[]string{"-i", "expect"}, xl, "internal"},
		{[]string{"-i", "e"}, xl, "internal"},
		{[]string{"-e", "expect"}, xl + yl, "external"},
	} {
		out, calls := run(tt.args...)
		if out != tt.out {
			t.Errorf("conntrackd %q: %q, want %q", tt.args, out, tt.out)
		}
		if !strings.HasPrefix(out, "297 proto=6 src=10.0.0.2 dst=10.0.0.1 sport=0 dport=50000 ") {
			t.Errorf("conntrackd %q: %q: want conntrack -L expect's lines", tt.args, out)
		}
		if len(calls) != 1 || calls[0].Method != "CacheExpect" || calls[0].Arg.(control.CacheQuery).Cache != tt.cache {
			t.Errorf("conntrackd %q: calls %v, want one CacheExpect of the %s cache", tt.args, calls, tt.cache)
		}
	}
	// -i and -i ct still list flows.
	for _, args := range [][]string{{"-i"}, {"-i", "ct"}} {
		if out, _ := run(args...); !strings.HasPrefix(out, "tcp      6 ESTABLISHED src=10.0.0.1") {
			t.Errorf("conntrackd %q: %q, want the flow", args, out)
		}
	}

	out, calls := run("-s", "expect")
	want := "cache internal:\ncurrent active connections:\t           1\n\n" +
		"cache external:\ncurrent active connections:\t           2\n\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "sync traffic (peer=fw-b") {
		t.Errorf("conntrackd -s expect: %q, want it to start with %q and show the links", out, want)
	}
	if len(calls) != 3 || calls[0].Method != "Stats" || calls[1].Method != "CacheExpect" || calls[2].Method != "CacheExpect" {
		t.Errorf("conntrackd -s expect: calls %v", calls)
	}

	for _, args := range [][]string{{"-c", "expect"}, {"-R", "expect"}} {
		if _, calls := run(args...); len(calls) != 1 || (calls[0].Method != "Commit" && calls[0].Method != "ResyncKernel") {
			t.Errorf("conntrackd %q: calls %v, want the commit or the resync", args, calls)
		}
	}

	out, _ = run("-h")
	if strings.Contains(out, "not replicated") || strings.Contains(out, "do nothing") ||
		!strings.Contains(out, "Expectations (what helpers such as ftp announce) replicate") {
		t.Errorf("conntrackd -h says expectations do not replicate:\n%s", out)
	}
}

// TestConntrackdExpectOldDaemon: a daemon that keeps no expectations says
// so, instead of -i expect printing nothing.
func TestConntrackdExpectOldDaemon(t *testing.T) {
	sock := ctlDaemon(t, ctdBackend())
	code, out, errOut := asConntrackd(t, "-i", "expect", "--socket", sock)
	if code != exitFailure || out != "" || !strings.Contains(errOut, "expectations") {
		t.Errorf("conntrackd -i expect: exit %d, stdout %q, stderr %q; want 1 and why", code, out, errOut)
	}
}
