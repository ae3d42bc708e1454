package main

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// Oracle tests: ctsync table and conntrack(8) do the same thing to the same
// table and must leave, or show, the same entries.

// oracleEntries are conntrack -I argument lists covering the protocols, NAT,
// marks, zones and status bits the oracle tests look at.
var oracleEntries = [][]string{
	{"-p", "tcp", "-s", "1.1.1.1", "-d", "2.2.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300", "-m", "42", "-w", "3"},
	{"-p", "tcp", "-s", "1.1.1.2", "-d", "2.2.2.2", "--sport", "11", "--dport", "80", "--state", "SYN_SENT", "-t", "300"},
	{"-p", "tcp", "-s", "10.0.0.1", "-d", "203.0.113.5", "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED", "-t", "300", "--dst-nat", "192.168.1.1:8080", "-u", "SEEN_REPLY"},
	{"-p", "udp", "-s", "10.0.0.2", "-d", "8.8.8.8", "--sport", "5353", "--dport", "53", "-t", "300", "--src-nat", "203.0.113.5"},
	{"-p", "udp", "-s", "10.0.0.3", "-d", "8.8.8.8", "--sport", "5353", "--dport", "53", "-t", "300", "--src-nat", "203.0.113.5:2000", "-m", "0x10"},
	{"-p", "udp", "-s", "10.0.0.4", "-d", "8.8.4.4", "--sport", "1", "--dport", "2", "-t", "300", "--src-nat", "203.0.113.6", "--dst-nat", "192.168.1.2"},
	{"-p", "icmp", "-s", "1.1.1.3", "-d", "2.2.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "77", "-t", "300"},
	{"-p", "icmp", "-s", "10.0.0.5", "-d", "8.8.8.8", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "7", "-t", "300", "--src-nat", "203.0.113.5"},
	{"-p", "tcp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "1000", "--dport", "22", "--state", "SYN_SENT", "-t", "300"},
	{"-p", "udp", "-s", "2001:db8::1", "-d", "2001:db8::2", "--sport", "1000", "--dport", "53", "-t", "300", "--src-nat", "2001:db8::99", "-w", "7"},
	{"-p", "icmpv6", "-s", "2001:db8::1", "-d", "2001:db8::3", "--icmpv6-type", "128", "--icmpv6-code", "0", "--icmpv6-id", "5", "-t", "300"},
	{"-p", "sctp", "-s", "1.1.1.6", "-d", "2.2.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "--orig-vtag", "5", "--reply-vtag", "6", "-t", "300"},
	{"-p", "udplite", "-s", "1.1.1.7", "-d", "2.2.2.2", "--sport", "10", "--dport", "20", "-t", "300"},
	{"-p", "gre", "-s", "1.1.1.8", "-d", "2.2.2.2", "--srckey", "5", "--dstkey", "6", "-t", "300"},
	{"-p", "2", "-s", "1.1.1.9", "-d", "224.0.0.22", "-t", "300"},
	{"-p", "200", "-s", "1.1.1.10", "-d", "2.2.2.2", "-t", "300", "-m", "0x12345678"},
	{"-p", "tcp", "-s", "1.1.1.11", "-d", "2.2.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "300", "--orig-zone", "4"},
	{"-p", "tcp", "-s", "1.1.1.12", "-d", "2.2.2.2", "--sport", "10", "--dport", "20", "--state", "TIME_WAIT", "-t", "300", "--reply-zone", "5", "-u", "SEEN_REPLY"},
	{"-p", "tcp", "-r", "2.2.2.2", "-q", "1.1.1.13", "--reply-port-src", "21", "--reply-port-dst", "11", "--state", "LISTEN", "-t", "300"},
	{"-p", "tcp", "-s", "1.1.1.14", "-d", "2.2.2.2", "--sport", "10", "--dport", "20", "--state", "ESTABLISHED", "-t", "300", "-u", "ASSURED,SEEN_REPLY,FIXED_TIMEOUT"},
}

// dccpEntry is left out of the save round trips: conntrack 1.4.7 cannot
// read back the line it writes for it.
var dccpEntry = []string{"-p", "dccp", "-s", "1.1.1.15", "-d", "2.2.2.2", "--sport", "1", "--dport", "2", "--state", "OPEN", "--role", "client", "-t", "300"}

// conntrackRun runs conntrack(8) in namespace ns with stdin and returns its
// output and exit code.
func conntrackRun(t *testing.T, ns, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "conntrack"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("conntrack %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// ctsyncIn runs ctsync in-process with stdin.
func ctsyncIn(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// populate creates entries in ns with one conntrack -R.
func populate(t *testing.T, ns string, entries ...[]string) {
	t.Helper()
	var b strings.Builder
	for _, e := range entries {
		b.WriteString("-I " + strings.Join(e, " ") + "\n")
	}
	if _, errOut, code := conntrackRun(t, ns, b.String(), "-R", "-"); code != 0 {
		t.Fatalf("conntrack -R in %s: exit %d: %s", ns, code, errOut)
	}
}

var (
	// The timeout: after the protocol name and number in a -L line (with
	// -o extended after the family too), after -t in a save line.
	textTimeout = regexp.MustCompile(`^((?:\S+ +\d+ +)?[a-z0-9]+ +\d+ )(\d+) `)
	saveTimeout = regexp.MustCompile(`-t (\d+)`)
	markField   = regexp.MustCompile(`mark=\d+ `)
)

// normalize makes listings comparable: timeouts rounded to 50 seconds (they
// tick while the tests run; updates set them far apart), optionally marks
// dropped (save lines carry none), lines sorted.
func normalize(out string, dropMarks bool) []string {
	round := func(s string) string {
		n, _ := strconv.Atoi(s)
		return fmt.Sprintf("~%d", (n+25)/50*50)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		if m := textTimeout.FindStringSubmatchIndex(l); m != nil {
			l = l[:m[4]] + round(l[m[4]:m[5]]) + l[m[5]:]
		}
		l = saveTimeout.ReplaceAllStringFunc(l, func(s string) string { return "-t " + round(s[3:]) })
		if dropMarks {
			l = markField.ReplaceAllString(l, "")
		}
		lines = append(lines, l)
	}
	slices.Sort(lines)
	return lines
}

func diffLines(t *testing.T, what string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	t.Errorf("%s differ:\nconntrack (%d):\n  %s\nctsync (%d):\n  %s", what,
		len(want), strings.Join(want, "\n  "), len(got), strings.Join(got, "\n  "))
}

func listAll(t *testing.T, ns string) string {
	t.Helper()
	out, errOut, code := conntrackRun(t, ns, "", "-L")
	if code != 0 {
		t.Fatalf("conntrack -L in %s: %s", ns, errOut)
	}
	return out
}

// shown reads the count of conntrack's or ctsync's summary line.
func shown(stderr string) string {
	if m := regexp.MustCompile(`(\d+) flow entries have been`).FindStringSubmatch(stderr); m != nil {
		return m[1]
	}
	return "?"
}

// TestTableInsertMatchesConntrack creates the same entries with conntrack -I
// in one namespace and ctsync table insert in another.
func TestTableInsertMatchesConntrack(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ref, ours := kerneltest.NewNetNS(t), kerneltest.NewNetNS(t)
	for _, e := range append(slices.Clone(oracleEntries), dccpEntry) {
		if _, errOut, code := conntrackRun(t, ref, "", append([]string{"-I"}, e...)...); code != 0 {
			t.Fatalf("conntrack -I %q: %s", e, errOut)
		}
		args := append([]string{"table", "insert", "--netns", ours}, e...)
		if code, _, errOut := ctsyncIn("", args...); code != 0 {
			t.Errorf("ctsync %q: exit %d: %s", args, code, errOut)
		}
	}
	diffLines(t, "tables", normalize(listAll(t, ref), false), normalize(listAll(t, ours), false))
}

var vtags = regexp.MustCompile(`(--(?:orig|reply)-vtag) \d+`)

// knownListDiffs are listings where ctsync's filter (flow.Filter) and
// conntrack 1.4.7 disagree, with the reason. libnetfilter_conntrack decides
// "port-NATed" for ICMP by comparing the reply's ICMP id with the original
// type and code (the raw 16 bits of its tuple unions), so every NATed ICMP
// entry (the kernel marks both NAT directions done) counts as
// destination-NATed; flow.Filter compares ICMP ids only.
var knownListDiffs = map[string]string{
	"--dst-nat":           "ICMP entry with source NAT shown by conntrack as destination-NATed",
	"--src-nat --dst-nat": "ICMP entry with source NAT shown by conntrack as destination-NATed",
}

// TestTableListMatchesConntrack lists one table with the same filters and
// output formats through both tools.
func TestTableListMatchesConntrack(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	populate(t, ns, append(slices.Clone(oracleEntries), dccpEntry)...)
	for _, args := range [][]string{
		{},
		{"-o", "extended"},
		{"-o", "id"},
		{"-o", "extended,id"},
		{"-o", "save"},
		{"-s", "1.1.1.0/24"},
		{"-s", "1.1.1.4/24", "-o", "id"},
		{"-s", "10.0.0.0/8", "-p", "udp"},
		{"-s", "1.1.1.0", "--mask-src", "255.255.255.0"},
		{"-s", "2001:db8::/32"},
		{"-d", "2.2.2.2"},
		{"-d", "2001:db8::2"},
		{"-r", "192.168.1.1"},
		{"-q", "203.0.113.5"},
		{"-p", "tcp"},
		{"-p", "udp"},
		{"-p", "icmp"},
		{"-p", "icmpv6"},
		{"-p", "2"},
		{"-p", "igmp"},
		{"-p", "gre"},
		{"-p", "sctp"},
		{"-p", "udplite"},
		{"-p", "tcp", "--state", "ESTABLISHED"},
		{"-p", "tcp", "--state", "SYN_SENT"},
		{"-p", "tcp", "--dport", "20"},
		{"-p", "tcp", "--reply-port-src", "20"},
		{"-p", "udp", "--sport", "5353"},
		{"-p", "icmp", "--icmp-type", "8", "--icmp-id", "77"},
		{"-m", "42"},
		{"-m", "0x10/0xf0"},
		{"-m", "0"},
		{"-m", "0x5678/0xffff"},
		{"-m", "2/2"},
		{"-w", "3"},
		{"-w", "0"},
		{"-w", "7"},
		{"--orig-zone", "4"},
		{"--reply-zone", "5"},
		{"-f", "ipv4"},
		{"-f", "ipv6"},
		{"-u", "SEEN_REPLY"},
		{"-u", "ASSURED"},
		{"-u", "FIXED_TIMEOUT"},
		{"--src-nat"},
		{"--src-nat", "203.0.113.5"},
		{"--src-nat", "203.0.113.5:2000"},
		{"--src-nat", "2001:db8::99"},
		{"--dst-nat"},
		{"--dst-nat", "192.168.1.1"},
		{"--dst-nat", "192.168.1.1:8080"},
		{"--src-nat", "--dst-nat"},
		{"--any-nat"},
		{"--any-nat", "203.0.113.5"},
		{"--any-nat", "192.168.1.2"},
		{"-p", "udp", "--src-nat", "-o", "save"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			refOut, refErr, code := conntrackRun(t, ns, "", append([]string{"-L"}, args...)...)
			if code != 0 {
				t.Fatalf("conntrack -L %q: %s", args, refErr)
			}
			code, out, errOut := ctsyncIn("", append([]string{"table", "list", "--netns", ns}, args...)...)
			if code != 0 {
				t.Fatalf("ctsync table list %q: exit %d: %s", args, code, errOut)
			}
			// conntrack 1.4.7 reads and writes SCTP verification tags in
			// host byte order, ctsync as the kernel sends them (network
			// order): the same entry shows 5 in one and 83886080 in the
			// other, and a save line of one tool loaded by the other swaps
			// the tag's bytes. (Each tool's own round trip keeps them.)
			refOut, out = vtags.ReplaceAllString(refOut, "$1 TAG"), vtags.ReplaceAllString(out, "$1 TAG")
			want, got := normalize(refOut, false), normalize(out, false)
			if reason, ok := knownListDiffs[strings.Join(args, " ")]; ok {
				if !slices.Equal(want, got) {
					t.Logf("known difference (%s):\nconntrack: %q\nctsync:    %q", reason, want, got)
				} else {
					t.Errorf("the known difference (%s) is gone: remove it from knownListDiffs", reason)
				}
				return
			}
			diffLines(t, "listings", want, got)
			if shown(refErr) != shown(errOut) {
				t.Errorf("summary %q, conntrack's %q", errOut, refErr)
			}
		})
	}
}

// TestTableChangesMatchConntrack deletes, updates and flushes identical
// tables with both tools.
func TestTableChangesMatchConntrack(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	// conntrack 1.4.7 sends an update without the entry's zone, so it
	// cannot update an entry in a zone (the kernel does not find it, and
	// conntrack skips it silently): updates compare tables without them.
	// TestTableUpdateZones checks that ctsync updates them.
	var unzoned [][]string
	for _, e := range oracleEntries {
		if !slices.Contains(e, "-w") && !slices.Contains(e, "--orig-zone") {
			unzoned = append(unzoned, e)
		}
	}
	for _, tc := range []struct {
		conntrack []string // the command; ctsync's takes the same options
		ctsync    []string
	}{
		{[]string{"-D", "-s", "1.1.1.0/24"}, []string{"delete"}},
		{[]string{"-D", "-p", "udp"}, []string{"delete"}},
		{[]string{"-D", "-m", "42"}, []string{"delete"}},
		{[]string{"-D", "-m", "0x10/0x10"}, []string{"delete"}},
		{[]string{"-D", "-w", "3"}, []string{"delete"}},
		{[]string{"-D", "--orig-zone", "4"}, []string{"delete"}},
		{[]string{"-D", "--reply-zone", "5"}, []string{"delete"}},
		{[]string{"-D", "--src-nat"}, []string{"delete"}},
		{[]string{"-D", "--src-nat", "203.0.113.5:2000"}, []string{"delete"}},
		{[]string{"-D", "--dst-nat", "192.168.1.1"}, []string{"delete"}},
		{[]string{"-D", "-f", "ipv6"}, []string{"delete"}},
		{[]string{"-D", "-p", "tcp", "--state", "ESTABLISHED"}, []string{"delete"}},
		{[]string{"-D", "-u", "FIXED_TIMEOUT"}, []string{"delete"}},
		{[]string{"-D", "-s", "9.9.9.9"}, []string{"delete"}},
		{[]string{"-D", "-r", "2.2.2.2", "-q", "1.1.1.13", "-p", "tcp", "--reply-port-src", "21", "--reply-port-dst", "11", "-o", "save"}, []string{"delete"}},
		{[]string{"-U", "-s", "1.1.1.0/24", "-m", "1"}, []string{"update"}},
		{[]string{"-U", "-s", "10.0.0.0/8", "-m", "0x1/0x1"}, []string{"update"}},
		{[]string{"-U", "-s", "1.1.1.10", "-m", "0/0xffff0000"}, []string{"update"}},
		{[]string{"-U", "-s", "1.1.1.10", "-m", "0xff/0"}, []string{"update"}},
		{[]string{"-U", "-s", "1.1.1.2", "-p", "tcp", "-t", "100"}, []string{"update"}},
		{[]string{"-U", "-s", "1.1.1.2", "-u", "ASSURED"}, []string{"update"}},
		{[]string{"-U", "-s", "1.1.1.14", "-u", "ASSURED"}, []string{"update"}},
		{[]string{"-U", "-s", "2001:db8::1", "-m", "5", "-o", "extended"}, []string{"update"}},
		{[]string{"-U", "-p", "udp", "-s", "10.0.0.0/8", "--src-nat", "-m", "9"}, []string{"update"}},
		{[]string{"-U", "-s", "9.9.9.9", "-m", "1"}, []string{"update"}},
		{[]string{"-F"}, []string{"flush", "--yes"}},
	} {
		t.Run(strings.Join(tc.conntrack, " "), func(t *testing.T) {
			t.Parallel()
			entries := oracleEntries
			if tc.conntrack[0] == "-U" {
				entries = unzoned
			}
			ref, ours := kerneltest.NewNetNS(t), kerneltest.NewNetNS(t)
			populate(t, ref, entries...)
			populate(t, ours, entries...)
			before := normalize(listAll(t, ours), false)
			refOut, refErr, refCode := conntrackRun(t, ref, "", tc.conntrack...)
			args := append(append([]string{"table"}, tc.ctsync...), "--netns", ours)
			args = append(args, tc.conntrack[1:]...)
			code, out, errOut := ctsyncIn("", args...)
			if code != refCode {
				t.Errorf("ctsync %q: exit %d (%q), conntrack's %d (%q)", args, code, errOut, refCode, refErr)
			}
			after := normalize(listAll(t, ours), false)
			diffLines(t, "tables", normalize(listAll(t, ref), false), after)
			if tc.conntrack[0] != "-U" {
				diffLines(t, "printed entries", normalize(refOut, false), normalize(out, false))
				return
			}
			// conntrack 1.4.7 prints only some of the entries it updates;
			// ctsync prints each entry that changed, as it is now.
			var changed []string
			for _, l := range after {
				if !slices.Contains(before, l) {
					changed = append(changed, l)
				}
			}
			printed := normalize(strings.ReplaceAll(out, " use=2", " use=1"), false)
			if tc.conntrack[len(tc.conntrack)-1] != "extended" {
				diffLines(t, "changed entries (conntrack -L) and printed ones (ctsync)", changed, printed)
			}
			if n := strconv.Itoa(len(changed)); code == 0 && shown(errOut) != n {
				t.Errorf("summary %q, want %s updated", errOut, n)
			}
		})
	}
}

// TestTableUpdateZones updates entries in zones, which conntrack 1.4.7
// cannot, and flushes one family, which conntrack 1.4.7 does not (it
// flushes both).
func TestTableUpdateZones(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	populate(t, ns, oracleEntries...)
	for _, args := range [][]string{
		{"-s", "1.1.1.1", "-m", "0x100/0xff00"}, // zone 3: 42 -> 0x12a
		{"-s", "1.1.1.11", "-m", "7"},           // original-direction zone 4
		{"-s", "2001:db8::1", "-p", "udp", "-m", "8"},
	} {
		if code, _, errOut := ctsyncIn("", append([]string{"table", "update", "--netns", ns}, args...)...); code != 0 {
			t.Errorf("ctsync table update %q: exit %d: %s", args, code, errOut)
		}
	}
	for filter, want := range map[string]string{
		"-w 3 -s 1.1.1.1":            "mark=298 zone=3",
		"--orig-zone 4 -s 1.1.1.11":  "mark=7 use",
		"-w 7 -s 2001:db8::1 -p udp": "mark=8 zone=7",
	} {
		out, errOut, code := conntrackRun(t, ns, "", append([]string{"-L"}, strings.Fields(filter)...)...)
		if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, want) {
			t.Errorf("conntrack -L %s = %q (%s), want one entry with %q", filter, out, errOut, want)
		}
	}

	// Flush one family only.
	if code, _, errOut := ctsyncIn("", "table", "flush", "--yes", "-f", "ipv6", "--netns", ns); code != 0 {
		t.Fatalf("ctsync table flush -f ipv6: exit %d: %s", code, errOut)
	}
	if out, _, _ := conntrackRun(t, ns, "", "-L", "-f", "ipv6"); out != "" {
		t.Errorf("IPv6 entries left after flush -f ipv6:\n%s", out)
	}
	if out, _, _ := conntrackRun(t, ns, "", "-L", "-f", "ipv4"); strings.Count(out, "\n") != len(oracleEntries)-3 {
		t.Errorf("flush -f ipv6 left %d IPv4 entries, want %d:\n%s", strings.Count(out, "\n"), len(oracleEntries)-3, out)
	}
}

// TestTableSaveRoundTrip loads ctsync's -o save into conntrack -R and
// conntrack's into ctsync table load.
func TestTableSaveRoundTrip(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	src := kerneltest.NewNetNS(t)
	populate(t, src, oracleEntries...)
	want := normalize(listAll(t, src), true) // save lines carry no mark

	t.Run("ctsync save, conntrack load", func(t *testing.T) {
		dst := kerneltest.NewNetNS(t)
		code, save, errOut := ctsyncIn("", "table", "list", "--netns", src, "-o", "save")
		if code != 0 {
			t.Fatalf("ctsync list -o save: %s", errOut)
		}
		if _, refErr, code := conntrackRun(t, dst, save, "-R", "-"); code != 0 {
			t.Fatalf("conntrack -R of ctsync's save: exit %d: %s\n%s", code, refErr, save)
		}
		diffLines(t, "tables", want, normalize(listAll(t, dst), true))
	})
	t.Run("conntrack save, ctsync load", func(t *testing.T) {
		dst := kerneltest.NewNetNS(t)
		save, refErr, code := conntrackRun(t, src, "", "-L", "-o", "save")
		if code != 0 {
			t.Fatalf("conntrack -L -o save: %s", refErr)
		}
		if code, _, errOut := ctsyncIn(save, "table", "load", "--netns", dst, "-"); code != 0 {
			t.Fatalf("ctsync load of conntrack's save: exit %d: %s\n%s", code, errOut, save)
		}
		diffLines(t, "tables", want, normalize(listAll(t, dst), true))
	})
	t.Run("ctsync save, ctsync load", func(t *testing.T) {
		dst := kerneltest.NewNetNS(t)
		code, save, errOut := ctsyncIn("", "table", "list", "--netns", src, "-o", "save")
		if code != 0 {
			t.Fatalf("ctsync list -o save: %s", errOut)
		}
		if code, _, errOut := ctsyncIn(save, "table", "load", "--netns", dst, "-"); code != 0 {
			t.Fatalf("ctsync load: exit %d: %s", code, errOut)
		}
		diffLines(t, "tables", want, normalize(listAll(t, dst), true))
	})
}

// TestTableExitCodes checks conntrack's exit codes for operations that find
// nothing, and that each failure is one line.
func TestTableExitCodes(t *testing.T) {
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	byPath := "/run/netns/" + ns // --netns also takes a path
	entry := []string{"-p", "tcp", "-s", "1.1.1.1", "-d", "2.2.2.2", "--sport", "10", "--dport", "20"}
	tests := []struct {
		args       []string
		wantCode   int
		wantStderr string
	}{
		{append([]string{"table", "get", "--netns", ns}, entry...), exitFailure, "ctsync: such conntrack doesn't exist\n"},
		{[]string{"table", "delete", "--netns", ns, "-s", "1.1.1.1"}, exitFailure, "ctsync: no conntrack entry matched; nothing was deleted\n"},
		{[]string{"table", "delete", "--netns", ns, "--id", "12345"}, exitFailure, "ctsync: no conntrack entry matched; nothing was deleted\n"},
		{[]string{"table", "update", "--netns", ns, "-s", "1.1.1.1", "-m", "1"}, exitFailure, "ctsync: no conntrack entry matched or needed a change; nothing was updated\n"},
		{append([]string{"table", "insert", "--netns", byPath, "--state", "ESTABLISHED", "-t", "60", "-m", "7"}, entry...), exitOK, "ctsync: 1 flow entries have been created.\n"},
		{append([]string{"table", "insert", "--netns", ns, "--state", "ESTABLISHED", "-t", "60"}, entry...), exitFailure, "ctsync: such conntrack exists (table update changes it; a load line -A creates or updates)\n"},
		{append([]string{"table", "get", "--netns", ns}, entry...), exitOK, "ctsync: 1 flow entries have been shown.\n"},
		{[]string{"table", "update", "--netns", ns, "-s", "1.1.1.1", "-m", "7"}, exitFailure, "nothing was updated\n"},
		{[]string{"table", "update", "--netns", ns, "-s", "1.1.1.1", "-m", "8"}, exitOK, "ctsync: 1 flow entries have been updated.\n"},
		{[]string{"table", "count", "--netns", ns}, exitOK, ""},
		{[]string{"table", "delete", "--netns", ns, "-m", "8"}, exitOK, "ctsync: 1 flow entries have been deleted.\n"},
		{[]string{"table", "flush", "--netns", ns}, exitUsage, "add --yes"},
		{[]string{"table", "flush", "--netns", ns, "--yes"}, exitOK, "ctsync: connection tracking table has been emptied.\n"},
		{[]string{"table", "list", "--netns", "ctst-no-such-namespace"}, exitFailure, "ctsync: open network namespace \"ctst-no-such-namespace\""},
	}
	for _, tt := range tests {
		code, _, errOut := ctsyncIn("", tt.args...)
		if code != tt.wantCode || !strings.Contains(errOut, tt.wantStderr) {
			t.Errorf("ctsync %q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantStderr)
		}
		if code == exitFailure && strings.Count(errOut, "\n") != 1 {
			t.Errorf("ctsync %q: stderr %q, want one line", tt.args, errOut)
		}
	}
}

// TestTableCountAndStats compares -C and -S with conntrack's.
func TestTableCountAndStats(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	populate(t, ns, oracleEntries...)
	refCount, _, _ := conntrackRun(t, ns, "", "-C")
	if code, out, errOut := ctsyncIn("", "table", "count", "--netns", ns); code != 0 || out != refCount {
		t.Errorf("ctsync table count = %q (exit %d, %s), conntrack -C = %q", out, code, errOut, refCount)
	}
	refStats, _, _ := conntrackRun(t, ns, "", "-S")
	code, out, errOut := ctsyncIn("", "table", "stats", "--netns", ns)
	if code != 0 {
		t.Fatalf("ctsync table stats: exit %d: %s", code, errOut)
	}
	// Counters move with the table; the format does not.
	digits := regexp.MustCompile(`=\d+`)
	if digits.ReplaceAllString(out, "=N") != digits.ReplaceAllString(refStats, "=N") {
		t.Errorf("ctsync table stats:\n%q\nconntrack -S:\n%q", out, refStats)
	}
}

// TestTableTutorialExtensions runs the tutorial's command lines that conntrack
// 1.4.7 refuses and ctsync takes as extensions (README.md, "Beyond
// conntrack(8)"), checking each against what conntrack shows of the table.
func TestTableTutorialExtensions(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	populate(t, ns, append(slices.Clone(oracleEntries), dccpEntry)...)

	t.Run("list --state without -p", func(t *testing.T) {
		// conntrack -L --state ESTABLISHED: "unknown option"; ctsync shows
		// what conntrack shows for -p tcp and -p sctp together.
		var want []string
		for _, p := range []string{"tcp", "sctp"} {
			out, refErr, code := conntrackRun(t, ns, "", "-L", "-p", p, "--state", "ESTABLISHED")
			if code != 0 {
				t.Fatalf("conntrack -L -p %s --state ESTABLISHED: %s", p, refErr)
			}
			want = append(want, normalize(out, false)...)
		}
		slices.Sort(want)
		if len(want) < 5 || !slices.ContainsFunc(want, func(l string) bool { return strings.HasPrefix(l, "sctp") }) {
			t.Fatalf("the table should hold TCP and SCTP entries in ESTABLISHED: %q", want)
		}
		code, out, errOut := ctsyncIn("", "table", "list", "--netns", ns, "--state", "ESTABLISHED")
		if code != 0 {
			t.Fatalf("ctsync table list --state ESTABLISHED: exit %d: %s", code, errOut)
		}
		diffLines(t, "listings", want, normalize(out, false))
		if shown(errOut) != strconv.Itoa(len(want)) {
			t.Errorf("summary %q, want %d shown", errOut, len(want))
		}
		if code, _, errOut := ctsyncIn("", "table", "list", "--netns", ns, "--state", "ESTABLISHD"); code != exitUsage ||
			!strings.Contains(errOut, "want a TCP state: NONE, SYN_SENT") {
			t.Errorf("a state of no protocol: exit %d, stderr %q; want exit 2 listing the names", code, errOut)
		}
	})

	// The namespace's own sysctl is what insert without -t reads.
	kerneltest.MustExec(t, ns, "sh", "-c", "echo 45 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout")
	sysctl := func(name string) int {
		out := kerneltest.MustExec(t, ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_"+name)
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("%s: %q", name, out)
		}
		return n
	}
	tutorial := []string{"--proto", "tcp", "--src", "192.168.1.100", "--dst", "8.8.8.8", "--sport", "12345", "--dport", "80", "--state", "ESTABLISHED"}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{tutorial, sysctl("tcp_timeout_established")},
		{[]string{"-p", "tcp", "-s", "192.168.1.100", "-d", "8.8.8.8", "--sport", "1", "--dport", "80", "--state", "SYN_RECV"}, sysctl("tcp_timeout_syn_recv")},
		{[]string{"-p", "udp", "-s", "192.168.1.100", "-d", "8.8.8.8", "--sport", "5353", "--dport", "53"}, 45},
		{[]string{"-p", "udp", "-s", "192.168.1.100", "-d", "8.8.8.8", "--sport", "5354", "--dport", "53", "-u", "SEEN_REPLY"}, sysctl("udp_timeout_stream")},
		{[]string{"-p", "icmp", "-s", "192.168.1.100", "-d", "8.8.8.8", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "9"}, sysctl("icmp_timeout")},
		{[]string{"-p", "sctp", "-s", "192.168.1.100", "-d", "8.8.8.8", "--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "--orig-vtag", "1", "--reply-vtag", "2"}, sysctl("sctp_timeout_established")},
		{[]string{"-p", "47", "-s", "192.168.1.100", "-d", "8.8.8.8", "--srckey", "1", "--dstkey", "2"}, sysctl("gre_timeout")},
		{[]string{"-p", "igmp", "-s", "192.168.1.100", "-d", "224.0.0.22"}, sysctl("generic_timeout")},
	} {
		t.Run("insert without -t "+strings.Join(tc.args, " "), func(t *testing.T) {
			if _, _, code := conntrackRun(t, ns, "", append([]string{"-I"}, tc.args...)...); code == 0 {
				t.Fatal("conntrack -I without -t succeeded: no extension to test")
			}
			code, out, errOut := ctsyncIn("", append([]string{"table", "insert", "--netns", ns}, tc.args...)...)
			if code != 0 || out != "" || errOut != "ctsync: 1 flow entries have been created.\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and the summary only", code, out, errOut)
			}
			get := []string{"-G"}
			for i := 0; i < len(tc.args); i++ {
				switch tc.args[i] {
				case "--state", "-u", "--orig-vtag", "--reply-vtag":
					i++ // -G takes the tuple only
				default:
					get = append(get, tc.args[i])
				}
			}
			line, refErr, code := conntrackRun(t, ns, "", get...)
			m := textTimeout.FindStringSubmatch(line)
			if code != 0 || m == nil {
				t.Fatalf("conntrack %q: exit %d, %q %s", get, code, line, refErr)
			}
			if got, _ := strconv.Atoi(m[2]); got > tc.want || got < tc.want-2 {
				t.Errorf("timeout %d, want the default %d (within 2 s): %s", got, tc.want, line)
			}
		})
	}

	t.Run("get, update and delete by a positional id", func(t *testing.T) {
		out, refErr, code := conntrackRun(t, ns, "", "-L", "-p", "tcp", "-s", "192.168.1.100", "--sport", "12345", "-o", "id")
		m := regexp.MustCompile(`id=(\d+)\n$`).FindStringSubmatch(out)
		if code != 0 || strings.Count(out, "\n") != 1 || m == nil {
			t.Fatalf("the tutorial's entry: %q (%s)", out, refErr)
		}
		id := m[1]
		if code, out, errOut := ctsyncIn("", "table", "get", "--netns", ns, id); code != 0 || !strings.Contains(out, "sport=12345 dport=80") {
			t.Errorf("ctsync table get %s: exit %d, %q %s", id, code, out, errOut)
		}
		// conntrack -U --id N --timeout 600, with the id alone.
		// The entry printed is read back after the update: a second may
		// have passed.
		if code, out, errOut := ctsyncIn("", "table", "update", "--netns", ns, id, "--timeout", "600"); code != 0 || !regexp.MustCompile(` (600|599|598) ESTABLISHED`).MatchString(out) {
			t.Errorf("ctsync table update %s --timeout 600: exit %d, %q %s", id, code, out, errOut)
		}
		before := normalize(listAll(t, ns), false)
		code, out, errOut := ctsyncIn("", "table", "delete", "--netns", ns, id)
		if code != 0 || shown(errOut) != "1" || !strings.Contains(out, "sport=12345 dport=80") {
			t.Fatalf("ctsync table delete %s: exit %d, %q %s", id, code, out, errOut)
		}
		after := normalize(listAll(t, ns), false)
		if len(after) != len(before)-1 {
			t.Errorf("delete %s: %d entries before, %d after; want one gone", id, len(before), len(after))
		}
		if out, _, _ := conntrackRun(t, ns, "", "-L", "-p", "tcp", "-s", "192.168.1.100", "--sport", "12345"); out != "" {
			t.Errorf("the entry is still there: %q", out)
		}
		if code, _, errOut := ctsyncIn("", "table", "delete", "--netns", ns, id); code != exitFailure {
			t.Errorf("deleting it again: exit %d (%s), want 1", code, errOut)
		}
		if code, _, errOut := ctsyncIn("", "table", "get", "--netns", ns, id); code != exitFailure || !strings.Contains(errOut, "doesn't exist") {
			t.Errorf("getting it again: exit %d (%s), want 1", code, errOut)
		}
	})
}
