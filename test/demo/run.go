package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/agent"
	"github.com/ctsync/ctsync/control"
	"github.com/vishvananda/netns"
)

const (
	lanVIP, wanVIP = "10.10.1.1", "10.20.0.1"
	clientIP       = "10.10.1.10"
	serverIP       = "10.20.0.100"
	serverPort     = 7000
)

func fwAddr(i int, net string) string { return fmt.Sprintf("%s.%d", net, i+1) }

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
	for _, sw := range []string{"lan", "wan"} {
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
	for i, fw := range []string{"fw1", "fw2"} {
		if err := link(fw, "lan0", "lan", "p-"+fw+"-l", fwAddr(i+1, "10.10.1")+"/24"); err != nil {
			return err
		}
		if err := link(fw, "wan0", "wan", "p-"+fw+"-w", fwAddr(i+1, "10.20.0")+"/24"); err != nil {
			return err
		}
	}
	// The sync link: a veth straight between the firewalls.
	if err := l.sh("ip", "link", "add", "sync0", "netns", l.name("fw1"), "type", "veth", "peer", "name", "sync0", "netns", l.name("fw2")); err != nil {
		return err
	}
	for i, fw := range []string{"fw1", "fw2"} {
		if err := l.in(fw, "ip", "addr", "add", fmt.Sprintf("10.30.0.%d/24", i+1), "dev", "sync0"); err != nil {
			return err
		}
		if err := l.in(fw, "ip", "link", "set", "sync0", "up"); err != nil {
			return err
		}
		for _, kv := range []string{"net.ipv4.ip_forward=1", "net.netfilter.nf_conntrack_tcp_loose=0"} {
			if err := l.in(fw, "sysctl", "-qw", kv); err != nil {
				return err
			}
		}
		rules := filepath.Join(l.dir, fw+".nft")
		if err := os.WriteFile(rules, []byte(ruleset), 0o644); err != nil {
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
// tracked connection, or it is dropped.
const ruleset = `
table inet filter {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" ct state new accept
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

func (l *lab) sock(fw string) string { return filepath.Join(l.dir, fw+".sock") }

// startFirewall runs ctsync (unless disabled) and keepalived on fw i.
func (l *lab) startFirewall(i int, withCtsync bool) error {
	fw := fmt.Sprintf("fw%d", i+1)
	if withCtsync {
		cfg := fmt.Sprintf(`node: %s
cluster:
  bind: 10.30.0.%d:7946
  join: ["10.30.0.%d:7946"]
  key_file: %s
  name: demo
control:
  socket: %s
filter:
  # the box's own addresses: traffic to and from it stays local
  ignore_addresses: [127.0.0.0/8, "::1/128", %s, %s, 10.30.0.0/24, %s, %s]
`, fw, i+1, 2-i, filepath.Join(l.dir, "cluster.key"), l.sock(fw),
			fwAddr(i+1, "10.10.1"), fwAddr(i+1, "10.20.0"), lanVIP, wanVIP)
		path := filepath.Join(l.dir, fw+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		if _, err := l.start(fw, fw+"-ctsync.log", *bin, "daemon", "--config", path); err != nil {
			return err
		}
	}
	// Both start as BACKUP with nopreempt: the higher priority wins at
	// start, and a firewall that comes back stays backup (no flapping).
	prio, state := 150, "BACKUP"
	if i == 1 {
		prio = 100
	}
	track := ""
	script := ""
	if withCtsync {
		// A node whose copy of the peers' flows is not confirmed complete
		// must not take over: keepalived puts it in FAULT until it is.
		script = fmt.Sprintf("vrrp_script ctsync_ready {\n  script \"%s health --socket %s\"\n  interval 1\n  fall 3\n  rise 1\n}\n", *bin, l.sock(fw))
		track = "  track_script { ctsync_ready }\n"
	}
	notify := func(st string) string {
		if !withCtsync {
			return ""
		}
		if *pbScript != "" {
			arg := map[string]string{"master": "primary", "backup": "backup", "fault": "fault"}[st]
			return fmt.Sprintf("  notify_%s \"/bin/sh %s %s\"\n", st, filepath.Join(l.dir, fw+"-primary-backup.sh"), arg)
		}
		return fmt.Sprintf("  notify_%s \"%s notify %s --socket %s\"\n", st, *bin, st, l.sock(fw))
	}
	if withCtsync && *pbScript != "" {
		// conntrackd's own script, pointed at a conntrackd symlink to ctsync
		// and at this firewall's ctsync configuration (-C).
		script, err := os.ReadFile(*pbScript)
		if err != nil {
			return err
		}
		link := filepath.Join(l.dir, "conntrackd")
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(*bin, link); err != nil {
				return err
			}
		}
		body := strings.NewReplacer(
			"CONNTRACKD_BIN=/usr/sbin/conntrackd", "CONNTRACKD_BIN="+link,
			"CONNTRACKD_CONFIG=/etc/conntrackd/conntrackd.conf", "CONNTRACKD_CONFIG="+filepath.Join(l.dir, fw+".yaml"),
			"CONNTRACKD_LOCK=/var/lock/conntrack.lock", "CONNTRACKD_LOCK="+filepath.Join(l.dir, fw+".lock"),
		).Replace(string(script))
		if err := os.WriteFile(filepath.Join(l.dir, fw+"-primary-backup.sh"), []byte(body), 0o755); err != nil {
			return err
		}
	}
	peer := 2 - i // the other firewall: fw1 is fwAddr(1), fw2 fwAddr(2)
	conf := fmt.Sprintf(`global_defs {
  router_id %s
  script_user root
}
%svrrp_sync_group G {
  group { LAN WAN }
%s%s%s%s}
vrrp_instance LAN {
  state %s
  interface lan0
  virtual_router_id 51
  priority %d
  advert_int 1
  nopreempt
  unicast_src_ip %s
  unicast_peer { %s }
  virtual_ipaddress { %s/24 dev lan0 }
}
vrrp_instance WAN {
  state %s
  interface wan0
  virtual_router_id 52
  priority %d
  advert_int 1
  nopreempt
  unicast_src_ip %s
  unicast_peer { %s }
  virtual_ipaddress { %s/24 dev wan0 }
}
`, fw, script, track, notify("master"), notify("backup"), notify("fault"),
		state, prio, fwAddr(i+1, "10.10.1"), fwAddr(peer, "10.10.1"), lanVIP,
		state, prio, fwAddr(i+1, "10.20.0"), fwAddr(peer, "10.20.0"), wanVIP)
	kpath := filepath.Join(l.dir, fw+"-keepalived.conf")
	if err := os.WriteFile(kpath, []byte(conf), 0o644); err != nil {
		return err
	}
	_, err := l.start(fw, fw+"-keepalived.log", "keepalived", "-n", "-l", "-D", "-P", "-f", kpath,
		"-p", filepath.Join(l.dir, fw+"-k.pid"), "-r", filepath.Join(l.dir, fw+"-kv.pid"), "-c", filepath.Join(l.dir, fw+"-kc.pid"))
	return err
}

func (l *lab) holdsVIP(fw string) bool {
	return strings.Contains(l.output(fw, "ip", "-4", "addr", "show", "dev", "lan0"), lanVIP+"/24")
}

func waitUntil(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(20 * time.Millisecond)
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
// 100 ms and records when echoes come back.
type session struct {
	id     uint64 // in the high 32 bits of every message (UDP: the server tells sessions apart by it)
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
	t := time.NewTicker(100 * time.Millisecond)
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
	}
}

// alive reports whether an echo arrived after t, and the longest gap
// between echoes after from.
func (s *session) report(from, t time.Time) (alive bool, stall time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := from
	for _, e := range s.echoes {
		if e.Before(from) {
			prev = e
			continue
		}
		if g := e.Sub(prev); g > stall {
			stall = g
		}
		prev = e
	}
	if g := time.Since(prev); g > stall {
		stall = g
	}
	last := time.Time{}
	if n := len(s.echoes); n > 0 {
		last = s.echoes[n-1]
	}
	return last.After(t), stall, s.err
}

func stats(sock string) (agent.Stats, error) {
	var s agent.Stats
	err := control.Dial(sock).Stats(context.Background(), &s)
	return s, err
}

func count(st agent.Stats, origin string) int {
	n := 0
	for _, o := range st.External {
		if origin == "" || o.Origin == origin {
			n += o.Flows
		}
	}
	return n
}

func run(l *lab) error {
	withCtsync := !*noCtsync
	fmt.Printf("== Building the lab (namespaces ctdemo-*-%s)\n", l.tag)
	fmt.Println("   client 10.10.1.10 ─ LAN (VIP 10.10.1.1) ─ fw1 | fw2 ─ WAN (VIP 10.20.0.1, SNAT) ─ server 10.20.0.100")
	fmt.Println("   firewalls: strict stateful nftables (policy drop), nf_conntrack_tcp_loose=0, keepalived VRRP")
	if err := l.topology(); err != nil {
		return err
	}
	if withCtsync {
		key, err := exec_output(*bin, "keygen")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(l.dir, "cluster.key"), []byte(key), 0o600); err != nil {
			return err
		}
	}
	for i := 0; i < 2; i++ {
		if err := l.startFirewall(i, withCtsync); err != nil {
			return err
		}
	}
	if err := waitUntil(30*time.Second, func() bool { return l.holdsVIP("fw1") }); err != nil {
		return fmt.Errorf("fw1 never became master: %w", err)
	}
	if withCtsync {
		fmt.Println("== ctsync running on both firewalls; waiting until fw2 is in sync")
		if err := waitUntil(30*time.Second, func() bool {
			h, err := control.Dial(l.sock("fw2")).Health(context.Background())
			return err == nil && h.Ready
		}); err != nil {
			return fmt.Errorf("fw2 never became healthy: %w", err)
		}
	} else {
		fmt.Println("== CONTROL RUN: keepalived only, no ctsync")
	}

	// The server, and the connections through fw1.
	var ln net.Listener
	if err := inNetns(l.name("server"), func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
		return err
	}); err != nil {
		return err
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
			return fmt.Errorf("connection %d: %w", i, err)
		}
		sessions[i] = &session{conn: c}
		defer c.Close()
		go sessions[i].run(ctx)
	}
	var udpSessions []*session
	ue := &udpEcho{ports: map[uint64]map[int]bool{}, first: map[uint64]int{}, last: map[uint64]int{}}
	if *udp > 0 {
		var pc net.PacketConn
		if err := inNetns(l.name("server"), func() (err error) {
			pc, err = net.ListenPacket("udp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
			return err
		}); err != nil {
			return err
		}
		defer pc.Close()
		go ue.serve(pc)
		for i := 0; i < *udp; i++ {
			var c net.Conn
			if err := inNetns(l.name("client"), func() (err error) {
				c, err = net.Dial("udp", net.JoinHostPort(serverIP, strconv.Itoa(serverPort)))
				return err
			}); err != nil {
				return err
			}
			defer c.Close()
			us := &session{id: uint64(i + 1), conn: c}
			udpSessions = append(udpSessions, us)
			go us.run(ctx)
		}
	}
	fmt.Printf("== %d long-lived TCP connections and %d UDP sessions client → server through fw1 (SNAT to %s, random ports)\n", *conns, *udp, wanVIP)
	time.Sleep(time.Second) // let them exchange a few echoes
	before := 0
	now := time.Now()
	for _, s := range sessions {
		if alive, _, _ := s.report(now.Add(-time.Second), now.Add(-500*time.Millisecond)); alive {
			before++
		}
	}
	fmt.Printf("   alive before the failure: %d/%d\n", before, *conns)
	fmt.Println("   fw1's table (conntrack -L -d " + serverIP + "), first lines:")
	for i, line := range strings.Split(strings.TrimSpace(l.output("fw1", "conntrack", "-L", "-d", serverIP)), "\n") {
		if i < 2 {
			fmt.Println("     " + line)
		}
	}
	var st1, st2 agent.Stats
	if withCtsync {
		if err := waitUntil(10*time.Second, func() bool {
			s, err := stats(l.sock("fw2"))
			return err == nil && count(s, "fw1") >= *conns
		}); err != nil {
			return fmt.Errorf("fw2 never received fw1's flows: %w", err)
		}
		st1, _ = stats(l.sock("fw1"))
		st2, _ = stats(l.sock("fw2"))
		fmt.Printf("   caches: fw1 internal %d flows; fw2 external %d flows (from fw1)\n", st1.Internal.Flows, count(st2, "fw1"))
	}

	// Kill the master hard.
	fmt.Println("== Killing fw1: keepalived and ctsync SIGKILLed, all links down")
	fail := time.Now()
	l.kill("fw1")
	if err := waitUntil(30*time.Second, func() bool { return l.holdsVIP("fw2") }); err != nil {
		return fmt.Errorf("fw2 never took the VIPs: %w", err)
	}
	vip := time.Since(fail)
	fmt.Printf("   fw2 holds the VIPs %.2f s after the failure\n", vip.Seconds())
	time.Sleep(*after)
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
	}
	if len(broken) > 0 {
		sort.Strings(broken)
		fmt.Printf("   broken: %s\n", strings.Join(broken[:min(len(broken), 5)], ", "))
	}
	if withCtsync {
		st2, _ = stats(l.sock("fw2"))
		if n := st2.LastNotify; n != nil {
			for _, step := range n.Steps {
				fmt.Printf("   fw2 notify %s: %-36s %.3f s  %s\n", n.State, step.Name, step.Seconds, step.Detail)
			}
		}
		fmt.Printf("   fw2 caches after takeover: internal %d flows (its own now), external %d\n", st2.Internal.Flows, count(st2, ""))
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
	if withCtsync && survived != *conns {
		return fmt.Errorf("%d of %d connections did not survive", *conns-survived, *conns)
	}
	if withCtsync && udpOK != *udp {
		return fmt.Errorf("%d of %d UDP sessions lost their mapping or their answers", *udp-udpOK, *udp)
	}
	// Fail-back and more flips: bring the dead firewall back (it stays
	// backup until its copy is complete), then kill the master again.
	dead, master := "fw1", "fw2"
	for flip := 1; flip <= *flips; flip++ {
		if err := l.revive(dead, withCtsync); err != nil {
			return err
		}
		if err := waitUntil(60*time.Second, func() bool {
			h, err := control.Dial(l.sock(dead)).Health(context.Background())
			return err == nil && h.Ready
		}); err != nil {
			return fmt.Errorf("flip %d: %s never got in sync after its restart: %w", flip, dead, err)
		}
		t0 := time.Now()
		l.kill(master)
		if err := waitUntil(30*time.Second, func() bool { return l.holdsVIP(dead) }); err != nil {
			return fmt.Errorf("flip %d: %s never took the VIPs: %w", flip, dead, err)
		}
		took := time.Since(t0)
		time.Sleep(*after)
		alive, worst := 0, time.Duration(0)
		for _, s := range sessions {
			ok, stall, _ := s.report(t0, time.Now().Add(-time.Second))
			if ok {
				alive++
				worst = max(worst, stall)
			}
		}
		fmt.Printf("   flip %2d: %s killed, %s master after %.2f s; alive %d/%d, longest stall %.2f s\n",
			flip, master, dead, took.Seconds(), alive, *conns, worst.Seconds())
		if alive != *conns {
			return fmt.Errorf("flip %d: %d of %d connections did not survive", flip, *conns-alive, *conns)
		}
		dead, master = master, dead
	}
	fmt.Println("   logs and configs were in", l.dir, "(removed now)")
	return nil
}

// kill ends a firewall hard: its processes SIGKILLed, its links down.
func (l *lab) kill(fw string) {
	l.mu.Lock()
	var keep []*exec.Cmd
	for _, p := range l.procs {
		if strings.Contains(strings.Join(p.Args, " "), l.name(fw)) {
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			p.Wait()
		} else {
			keep = append(keep, p)
		}
	}
	l.procs = keep
	l.mu.Unlock()
	for _, dev := range []string{"lan0", "wan0", "sync0"} {
		l.in(fw, "ip", "link", "set", dev, "down")
	}
}

// revive brings a killed firewall back: links up, ctsync and keepalived
// started afresh (its conntrack table is as the crash left it).
func (l *lab) revive(fw string, withCtsync bool) error {
	for _, dev := range []string{"lan0", "wan0", "sync0"} {
		if err := l.in(fw, "ip", "link", "set", dev, "up"); err != nil {
			return err
		}
	}
	i := 0
	if fw == "fw2" {
		i = 1
	}
	return l.startFirewall(i, withCtsync)
}

func exec_output(name string, args ...string) (string, error) {
	out, err := execCommand(name, args...).Output()
	return string(out), err
}
