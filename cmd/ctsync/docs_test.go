package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
)

func TestVersionFlag(t *testing.T) {
	_, want, _ := ctsync(t, "version")
	for _, flag := range []string{"--version", "-v"} {
		code, out, errOut := ctsync(t, flag)
		if code != exitOK || errOut != "" {
			t.Errorf("ctsync %s: exit %d, stderr %q; want 0 and nothing", flag, code, errOut)
		}
		if out != want {
			t.Errorf("ctsync %s printed\n%s\nwant what ctsync version prints:\n%s", flag, out, want)
		}
	}
}

// complete runs cobra's __complete request, as the shell scripts do, and
// returns the words offered (descriptions cut off).
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errOut := ctsync(t, append([]string{"__complete"}, args...)...)
	if code != exitOK {
		t.Fatalf("__complete %q: exit %d: %s", args, code, errOut)
	}
	var words []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, ":") || l == "" {
			break // the directive
		}
		w, _, _ := strings.Cut(l, "\t")
		words = append(words, w)
	}
	return words
}

func TestFlagValueCompletion(t *testing.T) {
	tests := []struct {
		args  []string
		want  []string // all offered
		exact bool     // and nothing else
		not   []string // none of these
		valid func(string) error
	}{
		{args: []string{"table", "list", "-p", ""},
			want:  []string{"tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "dccp", "gre", "esp"},
			valid: func(s string) error { _, err := flow.ParseProto(s); return err }},
		{args: []string{"table", "delete", "--proto", "ud"}, want: []string{"udp", "udplite"}, exact: true},
		{args: []string{"table", "list", "--state", ""},
			want: []string{"ESTABLISHED", "TIME_WAIT", "COOKIE_WAIT", "PARTOPEN"}, not: []string{"MAX", "IGNORE", "INVALID"}},
		{args: []string{"table", "list", "-p", "tcp", "--state", ""},
			want: []string{"ESTABLISHED", "SYN_SENT", "TIME_WAIT", "LISTEN"}, not: []string{"COOKIE_WAIT", "PARTOPEN", "MAX"},
			valid: func(s string) error { _, err := flow.ParseTCPState(s); return err }},
		{args: []string{"table", "insert", "-p", "sctp", "--state", ""}, want: []string{"COOKIE_WAIT", "ESTABLISHED"}, not: []string{"TIME_WAIT"},
			valid: func(s string) error { _, err := flow.ParseSCTPState(s); return err }},
		{args: []string{"table", "list", "-o", ""}, want: []string{"text", "extended", "id", "save", "json"}, exact: true,
			valid: func(s string) error { return table.CheckOutput(s, false) }},
		{args: []string{"table", "list", "-o", "extended,"}, want: []string{"extended,text", "extended,id"}, exact: true,
			valid: func(s string) error { return table.CheckOutput(s, false) }},
		{args: []string{"table", "events", "-o", ""}, want: []string{"text", "extended", "id", "save", "json", "timestamp"}, exact: true,
			valid: func(s string) error { return table.CheckOutput(s, true) }},
		{args: []string{"cache", "external", "-o", ""}, want: []string{"text", "extended", "id", "save", "json"}, exact: true},
		{args: []string{"stats", "-o", ""}, want: []string{"text", "json"}, exact: true},
		{args: []string{"members", "-o", ""}, want: []string{"text", "json"}, exact: true},
		{args: []string{"keys", "list", "-o", ""}, want: []string{"text", "json"}, exact: true},
		{args: []string{"table", "list", "-u", ""},
			want:  []string{"ASSURED", "SEEN_REPLY", "FIXED_TIMEOUT", "EXPECTED", "OFFLOAD", "HW_OFFLOAD", "UNREPLIED", "UNSET"},
			exact: true,
			valid: func(s string) error { _, _, err := flow.ParseStatusFilter(s); return err }},
		{args: []string{"table", "list", "--status", "ASSURED,"}, want: []string{"ASSURED,SEEN_REPLY"}, not: []string{"ASSURED,ASSURED"},
			valid: func(s string) error { _, _, err := flow.ParseStatusFilter(s); return err }},
		{args: []string{"table", "update", "-u", ""}, want: []string{"ASSURED", "SEEN_REPLY", "FIXED_TIMEOUT"}, not: []string{"UNREPLIED"},
			valid: func(s string) error { _, err := flow.ParseStatus(s); return err }},
		{args: []string{"table", "events", "-e", "NEW,"}, want: []string{"NEW,UPDATES", "NEW,DESTROY"}, not: []string{"NEW,NEW"}},
		{args: []string{"table", "list", "-f", ""}, want: []string{"ipv4", "ipv6"}, exact: true},
		{args: []string{"notify", ""}, want: []string{"master", "backup", "fault", "stop"}, exact: true,
			valid: func(s string) error { _, err := notifyState([]string{s}); return err }},
		{args: []string{"notify", "m"}, want: []string{"master"}, exact: true},
		{args: []string{"cache", ""}, want: []string{"internal", "external"}, exact: true},
		{args: []string{"resync", ""}, want: []string{"kernel", "peers"}, exact: true},
		{args: []string{"flush", ""}, want: []string{"internal", "external"}, exact: true},
		{args: []string{"completion", ""}, want: []string{"bash", "zsh", "fish"}, exact: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := complete(t, tt.args...)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("offered %q; want it to include %q", got, w)
				}
			}
			if tt.exact && len(got) != len(tt.want) {
				t.Errorf("offered %q; want exactly %q", got, tt.want)
			}
			for _, w := range tt.not {
				if slices.Contains(got, w) {
					t.Errorf("offered %q, which includes %q", got, w)
				}
			}
			if tt.valid != nil {
				for _, w := range got {
					if err := tt.valid(w); err != nil {
						t.Errorf("offered %q, which the parser refuses: %v", w, err)
					}
				}
			}
		})
	}
}

