package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// The FTP lab: a client on the LAN, two firewalls (fw1 master, fw2
// backup) between the LAN and the WAN, SNAT to the WAN VIP, and an FTP
// server on the WAN:
//
//	client 192.168.1.10 ── brlan ── fw1/fw2 (VIP 192.168.1.1) ── brwan ── server 198.51.100.20
//	                                 (VIP 198.51.100.1, SNAT)
const (
	ftpClientIP = "192.168.1.10"
	ftpServerIP = "198.51.100.20"
	lanVIP      = "192.168.1.1/24"
	wanVIP      = "198.51.100.1/24"
)

// The firewalls' ruleset: the ftp helper on port 21, a strict forward
// chain (only established and related flows, and new ones from the LAN),
// SNAT to the WAN VIP.
const ftpRuleset = `table inet fw {
	ct helper ftp-21 { type "ftp" protocol tcp; }
	chain pre { type filter hook prerouting priority filter; tcp dport 21 ct helper set "ftp-21"; }
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan0" ct state new accept
	}
}
table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname "wan0" snat to 198.51.100.1; }
}`

// veth connects a namespace to a bridge in the switch namespace, as dev.
func (l *lab) veth(ns, bridge, dev string) {
	t := l.t
	in, out := "v"+randHex(4), "v"+randHex(4)
	kerneltest.MustExec(t, l.sw, "ip", "link", "add", in, "type", "veth", "peer", "name", out)
	kerneltest.MustExec(t, l.sw, "ip", "link", "set", in, "netns", ns)
	kerneltest.MustExec(t, l.sw, "ip", "link", "set", out, "master", bridge, "up")
	kerneltest.MustExec(t, ns, "ip", "link", "set", in, "name", dev)
	kerneltest.MustExec(t, ns, "ip", "link", "set", dev, "up")
}

// ftpServer is a minimal active-mode FTP server: 220, USER → 331, PASS →
// 230, PORT → 200, RETR → 150, the data sent over a connection it dials to
// the PORT address, 226 (425 when it cannot connect).
func ftpServer(t *testing.T, ns string, data string) {
	var ln net.Listener
	if err := kerneltest.InNetNS(t, ns, func() (err error) {
		ln, err = net.Listen("tcp4", ftpServerIP+":21")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFTP(t, ns, c, data)
		}
	}()
}

func serveFTP(t *testing.T, ns string, c net.Conn, data string) {
	defer c.Close()
	fmt.Fprintf(c, "220 ctsync test ftp\r\n")
	r := bufio.NewReader(c)
	var port string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			fmt.Fprintf(c, "331 password please\r\n")
		case "PASS":
			fmt.Fprintf(c, "230 logged in\r\n")
		case "PORT":
			f := strings.Split(arg, ",")
			if len(f) != 6 {
				fmt.Fprintf(c, "501 bad PORT\r\n")
				continue
			}
			p1, _ := strconv.Atoi(f[4])
			p2, _ := strconv.Atoi(f[5])
			port = net.JoinHostPort(strings.Join(f[:4], "."), strconv.Itoa(p1*256+p2))
			fmt.Fprintf(c, "200 PORT ok\r\n")
		case "RETR":
			fmt.Fprintf(c, "150 opening data connection to %s\r\n", port)
			var dc net.Conn
			err := kerneltest.InNetNS(t, ns, func() (err error) {
				dc, err = net.DialTimeout("tcp4", port, 5*time.Second)
				return err
			})
			if err != nil {
				fmt.Fprintf(c, "425 cannot open data connection: %v\r\n", err)
				continue
			}
			io.WriteString(dc, data)
			dc.Close()
			fmt.Fprintf(c, "226 transfer complete\r\n")
		case "QUIT":
			fmt.Fprintf(c, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(c, "502 not implemented\r\n")
		}
	}
}

// ftpClient is the client side of one control connection.
type ftpClient struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	data net.Listener
}

func (fc *ftpClient) expect(code string) string {
	fc.t.Helper()
	fc.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := fc.r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, code) {
		fc.t.Fatalf("ftp: want %s, got %q (%v)", code, line, err)
	}
	return line
}

