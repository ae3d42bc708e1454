package kernel_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestLocalAddrs reads the addresses of the served namespace, not the
// process's own, and sees one added meanwhile (a VRRP address moving in).
func TestLocalAddrs(t *testing.T) {
	t.Parallel()
	kerneltest.RequireTools(t, "ip")
	c, ns := dial(t)
	kerneltest.MustExec(t, ns, "ip", "link", "add", "ctla0", "type", "veth", "peer", "name", "ctla1")
	kerneltest.MustExec(t, ns, "ip", "addr", "add", "192.0.2.2/24", "dev", "ctla0")
	kerneltest.MustExec(t, ns, "ip", "link", "set", "ctla0", "up")
	got, err := c.LocalAddrs()
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("192.0.2.100")
	if !slices.Contains(got, netip.MustParseAddr("192.0.2.2")) || slices.Contains(got, vip) {
		t.Fatalf("LocalAddrs in %s = %v, want 192.0.2.2 and not yet %v", ns, got, vip)
	}
	kerneltest.MustExec(t, ns, "ip", "addr", "add", vip.String()+"/32", "dev", "ctla0")
	if got, err = c.LocalAddrs(); err != nil || !slices.Contains(got, vip) {
		t.Fatalf("LocalAddrs after adding %v = %v, %v", vip, got, err)
	}
}
