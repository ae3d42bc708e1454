package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInvocations runs representative bad command lines of every command
// family in-process. Each must exit 2 before doing any work, with one error
// line on stderr that names the bad flag or value, followed only by the hint to
// --help (docs/interface.md, "Exit codes"). conntrackd's command line is the
// documented exception: it exits 1 with conntrackd's usage text, as conntrackd
// does.
func TestBadInvocations(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "no.sock") // never dialled: usage errors come first
	badLoad := writeFile(t, dir, "bad.load", "-I -s 10.0.0.1 -d 10.0.0.2 -p tcp --sport 1 --dport 2 --state ESTABLISHED -t 10\n-I -p tcp --sport 99999\n", 0o644)
	noCmdLoad := writeFile(t, dir, "nocmd.load", "-s 10.0.0.1\n", 0o644)
	conf := writeFile(t, dir, "ctsync.yaml", "node: a\n", 0o644)

	tests := []struct {
		name string
		args []string
		want string // in the error line: the bad flag or value
	}{
		// table
		{"table list bad address", []string{"table", "list", "-s", "1.2.3.999"}, `"1.2.3.999"`},
		{"table list bad CIDR", []string{"table", "list", "-d", "10.0.0.0/33"}, `"10.0.0.0/33"`},
		{"table list bad protocol", []string{"table", "list", "-p", "tcpx"}, `"tcpx"`},
		{"table list protocol out of range", []string{"table", "list", "-p", "256"}, `"256"`},
		{"table list bad port", []string{"table", "list", "-p", "tcp", "--dport", "65536"}, "65536"},
		{"table list port without protocol", []string{"table", "list", "--sport", "80"}, "-p"},
		{"table list bad state", []string{"table", "list", "-p", "tcp", "--state", "ESTABLISHD"}, "ESTABLISHD"},
		{"table list bad status", []string{"table", "list", "-u", "ASSURED,BOGUS"}, "BOGUS"},
		{"table list bad zone", []string{"table", "list", "-w", "65536"}, "65536"},
		{"table list bad mark", []string{"table", "list", "-m", "0x1/0xg"}, "0x1/0xg"},
		{"table list bad family", []string{"table", "list", "-f", "ipv5"}, "ipv5"},
		{"table list bad output", []string{"table", "list", "-o", "yaml"}, "yaml"},
		{"table list mixed families", []string{"table", "list", "-s", "10.0.0.1", "-d", "2001:db8::1"}, "family"},
		{"table list unknown flag", []string{"table", "list", "--bogus"}, "--bogus"},
		{"table get without tuple", []string{"table", "get", "-p", "tcp"}, "-"},
		{"table delete bad id", []string{"table", "delete", "--id", "x1"}, "x1"},
		{"table insert bad timeout", []string{"table", "insert", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "-5"}, "-5"},
		{"table insert timeout too big", []string{"table", "insert", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "4294967296"}, "4294967296"},
		{"table insert bad NAT", []string{"table", "insert", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2", "--src-nat", "1.2.3.4:99999"}, "1.2.3.4:99999"},
		{"table insert without protocol", []string{"table", "insert", "-s", "10.0.0.1", "-d", "10.0.0.2"}, "-p"},
		{"table update bad state", []string{"table", "update", "-p", "tcp", "--state", "NOPE"}, "NOPE"},
		{"table events bad event mask", []string{"table", "events", "-e", "NEW,BORN"}, "BORN"},
		{"table events bad buffer size", []string{"table", "events", "-b", "lots"}, "lots"},
		{"table flush bad family", []string{"table", "flush", "-f", "ipx"}, "ipx"},
		{"table load bad line", []string{"table", "load", badLoad}, "line 2"},
		{"table load line without command", []string{"table", "load", noCmdLoad}, "line 1"},
		{"table load no file", []string{"table", "load"}, "usage: ctsync table load FILE|-"},
		{"table unknown subcommand", []string{"table", "lsit"}, `"lsit"`},
		// control commands
		{"flush unknown cache", []string{"flush", "both", "--socket", sock}, `"both"`},
		{"purge bad duration", []string{"purge", "--after", "soon", "--socket", sock}, "soon"},
		{"purge negative duration", []string{"purge", "--after", "-3s", "--socket", sock}, "-3s"},
		{"cache bad output", []string{"cache", "internal", "-o", "xml", "--socket", sock}, "xml"},
		{"cache unknown cache", []string{"cache", "middle", "--socket", sock}, `"middle"`},
		{"cache bad filter", []string{"cache", "external", "-s", "300.1.1.1", "--socket", sock}, "300.1.1.1"},
		{"cache origin on internal", []string{"cache", "internal", "--origin", "b", "--socket", sock}, "--origin"},
		{"stats bad output", []string{"stats", "-o", "csv", "--socket", sock}, `"csv"`},
		{"members bad output", []string{"members", "-o", "csv", "--socket", sock}, `"csv"`},
		{"resync unknown target", []string{"resync", "everything", "--socket", sock}, `"everything"`},
		{"commit extra argument", []string{"commit", "now", "--socket", sock}, `"now"`},
		{"health extra argument", []string{"health", "x", "--socket", sock}, `"x"`},
		{"empty socket", []string{"stats", "--socket", ""}, "--socket"},
		// notify
		{"notify unknown state", []string{"notify", "primary", "--socket", sock}, `"primary"`},
		{"notify keepalived unknown state", []string{"notify", "INSTANCE", "VI_1", "LEADER", "100", "--socket", sock}, `"LEADER"`},
		{"notify keepalived bad type", []string{"notify", "VRRP", "VI_1", "MASTER", "--socket", sock}, "VRRP"},
		{"notify no state", []string{"notify", "--socket", sock}, "master|backup|fault|stop"},
		{"notify too many", []string{"notify", "a", "b", "c", "d", "e", "--socket", sock}, "received 5"},
		// config
		{"config check unknown flag", []string{"config", "check", "--strict", "-c", conf}, "--strict"},
		{"config import no file", []string{"config", "import"}, "CONNTRACKD.CONF"},
		{"config unknown subcommand", []string{"config", "verify"}, `"verify"`},
		{"keygen extra argument", []string{"keygen", "32"}, `"32"`},
		{"daemon extra argument", []string{"daemon", "now", "-c", conf}, `"now"`},
		{"config flag without value", []string{"stats", "-c"}, "-c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := ctsync(t, tt.args...)
			checkUsageOutput(t, tt.args, code, out, errOut, tt.want)
		})
	}

	// conntrackd's command line: exit 1, its usage, then one error line.
	ctd := []struct {
		args []string
		want string
	}{
		{[]string{"-Z"}, "Unknown option: -Z"},
		{[]string{"-f", "sideways"}, "`sideways'"},
		{[]string{"-s", "bogus"}, "`bogus'"},
		{[]string{"-c", "-f"}, "-c and -f"},
		{[]string{"-C"}, "-C"},
		{[]string{"--socket="}, "--socket"},
		{[]string{"-x"}, "-x"},
	}
	for _, tt := range ctd {
		t.Run("conntrackd "+strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := ctsync(t, append([]string{"conntrackd"}, tt.args...)...)
			lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			last := lines[len(lines)-1]
			if code != exitFailure || out != "" || !strings.HasPrefix(errOut, "Usage: conntrackd") {
				t.Fatalf("conntrackd %q: exit %d, stdout %q, stderr %q; want 1, the usage on stderr", tt.args, code, out, errOut)
			}
			if strings.Count(errOut, "ctsync: ") != 1 || !strings.HasPrefix(last, "ctsync: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("conntrackd %q: stderr ends %q, want one error line naming %q", tt.args, last, tt.want)
			}
		})
	}
}

// checkUsageOutput requires exit 2, nothing on stdout, and on stderr one
// error line naming want, then the --help hint.
func checkUsageOutput(t *testing.T, args []string, code int, out, errOut, want string) {
	t.Helper()
	if code != exitUsage {
		t.Fatalf("ctsync %q: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
	}
	if out != "" {
		t.Errorf("ctsync %q: stdout %q, want nothing", args, out)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ctsync: ") ||
		!strings.HasPrefix(lines[1], "Run 'ctsync") || !strings.HasSuffix(lines[1], " --help' for usage.") {
		t.Fatalf("ctsync %q: stderr %q, want one \"ctsync: \" line and the --help hint", args, errOut)
	}
	if !strings.Contains(lines[0], want) {
		t.Errorf("ctsync %q: error %q does not name %q", args, lines[0], want)
	}
}
