package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/control"
	ctstats "github.com/ctsync/ctsync/stats"
	"github.com/vishvananda/netns"
)

const (
	lanVIP, wanVIP = "10.10.1.1", "10.20.0.1"
	clientIP       = "10.10.1.10"
	serverIP       = "10.20.0.100"
	serverPort     = 7000
)

func fwAddr(i int, net string) string { return fmt.Sprintf("%s.%d", net, i+1) }

// syncAddr is fw i's address on the sync network (fw1 10.30.0.1).
func syncAddr(i int) string { return fmt.Sprintf("10.30.0.%d", i) }

// topology builds the namespaces, links, addresses, routes and rulesets.
func (l *lab) topology() error {
	for _, ns := range l.ns {
		if err := l.sh("ip", "netns", "add", ns); err != nil {
			return err
		}
		if err := l.sh("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	for _, sw := range []string{"lan", "wan", "sync"} {
		if err := l.in(sw, "ip", "link", "add", "br0", "type", "bridge"); err != nil {
			return err
		}
		if err := l.in(sw, "ip", "link", "set", "br0", "up"); err != nil {
			return err
		}
	}
	// link connects role's interface ifname to switch sw.
	link := func(role, ifname, sw, port, cidr string) error {
		if err := l.sh("ip", "link", "add", ifname, "netns", l.name(role), "type", "veth", "peer", "name", port, "netns", l.name(sw)); err != nil {
			return err
		}
		steps := [][]string{
			{"ip", "addr", "add", cidr, "dev", ifname},
			{"ip", "link", "set", ifname, "up"},
		}
		for _, s := range steps {
			if err := l.in(role, s...); err != nil {
				return err
			}
		}
		if err := l.in(sw, "ip", "link", "set", port, "master", "br0"); err != nil {
			return err
		}
		return l.in(sw, "ip", "link", "set", port, "up")
	}
	if err := link("client", "eth0", "lan", "p-client", clientIP+"/24"); err != nil {
		return err
	}
	if err := link("server", "eth0", "wan", "p-server", serverIP+"/24"); err != nil {
		return err
	}
	for i, fw := range l.fws {
		if err := link(fw, "lan0", "lan", "p-"+fw+"-l", fwAddr(i+1, "10.10.1")+"/24"); err != nil {
			return err
		}
		if err := link(fw, "wan0", "wan", "p-"+fw+"-w", fwAddr(i+1, "10.20.0")+"/24"); err != nil {
			return err
		}
		// The sync network: a bridge of its own, 10.30.0.i on fw i.
		if err := link(fw, "sync0", "sync", "p-"+fw+"-s", syncAddr(i+1)+"/24"); err != nil {
			return err
		}
		for _, kv := range []string{"net.ipv4.ip_forward=1", "net.netfilter.nf_conntrack_tcp_loose=0"} {
			if err := l.in(fw, "sysctl", "-qw", kv); err != nil {
				return err
			}
		}
		rules := filepath.Join(l.dir, fw+".nft")
		if err := os.WriteFile(rules, []byte(ruleset(*reset)), 0o644); err != nil {
			return err
		}
		if err := l.in(fw, "nft", "-f", rules); err != nil {
			return err
		}
	}
	if err := l.in("client", "ip", "route", "add", "default", "via", lanVIP); err != nil {
		return err
	}
	return nil
}

// ruleset is a strict stateful firewall with SNAT to the WAN VIP: only
// connections from the LAN may start; everything else must belong to a
// tracked connection, or it is dropped. With reset, a TCP packet of a flow
// the table does not know is answered with a reset instead (forwarded, or
// to the firewall itself: a reply to the SNAT address that found no state),
// so a packet that reaches a new master before the flow's state kills its
// connection.
func ruleset(reset bool) string {
	input, rejectFwd := "", ""
	if reset {
		input = `
	chain input {
		type filter hook input priority 0; policy accept;
		meta l4proto tcp ct state invalid reject with tcp reset
	}`
		rejectFwd = `
		meta l4proto tcp ct state invalid,new reject with tcp reset`
	}
	return `
table inet filter {` + input + `
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" ct state new accept` + rejectFwd + `
	}
}
table ip nat {
	chain prerouting { type nat hook prerouting priority -100; }
	chain postrouting {
		type nat hook postrouting priority 100;
		oifname "wan0" snat to ` + wanVIP + ` random
	}
}
`
}

func (l *lab) sock(fw string) string { return filepath.Join(l.dir, fw+".sock") }

// keepalived is one firewall's keepalived.conf.
type keepalived struct {
	routerID           string
	profile            profile
	priority           int
	script             string // vrrp_script blocks
	track              string // the sync group's track_script line
	notify             string // the sync group's notify lines
	lanSrc, wanSrc     string // unicast_src_ip of each instance
	lanPeers, wanPeers []string
}

// conf formats it: both instances (LAN and WAN VIP) in one sync group,
// unicast, both starting as BACKUP with nopreempt (the higher priority wins
// at start, and a firewall that comes back stays backup: no flapping), with
// the profile's VRRP version and advertisement interval.
func (k keepalived) conf() string {
	instance := func(name, dev string, vrid int, src string, peers []string, vip string) string {
		var p strings.Builder
		for _, a := range peers {
			fmt.Fprintf(&p, "    %s\n", a) // one peer a line
		}
		return fmt.Sprintf(`vrrp_instance %s {
  state BACKUP
  interface %s
  virtual_router_id %d
  priority %d
  advert_int %s
  nopreempt
  unicast_src_ip %s
  unicast_peer {
%s  }
  virtual_ipaddress { %s/24 dev %s }
}
`, name, dev, vrid, k.priority, k.profile.advertInt, src, p.String(), vip, dev)
	}
	var globals strings.Builder
	for _, g := range k.profile.globals {
		fmt.Fprintf(&globals, "  %s\n", g)
	}
	return fmt.Sprintf(`global_defs {
  router_id %s
  script_user root
  vrrp_version %d
%s}
%svrrp_sync_group G {
  group { LAN WAN }
%s%s}
`, k.routerID, k.profile.vrrpVersion, globals.String(), k.script, k.track, k.notify) +
		instance("LAN", "lan0", 51, k.lanSrc, k.lanPeers, lanVIP) +
		instance("WAN", "wan0", 52, k.wanSrc, k.wanPeers, wanVIP)
}

// startFirewall runs the scenario's sync daemon and keepalived on fw i
// (0-based: fw1 is 0).
func (l *lab) startFirewall(i int) error {
	fw := l.fws[i]
	withCtsync := l.sc.daemon == "ctsync"
	var join []string
	ka := keepalived{
		routerID: fw,
		profile:  l.sc.profile,
		priority: 150 - 50*i,
		lanSrc:   fwAddr(i+1, "10.10.1"),
		wanSrc:   fwAddr(i+1, "10.20.0"),
	}
	for j := range l.fws {
		if j != i {
			join = append(join, fmt.Sprintf("%q", syncAddr(j+1)+":7946"))
			ka.lanPeers = append(ka.lanPeers, fwAddr(j+1, "10.10.1"))
			ka.wanPeers = append(ka.wanPeers, fwAddr(j+1, "10.20.0"))
		}
	}
	if withCtsync {
		cfg := fmt.Sprintf(`node: %s
cluster:
  bind: %s:7946
  join: [%s]
  key_file: %s
  name: demo
control:
  socket: %s
filter:
  # the box's own addresses: traffic to and from it stays local
  ignore_addresses: [127.0.0.0/8, "::1/128", %s, %s, 10.30.0.0/24, %s, %s]
`, fw, syncAddr(i+1), strings.Join(join, ", "), filepath.Join(l.dir, "cluster.key"), l.sock(fw),
			fwAddr(i+1, "10.10.1"), fwAddr(i+1, "10.20.0"), lanVIP, wanVIP)
		if l.sc.mode == "hot" || *noGate {
			cfg += "commit:\n"
			if l.sc.mode == "hot" {
				cfg += "  mode: hot\n"
			}
			if *noGate {
				cfg += "  gate: false\n"
			}
		}
		path := filepath.Join(l.dir, fw+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		// A configuration the daemon would refuse stops the demo here, with
		// the daemon's own words, not after a wait for a master.
		if out, err := exec.Command(*bin, "config", "check", "--config", path).CombinedOutput(); err != nil {
			return fmt.Errorf("%s's configuration: ctsync config check: %v\n%s", fw, err, strings.TrimSpace(string(out)))
		}
		if _, err := l.start(fw, fw+"-ctsync.log", *bin, "daemon", "--config", path); err != nil {
			return err
		}
		// A node whose copy of the peers' flows is not confirmed complete
		// must not take over: keepalived puts it in FAULT until it is.
		ka.script = fmt.Sprintf("vrrp_script ctsync_ready {\n  script \"%s health --socket %s\"\n  interval 1\n  fall 3\n  rise 1\n}\n", *bin, l.sock(fw))
		ka.track = "  track_script { ctsync_ready }\n"
	}
	if l.sc.daemon == "conntrackd" {
		if err := l.startConntrackd(i); err != nil {
			return err
		}
	}
	switch {
	case l.sc.daemon == "none":
	case l.sc.pb != "":
		// conntrackd's own script: with conntrackd, as shipped but for the
		// paths (this firewall's configuration, lock file); with ctsync,
		// through a conntrackd symlink to ctsync and with this firewall's
		// ctsync configuration as -C.
		conntrackd, config := "conntrackd", l.ctdConf(fw)
		if withCtsync {
			conntrackd, config = filepath.Join(l.dir, "conntrackd"), filepath.Join(l.dir, fw+".yaml")
			if _, err := os.Lstat(conntrackd); err != nil {
				if err := os.Symlink(*bin, conntrackd); err != nil {
					return err
				}
			}
		} else if p, err := exec.LookPath("conntrackd"); err == nil {
			conntrackd = p
		}
		pb, err := l.primaryBackup(fw, l.sc.pb, conntrackd, config)
		if err != nil {
			return err
		}
		for _, st := range []string{"master", "backup", "fault"} {
			arg := map[string]string{"master": "primary", "backup": "backup", "fault": "fault"}[st]
			ka.notify += fmt.Sprintf("  notify_%s \"/bin/sh %s %s\"\n", st, pb, arg)
		}
	default:
		for _, st := range []string{"master", "backup", "fault"} {
			ka.notify += fmt.Sprintf("  notify_%s \"%s notify %s --socket %s\"\n", st, *bin, st, l.sock(fw))
		}
	}
	kpath := filepath.Join(l.dir, fw+"-keepalived.conf")
	if err := os.WriteFile(kpath, []byte(ka.conf()), 0o644); err != nil {
		return err
	}
	_, err := l.start(fw, fw+"-keepalived.log", "keepalived", "-n", "-l", "-D", "-P", "-f", kpath,
		"-p", filepath.Join(l.dir, fw+"-k.pid"), "-r", filepath.Join(l.dir, fw+"-kv.pid"), "-c", filepath.Join(l.dir, fw+"-kc.pid"))
	return err
}

func (l *lab) holdsVIP(fw string) bool {
	return strings.Contains(l.output(fw, "ip", "-4", "addr", "show", "dev", "lan0"), lanVIP+"/24")
}

// vipHolders lists the firewalls that hold the LAN VIP.
func (l *lab) vipHolders() []string {
	var h []string
	for _, fw := range l.fws {
		if l.holdsVIP(fw) {
			h = append(h, fw)
		}
	}
	return h
}

func waitUntil(d time.Duration, cond func() bool) error {
	return waitEvery(d, 20*time.Millisecond, cond)
}

// waitEvery checks cond every interval until it holds or d has passed.
func waitEvery(d, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(every)
	}
	return nil
}

// inNetns runs fn on an OS thread inside namespace name; sockets made there
// stay in it.
func inNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

// echo serves the connections: every 8-byte message is sent back.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 8)
			for {
				if _, err := readFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// udpEcho echoes datagrams and records, per session id, the source ports
// the server saw: a SNAT mapping that survives the failover shows one.
type udpEcho struct {
	mu    stdsync.Mutex
	ports map[uint64]map[int]bool
	first map[uint64]int // the source port a session started with
	last  map[uint64]int // the source port of its latest datagram
}

func (u *udpEcho) serve(pc net.PacketConn) {
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if n == 8 {
			id := binary.BigEndian.Uint64(buf) >> 32
			u.mu.Lock()
			if u.ports[id] == nil {
				u.ports[id] = map[int]bool{}
			}
			port := from.(*net.UDPAddr).Port
			u.ports[id][port] = true
			if _, ok := u.first[id]; !ok {
				u.first[id] = port
			}
			u.last[id] = port
			u.mu.Unlock()
		}
		pc.WriteTo(buf[:n], from)
	}
}

// mapping reports whether the session's latest datagrams carry the
// mapping it started with, and how many mappings the server saw.
func (u *udpEcho) mapping(id uint64) (kept bool, seen int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.first[id] == u.last[id], len(u.ports[id])
}

// session is one long-lived connection: it sends a numbered message every
// -interval (TCP; 100 ms for UDP) and records when echoes come back.
type session struct {
	id     uint64        // in the high 32 bits of every message (UDP: the server tells sessions apart by it)
	every  time.Duration // between messages; 0 = 100 ms
	sent   atomic.Uint64
	conn   net.Conn
	mu     stdsync.Mutex
	echoes []time.Time
	err    error
}

func (s *session) run(ctx context.Context) {
	go func() {
		buf := make([]byte, 8)
		for {
			if _, err := readFull(s.conn, buf); err != nil {
				s.mu.Lock()
				if s.err == nil {
					s.err = err
				}
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.echoes = append(s.echoes, time.Now())
			s.mu.Unlock()
		}
	}()
	every := s.every
	if every == 0 {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq++
		b := binary.BigEndian.AppendUint64(nil, s.id<<32|seq&0xffffffff)
		s.conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		s.conn.Write(b) // a blocked send is just a stall; TCP retransmits
		s.sent.Add(1)
	}
}

// firstEchoAfter returns the first echo at or after t.
func (s *session) firstEchoAfter(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.echoes {
		if !e.Before(t) {
			return e, true
		}
	}
	return time.Time{}, false
}

// report reports whether an echo arrived after t, the longest gap without
// an echo since from (longestGap), and the connection's error (a reset).
func (s *session) report(from, t time.Time) (alive bool, stall time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stall = longestGap(s.echoes, from, time.Now())
	last := time.Time{}
	if n := len(s.echoes); n > 0 {
		last = s.echoes[n-1]
	}
	return last.After(t), stall, s.err
}

func stats(sock string) (ctstats.Stats, error) {
	var s ctstats.Stats
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := control.Dial(sock).Stats(ctx, &s)
	return s, err
}

func count(st ctstats.Stats, origin string) int {
	n := 0
	for _, o := range st.External {
		if origin == "" || o.Origin == origin {
			n += o.Flows
		}
	}
	return n
}

func (l *lab) ready(fw string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := control.Dial(l.sock(fw)).Health(ctx)
	return err == nil && h.Ready
}

// others lists the firewalls but the given ones.
func (l *lab) others(not ...string) []string {
	var out []string
	for _, fw := range l.fws {
		if !slices.Contains(not, fw) {
			out = append(out, fw)
		}
	}
	return out
}

// waitTakeover waits until one of the candidates holds the VIPs.
func (l *lab) waitTakeover(candidates []string, d time.Duration) (string, error) {
	taker := ""
	err := waitUntil(d, func() bool {
		for _, fw := range candidates {
			if l.holdsVIP(fw) {
				taker = fw
				return true
			}
		}
		return false
	})
	if err != nil {
		return "", fmt.Errorf("none of %s took the VIPs: %w", strings.Join(candidates, ", "), err)
	}
	return taker, nil
}

// waitSynced waits until every backup's external cache holds at least want
// flows from master, and returns the backups' stats.
func (l *lab) waitSynced(master string, backups []string, want int, d time.Duration) (map[string]ctstats.Stats, error) {
	got := map[string]ctstats.Stats{}
	err := waitEvery(d, 200*time.Millisecond, func() bool {
		for _, fw := range backups {
			s, err := stats(l.sock(fw))
			if err != nil {
				return false
			}
			got[fw] = s
		}
		for _, fw := range backups {
			if count(got[fw], master) < want {
				return false
			}
		}
		return true
	})
	if err != nil {
		var have []string
		for _, fw := range backups {
			have = append(have, fmt.Sprintf("%s %d", fw, count(got[fw], master)))
		}
		return got, fmt.Errorf("the backups' copies of %s's flows (want %d): %s: %w", master, want, strings.Join(have, ", "), err)
	}
	return got, nil
}

// connFlows counts the demo's connections in fw's kernel table.
func (l *lab) connFlows(fw string) int {
	out := l.output(fw, "conntrack", "-L", "-p", "tcp", "-s", clientIP, "-d", serverIP, "--dport", strconv.Itoa(serverPort))
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "dport="+strconv.Itoa(serverPort)) {
			n++
		}
	}
	return n
}

