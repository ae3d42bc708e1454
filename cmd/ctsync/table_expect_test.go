package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

var expectTimeoutRE = regexp.MustCompile(`(?m)^\d+ `)

// TestTableListExpectMatchesConntrack: table list --expect prints the
// expectations the kernel's ftp helper created as conntrack -L expect does,
// byte for byte but for the timeouts; flush --expect empties the table.
func TestTableListExpectMatchesConntrack(t *testing.T) {
	ns := kerneltest.NewNetNS(t)
	kerneltest.FTPExpectation(t, ns, 21, 50000)
	kerneltest.FTPExpectation(t, ns, 2121, 50001)

	for _, fam := range [][]string{nil, {"-f", "ipv4"}, {"-f", "ipv6"}} {
		want, wantErr, code := conntrackRun(t, ns, "", append([]string{"-L", "expect"}, fam...)...)
		if code != 0 {
			t.Fatalf("conntrack -L expect %v: exit %d: %s", fam, code, wantErr)
		}
		code, got, gotErr := ctsyncIn("", append([]string{"table", "list", "--expect", "--netns", ns}, fam...)...)
		if code != 0 {
			t.Fatalf("table list --expect %v: exit %d: %s", fam, code, gotErr)
		}
		want, got = expectTimeoutRE.ReplaceAllString(want, "T "), expectTimeoutRE.ReplaceAllString(got, "T ")
		if got != want {
			t.Errorf("table list --expect %v:\n%s\nconntrack -L expect:\n%s", fam, got, want)
		}
		if n := strings.Count(want, "\n"); fam == nil && n != 2 {
			t.Errorf("conntrack shows %d expectations, want 2", n)
		}
		// "conntrack v1.4.7 (conntrack-tools): 2 expectations have been shown."
		wantSum := wantErr[strings.Index(wantErr, ": ")+2:]
		if gotSum := strings.TrimPrefix(gotErr, "ctsync: "); gotSum != wantSum {
			t.Errorf("summary %q, conntrack's %q", gotSum, wantSum)
		}
	}

	if code, _, errOut := ctsyncIn("", "table", "list", "--expect", "--netns", ns, "-p", "tcp"); code != exitUsage || !strings.Contains(errOut, "--proto does not apply") {
		t.Errorf("list --expect -p tcp: exit %d, %q; want a usage error", code, errOut)
	}
	if code, _, errOut := ctsyncIn("", "table", "flush", "--expect", "--netns", ns, "--yes"); code != 0 || errOut != "ctsync: expectation table has been emptied.\n" {
		t.Fatalf("flush --expect: exit %d: %q", code, errOut)
	}
	if out, _, _ := conntrackRun(t, ns, "", "-L", "expect"); out != "" {
		t.Errorf("after flush --expect, conntrack -L expect shows:\n%s", out)
	}
	if out, _, _ := conntrackRun(t, ns, "", "-L"); strings.Count(out, "helper=ftp") != 2 {
		t.Errorf("flush --expect touched the conntrack table:\n%s", out)
	}
}
