package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// ctlSocketPath returns a socket path in a new short directory (UNIX
// socket paths are limited to 107 bytes).
func ctlSocketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctsync-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ctsync.sock")
}

// ctlDaemon serves b on a new control socket until the test ends and
// returns the socket's path.
func ctlDaemon(t *testing.T, b control.Backend) string {
	t.Helper()
	path := ctlSocketPath(t)
	srv, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, b, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	return path
}

// ctl runs a control command against the socket.
func ctl(t *testing.T, sock string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return ctsync(t, append(args, "--socket", sock)...)
}

func ctlBackend() *controltest.Backend {
	return &controltest.Backend{
		CommitResult: control.CommitResult{Created: 99998, Replaced: 2, Seconds: 0.312},
		ResyncResult: control.ResyncResult{Flows: 1234, Removed: 5, Seconds: 0.05},
		Peers:        2,
		StatsValue: stats.Stats{UptimeSeconds: 42, Internal: stats.Internal{Flows: 10},
			Sync: stats.Sync{Peers: []stats.Peer{{Peer: "fw-b", Connected: true}, {Peer: "fw-c"}}}},
		MemberList: []control.Member{
			{Name: "fw-a", Addr: "10.0.3.1:7946", State: "alive", Since: 3725, Self: true},
			{Name: "fw-b", Addr: "10.0.3.2:7946", State: "suspect", Since: 3, Connected: false, InSync: false},
		},
		NotifyResult: control.NotifyResult{Steps: []control.NotifyStep{
			{Name: "resync-peers", Seconds: 0.01, Detail: "2 peers"},
			{Name: "schedule-purge", Seconds: 0},
		}},
		HealthResult: control.HealthResult{Ready: true},
	}
}

func TestControlCommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		setup    func(b *controltest.Backend)
		code     int
		stdout   string // exact, unless "~" starts it: then a substring
		stderr   string // substring; "" means empty
		wantCall *controltest.Call
	}{
		{name: "commit", args: []string{"commit"},
			stdout:   "committed 100000 flows in 0.312s: 99998 created, 2 replaced, 0 failed\n",
			wantCall: &controltest.Call{Method: "Commit"}},
		{name: "commit with failures", args: []string{"commit"},
			setup: func(b *controltest.Backend) {
				b.CommitResult = control.CommitResult{Created: 7, Replaced: 1, Failed: 2, Seconds: 0.01,
					Errors: []string{"tcp 10.0.0.1:1 -> 10.0.0.2:80: file exists"}}
			},
			code:   exitFailure,
			stdout: "committed 10 flows in 0.010s: 7 created, 1 replaced, 2 failed\n",
			stderr: "ctsync: commit: tcp 10.0.0.1:1 -> 10.0.0.2:80: file exists\nctsync: commit: ... and 1 more (see the daemon's log)\nctsync: commit: 2 of 10 flows failed; 2 flows remain in the external cache: run `ctsync commit` to retry\n"},
		{name: "commit with skipped flows", args: []string{"commit"},
			setup: func(b *controltest.Backend) {
				b.CommitResult = control.CommitResult{Created: 7, Skipped: 3, ExpectationsSkipped: 1, Seconds: 0.01}
			},
			stdout: "committed 7 flows in 0.010s: 7 created, 0 replaced, 0 failed\nskipped 3 flows and 1 expectation this node refuses (its filter, a loopback or its own address): not written\n"},
		{name: "commit with a flow kept local", args: []string{"commit"},
			setup: func(b *controltest.Backend) {
				b.CommitResult = control.CommitResult{Created: 3, Replaced: 1, KeptLocal: 1, Remaining: 1, Seconds: 0.01,
					Errors: []string{"kept local: the kernel refused the replica (operation not supported); the local entry was put back: tcp 10.0.0.1:1 -> 10.0.0.2:80"}}
			},
			code:   exitFailure,
			stdout: "committed 5 flows in 0.010s: 3 created, 1 replaced, 1 kept local, 0 failed\n",
			stderr: "ctsync: commit: kept local: the kernel refused the replica (operation not supported); the local entry was put back: tcp 10.0.0.1:1 -> 10.0.0.2:80\nctsync: commit: 1 of 5 flows not written (0 failed, 1 kept local); 1 flows remain in the external cache: run `ctsync commit` to retry\n"},
		{name: "commit fails", args: []string{"commit"},
			setup: func(b *controltest.Backend) {
				b.Errors = map[string]error{"Commit": context.DeadlineExceeded}
			},
			code: exitFailure, stderr: "ctsync: context deadline exceeded\n"},

		{name: "flush both", args: []string{"flush"}, stdout: "flushed both caches\n",
			wantCall: &controltest.Call{Method: "Flush", Arg: ""}},
		{name: "flush internal", args: []string{"flush", "internal"}, stdout: "flushed the internal cache\n",
			wantCall: &controltest.Call{Method: "Flush", Arg: "internal"}},
		{name: "flush external", args: []string{"flush", "external"}, stdout: "flushed the external cache\n",
			wantCall: &controltest.Call{Method: "Flush", Arg: "external"}},
		{name: "flush unknown cache", args: []string{"flush", "all"}, code: exitUsage, stderr: `unknown cache "all"`},
		{name: "flush two caches", args: []string{"flush", "internal", "external"}, code: exitUsage, stderr: "accepts at most 1 arg"},

		{name: "resync kernel", args: []string{"resync", "kernel"},
			stdout:   "rebuilt the internal cache from the kernel table in 0.050s: 1234 flows, 5 removed\n",
			wantCall: &controltest.Call{Method: "ResyncKernel"}},
		{name: "resync peers", args: []string{"resync", "peers"},
			stdout:   "asked 2 peers to send their flows again\n",
			wantCall: &controltest.Call{Method: "ResyncPeers"}},
		{name: "resync alone", args: []string{"resync"}, stdout: "~ctsync resync [command]"},
		{name: "resync unknown", args: []string{"resync", "kernal"}, code: exitUsage, stderr: "did you mean kernel?"},

		{name: "send-bulk", args: []string{"send-bulk"}, stdout: "sent the internal cache to 2 peers\n",
			wantCall: &controltest.Call{Method: "SendBulk"}},
		{name: "send-bulk one peer", args: []string{"send-bulk"}, setup: func(b *controltest.Backend) { b.Peers = 1 },
			stdout: "sent the internal cache to 1 peer\n"},

		{name: "purge", args: []string{"purge"}, stdout: "~purge scheduled in 1m0s (at ",
			wantCall: &controltest.Call{Method: "Purge", Arg: time.Duration(0)}},
		{name: "purge after", args: []string{"purge", "--after", "1m30s"}, stdout: "~purge scheduled in 1m30s (at ",
			wantCall: &controltest.Call{Method: "Purge", Arg: 90 * time.Second}},
		{name: "purge after zero", args: []string{"purge", "--after", "0s"}, code: exitUsage, stderr: "want a positive duration"},
		{name: "purge after junk", args: []string{"purge", "--after", "soon"}, code: exitUsage, stderr: "invalid argument"},
		{name: "purge argument", args: []string{"purge", "30s"}, code: exitUsage, stderr: `unknown command "30s"`},

		{name: "stats json", args: []string{"stats", "-o", "json"}, stdout: "~\n  \"uptime_seconds\": 42,\n",
			wantCall: &controltest.Call{Method: "Stats"}},
		{name: "stats text", args: []string{"stats"}, stdout: "~\nuptime:     42s\n"},
		{name: "stats text peers", args: []string{"stats"}, stdout: "~    peer fw-b:\n      addr:                              connected: yes\n"},
		{name: "stats bad format", args: []string{"stats", "-o", "yaml"}, code: exitUsage, stderr: `-o "yaml": want text or json`},
		{name: "stats text insecure", args: []string{"stats"},
			setup:  func(b *controltest.Backend) { b.StatsValue.Insecure = true },
			stdout: "~" + insecureWarning + "node:"},
		{name: "stats json insecure", args: []string{"stats", "-o", "json"},
			setup:  func(b *controltest.Backend) { b.StatsValue.Insecure = true },
			stdout: "~\n  \"insecure\": true\n}\n"},

		{name: "members", args: []string{"members"}, stdout: `NAME         ADDR           STATE    SINCE       CONNECTED  IN-SYNC
fw-a (self)  10.0.3.1:7946  alive    1h2m5s ago  -          -
fw-b         10.0.3.2:7946  suspect  3s ago      no         no
`, wantCall: &controltest.Call{Method: "Members"}},
		{name: "members json", args: []string{"members", "-o", "json"},
			stdout: "~\"name\": \"fw-b\",\n    \"addr\": \"10.0.3.2:7946\",\n    \"state\": \"suspect\""},
		{name: "members none json", args: []string{"members", "-o", "json"},
			setup: func(b *controltest.Backend) { b.MemberList = nil }, stdout: "[]\n"},

		{name: "notify master", args: []string{"notify", "master"},
			setup: func(b *controltest.Backend) {
				b.NotifyResult = control.NotifyResult{
					Steps:  []control.NotifyStep{{Name: "commit", Seconds: 0.3, Detail: "10 flows"}, {Name: "resync-kernel", Seconds: 0.2}},
					Commit: &control.CommitResult{Created: 10, Seconds: 0.3},
				}
			},
			stdout: `notify master: done in 0.500s
  commit         0.300s  10 flows
  resync-kernel  0.200s
committed 10 flows in 0.300s: 10 created, 0 replaced, 0 failed
`,
			wantCall: &controltest.Call{Method: "Notify", Arg: "master"}},
		{name: "notify master with failed commit", args: []string{"notify", "master"},
			setup: func(b *controltest.Backend) {
				b.NotifyResult = control.NotifyResult{Commit: &control.CommitResult{Created: 9, Failed: 1}}
			},
			code: exitFailure, stdout: "~committed 10 flows", stderr: "ctsync: commit: 1 of 10 flows failed; 1 flows remain"},
		{name: "notify master with flows remaining", args: []string{"notify", "master"},
			setup: func(b *controltest.Backend) {
				b.NotifyResult = control.NotifyResult{State: "master", Remaining: 2,
					Steps:  []control.NotifyStep{{Name: "flush external cache", Detail: "2 flows not written remain; run `ctsync commit` to retry"}},
					Commit: &control.CommitResult{Created: 8, Failed: 2, Remaining: 2}}
			},
			code: exitFailure, stdout: "~committed 10 flows in 0.000s: 8 created, 0 replaced, 2 failed\n",
			stderr: "ctsync: notify master: 2 flows remain in the external cache: run `ctsync commit` to retry\n"},
		{name: "notify BACKUP", args: []string{"notify", "BACKUP"}, stdout: "~notify backup: done in 0.010s\n",
			wantCall: &controltest.Call{Method: "Notify", Arg: "backup"}},
		{name: "notify keepalived instance", args: []string{"notify", "INSTANCE", "VI_1", "MASTER", "100"},
			stdout: "~notify master", wantCall: &controltest.Call{Method: "Notify", Arg: "master"}},
		{name: "notify keepalived group", args: []string{"notify", "GROUP", "fw", "FAULT"},
			wantCall: &controltest.Call{Method: "Notify", Arg: "fault"}, stdout: "~notify fault"},
		{name: "notify keepalived lower case", args: []string{"notify", "instance", "VI_1", "Backup", "50"},
			wantCall: &controltest.Call{Method: "Notify", Arg: "backup"}, stdout: "~notify backup"},
		{name: "notify keepalived stop", args: []string{"notify", "INSTANCE", "VI_1", "STOP"},
			wantCall: &controltest.Call{Method: "Notify", Arg: "stop"}, stdout: "~notify stop"},
		{name: "notify keepalived deleted", args: []string{"notify", "INSTANCE", "VI_1", "DELETED", "0"},
			wantCall: &controltest.Call{Method: "Notify", Arg: "stop"}, stdout: "~notify stop"},
		{name: "notify unknown state", args: []string{"notify", "primary"}, code: exitUsage, stderr: `unknown state "primary"`},
		{name: "notify keepalived unknown state", args: []string{"notify", "INSTANCE", "VI_1", "UP"}, code: exitUsage, stderr: `unknown state "UP"`},
		{name: "notify two args", args: []string{"notify", "INSTANCE", "VI_1"}, code: exitUsage, stderr: "GROUP|INSTANCE NAME STATE [PRIORITY]"},
		{name: "notify bad type", args: []string{"notify", "ROUTER", "VI_1", "MASTER"}, code: exitUsage, stderr: "GROUP|INSTANCE NAME STATE [PRIORITY]"},
		{name: "notify too many", args: []string{"notify", "INSTANCE", "VI_1", "MASTER", "100", "x"}, code: exitUsage, stderr: "accepts between 1 and 4 arg(s)"},
		{name: "notify nothing", args: []string{"notify"}, code: exitUsage, stderr: "accepts between 1 and 4 arg(s)"},
		{name: "notify refused", args: []string{"notify", "master"},
			setup: func(b *controltest.Backend) {
				b.Errors = map[string]error{"Notify": control.ErrInvalid}
			},
			code: exitFailure, stderr: "ctsync: invalid request\n"},

		{name: "health ready", args: []string{"health"}, stdout: "ready\n", wantCall: &controltest.Call{Method: "Health"}},
		{name: "health not ready", args: []string{"health"},
			setup: func(b *controltest.Backend) {
				b.HealthResult = control.HealthResult{Reason: "external cache of fw-b not in sync"}
			},
			code: exitFailure, stderr: "ctsync: not ready: external cache of fw-b not in sync\n"},

		{name: "shutdown", args: []string{"shutdown"}, stdout: "the daemon is shutting down\n",
			wantCall: &controltest.Call{Method: "Shutdown"}},
		{name: "shutdown argument", args: []string{"shutdown", "now"}, code: exitUsage, stderr: `unknown command "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ctlBackend()
			if tt.setup != nil {
				tt.setup(b)
			}
			sock := ctlDaemon(t, b)
			code, out, errOut := ctl(t, sock, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if want, ok := strings.CutPrefix(tt.stdout, "~"); ok {
				if !strings.Contains(out, want) {
					t.Errorf("stdout %q, want it to contain %q", out, want)
				}
			} else if out != tt.stdout && !(tt.stdout == "" && code != exitOK) {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tt.stdout)
			}
			if tt.stderr == "" && errOut != "" || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q, want %q", errOut, tt.stderr)
			}
			if tt.wantCall != nil {
				if got := b.LastCall(); !reflect.DeepEqual(got, *tt.wantCall) {
					t.Errorf("backend call %+v, want %+v", got, *tt.wantCall)
				}
			}
			if code == exitUsage {
				if calls := b.Calls(); len(calls) != 0 {
					t.Errorf("a usage error reached the daemon: %v", calls)
				}
			}
		})
	}
}

func TestControlNotRunning(t *testing.T) {
	sock := ctlSocketPath(t)
	want := "ctsync: ctsync daemon is not running (no control socket at " + sock +
		"); start it with `ctsync daemon` or `systemctl start ctsync`\n"
	for _, args := range [][]string{
		{"commit"}, {"flush"}, {"resync", "kernel"}, {"resync", "peers"}, {"send-bulk"}, {"purge"},
		{"cache", "internal"}, {"cache", "external", "--count"}, {"stats"}, {"members"},
		{"notify", "master"}, {"notify", "INSTANCE", "VI_1", "BACKUP", "100"}, {"health"}, {"shutdown"},
	} {
		code, out, errOut := ctl(t, sock, args...)
		if code != exitFailure || errOut != want || out != "" {
			t.Errorf("ctsync %s: exit %d, stdout %q, stderr %q; want exit 1 and %q",
				strings.Join(args, " "), code, out, errOut, want)
		}
	}
}

func TestCacheCommand(t *testing.T) {
	web := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 40000, 80)
	ssh := controltest.TCPFlow("10.0.0.1", "10.0.0.3", 40001, 22)
	b := &controltest.Backend{
		Internal: []controltest.Flow{{Origin: "fw-a", Flow: web}, {Origin: "fw-a", Flow: ssh}},
		External: []controltest.Flow{{Origin: "fw-b", Flow: web}, {Origin: "fw-c", Flow: ssh}},
	}
	sock := ctlDaemon(t, b)
	text := func(f flow.Flow) string { return string(f.AppendText(nil, flow.TextOptions{})) + "\n" }

	tests := []struct {
		name   string
		args   []string
		filter []string // as `table list` takes them; the query must carry what it parses
		query  control.CacheQuery
		stdout string
		stderr string
	}{
		{name: "internal", args: []string{"cache", "internal"},
			query:  control.CacheQuery{Cache: "internal", Format: "text"},
			stdout: text(web) + text(ssh), stderr: "ctsync: 2 flow entries have been shown.\n"},
		{name: "filters", args: []string{"cache", "internal"},
			filter: []string{"-p", "tcp", "--dport", "80", "-s", "10.0.0.0/24", "--state", "ESTABLISHED", "-u", "ASSURED"},
			query: control.CacheQuery{Cache: "internal", Format: "text", Filter: flow.Filter{
				HasProto: true, Proto: flow.ProtoTCP, HasDstPort: true, DstPort: 80,
				OrigSrc: netip.MustParsePrefix("10.0.0.0/24"), Family: flow.IPv4,
				HasState: true, State: flow.TCPEstablished,
				HasStatus: true, StatusSet: flow.StatusAssured,
			}},
			stdout: text(web), stderr: "ctsync: 1 flow entries have been shown.\n"},
		{name: "state by name, without -p", args: []string{"cache", "internal"},
			filter: []string{"--state", "ESTABLISHED"},
			query: control.CacheQuery{Cache: "internal", Format: "text", Filter: flow.Filter{
				HasAnyState: true, AnyState: flow.ProtoStates{HasTCP: true, TCP: flow.TCPEstablished, HasSCTP: true, SCTP: 4},
			}},
			stdout: text(web) + text(ssh), stderr: "ctsync: 2 flow entries have been shown.\n"},
		{name: "NAT filter with a separate argument", args: []string{"cache", "external"},
			filter: []string{"--src-nat", "192.0.2.1"},
			query: control.CacheQuery{Cache: "external", Format: "text", Filter: flow.Filter{
				Family: flow.IPv4, HasSrcNAT: true, SrcNAT: flow.NATSpec{Addr: netip.MustParseAddr("192.0.2.1")},
			}},
			stderr: "ctsync: 0 flow entries have been shown.\n"},
		{name: "GRE keys go in Extra", args: []string{"cache", "internal"},
			filter: []string{"-p", "gre", "--srckey", "5", "--reply-key-dst", "0x10"},
			query: control.CacheQuery{Cache: "internal", Format: "text",
				Filter: flow.Filter{HasProto: true, Proto: flow.ProtoGRE},
				Extra:  flow.ExtraFilter{HasSrcKey: true, SrcKey: 5, HasReplyDstKey: true, ReplyDstKey: 16}},
			stderr: "ctsync: 0 flow entries have been shown.\n"},
		{name: "extended and id", args: []string{"cache", "internal", "-o", "extended,id"}, filter: []string{"--dport", "22", "-p", "tcp"},
			query: control.CacheQuery{Cache: "internal", Format: "text", Extended: true, ID: true,
				Filter: flow.Filter{HasProto: true, Proto: flow.ProtoTCP, HasDstPort: true, DstPort: 22}},
			stdout: string(ssh.AppendText(nil, flow.TextOptions{Extended: true, ID: true})) + "\n",
			stderr: "ctsync: 1 flow entries have been shown.\n"},
		{name: "json of one origin", args: []string{"cache", "external", "--origin", "fw-c", "-o", "json"},
			query:  control.CacheQuery{Cache: "external", Origin: "fw-c", Format: "json"},
			stdout: string(ssh.AppendJSON(nil, "fw-c")) + "\n", stderr: "ctsync: 1 flow entries have been shown.\n"},
		{name: "save", args: []string{"cache", "external", "-o", "save"}, filter: []string{"-d", "10.0.0.2"},
			query: control.CacheQuery{Cache: "external", Format: "save",
				Filter: flow.Filter{Family: flow.IPv4, OrigDst: netip.MustParsePrefix("10.0.0.2/32")}},
			stdout: string(web.AppendSave(nil, 'A')) + "\n", stderr: "ctsync: 1 flow entries have been shown.\n"},
		{name: "count", args: []string{"cache", "external", "--count"}, filter: []string{"-p", "tcp"},
			query:  control.CacheQuery{Cache: "external", Format: "text", Count: true, Filter: flow.Filter{HasProto: true, Proto: flow.ProtoTCP}},
			stdout: "2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := ctl(t, sock, append(tt.args, tt.filter...)...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tt.stdout || errOut != tt.stderr {
				t.Errorf("stdout %q, stderr %q\nwant     %q, stderr %q", out, errOut, tt.stdout, tt.stderr)
			}
			got := b.LastCall()
			if !reflect.DeepEqual(got, controltest.Call{Method: "Cache", Arg: tt.query}) {
				t.Errorf("query %+v\nwant  %+v", got.Arg, tt.query)
			}
			// The same filter options select the same flows as table list.
			if req, err := parseListArgs(tt.filter...); err != nil {
				t.Errorf("table list %q: %v", tt.filter, err)
			} else if q, _ := got.Arg.(control.CacheQuery); q.Filter != req.Filter || q.Extra != req.Extra {
				t.Errorf("query filter %+v %+v\ntable list's %+v %+v", q.Filter, q.Extra, req.Filter, req.Extra)
			}
		})
	}

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"cache alone prints help", []string{"cache"}, exitOK, ""},
		{"unknown cache", []string{"cache", "both"}, exitUsage, `unknown command "both" for "ctsync cache"`},
		{"origin of the internal cache", []string{"cache", "internal", "--origin", "fw-b"}, exitUsage, "--origin applies to the external cache only"},
		{"netns", []string{"cache", "internal", "--netns", "fw"}, exitUsage, "--netns does not apply"},
		{"count and output", []string{"cache", "internal", "--count", "-o", "json"}, exitUsage, "leave out -o"},
		{"state of a protocol without states", []string{"cache", "internal", "-p", "udp", "--state", "ESTABLISHED"}, exitUsage, "--state needs -p tcp"},
		{"state of no protocol", []string{"cache", "internal", "--state", "BOGUS"}, exitUsage, `unknown state "BOGUS"`},
		{"stray argument", []string{"cache", "external", "fw-b"}, exitUsage, `unexpected argument "fw-b"`},
		{"bad output", []string{"cache", "internal", "-o", "xml"}, exitUsage, "-o xml is not supported"},
		{"option list does not take", []string{"cache", "internal", "--id", "5"}, exitUsage, "--id cannot be used with list"},
		{"unknown origin lists nothing", []string{"cache", "external", "--origin", "fw-x"}, exitOK, "ctsync: 0 flow entries have been shown."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := ctl(t, sock, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) || tt.stderr == "" && errOut != "" {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
}

func TestControlSocketFromConfig(t *testing.T) {
	sock := ctlDaemon(t, ctlBackend())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ctsync.yaml")
	if err := os.WriteFile(cfg, []byte("control:\n  socket: "+sock+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := ctsync(t, "health", "--config", cfg); code != exitOK || out != "ready\n" {
		t.Errorf("health --config: exit %d, stdout %q, stderr %q; want the daemon of control.socket", code, out, errOut)
	}
	// --socket wins over the configuration.
	other := ctlSocketPath(t)
	if code, _, errOut := ctsync(t, "health", "-c", cfg, "--socket", other); code != exitFailure || !strings.Contains(errOut, "no control socket at "+other) {
		t.Errorf("health -c --socket: exit %d, stderr %q; want --socket's path", code, errOut)
	}
	// A configuration that cannot be read is an operational failure.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("control:\n  sokcet: /x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := ctsync(t, "health", "--config", bad)
	if code != exitFailure || !strings.Contains(errOut, "control.sokcet") || !strings.Contains(errOut, "--socket PATH") ||
		strings.Count(errOut, "\n") != 1 {
		t.Errorf("health with a bad config: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = ctsync(t, "health", "--config", filepath.Join(dir, "missing.yaml"))
	if code != exitFailure || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("health with a missing config: exit %d, stderr %q", code, errOut)
	}
}

func TestRenderJSON(t *testing.T) {
	in := `{"node":"fw-a","ready":true,"caches":{"internal":{"flows":3,"bytes":1024},"external":{"fw-b":{"flows":2}}},
	"peers":[{"name":"fw-b","lag_seconds":0.25,"tags":["x","y"]},{"name":"fw-c","queue":{"len":1,"cap":8}}],
	"errors":[],"notes":["a","b"],"last":null,"log":[1,{"k":"v"}]}`
	want := `node:  fw-a
ready: yes

caches:
  internal:
    flows: 3
    bytes: 1024
  external:
    fw-b:
      flows: 2

peers:
  NAME  LAG    TAGS  QUEUE
  fw-b  250ms  x, y  -
  fw-c  -      -     len=1 cap=8

errors: -
notes:  a, b
last:   -

log:
  - 1
  -
    k: v
`
	var b strings.Builder
	if err := renderJSON(&b, []byte(in)); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := renderJSON(&b, []byte(`{"a":`)); err == nil {
		t.Error("truncated JSON: no error")
	}
}

// parseListArgs parses table list's options as the table commands do.
func parseListArgs(args ...string) (table.ListQuery, error) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	lf := table.AddListFlags(fs)
	if err := fs.Parse(args); err != nil {
		return table.ListQuery{}, err
	}
	return lf.Parse(fs.Args())
}

// TestWriteStats prints statistics of any shape, as a newer or older
// daemon may send them: the text rendering follows the JSON.
func TestWriteStats(t *testing.T) {
	tests := []struct {
		name, raw, output, want string
	}{
		{name: "text", output: "text",
			raw: `{"internal": {"events": 99, "flows": 10}, "peers": [{"connected": true, "lag_seconds": 0.5, "name": "fw-b"},
				{"connected": false, "lag_seconds": 12, "name": "fw-c"}], "uptime_seconds": 42}`,
			want: `internal:
  events: 99
  flows:  10

peers:
  CONNECTED  LAG    NAME
  yes        500ms  fw-b
  no         12s    fw-c

uptime: 42s
`},
		{name: "text insecure", output: "text", raw: `{"insecure": true, "uptime_seconds": 42}`,
			want: `WARNING: INSECURE CLUSTER (cluster.insecure: true): cluster traffic is neither encrypted nor
authenticated; anyone who can reach the cluster port can read this node's flows and inject flows.

insecure: yes
uptime:   42s
`},
		{name: "json insecure", output: "json", raw: `{"insecure": true, "uptime_seconds": 42}`,
			want: "{\n  \"insecure\": true,\n  \"uptime_seconds\": 42\n}\n"},
		{name: "text secure", output: "text", raw: `{"insecure": false, "uptime_seconds": 42}`,
			want: "insecure: no\nuptime:   42s\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeStats(&b, json.RawMessage(tt.raw), tt.output); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}
