package kernel

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ReadSysctl returns the value of a sysctl of the Conn's network namespace,
// named as sysctl(8) names it ("net.netfilter.nf_conntrack_udp_timeout"),
// without the trailing newline. A missing sysctl is an error that wraps
// os.ErrNotExist.
//
// A process sees the /proc/sys/net of the namespace of the thread that reads
// it, so for another namespace the read runs on a locked OS thread that
// enters the namespace (setns) and returns to its own afterwards; a thread
// that cannot return is discarded, never reused. Entering a namespace needs
// CAP_SYS_ADMIN. Safe for concurrent use; blocks for the read only.
func (c *Conn) ReadSysctl(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || strings.Contains(name, "..") ||
		name[0] == '.' || name[len(name)-1] == '.' {
		return "", fmt.Errorf("sysctl %q: not a sysctl name", name)
	}
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", ErrClosed
	}
	nsfd := -1
	if c.nsfd >= 0 {
		// A copy of our own, so that Close meanwhile cannot pull it away.
		fd, err := unix.FcntlInt(uintptr(c.nsfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			c.mu.Unlock()
			return "", fmt.Errorf("sysctl %s: %w", name, err)
		}
		nsfd = fd
	}
	c.mu.Unlock()

	if nsfd < 0 {
		return readSysctlFile(path, name)
	}
	defer unix.Close(nsfd)
	type result struct {
		val string
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("sysctl %s: own network namespace: %w", name, err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("sysctl %s: enter network namespace %q: %w", name, c.cfg.NetNS, err)}
			return
		}
		val, err := readSysctlFile(path, name)
		if netns.Set(own) == nil {
			runtime.UnlockOSThread()
		} // else: stay locked, and the runtime ends the thread with the goroutine
		done <- result{val, err}
	}()
	r := <-done
	return r.val, r.err
}

func readSysctlFile(path, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("sysctl %s: %w", name, os.ErrNotExist)
		}
		return "", fmt.Errorf("sysctl %s: %w", name, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}