func (fc *ftpClient) send(format string, args ...any) {
	fc.t.Helper()
	if _, err := fmt.Fprintf(fc.c, format+"\r\n", args...); err != nil {
		fc.t.Fatalf("ftp: send: %v", err)
	}
}

// dialFTP logs in and announces a data port (PORT with the client's own
// address, which the firewall's helper rewrites to the SNAT address).
func dialFTP(t *testing.T, ns string) *ftpClient {
	fc := &ftpClient{t: t}
	if err := kerneltest.InNetNS(t, ns, func() (err error) {
		if fc.data, err = net.Listen("tcp4", ftpClientIP+":0"); err != nil {
			return err
		}
		fc.c, err = net.DialTimeout("tcp4", ftpServerIP+":21", 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.c.Close(); fc.data.Close() })
	fc.r = bufio.NewReader(fc.c)
	fc.expect("220")
	fc.send("USER anonymous")
	fc.expect("331")
	fc.send("PASS ctsync@")
	fc.expect("230")
	p := fc.data.Addr().(*net.TCPAddr).Port
	fc.send("PORT %s,%d,%d", strings.ReplaceAll(ftpClientIP, ".", ","), p>>8, p&0xff)
	fc.expect("200")
	return fc
}

// retr sends RETR and returns what arrived on the data connection (an
// error when none did).
func (fc *ftpClient) retr() (string, error) {
	fc.t.Helper()
	fc.send("RETR file")
	fc.expect("150")
	type result struct {
		s   string
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := fc.data.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		got <- result{string(b), err}
	}()
	fc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := fc.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("control connection after RETR: %v", err)
	}
	if !strings.HasPrefix(line, "226") {
		fc.data.Close() // ends the Accept
		<-got
		return "", fmt.Errorf("server: %s", strings.TrimSpace(line))
	}
	select {
	case r := <-got:
		return r.s, r.err
	case <-time.After(10 * time.Second):
		fc.data.Close()
		return "", fmt.Errorf("no data connection")
	}
}

// TestFTPThroughFailover: an FTP control connection through the SNAT
// firewall pair announces a data port (PORT) on fw1, whose ftp helper makes
// an expectation; ctsync replicates the control flow and the expectation
// to fw2. fw1 fails (its links go down), fw2 takes over (the VIPs, then
// ctsync notify master), and only then the client sends RETR: the server's
// data connection, RELATED and NATed by the expectation, must reach the
// client through fw2. Without the expectation on fw2 (flushed after the
// takeover) the same transfer fails: the strict ruleset has nothing to
// match the server's connection with.
func TestFTPThroughFailover(t *testing.T) {
	for _, tc := range []struct {
		name         string
		extra        string
		dropExpected bool
	}{
		{"with expectation", "", false},
		// Hot standby keeps the master in fw2's kernel ahead of the
		// failure and writes the expectation at the takeover.
		{"hot mode", "commit:\n  mode: hot\n", false},
		{"expectation removed on fw2", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) { ftpFailover(t, tc.extra, tc.dropExpected) })
	}
}

