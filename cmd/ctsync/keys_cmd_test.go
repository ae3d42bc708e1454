package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
)

const (
	testKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	testKey2 = "AAAAAAAAAAAAAAAAAAAAAA=="                     // 16 zero bytes
)

// ctlIn runs a control command against the socket with stdin.
func ctlIn(t *testing.T, sock, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append(args, "--socket", sock), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func keysBackend() *controltest.Backend {
	return &controltest.Backend{KeysResult: control.KeysResult{Nodes: 3, Answered: 3,
		Keys: []control.KeyInfo{{Fingerprint: "630dcd29", Nodes: 3, Primary: 3}, {Fingerprint: "374708ff", Nodes: 2}}}}
}

func TestKeysList(t *testing.T) {
	b := keysBackend()
	sock := ctlDaemon(t, b)
	code, out, errOut := ctl(t, sock, "keys", "list")
	want := "KEY       INSTALLED  PRIMARY\n630dcd29  3 of 3     yes\n374708ff  2 of 3     no\n"
	if code != exitOK || out != want || errOut != "ctsync: 3 of 3 members answered.\n" {
		t.Fatalf("keys list: exit %d\nstdout:\n%s\nstderr: %q\nwant stdout:\n%s", code, out, errOut, want)
	}
	if strings.Contains(out, testKey) {
		t.Fatal("list shows a key")
	}

	code, out, errOut = ctl(t, sock, "keys", "list", "-o", "json")
	if code != exitOK || errOut != "" {
		t.Fatalf("keys list -o json: exit %d, stderr %q", code, errOut)
	}
	var got control.KeysResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("keys list -o json: %v\n%s", err, out)
	}
	want2 := b.KeysResult
	want2.Op = "list"
	if !reflect.DeepEqual(got, want2) {
		t.Fatalf("keys list -o json = %+v, want %+v", got, want2)
	}

	// A rotation half done, a member silent.
	b.Update(func(b *controltest.Backend) {
		b.KeysResult = control.KeysResult{Nodes: 3, Answered: 2, Errors: map[string]string{"fw-c": "no answer"},
			Keys: []control.KeyInfo{{Fingerprint: "630dcd29", Nodes: 2, Primary: 1}, {Fingerprint: "374708ff", Nodes: 2, Primary: 1}}}
	})
	code, out, errOut = ctl(t, sock, "keys", "list")
	if code != exitFailure || !strings.Contains(out, "630dcd29  2 of 2     on 1 of 2\n") ||
		errOut != "ctsync: 2 of 3 members answered.\nctsync: keys list: failed on 1 of 3 members: fw-c: no answer\n" {
		t.Fatalf("keys list with a silent member: exit %d\nstdout:\n%s\nstderr: %q", code, out, errOut)
	}
}

