package config

import (
	"bufio"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestUnitWritableDirs keeps UnitWritableDirs in step with the shipped
// unit: the directories its ReadWritePaths, RuntimeDirectory,
// StateDirectory, CacheDirectory and LogsDirectory make writable under
// ProtectSystem=strict.
func TestUnitWritableDirs(t *testing.T) {
	f, err := os.Open("../contrib/systemd/ctsync.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := map[string]string{
		"RuntimeDirectory": "/run", "StateDirectory": "/var/lib", "CacheDirectory": "/var/cache", "LogsDirectory": "/var/log",
	}
	var dirs []string
	strict := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		for v := range strings.FieldsSeq(value) {
			switch {
			case key == "ProtectSystem":
				strict = v == "strict"
			case key == "ReadWritePaths":
				dirs = append(dirs, path.Clean(strings.TrimLeft(v, "-+")))
			case base[key] != "":
				dirs = append(dirs, path.Join(base[key], v))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !strict {
		t.Error("the unit has no ProtectSystem=strict: what it may write is no longer a short list")
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	want := slices.Sorted(slices.Values(UnitWritableDirs))
	if !slices.Equal(dirs, want) {
		t.Errorf("the unit makes %q writable, UnitWritableDirs says %q", dirs, want)
	}
	if !unitWritable(DefaultSocket) {
		t.Errorf("the default socket %s is not writable under the unit", DefaultSocket)
	}
}

// TestWarnings: a control socket the shipped unit cannot create is a
// warning (not a problem: a drop-in may allow it).
func TestWarnings(t *testing.T) {
	for sock, warn := range map[string]bool{
		"/var/run/conntrackd.ctl":     true,
		"/run/conntrackd.ctl":         true,
		"/run/ctsync":                 true, // the directory itself
		"/run/ctsync/../x.sock":       true,
		"/run/ctsyncx/ctsync.sock":    true,
		"/tmp/ctsync.sock":            true, // PrivateTmp: nobody else would see it
		"/run/ctsync/ctsync.sock":     false,
		"/var/run/ctsync/ctsync.sock": false,
		"/run/ctsync/other/x.sock":    false,
	} {
		c := Default()
		c.Control.Socket = sock
		ws := c.Warnings()
		switch {
		case !warn && len(ws) != 0:
			t.Errorf("socket %s: warnings %v, want none", sock, ws)
		case warn && (len(ws) != 1 || ws[0].Path != "control.socket" ||
			!strings.Contains(ws[0].Message, sock+" is outside what the shipped systemd unit lets the daemon write (/run/ctsync;")):
			t.Errorf("socket %s: warnings %v, want one about control.socket", sock, ws)
		}
	}
	// A relative path is a problem (Validate), not also a warning.
	c := Default()
	c.Control.Socket = "ctsync.sock"
	if ws := c.Warnings(); len(ws) != 0 {
		t.Errorf("relative socket: warnings %v", ws)
	}
}