// genMan runs gen-docs --man and returns the directory.
func genMan(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "man")
	if code, _, errOut := ctsync(t, "gen-docs", "--man", dir); code != exitOK {
		t.Fatalf("gen-docs: exit %d: %s", code, errOut)
	}
	return dir
}

func readPage(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var exBlock = regexp.MustCompile(`(?s)\n\.(?:EX|nf)\n(.*?)\n\.(?:EE|fi)\n`)

// preformatted returns the preformatted blocks of a page, roff escapes
// undone.
func preformatted(page string) []string {
	unescape := strings.NewReplacer(`\-`, "-", `\e`, `\`, `\\`, `\`, `\&`, "")
	var blocks []string
	for _, m := range exBlock.FindAllStringSubmatch(page, -1) {
		blocks = append(blocks, unescape.Replace(m[1]))
	}
	return blocks
}

func nonBlankLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestManPageConfig(t *testing.T) {
	page := readPage(t, genMan(t), "ctsync.yaml.5")
	if !strings.HasPrefix(page, ".nh\n.TH \"CTSYNC.YAML\" \"5\" ") {
		t.Errorf("ctsync.yaml.5 header is not section 5:\n%.200s", page)
	}
	for _, want := range []string{".SH NAME\nctsync.yaml \\- ", ".SH DESCRIPTION\n", ".SH FILES\n", ".SS cluster\n", ".SS filter\n"} {
		if !strings.Contains(page, want) {
			t.Errorf("ctsync.yaml.5 lacks %q", want)
		}
	}
	got := nonBlankLines(strings.Join(preformatted(page), "\n"))
	want := nonBlankLines(config.DefaultYAML())
	if !slices.Equal(got, want) {
		t.Errorf("the preformatted blocks of ctsync.yaml.5 are not `ctsync config default`:\n%s", strings.Join(got, "\n"))
	}
}

func TestManPageSections(t *testing.T) {
	dir := genMan(t)
	root := readPage(t, dir, "ctsync.8")
	for _, want := range []string{
		".SH EXIT STATUS\n", "\\fB0\\fP\nSuccess.", "\\fB1\\fP\nOperational failure", "\\fB2\\fP\nBad command line",
		".SH FILES\n", `\fI/etc/ctsync/ctsync.yaml\fP`, `\fI/etc/ctsync/cluster.key\fP`,
		`\fI/run/ctsync/ctsync.sock\fP`, `\fI/lib/systemd/system/ctsync.service\fP`,
		`\fBctsync.yaml(5)\fP`, `\fB--version\fP`,
	} {
		if !strings.Contains(root, want) {
			t.Errorf("ctsync.8 lacks %q", want)
		}
	}
	if strings.Index(root, ".SH EXIT STATUS") > strings.Index(root, ".SH SEE ALSO") {
		t.Error("ctsync.8: EXIT STATUS comes after SEE ALSO")
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		page := readPage(t, dir, e.Name())
		if strings.Contains(strings.ToLower(e.Name()+page), "powershell") {
			t.Errorf("%s: a PowerShell page or mention", e.Name())
		}
		if strings.HasSuffix(e.Name(), ".8") && !strings.Contains(page, "\n.SH EXIT STATUS\n") {
			t.Errorf("%s has no EXIT STATUS section", e.Name())
		}
	}

	// A command's own exit status text moves to EXIT STATUS.
	ctd := readPage(t, dir, "ctsync-conntrackd.8")
	if _, exit, _ := strings.Cut(ctd, ".SH EXIT STATUS\n"); !strings.Contains(exit, "1 on any failure, a bad command line included") {
		t.Errorf("ctsync-conntrackd.8: EXIT STATUS lacks conntrackd's own rule:\n%s", exit)
	}
	if desc, _, _ := strings.Cut(ctd, ".SH OPTIONS"); strings.Contains(desc, "Exit status:") {
		t.Error("ctsync-conntrackd.8: the exit status is still in the description")
	}
	if table := readPage(t, dir, "ctsync-table-list.8"); strings.Contains(table, ".SH FILES") {
		t.Error("ctsync-table-list.8 lists FILES, but table commands read none")
	}
	if notify := readPage(t, dir, "ctsync-notify.8"); !strings.Contains(notify, `\fI/run/ctsync/ctsync.sock\fP`) {
		t.Error("ctsync-notify.8: FILES lacks the control socket")
	}
}

// TestManPagePreformatted checks that the indented blocks of the help texts
// stay line for line in the man pages, rather than being reflowed into the
// paragraph, and that '*' and '_' in prose are not taken for emphasis.
func TestManPagePreformatted(t *testing.T) {
	dir := genMan(t)
	tests := []struct {
		page  string
		lines []string // consecutive lines of one preformatted block
	}{
		{"ctsync-conntrackd.8", []string{
			"  Client mode commands:",
			"    -c [ct|expect], commit external cache to conntrack table  (ctsync commit)",
			"    -f [internal|external], flush internal and external cache (ctsync flush)",
		}},
		{"ctsync-conntrackd.8", []string{"  General commands:"}},
		{"ctsync-health.8", []string{`  vrrp_script ctsync { script "/usr/bin/ctsync health"; interval 2; fall 3 }`}},
		{"ctsync-notify.8", []string{
			"  master  commit the external cache, make the committed flows this node's own,",
			"          rebuild the internal cache from the kernel, send everything to peers",
			"  backup  ask the peers to resend their flows and schedule a purge",
		}},
	}
	for _, tt := range tests {
		found := false
		for _, b := range preformatted(readPage(t, dir, tt.page)) {
			if strings.Contains(b, strings.Join(tt.lines, "\n")) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no preformatted (.EX/.nf) block holds\n%s", tt.page, strings.Join(tt.lines, "\n"))
		}
	}
	insert := readPage(t, dir, "ctsync-table-insert.8")
	if !strings.Contains(insert, `nf\_conntrack\_*\_timeout*`) && !strings.Contains(insert, `nf_conntrack_*_timeout*`) {
		t.Errorf("ctsync-table-insert.8: nf_conntrack_*_timeout* was mangled")
	}
}
