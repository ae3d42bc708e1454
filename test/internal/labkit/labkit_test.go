package labkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConntrackdStats(t *testing.T) {
	out := []byte(`cache internal:
current active connections:	        10030
connections created:		        10030	failed:	            0
cache external:
current active connections:	           17
UDP traffic (active device=sync0):
                 112 Bytes sent                  556 Bytes recv
                   7 Pckts sent                   10 Pckts recv
`)
	s, err := ParseConntrackdStats(out)
	if err != nil {
		t.Fatal(err)
	}
	if s != (ConntrackdStats{Internal: 10030, External: 17, PktsRecv: 10}) {
		t.Errorf("parsed %+v", s)
	}
	if _, err := ParseConntrackdStats([]byte("cache internal:\n")); err == nil {
		t.Error("no counts: no error")
	}
}

func TestFTFWConfig(t *testing.T) {
	c := FTFW{Local: "10.30.0.1", Peer: "10.30.0.2", Interface: "sync0", Flows: 200000,
		LogFile: "/tmp/x.log", LockFile: "/tmp/x.lock", Socket: "/tmp/x.ctl", Ignore: []string{"10.10.1.2", "10.20.0.2"}}
	conf := c.Config()
	for _, want := range []string{
		"IPv4_address 10.30.0.1\n", "IPv4_Destination_Address 10.30.0.2\n", "Interface sync0\n",
		"HashSize 131072\n", "HashLimit 1062144\n", "ResendQueueSize 400000\n",
		"Path /tmp/x.ctl\n", "LockFile /tmp/x.lock\n", "LogFile /tmp/x.log\n",
		"\t\t\tIPv4_address 127.0.0.1\n\t\t\tIPv4_address 10.10.1.2\n\t\t\tIPv4_address 10.20.0.2\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	// conntrackd itself reads it: a configuration it refuses exits at once
	// with the reason; one it accepts fails later, on the interface that
	// this namespace does not have, or answers -s with no daemon running.
	bin, err := exec.LookPath("conntrackd")
	if err != nil {
		t.Skip("conntrackd not installed")
	}
	path := filepath.Join(t.TempDir(), "conntrackd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-C", path, "-s").CombinedOutput()
	if strings.Contains(string(out), "parsing config file") {
		t.Errorf("conntrackd cannot parse the configuration: %s", out)
	}
}
