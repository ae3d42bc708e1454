package kernel_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// TestReadSysctl reads a sysctl of another namespace (changed there only),
// then of the process's own.
func TestReadSysctl(t *testing.T) {
	t.Parallel()
	c, ns := dial(t)
	const name = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
	kerneltest.MustExec(t, ns, "sh", "-c", "echo 77 > /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait")
	// Many reads at once: each enters the namespace on its own thread.
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			v, err := c.ReadSysctl(name)
			if err == nil && v != "77" {
				err = errors.New("got " + v + ", want 77")
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("ReadSysctl(%s) in %s: %v", name, ns, err)
		}
	}
	if _, err := c.ReadSysctl("net.netfilter.nf_conntrack_no_such_timeout"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing sysctl: error %v, want one wrapping os.ErrNotExist", err)
	}
	for _, bad := range []string{"", "net/netfilter", "net..x", ".net", "net."} {
		if _, err := c.ReadSysctl(bad); err == nil {
			t.Errorf("ReadSysctl(%q): no error", bad)
		}
	}

	own, err := kernel.Dial(kernel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	want, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := own.ReadSysctl(name); err != nil || v != strings.TrimSpace(string(want)) {
		t.Errorf("ReadSysctl(%s) in the own namespace = %q, %v; want %q", name, v, err, want)
	}
	c.Close()
	if _, err := c.ReadSysctl(name); !errors.Is(err, kernel.ErrClosed) {
		t.Errorf("after Close: error %v, want ErrClosed", err)
	}
}
