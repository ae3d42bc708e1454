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

	var val string
	err := c.inNetNS(func() error {
		var err error
		val, err = readSysctlFile(path, name)
		return err
	})
	if err != nil && errors.Is(err, errEnterNS) {
		return "", fmt.Errorf("sysctl %s: %w", name, err)
	}
	return val, err
}

// errEnterNS marks the errors of inNetNS itself (not of its function).
var errEnterNS = errors.New("network namespace")

// inNetNS runs fn with the Conn's network namespace as the current one:
// directly when the Conn serves the daemon's own namespace; otherwise on a
// locked OS thread that enters the namespace (setns) and returns to its own
// afterwards. A thread that cannot return is discarded, never reused.
// Entering a namespace needs CAP_SYS_ADMIN.
func (c *Conn) inNetNS(fn func() error) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	nsfd := -1
	if c.nsfd >= 0 {
		// A copy of our own, so that Close meanwhile cannot pull it away.
		fd, err := unix.FcntlInt(uintptr(c.nsfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("%w: %w", errEnterNS, err)
		}
		nsfd = fd
	}
	c.mu.Unlock()

	if nsfd < 0 {
		return fn()
	}
	defer unix.Close(nsfd)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("%w: own: %w", errEnterNS, err)
			return
		}
		defer own.Close()
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("%w: enter %q: %w", errEnterNS, c.cfg.NetNS, err)
			return
		}
		err = fn()
		if netns.Set(own) == nil {
			runtime.UnlockOSThread()
		} // else: stay locked, and the runtime ends the thread with the goroutine
		done <- err
	}()
	return <-done
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
