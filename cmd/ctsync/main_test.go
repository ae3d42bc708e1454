package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// ctsync runs the command line in-process and returns its exit code and
// output streams.
func ctsync(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, errOut := ctsync(t, "version")
	if code != exitOK || errOut != "" {
		t.Fatalf("ctsync version: exit %d, stderr %q; want 0 and nothing", code, errOut)
	}
	for _, want := range []string{"version: " + version + "\n", "\ncommit:  ", "\ngo:      " + runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Errorf("ctsync version output lacks %q:\n%s", want, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // substring; "" means stderr must be empty
	}{
		{"no arguments prints help", nil, exitOK, ""},
		{"help flag", []string{"--help"}, exitOK, ""},
		{"help command", []string{"help"}, exitOK, ""},
		{"subcommand help", []string{"version", "-h"}, exitOK, ""},
		{"unknown flag", []string{"--bogus"}, exitUsage, "ctsync: unknown flag: --bogus"},
		{"unknown subcommand flag", []string{"version", "--bogus"}, exitUsage, "Run 'ctsync version --help' for usage."},
		{"unknown command", []string{"frobnicate"}, exitUsage, `ctsync: unknown command "frobnicate" for "ctsync"`},
		{"unknown command suggestion", []string{"verson"}, exitUsage, "did you mean version?"},
		{"extra argument", []string{"version", "extra"}, exitUsage, `unknown command "extra" for "ctsync version"`},
		{"flag without value", []string{"version", "--config"}, exitUsage, "flag needs an argument"},
		{"unknown shell", []string{"completion", "tcsh"}, exitUsage, `unknown command "tcsh"`},
		{"gen-docs without a target", []string{"gen-docs"}, exitUsage, "give --man DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := ctsync(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("ctsync %q: exit %d, want %d (stderr %q)", tt.args, code, tt.wantCode, errOut)
			}
			if tt.wantStderr == "" && errOut != "" {
				t.Errorf("ctsync %q: stderr %q, want nothing", tt.args, errOut)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("ctsync %q: stderr %q, want it to contain %q", tt.args, errOut, tt.wantStderr)
			}
		})
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	_, out, _ := ctsync(t, "--help")
	for _, want := range []string{"Usage:", "ctsync [command]", "--config", "version"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctsync --help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "gen-docs") {
		t.Errorf("ctsync --help lists the hidden gen-docs command:\n%s", out)
	}
}

func TestOperationalErrorIsOneLine(t *testing.T) {
	// A path under a regular file cannot be created: an operational failure.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := ctsync(t, "gen-docs", "--man", filepath.Join(file, "man"))
	if code != exitFailure {
		t.Errorf("exit %d, want %d (stderr %q)", code, exitFailure, errOut)
	}
	if !strings.HasPrefix(errOut, "ctsync: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting with \"ctsync: \"", errOut)
	}
}

func TestGenDocs(t *testing.T) {
	man, md := filepath.Join(t.TempDir(), "man"), filepath.Join(t.TempDir(), "md")
	if code, _, errOut := ctsync(t, "gen-docs", "--man", man, "--markdown", md); code != exitOK {
		t.Fatalf("gen-docs: exit %d: %s", code, errOut)
	}
	page, err := os.ReadFile(filepath.Join(man, "ctsync-version.8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `.TH "CTSYNC-VERSION" "8"`) {
		t.Errorf("man page header is not section 8:\n%.300s", page)
	}
	ref, err := os.ReadFile(filepath.Join(md, "ctsync.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ref), "Auto generated") {
		t.Error("Markdown carries the auto-generated tag; want reproducible output")
	}
	if _, err := os.Stat(filepath.Join(md, "ctsync_gen-docs.md")); err == nil {
		t.Error("the hidden gen-docs command got a page")
	}
}

// TestFlagShorthands merges every command's flags with its ancestors'
// persistent flags, which is where cobra panics on a shorthand defined twice
// (for example a subcommand taking -c while the root has --config/-c).
func TestFlagShorthands(t *testing.T) {
	root := newRootCmd(&streams{in: strings.NewReader(""), out: new(bytes.Buffer), err: new(bytes.Buffer)})
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: conflicting flags: %v", cmd.CommandPath(), r)
				}
			}()
			cmd.LocalFlags()
			cmd.InheritedFlags()
		}()
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