func ftpFailover(t *testing.T, extra string, dropExpectation bool) {
	kerneltest.RequireTools(t, "nft")
	l := newLab(t, 2)
	fw1, fw2 := l.nodes[0], l.nodes[1]
	for _, br := range []string{"brlan", "brwan"} {
		kerneltest.MustExec(t, l.sw, "ip", "link", "add", br, "type", "bridge")
		kerneltest.MustExec(t, l.sw, "ip", "link", "set", br, "up")
	}
	client, server := kerneltest.NewNetNS(t), kerneltest.NewNetNS(t)
	l.veth(client, "brlan", "eth0")
	kerneltest.MustExec(t, client, "ip", "addr", "add", ftpClientIP+"/24", "dev", "eth0")
	kerneltest.MustExec(t, client, "ip", "route", "add", "default", "via", "192.168.1.1")
	l.veth(server, "brwan", "eth0")
	kerneltest.MustExec(t, server, "ip", "addr", "add", ftpServerIP+"/24", "dev", "eth0")
	for _, fw := range []*node{fw1, fw2} {
		l.veth(fw.ns, "brlan", "lan0")
		l.veth(fw.ns, "brwan", "wan0")
		kerneltest.MustExec(t, fw.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		if _, err := kerneltest.ExecStdin(t, fw.ns, ftpRuleset, "nft", "-f", "-"); err != nil {
			t.Fatal(err)
		}
	}
	kerneltest.MustExec(t, fw1.ns, "ip", "addr", "add", lanVIP, "dev", "lan0")
	kerneltest.MustExec(t, fw1.ns, "ip", "addr", "add", wanVIP, "dev", "wan0")
	// The daemons' own connections on the sync link are not replicated.
	cfg := "filter:\n  ignore_addresses: [\"127.0.0.0/8\", \"10.99.0.0/24\"]\n" + extra
	fw1.start(cfg)
	fw2.start(cfg)
	fw2.mustCtl("notify", "backup")

	const data = "the data connection made it through the firewall that took over\n"
	ftpServer(t, server, data)
	fc := dialFTP(t, client)

	// The expectation exists on fw1 and reaches fw2 with its master.
	fw1.waitFor("the ftp helper's expectation in fw1's internal cache", 20*time.Second, func() bool {
		return fw1.count("internal", "--expect") == 1
	})
	fw2.waitFor("the expectation and its master in fw2's external cache", 20*time.Second, func() bool {
		return fw2.count("external", "--expect") == 1 && fw2.count("external", "-p", "tcp", "--dport", "21") == 1
	})
	want := strings.TrimSpace(fw1.conntrack("-L", "expect"))
	t.Logf("fw1's expectation: %s", want)
	t.Logf("fw2's external cache: %s", strings.TrimSpace(fw2.mustCtl("cache", "external", "--expect")))

	// fw1 fails: its links go down; fw2 takes the VIPs and commits.
	kerneltest.MustExec(t, fw1.ns, "ip", "link", "set", "lan0", "down")
	kerneltest.MustExec(t, fw1.ns, "ip", "link", "set", "wan0", "down")
	kerneltest.MustExec(t, fw2.ns, "ip", "addr", "add", lanVIP, "dev", "lan0")
	kerneltest.MustExec(t, fw2.ns, "ip", "addr", "add", wanVIP, "dev", "wan0")
	for _, ns := range []string{client, server} {
		kerneltest.MustExec(t, ns, "ip", "neigh", "flush", "all")
	}
	out := fw2.mustCtl("notify", "master")
	t.Logf("notify master on fw2:\n%s", out)
	got := fw2.conntrack("-L", "expect")
	if !strings.Contains(got, "helper=ftp") || !strings.Contains(got, "dst=198.51.100.1 ") {
		t.Fatalf("fw2's kernel after the takeover has no ftp expectation to the SNAT address:\n%s", got)
	}
	if dropExpectation {
		fw2.conntrack("-F", "expect")
	}

	s, err := fc.retr()
	switch {
	case dropExpectation && err == nil:
		t.Fatalf("the data connection reached the client without the expectation on fw2 (%q): the test proves nothing", s)
	case dropExpectation:
		t.Logf("without the expectation, as expected: %v", err)
	case err != nil:
		t.Fatalf("RETR through fw2: %v\nfw2's table:\n%s", err, fw2.conntrack("-L"))
	case s != data:
		t.Fatalf("data connection carried %q, want %q", s, data)
	default:
		// The data connection went through fw2 as a RELATED flow.
		tbl := fw2.conntrack("-L", "-p", "tcp", "--orig-src", ftpServerIP, "--orig-dst", "198.51.100.1")
		t.Logf("fw2's data flow: %s", strings.TrimSpace(tbl))
		// Its reply comes from the client: the expectation's NAT.
		if !strings.Contains(tbl, "src="+ftpClientIP+" dst="+ftpServerIP) {
			t.Errorf("fw2 has no data flow NATed to the client:\n%s", tbl)
		}
	}
}
