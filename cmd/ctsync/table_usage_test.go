package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTableUsageExitCodes runs command lines that fail before the table is
// opened: no privileges needed.
func TestTableUsageExitCodes(t *testing.T) {
	badFile := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(badFile, []byte("-I -s 1.1.1.1 -d 2.2.2.2 -p tcp -t 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args       []string
		stdin      string
		wantCode   int
		wantStderr string
	}{
		{[]string{"table", "list", "--bogus"}, "", exitUsage, "ctsync: unknown flag: --bogus"},
		{[]string{"table", "list", "-s", "1.1.1.1", "-d", "::1"}, "", exitUsage, "ctsync: mismatched address family"},
		{[]string{"table", "get", "-p", "tcp", "-s", "1.1.1.1", "-d", "2.2.2.2", "--sport", "1", "--dport", "2", "-w", "1"}, "", exitUsage, "--zone cannot be used with get"},
		{[]string{"table", "insert", "-p", "tcp", "-s", "1.1.1.1", "-d", "2.2.2.2", "--sport", "1", "--dport", "2"}, "", exitUsage, "insert -p tcp needs --state STATE"},
		{[]string{"table", "list", "--state", "BOGUS"}, "", exitUsage, `unknown state "BOGUS" (want a TCP state`},
		{[]string{"table", "flush"}, "y\n", exitUsage, "standard input is not a terminal to confirm on; add --yes"},
		{[]string{"table", "delete", "1.2.3.9678"}, "", exitUsage, `unexpected argument "1.2.3.9678"`},
		{[]string{"table", "load", badFile}, "", exitUsage, "line 1: insert -p tcp needs --sport and --dport"},
		{[]string{"table", "load", "-"}, "-L\n", exitUsage, "stdin line 1: -L cannot be used in a load file"},
		{[]string{"table", "load", filepath.Join(t.TempDir(), "missing")}, "", exitFailure, "no such file or directory"},
		{[]string{"table", "load"}, "", exitUsage, "accepts 1 arg"},
		{[]string{"table", "count", "extra"}, "", exitUsage, "unknown command"},
		{[]string{"table", "events", "-e", "FOO"}, "", exitUsage, `unknown event "FOO"`},
		{[]string{"table", "bogus"}, "", exitUsage, `unknown command "bogus"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := ctsyncIn(tt.stdin, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("ctsync %q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantStderr)
			}
			if first, _, _ := strings.Cut(errOut, "\n"); !strings.HasPrefix(first, "ctsync: ") {
				t.Errorf("stderr %q does not start with one ctsync: line", errOut)
			}
		})
	}
}
