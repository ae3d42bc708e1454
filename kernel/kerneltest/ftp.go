package kerneltest

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// InNetNS runs fn on an OS thread moved into the namespace ns: sockets fn
// opens belong to ns and stay there after InNetNS returns. The thread is
// discarded if it cannot be moved back.
func InNetNS(t testing.TB, ns string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// FTPExpectation makes the kernel's ftp helper in ns create an expectation:
// it attaches the helper (FTPHelper's ruleset), opens an FTP control
// connection on the loopback interface from 127.0.0.1 to 127.0.0.1:ctlPort
// (21 or 2121, the ports the ruleset helps) and sends "PORT 127,0,0,1,p1,p2"
// announcing dataPort. It returns the client's source port; the
// connections are closed when the test ends. The ftp helper keeps one
// expectation per control connection.
func FTPExpectation(t testing.TB, ns string, ctlPort, dataPort uint16) (clientPort uint16) {
	t.Helper()
	return FTPExpectationAt(t, ns, netip.MustParseAddr("127.0.0.1"), ctlPort, dataPort)
}

// FTPExpectationAt is FTPExpectation between two sockets on ip, an IPv4
// address of an interface of ns: a master with no loopback address, which
// a peer may commit.
func FTPExpectationAt(t testing.TB, ns string, ip netip.Addr, ctlPort, dataPort uint16) (clientPort uint16) {
	t.Helper()
	if !ip.Is4() {
		t.Fatalf("FTPExpectationAt: %v is not an IPv4 address", ip)
	}
	ruleset := `table inet ctsync_ftp {
	ct helper ftp { type "ftp" protocol tcp; }
	chain out { type filter hook output priority 0; tcp dport { 21, 2121 } ct helper set "ftp"; }
	chain pre { type filter hook prerouting priority 0; tcp dport { 21, 2121 } ct helper set "ftp"; }
}`
	if _, err := Exec(t, ns, "nft", "list", "table", "inet", "ctsync_ftp"); err != nil {
		if _, err := ExecStdin(t, ns, ruleset, "nft", "-f", "-"); err != nil {
			t.Fatal(err)
		}
	}
	addr := netip.AddrPortFrom(ip, ctlPort).String()
	err := InNetNS(t, ns, func() error {
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			return err
		}
		t.Cleanup(func() { ln.Close() })
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		t.Cleanup(func() { s.Close() })
		clientPort = uint16(c.LocalAddr().(*net.TCPAddr).Port)
		// The helper only parses commands that follow a line it has seen.
		buf := make([]byte, 64)
		if _, err := fmt.Fprintf(c, "USER anonymous\r\n"); err != nil {
			return err
		}
		if _, err := s.Read(buf); err != nil {
			return err
		}
		b := ip.As4()
		if _, err := fmt.Fprintf(c, "PORT %d,%d,%d,%d,%d,%d\r\n", b[0], b[1], b[2], b[3], dataPort>>8, dataPort&0xff); err != nil {
			return err
		}
		_, err = s.Read(buf)
		return err
	})
	if err != nil {
		t.Fatalf("ftp control connection in %s: %v", ns, err)
	}
	return clientPort
}