func TestKeyOps(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "new.key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoKeys := filepath.Join(dir, "two.key")
	if err := os.WriteFile(twoKeys, []byte(testKey+"\n"+testKey2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := keysBackend()
	sock := ctlDaemon(t, b)
	const fp = "630dcd29" // of testKey
	tests := []struct {
		name   string
		stdin  string
		args   []string
		method string // the backend call; "" = none
		stdout string
		code   int
		stderr string // substring; "" = empty
	}{
		{name: "install argument", args: []string{"keys", "install", testKey}, method: "InstallKey",
			stdout: "installed key " + fp + " on 3 of 3 members\n"},
		{name: "use file", args: []string{"keys", "use", "--file", keyFile}, method: "UseKey",
			stdout: "key " + fp + " is the primary key on 3 of 3 members\n"},
		{name: "remove stdin", stdin: "# old key\n" + testKey + "\n", args: []string{"keys", "remove", "-"}, method: "RemoveKey",
			stdout: "removed key " + fp + " from 3 of 3 members\n"},

		{name: "no key", args: []string{"keys", "install"}, code: exitUsage, stderr: "want the key: KEY, - to read it from standard input, or --file PATH"},
		{name: "argument and file", args: []string{"keys", "use", testKey, "--file", keyFile}, code: exitUsage, stderr: "not both"},
		{name: "two arguments", args: []string{"keys", "use", testKey, testKey2}, code: exitUsage, stderr: "accepts at most 1 arg"},
		{name: "not base64", args: []string{"keys", "install", "secret!"}, code: exitUsage, stderr: "the key argument: key is not base64"},
		{name: "short key", args: []string{"keys", "install", "AAAA"}, code: exitUsage, stderr: "key is 3 bytes long, want 16, 24 or 32"},
		{name: "empty stdin", args: []string{"keys", "install", "-"}, code: exitUsage, stderr: "standard input: key is 0 bytes long"},
		{name: "two keys in a file", args: []string{"keys", "install", "--file", twoKeys}, code: exitUsage, stderr: "holds 2 keys: want one"},
		{name: "missing file", args: []string{"keys", "install", "--file", filepath.Join(dir, "nope")}, code: exitFailure, stderr: "key file: open "},
		{name: "unknown op", args: []string{"keys", "rotate"}, code: exitUsage, stderr: `unknown command "rotate"`},
		{name: "list argument", args: []string{"keys", "list", "x"}, code: exitUsage, stderr: `unknown command "x"`},
		{name: "list bad output", args: []string{"keys", "list", "-o", "yaml"}, code: exitUsage, stderr: `-o "yaml": want text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(b.Calls())
			code, out, errOut := ctlIn(t, sock, tt.stdin, tt.args...)
			if code != tt.code || (tt.stdout != "" && out != tt.stdout) {
				t.Fatalf("ctsync %q: exit %d, stdout %q; want %d, %q (stderr %q)", tt.args, code, out, tt.code, tt.stdout, errOut)
			}
			if (tt.stderr == "") != (errOut == "") || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("ctsync %q: stderr %q, want %q", tt.args, errOut, tt.stderr)
			}
			if strings.Contains(errOut, "secret") {
				t.Fatalf("the error echoes the key: %q", errOut)
			}
			calls := b.Calls()[before:]
			switch {
			case tt.method == "" && len(calls) != 0:
				t.Fatalf("backend called: %v", calls)
			case tt.method != "" && (len(calls) != 1 || calls[0] != controltest.Call{Method: tt.method, Arg: testKey}):
				t.Fatalf("backend calls %v, want %s(%s)", calls, tt.method, testKey)
			}
		})
	}
}

func TestKeyOpFailures(t *testing.T) {
	b := keysBackend()
	b.Errors = map[string]error{
		"ListKeys":  fmt.Errorf("the cluster is insecure (cluster.insecure: true): it has no keys to rotate: %w", control.ErrInvalid),
		"RemoveKey": fmt.Errorf("cannot remove the primary key: 630dcd29 is this node's primary key: %w", control.ErrInvalid),
	}
	sock := ctlDaemon(t, b)
	code, out, errOut := ctl(t, sock, "keys", "list")
	if code != exitFailure || out != "" || strings.Count(errOut, "\n") != 1 ||
		!strings.HasPrefix(errOut, "ctsync: the cluster is insecure (cluster.insecure: true): it has no keys to rotate") {
		t.Fatalf("keys list on an insecure cluster: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = ctl(t, sock, "keys", "remove", testKey)
	if code != exitFailure || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "cannot remove the primary key") {
		t.Fatalf("keys remove of the primary key: exit %d, stderr %q", code, errOut)
	}

	// Some members failed: the others did it, exit 1 with one line.
	b.Update(func(b *controltest.Backend) {
		b.KeysResult = control.KeysResult{Nodes: 3, Answered: 2, Errors: map[string]string{"fw-c": "no answer", "fw-b": "boom"}}
	})
	code, out, errOut = ctl(t, sock, "keys", "install", testKey)
	if code != exitFailure || out != "installed key 630dcd29 on 1 of 3 members\n" ||
		errOut != "ctsync: keys install: failed on 2 of 3 members: fw-b: boom; fw-c: no answer\n" {
		t.Fatalf("keys install with failures: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Not running.
	code, _, errOut = ctsync(t, "keys", "list", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != exitFailure || !strings.Contains(errOut, "daemon is not running") {
		t.Fatalf("keys list without a daemon: exit %d, stderr %q", code, errOut)
	}
}
