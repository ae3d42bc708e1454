package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/config"
)

// TestConfigImport: the notes on standard error are tagged, the socket is
// ctsync's own, and --strict fails when behaviour changes (but still
// prints the file).
func TestConfigImport(t *testing.T) {
	dir := t.TempDir()
	same := writeFile(t, dir, "same.conf", `Sync {
	Mode FTFW { ResendQueueSize 131072 }
	UDP { IPv4_address 10.0.3.1; IPv4_Destination_Address 10.0.3.2; Port 3780 }
	Options { ExpectationSync On }
}
General {
	LogFile on
	UNIX { Path /var/run/conntrackd.ctl }
}
`, 0o644)
	changed := writeFile(t, dir, "changed.conf", `Sync {
	Multicast { IPv4_address 225.0.0.50; IPv4_interface 10.0.3.1; Group 3780 }
}
General {
	Filter { Address Accept { IPv4_address 10.0.0.0/8 } }
}
`, 0o644)
	tagged := regexp.MustCompile(`^(dropped|changed|not needed): ` + regexp.QuoteMeta(dir) + `/\w+\.conf(:\d+)?: `)

	for _, tt := range []struct {
		file    string
		strict  bool
		code    int
		changed int
	}{
		{same, false, exitOK, 0},
		{same, true, exitOK, 0},
		{changed, false, exitOK, 3},
		{changed, true, exitFailure, 3},
	} {
		args := []string{"config", "import", tt.file}
		if tt.strict {
			args = []string{"config", "import", "--strict", tt.file}
		}
		code, out, errOut := ctsync(t, args...)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d; stderr:\n%s", args, code, tt.code, errOut)
		}
		// The file is printed even when --strict fails, and it validates.
		c, err := config.Parse([]byte(out))
		if err != nil {
			t.Fatalf("%q: output does not parse: %v\n%s", args, err, out)
		}
		c.Node = "fw-a"
		if err := c.Validate(); err != nil {
			t.Errorf("%q: output does not validate: %v\n%s", args, err, out)
		}
		if c.Control.Socket != config.DefaultSocket || len(c.Warnings()) != 0 {
			t.Errorf("%q: control.socket %q, want %q", args, c.Control.Socket, config.DefaultSocket)
		}
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if !strings.HasPrefix(lines[0], "ctsync: config import: ") {
			t.Errorf("%q: first line %q, want the summary", args, lines[0])
		}
		n := 0
		for _, l := range lines[1:] {
			switch {
			case strings.HasPrefix(l, "ctsync: config import: --strict: "):
				if !tt.strict {
					t.Errorf("%q: %q without --strict", args, l)
				}
			case !tagged.MatchString(l):
				t.Errorf("%q: note %q not tagged", args, l)
			case strings.HasPrefix(l, "changed: "):
				n++
			}
		}
		if n != tt.changed {
			t.Errorf("%q: %d changed notes, want %d:\n%s", args, n, tt.changed, errOut)
		}
		if !strings.Contains(errOut, "not needed: "+same+":8: General.UNIX.Path /var/run/conntrackd.ctl: control.socket stays ctsync's own") && tt.file == same {
			t.Errorf("%q: no note about the socket:\n%s", args, errOut)
		}
		if strings.Contains(errOut, "ExpectationSync") && !strings.Contains(errOut, "not needed: "+same+":4: Sync.Options.ExpectationSync On: ctsync always replicates expectations") {
			t.Errorf("%q: ExpectationSync On:\n%s", args, errOut)
		}
	}
}
