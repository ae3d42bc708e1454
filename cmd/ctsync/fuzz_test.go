package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
)

// Fuzz targets for the command-line parsers of cmd/ctsync: conntrackd's
// command line and notify's arguments (the table grammar's are in
// cmd/ctsync/table).

// blankFields splits on spaces, as ctdCacheLine reads a line.
func blankFields(s string) []string {
	var out []string
	for _, f := range strings.Split(s, " ") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkUsageError requires a parse error to be a usage error (exit 2) of
// one line.
func checkUsageError(t *testing.T, what string, err error) {
	t.Helper()
	if !table.IsUsageError(err) {
		t.Fatalf("%s: error %q (%T) is not a usage error", what, err, err)
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s: usage error %q is not one line", what, msg)
	}
}

func FuzzConntrackdArgs(f *testing.F) {
	for _, s := range []string{"-c", "-C /etc/conntrackd/conntrackd.conf -c", "-f internal", "-f e", "-i ct", "-i -x",
		"-s cache", "-s n", "-n", "-B", "-t", "-k", "-R expect", "--socket /run/ctsync.sock -s", "--socket=/x -e",
		"-c -f", "-Z", "-k now", "-d", "-h", "-v", "--help", "-C", "-x", "master", "INSTANCE VI_1 BACKUP 100",
		"GROUP g FAULT", "instance VI_1 DELETED", "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Fields(s)
		if cmd, err := parseConntrackd(args); err == nil {
			if cmd.action != 0 && cmd.arg != "" {
				found := false
				for _, p := range ctdParams[cmd.action] {
					found = found || p == cmd.arg
				}
				if !found {
					t.Fatalf("conntrackd %q: -%c with parameter %q it does not take", s, cmd.action, cmd.arg)
				}
			}
		} else if strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(s, "\n\r") {
			t.Fatalf("conntrackd %q: error %q is not one line", s, err)
		}
		if state, err := notifyState(args); err == nil {
			switch state {
			case "master", "backup", "fault", "stop":
			default:
				t.Fatalf("notify %q: state %q", s, state)
			}
		} else if len(args) >= 1 && len(args) <= 4 {
			checkUsageError(t, "notify "+s, err)
		}
		// Lines come from `ctsync cache`, which starts each with the protocol.
		if out := ctdCacheLine(s); out != s && !strings.HasPrefix(s, " ") {
			in, got := blankFields(s), blankFields(out)
			want := append(append([]string{}, in[:min(2, len(in))]...), in[min(3, len(in)):]...)
			if len(in) < 3 || strings.Trim(in[2], "0123456789") != "" || !reflect.DeepEqual(got, want) {
				t.Fatalf("ctdCacheLine(%q) = %q: want the line, or the line without its third field (a number)", s, out)
			}
		}
	})
}
