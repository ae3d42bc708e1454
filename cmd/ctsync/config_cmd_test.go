package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes content to name in dir with the given mode.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // despite the umask
		t.Fatal(err)
	}
	return path
}

func TestConfigDefaultCheckRoundTrip(t *testing.T) {
	code, def, errOut := ctsync(t, "config", "default")
	if code != exitOK || errOut != "" {
		t.Fatalf("config default: exit %d, stderr %q", code, errOut)
	}
	dir := t.TempDir()

	// As installed: a key from keygen, private, and key_file pointing at it.
	code, key, errOut := ctsync(t, "keygen")
	if code != exitOK {
		t.Fatalf("keygen: exit %d, stderr %q", code, errOut)
	}
	keyFile := writeFile(t, dir, "cluster.key", key, 0o600)
	withKey := strings.Replace(def, "#key_file: /etc/ctsync/cluster.key", "key_file: "+keyFile, 1)
	if withKey == def {
		t.Fatal("config default has no commented-out key_file line to replace")
	}

	// Without a peer or an address, there is nothing to bind to.
	path := writeFile(t, dir, "no-peer.yaml", withKey, 0o644)
	code, out, errOut := ctsync(t, "config", "check", "--config", path)
	if want := "cluster.bind: not set, and cluster.join is empty: set it to this node's address on the sync link"; code != exitFailure ||
		out != "" || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 2 {
		t.Fatalf("config check of the default: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and one problem: %s", code, out, errOut, want)
	}
	withKey = strings.Replace(withKey, "join: []", `join: ["10.0.3.2:7946"]`, 1)

	// Or without encryption.
	insecure := strings.Replace(withKey, "key_file: "+keyFile, "#key_file: /etc/ctsync/cluster.key", 1)
	insecure = strings.Replace(insecure, "insecure: false", "insecure: true", 1)
	if !strings.Contains(insecure, "insecure: true") || !strings.Contains(insecure, "#key_file") {
		t.Fatal("config default has no insecure: false line to replace")
	}

	for name, content := range map[string]string{"with-key.yaml": withKey, "insecure.yaml": insecure} {
		path := writeFile(t, dir, name, content, 0o644)
		code, out, errOut := ctsync(t, "config", "check", "--config", path)
		if code != exitOK || errOut != "" {
			t.Fatalf("config check %s: exit %d, stderr:\n%s", name, code, errOut)
		}
		if want := "config OK: " + path + "\n"; out != want {
			t.Fatalf("config check %s: stdout %q, want %q", name, out, want)
		}
	}
}

func TestConfigCheckListsAllProblems(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "cluster.key", "AAAA\n", 0o644)
	path := writeFile(t, dir, "ctsync.yaml", `node: fw-a
cluster:
  bind: 10.0.3.1
  bnd: 10.0.3.1:7946
  key_file: `+keyFile+`
filter:
  protocols: [tcp, ipx]
log:
  level: loud
`, 0o644)
	code, out, errOut := ctsync(t, "config", "check", "-c", path)
	if code != exitFailure || out != "" {
		t.Fatalf("config check: exit %d, stdout %q; want %d and nothing", code, out, exitFailure)
	}
	want := []string{
		"cluster.bnd: unknown key (line 4)",
		`cluster.bind: want host:port such as 10.0.3.1:7946 ([::1]:7946 for IPv6), got "10.0.3.1"`,
		"cluster.key_file: " + keyFile + " is accessible by group or others (mode 0644); run `chmod 600 " + keyFile + "`",
		"cluster.key_file: " + keyFile + ": key is 3 bytes long, want 16, 24 or 32; run `ctsync keygen > " + keyFile + "`",
		`filter.protocols[1]: unknown name "ipx"; want one of tcp udp icmp icmpv6 sctp dccp gre udplite, another protocol's name or a number 0-255`,
		`log.level: want debug, info, warn or error, got "loud"`,
		"ctsync: config " + path + ": 6 problems",
	}
	if got := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("config check stderr:\n%s\nwant:\n%s", errOut, strings.Join(want, "\n"))
	}
}

