package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	ms := func(m int) time.Duration { return time.Duration(m) * time.Millisecond }
	for _, c := range []struct {
		name    string
		answers []time.Time
		from    time.Time
		now     time.Time
		want    time.Duration
	}{
		{"steady answers", at(0, 20, 40, 60, 80, 100), t0, t0.Add(ms(110)), ms(20)},
		{"a stall after the failure", at(0, 20, 40, 560, 580), t0.Add(ms(30)), t0.Add(ms(600)), ms(520)},
		// The gap that spans the failure counts from the last answer before it.
		{"gap spanning the failure", at(0, 20, 40, 700), t0.Add(ms(50)), t0.Add(ms(710)), ms(660)},
		// No answer since: the gap runs to now (a connection that died).
		{"no answer since", at(0, 20), t0.Add(ms(30)), t0.Add(ms(5030)), ms(5010)},
		{"never answered", nil, t0, t0.Add(ms(300)), ms(300)},
		{"tail longer than any gap", at(0, 20, 40), t0, t0.Add(ms(140)), ms(100)},
	} {
		if got := longestGap(c.answers, c.from, c.now); got != c.want {
			t.Errorf("%s: longestGap = %v, want %v", c.name, got, c.want)
		}
	}
}

// The demo's keepalived configuration carries each profile's VRRP version,
// advertisement interval and global lines, in both instances.
func TestKeepalivedConfProfiles(t *testing.T) {
	for _, p := range []profile{profiles["default"], profiles["fast"]} {
		conf := keepalived{routerID: "fw1", profile: p, priority: 150, lanSrc: "10.10.1.2", wanSrc: "10.20.0.2",
			lanPeers: []string{"10.10.1.3"}, wanPeers: []string{"10.20.0.3"}}.conf()
		g := parseKeepalived(conf)
		if g.version != p.vrrpVersion {
			t.Errorf("profile %s: vrrp_version %d, want %d\n%s", p.name, g.version, p.vrrpVersion, conf)
		}
		if len(g.adverts) != 2 || g.adverts[0] != p.advertInt || g.adverts[1] != p.advertInt {
			t.Errorf("profile %s: advert_int %v, want %s in both instances\n%s", p.name, g.adverts, p.advertInt, conf)
		}
		for _, line := range p.globals {
			if !strings.Contains(g.globalDefs, line) {
				t.Errorf("profile %s: global_defs lacks %q\n%s", p.name, line, conf)
			}
		}
	}
}

// The profiles shipped in contrib/keepalived are the ones the demo measures:
// keepalived.conf the default one, keepalived-fast.conf the fast one.
func TestShippedProfilesMatchDemo(t *testing.T) {
	for file, name := range map[string]string{"keepalived.conf": "default", "keepalived-fast.conf": "fast"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "keepalived", file))
		if err != nil {
			t.Fatal(err)
		}
		p, g := profiles[name], parseKeepalived(string(b))
		if g.version != p.vrrpVersion {
			t.Errorf("%s: vrrp_version %d, the demo's %s profile runs %d", file, g.version, name, p.vrrpVersion)
		}
		if len(g.adverts) != 2 {
			t.Errorf("%s: %d advert_int lines, want one in each of the 2 instances", file, len(g.adverts))
		}
		for _, a := range g.adverts {
			if a != p.advertInt {
				t.Errorf("%s: advert_int %s, the demo's %s profile runs %s", file, a, name, p.advertInt)
			}
		}
		for _, line := range p.globals {
			if !strings.Contains(g.globalDefs, line) {
				t.Errorf("%s: global_defs lacks %q, which the demo's %s profile runs", file, line, name)
			}
		}
		// VRRPv3 has no authentication (keepalived ignores the block with a
		// warning): the fast profile checks the advert's source instead.
		if p.vrrpVersion == 3 {
			if g.auth {
				t.Errorf("%s: an authentication block under VRRPv3", file)
			}
			if n := strings.Count(string(b), "\n    check_unicast_src"); n != 2 {
				t.Errorf("%s: check_unicast_src in %d instances, want 2", file, n)
			}
		}
	}
}

// keepalived accepts both shipped files (keepalived --config-test), in a
// namespace with their interfaces and ctsync's path replaced by /bin/true.
func TestShippedProfilesConfigTest(t *testing.T) {
	kerneltest.RequirePrivileged(t)
	kerneltest.RequireTools(t, "keepalived")
	ns := kerneltest.NewNetNS(t)
	for i, dev := range []string{"eth0", "eth1", "eth2"} {
		kerneltest.MustExec(t, ns, "ip", "link", "add", dev, "type", "veth", "peer", "name", "p"+string(rune('0'+i)))
	}
	for _, file := range []string{"keepalived.conf", "keepalived-fast.conf"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "keepalived", file))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), file)
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/bin/ctsync", "/bin/true")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := kerneltest.Exec(t, ns, "keepalived", "--config-test", "-f", path); err != nil {
			t.Errorf("keepalived --config-test %s: %v\n%s", file, err, out)
		}
	}
}

// keepalivedConf is what the tests read from a keepalived.conf.
type keepalivedConf struct {
	globalDefs string
	version    int      // vrrp_version, 2 when absent
	adverts    []string // advert_int of each instance, in order
	auth       bool     // an authentication block
}

var (
	commentRE = regexp.MustCompile(`(?m)#.*$`)
	globalRE  = regexp.MustCompile(`(?s)global_defs\s*\{(.*?)\n\}`)
	versionRE = regexp.MustCompile(`(?m)^\s*vrrp_version\s+(\d)\s*$`)
	advertRE  = regexp.MustCompile(`(?m)^\s*advert_int\s+(\S+)\s*$`)
	authRE    = regexp.MustCompile(`(?m)^\s*authentication\s*\{`)
)

func parseKeepalived(conf string) keepalivedConf {
	conf = commentRE.ReplaceAllString(conf, "")
	k := keepalivedConf{version: 2, auth: authRE.MatchString(conf)}
	if m := globalRE.FindStringSubmatch(conf); m != nil {
		k.globalDefs = m[1]
	}
	if m := versionRE.FindStringSubmatch(k.globalDefs); m != nil {
		k.version = int(m[1][0] - '0')
	}
	for _, m := range advertRE.FindAllStringSubmatch(conf, -1) {
		k.adverts = append(k.adverts, m[1])
	}
	return k
}