// tableSize is the number of entries in fw's kernel table.
func (l *lab) tableSize(fw string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(l.output(fw, "conntrack", "-C")))
	return n
}

// loadExtra writes n synthetic established TCP flows (172.16.0.0/12, each
// with its own ports) into fw's kernel table with ctsync table load, which
// reads conntrack -R lines.
func (l *lab) loadExtra(fw string, n int) error {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("172.16.%d.%d", i/60000/250, i/60000%250+1)
		dst := fmt.Sprintf("172.24.%d.%d", i/60000/250, i/60000%250+1)
		sport, dport := 1024+i%60000, 443
		fmt.Fprintf(&b, "-I -p tcp -s %s -d %s --sport %d --dport %d -r %s -q %s --reply-port-src %d --reply-port-dst %d --state ESTABLISHED -t 600 -u SEEN_REPLY,ASSURED\n",
			src, dst, sport, dport, dst, src, dport, sport)
	}
	cmd := exec.Command("ip", "netns", "exec", l.name(fw), *bin, "table", "load", "-")
	cmd.Stdin = &b
	if *verbose {
		fmt.Println("  $", strings.Join(cmd.Args, " "), fmt.Sprintf("< (%d -I lines)", n))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctsync table load in %s: %v: %s", fw, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func run(l *lab) (res result, err error) {
	withCtsync := l.sc.daemon == "ctsync"
	res.sc = l.sc
	watch := *after
	if watch == 0 {
		watch = l.sc.profile.after
	}
	start := time.Now()
	fmt.Printf("== Building the lab (namespaces ctdemo-*-%s)\n", l.tag)
	fmt.Printf("   client %s ─ LAN (VIP %s) ─ %s ─ WAN (VIP %s, SNAT) ─ server %s\n", clientIP, lanVIP, strings.Join(l.fws, " | "), wanVIP, serverIP)
	var prios, syncs []string
	for i, fw := range l.fws {
		prios = append(prios, strconv.Itoa(150-50*i))
		syncs = append(syncs, fw+" "+syncAddr(i+1))
	}
	fmt.Printf("   sync network (a bridge of its own): %s\n", strings.Join(syncs, ", "))
	fmt.Printf("   firewalls: strict stateful nftables (policy drop), nf_conntrack_tcp_loose=0, keepalived VRRP (priorities %s, all BACKUP nopreempt), profile %s\n", strings.Join(prios, "/"), l.sc.profile)
	if *reset {
		fmt.Println("   reset ruleset ON: a TCP packet of a flow the firewall does not know is answered with a TCP reset, not dropped")
	}
	if err := l.topology(); err != nil {
		return res, err
	}
	if withCtsync {
		key, err := exec_output(*bin, "keygen")
		if err != nil {
			return res, err
		}
		if err := os.WriteFile(filepath.Join(l.dir, "cluster.key"), []byte(key), 0o600); err != nil {
			return res, err
		}
	}
	for i := range l.fws {
		if err := l.startFirewall(i); err != nil {
			return res, err
		}
	}
	// The master is whichever firewall won the first election (usually
	// fw1, but a firewall whose health check passed first can win it).
	master, err := l.waitTakeover(l.fws, 30*time.Second)
	if err != nil {
		return res, err
	}
	backups := l.others(master)
	if withCtsync {
		fmt.Printf("== ctsync (commit.mode %s) running on %s; waiting until %s in sync\n", l.sc.mode,
			map[bool]string{true: "both firewalls", false: fmt.Sprintf("all %d firewalls", len(l.fws))}[len(l.fws) == 2],
			strings.Join(backups, " and ")+map[bool]string{true: " is", false: " are"}[len(backups) == 1])
		for _, fw := range backups {
			if err := waitUntil(30*time.Second, func() bool { return l.ready(fw) }); err != nil {
				return res, fmt.Errorf("%s never became healthy: %w", fw, err)
			}
		}
	} else if l.sc.daemon == "conntrackd" {
		fmt.Printf("== conntrackd (FTFW over UDP, keepalived's notify: %s) running on both firewalls\n", filepath.Base(l.sc.pb))
	} else {
		fmt.Println("== CONTROL RUN: keepalived only, no sync daemon")
	}
	// Two masters at once settle within a few adverts.
	if err := waitUntil(10*time.Second, func() bool { return len(l.vipHolders()) == 1 }); err != nil {
		return res, fmt.Errorf("VIPs on %v: %w", l.vipHolders(), err)
	}
	master = l.vipHolders()[0]
	backups = l.others(master)
	fmt.Printf("   lab ready in %.1f s, %s master\n", time.Since(start).Seconds(), master)

	// The server, and the connections through the master.
	var ln net.Listener
	if err := inNetns(l.name("server"), func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
		return err
	}); err != nil {
		return res, err
	}
	defer ln.Close()
	go echoServer(ln)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sessions := make([]*session, *conns)
	for i := range sessions {
		var c net.Conn
		if err := inNetns(l.name("client"), func() (err error) {
			c, err = net.DialTimeout("tcp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)), 5*time.Second)
			return err
		}); err != nil {
			return res, fmt.Errorf("connection %d: %w", i, err)
		}
		sessions[i] = &session{conn: c, every: *interval}
		defer c.Close()
		go sessions[i].run(ctx)
	}
	var udpSessions []*session
	var probeSession *session
	const probeID = 1 << 20
	ue := &udpEcho{ports: map[uint64]map[int]bool{}, first: map[uint64]int{}, last: map[uint64]int{}}
	if *udp > 0 || *probe > 0 {
		var pc net.PacketConn
		if err := inNetns(l.name("server"), func() (err error) {
			pc, err = net.ListenPacket("udp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
			return err
		}); err != nil {
			return res, err
		}
		defer pc.Close()
		go ue.serve(pc)
		for i := 0; i < *udp; i++ {
			var c net.Conn
			if err := inNetns(l.name("client"), func() (err error) {
				c, err = net.Dial("udp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
				return err
			}); err != nil {
				return res, err
			}
			defer c.Close()
			us := &session{id: uint64(i + 1), conn: c}
			udpSessions = append(udpSessions, us)
			go us.run(ctx)
		}
		if *probe > 0 {
			var c net.Conn
			if err := inNetns(l.name("client"), func() (err error) {
				c, err = net.Dial("udp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
				return err
			}); err != nil {
				return res, err
			}
			defer c.Close()
			probeSession = &session{id: probeID, conn: c, every: *probe}
			go probeSession.run(ctx)
		}
	}
	fmt.Printf("== %d long-lived TCP connections and %d UDP sessions client → server through %s (SNAT to %s, random ports)\n", *conns, *udp, master, wanVIP)
	// Until every connection has had a few echoes (or 10 s).
	opened := time.Now()
	// VRRP transitions to master from here on, before the failure, are
	// false takeovers: the fast profile's trade-off on a loaded box.
	mastered := map[string]int{}
	for _, fw := range l.fws {
		mastered[fw] = l.masterEntries(fw)
	}
	aliveNow := func(list []*session) int {
		n, now := 0, time.Now()
		for _, s := range list {
			s.mu.Lock()
			k := len(s.echoes)
			ok := k >= 3 && s.echoes[k-1].After(now.Add(-500*time.Millisecond))
			s.mu.Unlock()
			if ok {
				n++
			}
		}
		return n
	}
	waitUntil(10*time.Second, func() bool { return aliveNow(sessions) == *conns && aliveNow(udpSessions) == *udp })
	before := aliveNow(sessions)
	fmt.Printf("   alive before the failure: %d/%d\n", before, *conns)
	fmt.Printf("   %s's table (conntrack -L -d %s), first lines:\n", master, serverIP)
	for i, line := range strings.Split(strings.TrimSpace(l.output(master, "conntrack", "-L", "-d", serverIP)), "\n") {
		if i < 2 {
			fmt.Println("     " + line)
		}
	}
	repl := opened // the master's flows replicate from here
	if *extra > 0 {
		t := time.Now()
		repl = t
		if err := l.loadExtra(master, *extra); err != nil {
			return res, err
		}
		fmt.Printf("   %d extra flows loaded into %s's table in %.1f s (ctsync table load; %d entries in all)\n", *extra, master, time.Since(t).Seconds(), l.tableSize(master))
	}
	want := *conns + *extra // the master's flows every backup must hold
	if l.sc.daemon == "conntrackd" {
		var have int
		err := waitEvery(30*time.Second+time.Duration(*extra)*time.Second/2000, 200*time.Millisecond, func() bool {
			s, err := l.ctdStats(backups[0])
			have = s.External
			return err == nil && have >= want
		})
		if err != nil {
			return res, fmt.Errorf("%s's conntrackd holds %d of %s's %d flows in its external cache: %w", backups[0], have, master, want, err)
		}
		ms, _ := l.ctdStats(master)
		fmt.Printf("   conntrackd caches: %s internal %d flows; %s external %d (complete %.1f s after %s)\n", master, ms.Internal, backups[0], have, time.Since(repl).Seconds(),
			map[bool]string{true: "the load began", false: "the connections opened"}[*extra > 0])
	}
	if withCtsync {
		bst, err := l.waitSynced(master, backups, want, 30*time.Second+time.Duration(*extra)*time.Second/2000)
		if err != nil {
			return res, err
		}
		mst, _ := stats(l.sock(master))
		var ext []string
		for _, fw := range backups {
			ext = append(ext, fmt.Sprintf("%s external %d from %s", fw, count(bst[fw], master), master))
		}
		fmt.Printf("   caches: %s internal %d flows; %s (complete %.1f s after %s)\n", master, mst.Internal.Flows, strings.Join(ext, ", "), time.Since(repl).Seconds(),
			map[bool]string{true: "the load began", false: "the connections opened"}[*extra > 0])
		if l.sc.mode == "hot" {
			// Hot standby: the backups write the peers' flows into their own
			// kernel tables ahead of time. Waited for, but not required.
			t := time.Now()
			err := waitEvery(45*time.Second, 200*time.Millisecond, func() bool {
				for _, fw := range backups {
					s, err := stats(l.sock(fw))
					if err != nil || s.Hot.Flows < want {
						return false
					}
					bst[fw] = s
				}
				return true
			})
			var hot []string
			for _, fw := range backups {
				h := bst[fw].Hot
				hot = append(hot, fmt.Sprintf("%s %d flows in its kernel table (active %s, pending %d, failed %d)", fw, h.Flows, yesNo(h.Active), h.Pending, h.Failed))
			}
			note := fmt.Sprintf("complete %.1f s after the caches", time.Since(t).Seconds())
			if err != nil {
				note = fmt.Sprintf("NOT complete: want %d each", want)
			}
			fmt.Printf("   hot standby: %s (%s)\n", strings.Join(hot, "; "), note)
		}
		var roles []string
		for _, fw := range l.fws {
			s := mst
			if fw != master {
				s = bst[fw]
			}
			roles = append(roles, fw+" "+orQ(s.Role))
		}
		fmt.Printf("   ctsync stats: mode %s; roles %s\n", orQ(mst.Mode), strings.Join(roles, ", "))
	}

	// One master only: a backup holding the VIPs too would make the
	// failover prove nothing.
	if h := l.vipHolders(); len(h) != 1 || h[0] != master {
		return res, fmt.Errorf("the VIPs are on %v, not on %s alone (split brain?): see the keepalived logs", h, master)
	}

	// Kill the master hard.
	var commitsBefore = map[string]uint64{}
	if withCtsync {
		for _, fw := range backups {
			s, _ := stats(l.sock(fw))
			commitsBefore[fw] = s.Commit.Commits
		}
	}
	fmt.Printf("== Killing %s, the master: keepalived and ctsync SIGKILLed, all links down\n", master)
	for _, fw := range l.fws {
		res.falseTakeovers += l.masterEntries(fw) - mastered[fw]
	}
	if res.falseTakeovers > 0 {
		fmt.Printf("   VRRP: %d false takeover(s) while the master lived (see the keepalived logs)\n", res.falseTakeovers)
	}
	fail := time.Now()
	l.kill(master)
	taker, err := l.waitTakeover(backups, 30*time.Second)
	if err != nil {
		return res, err
	}
	vip := time.Since(fail)
	fmt.Printf("   %s took over: it holds the VIPs %.2f s after the failure\n", taker, vip.Seconds())
	time.Sleep(watch)
	end := time.Now()
	survived, worst := 0, time.Duration(0)
	var broken []string
	for i, s := range sessions {
		alive, stall, err := s.report(fail, end.Add(-time.Second))
		if alive {
			survived++
			if stall > worst {
				worst = stall
			}
		} else {
			why := "no echo since the failure"
			if err != nil {
				why = err.Error()
			}
			broken = append(broken, fmt.Sprintf("#%d (%s)", i, why))
		}
	}
	fmt.Println("== Report")
	fmt.Printf("   connections alive before: %d/%d, after: %d/%d\n", before, *conns, survived, *conns)
	if survived > 0 {
		fmt.Printf("   longest stall of a surviving connection: %.2f s (VRRP failover detection included)\n", worst.Seconds())
		// After the VIPs moved, what remains is ctsync's part and TCP's
		// retransmission backoff (the last retransmission before the
		// move decides when the next one comes).
		vipAt := fail.Add(vip)
		var firsts []time.Duration
		for _, s := range sessions {
			if t, ok := s.firstEchoAfter(vipAt); ok {
				firsts = append(firsts, t.Sub(vipAt))
			}
		}
		if len(firsts) > 0 {
			sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
			fmt.Printf("   first echo after the VIPs moved: median %.2f s, slowest %.2f s (%d connections)\n",
				firsts[len(firsts)/2].Seconds(), firsts[len(firsts)-1].Seconds(), len(firsts))
		}
	}
	if len(broken) > 0 {
		sort.Strings(broken)
		fmt.Printf("   broken: %s\n", strings.Join(broken[:min(len(broken), 5)], ", "))
	}
	held := l.connFlows(taker)
	if withCtsync {
		// The takeover's own account, once its transition is done.
		var st ctstats.Stats
		waitEvery(30*time.Second, 100*time.Millisecond, func() bool {
			s, err := stats(l.sock(taker))
			if err != nil {
				return false
			}
			st = s
			return s.LastNotify != nil && s.LastNotify.State == "master" || s.Commit.Commits > commitsBefore[taker]
		})
		if n := st.LastNotify; n != nil {
			for _, step := range n.Steps {
				fmt.Printf("   %s notify %s: %-36s %.3f s  %s\n", taker, n.State, step.Name, step.Seconds, step.Detail)
			}
		}
		if c := st.Commit.Last; c != nil {
			fmt.Printf("   %s commit: %d created, %d replaced, %d failed in %.3f s\n", taker, c.Created, c.Replaced, c.Failed, c.Seconds)
		} else if st.Mode == "hot" {
			fmt.Printf("   %s commit: none (hot standby: the flows were in its kernel table already)\n", taker)
		} else {
			fmt.Printf("   %s commit: none recorded\n", taker)
		}
		g := st.Gate
		fmt.Printf("   %s commit gate: enabled %s, armed %s, %d packets dropped, lifted %.3f s after notify master\n",
			taker, yesNo(g.Enabled), yesNo(g.Armed), g.Dropped, g.LastSeconds)
		fmt.Printf("   %s after takeover: role %s; kernel table %d/%d of the connections, %d entries in all; caches internal %d (its own now), external %d\n",
			taker, orQ(st.Role), held, *conns, l.tableSize(taker), st.Internal.Flows, count(st, ""))
	} else {
		fmt.Printf("   %s after takeover: kernel table %d/%d of the connections, %d entries in all\n", taker, held, *conns, l.tableSize(taker))
	}
	udpOK, detour := 0, 0
	for _, us := range udpSessions {
		alive, _, _ := us.report(fail, end.Add(-time.Second))
		kept, seen := ue.mapping(us.id)
		if alive && kept {
			udpOK++
		}
		if seen > 1 {
			detour++
		}
	}
	if *udp > 0 {
		fmt.Printf("   UDP sessions answered after the failure, on their original SNAT mapping: %d/%d\n", udpOK, *udp)
		if detour > 0 && withCtsync {
			fmt.Printf("   (%d of them sent a few datagrams on a new mapping between the VIP move and the commit,\n"+
				"    which then restored the original: the window a pre-commit gate would close)\n", detour)
		}
	}
	probeOK := true
	if probeSession != nil {
		kept, seen := ue.mapping(probeID)
		alive, _, _ := probeSession.report(fail, end.Add(-time.Second))
		probeOK = alive && kept && seen == 1
		fmt.Printf("   UDP probe (a datagram every %v, %d sent): answered after the failure %s; SNAT mappings the server saw: %d (1 = never a wrong one)\n",
			*probe, probeSession.sent.Load(), yesNo(alive), seen)
	}
	fmt.Printf("   timings: lab %.1f s, connections to failure %.1f s, failure to VIPs %.2f s\n",
		opened.Sub(start).Seconds(), fail.Sub(opened).Seconds(), vip.Seconds())
	res.conns, res.survived, res.worst, res.vip = *conns, survived, worst, vip
	if withCtsync && survived != *conns {
		return res, fmt.Errorf("%d of %d connections did not survive", *conns-survived, *conns)
	}
	if withCtsync && held < *conns {
		return res, fmt.Errorf("%s took over with %d of the %d connections in its table", taker, held, *conns)
	}
	if withCtsync && udpOK != *udp {
		return res, fmt.Errorf("%d of %d UDP sessions lost their mapping or their answers", *udp-udpOK, *udp)
	}
	if withCtsync && !*noGate && !probeOK {
		return res, fmt.Errorf("the UDP probe left on a wrong SNAT mapping or lost its answers: the gate did not hold it")
	}
	// Fail-back and more flips: bring the dead firewall back (it stays
	// backup until its copy is complete), then kill the master again.
	dead, master := master, taker
	for flip := 1; flip <= *flips; flip++ {
		if err := l.revive(dead); err != nil {
			return res, err
		}
		if withCtsync {
			if err := waitUntil(60*time.Second, func() bool { return l.ready(dead) }); err != nil {
				return res, fmt.Errorf("flip %d: %s never got in sync after its restart: %w", flip, dead, err)
			}
			if _, err := l.waitSynced(master, l.others(master), want, 30*time.Second+time.Duration(*extra)*time.Second/2000); err != nil {
				return res, fmt.Errorf("flip %d: %w", flip, err)
			}
		}
		t0 := time.Now()
		l.kill(master)
		taker, err := l.waitTakeover(l.others(master), 30*time.Second)
		if err != nil {
			return res, fmt.Errorf("flip %d: %w", flip, err)
		}
		took := time.Since(t0)
		time.Sleep(watch)
		alive, worst := 0, time.Duration(0)
		for _, s := range sessions {
			ok, stall, _ := s.report(t0, time.Now().Add(-time.Second))
			if ok {
				alive++
				worst = max(worst, stall)
			}
		}
		held := l.connFlows(taker)
		fmt.Printf("   flip %2d: %s killed, %s master after %.2f s; alive %d/%d, longest stall %.2f s; %s's table %d/%d connections\n",
			flip, master, taker, took.Seconds(), alive, *conns, worst.Seconds(), taker, held, *conns)
		if withCtsync && alive != *conns {
			return res, fmt.Errorf("flip %d: %d of %d connections did not survive", flip, *conns-alive, *conns)
		}
		if withCtsync && held < *conns {
			return res, fmt.Errorf("flip %d: %s took over with %d of the %d connections in its table", flip, taker, held, *conns)
		}
		dead, master = master, taker
	}
	fmt.Printf("   total %.1f s; logs and configs were in %s (%s)\n", time.Since(start).Seconds(), l.dir, map[bool]string{true: "kept", false: "removed now"}[*keep])
	return res, nil
}

// masterEntries counts fw's keepalived transitions to master (its LAN
// instance; the sync group moves both).
func (l *lab) masterEntries(fw string) int {
	b, _ := os.ReadFile(filepath.Join(l.dir, fw+"-keepalived.log"))
	return bytes.Count(b, []byte("(LAN) Entering MASTER STATE"))
}

// kill ends a firewall hard: its processes SIGKILLed, its links down.
func (l *lab) kill(fw string) {
	l.mu.Lock()
	var keep []*exec.Cmd
	for _, p := range l.procs {
		if slices.Contains(p.Args, l.name(fw)) {
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			p.Wait()
		} else {
			keep = append(keep, p)
		}
	}
	l.procs = keep
	l.mu.Unlock()
	// Whatever else runs there (a health check, a notify script).
	if pids, err := exec.Command("ip", "netns", "pids", l.name(fw)).Output(); err == nil {
		for _, p := range strings.Fields(string(pids)) {
			exec.Command("kill", "-9", p).Run()
		}
	}
	for _, dev := range []string{"lan0", "wan0", "sync0"} {
		l.in(fw, "ip", "link", "set", dev, "down")
	}
}

// revive brings a killed firewall back: links up, ctsync and keepalived
// started afresh (its conntrack table is as the crash left it).
func (l *lab) revive(fw string) error {
	for _, dev := range []string{"lan0", "wan0", "sync0"} {
		if err := l.in(fw, "ip", "link", "set", dev, "up"); err != nil {
			return err
		}
	}
	return l.startFirewall(slices.Index(l.fws, fw))
}

func exec_output(name string, args ...string) (string, error) {
	out, err := execCommand(name, args...).Output()
	return string(out), err
}