func TestConfigCheckErrors(t *testing.T) {
	dir := t.TempDir()
	syntax := writeFile(t, dir, "syntax.yaml", "cluster: [\n", 0o644)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"missing file", []string{"config", "check", "-c", filepath.Join(dir, "none.yaml")}, exitFailure,
			"ctsync: read config: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory\n"},
		{"not YAML", []string{"config", "check", "-c", syntax}, exitFailure,
			"ctsync: config " + syntax + ": yaml: line 1: did not find expected node content\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := ctsync(t, tt.args...)
			if code != tt.wantCode || errOut != tt.wantStderr {
				t.Fatalf("ctsync %q: exit %d, stderr %q; want %d, %q", tt.args, code, errOut, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestConfigUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"config", "check", "extra"},
		{"config", "default", "extra"},
		{"config", "chek"},
		{"keygen", "extra"},
	} {
		if code, _, errOut := ctsync(t, args...); code != exitUsage {
			t.Errorf("ctsync %q: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
	}
}

func TestKeygen(t *testing.T) {
	code, out, errOut := ctsync(t, "keygen")
	if code != exitOK || errOut != "" {
		t.Fatalf("keygen: exit %d, stderr %q", code, errOut)
	}
	line, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("keygen output %q, want one line", out)
	}
	key, err := base64.StdEncoding.DecodeString(line)
	if err != nil || len(key) != 32 {
		t.Fatalf("keygen output %q decodes to %d bytes (%v), want 32", line, len(key), err)
	}
	if _, again, _ := ctsync(t, "keygen"); again == out {
		t.Fatal("two keygen runs printed the same key")
	}
}

// TestConfigCheckKeyFileOwner: a key file another user owns can be
// replaced by that user; config check says so and how to fix it.
func TestConfigCheckKeyFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	dir := t.TempDir()
	_, key, _ := ctsync(t, "keygen")
	keyFile := writeFile(t, dir, "cluster.key", key, 0o600)
	if err := os.Chown(keyFile, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir, "ctsync.yaml", "node: fw-a\ncluster:\n  bind: 10.0.3.1:7946\n  key_file: "+keyFile+"\n", 0o644)
	code, out, errOut := ctsync(t, "config", "check", "-c", path)
	want := "cluster.key_file: " + keyFile + " is owned by uid 65534, neither root nor the daemon's user (uid 0): " +
		"anyone acting as uid 65534 can replace the key; run `chown root:root " + keyFile + "`\n" +
		"ctsync: config " + path + ": 1 problem\n"
	if code != exitFailure || out != "" || errOut != want {
		t.Fatalf("config check: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and:\n%s", code, out, errOut, want)
	}
}

// TestConfigCheckWarnsSocket: config check warns, without failing, about a
// control socket the shipped unit cannot create (conntrackd's path).
func TestConfigCheckWarnsSocket(t *testing.T) {
	dir := t.TempDir()
	for sock, warn := range map[string]bool{"/var/run/conntrackd.ctl": true, "/run/ctsync/ctsync.sock": false} {
		path := writeFile(t, dir, "ctsync.yaml", "node: fw-a\ncluster:\n  bind: 10.0.3.1:7946\n  insecure: true\n"+
			"control:\n  socket: "+sock+"\n", 0o644)
		code, out, errOut := ctsync(t, "config", "check", "--config", path)
		if code != exitOK || out != "config OK: "+path+"\n" {
			t.Errorf("config check, socket %s: exit %d, stdout %q, stderr %q; want 0 and OK", sock, code, out, errOut)
		}
		want := ""
		if warn {
			want = "warning: control.socket: " + sock + " is outside what the shipped systemd unit lets the daemon write"
		}
		if warn != (errOut != "") || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") > 1 {
			t.Errorf("config check, socket %s: stderr %q, want %q", sock, errOut, want)
		}
	}
	// With problems too, the warning is shown.
	path := writeFile(t, dir, "bad.yaml", "node: fw-a\ncluster:\n  bind: 10.0.3.1:7946\n  insecure: true\n"+
		"control:\n  socket: /var/run/conntrackd.ctl\nlog:\n  level: loud\n", 0o644)
	code, _, errOut := ctsync(t, "config", "check", "--config", path)
	if code != exitFailure || !strings.Contains(errOut, "warning: control.socket: /var/run/conntrackd.ctl") || !strings.Contains(errOut, "log.level") {
		t.Errorf("config check with a problem: exit %d, stderr %q; want 1, the problem and the warning", code, errOut)
	}
}
