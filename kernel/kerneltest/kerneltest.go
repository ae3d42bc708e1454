package kerneltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// EnvRequirePrivileged names the environment variable that turns the skip of
// a privileged test into a failure when it is set to "1". CI sets it.
const EnvRequirePrivileged = "CTSYNC_REQUIRE_PRIVILEGED"

// ExecTimeout bounds every command run by [Exec].
const ExecTimeout = 60 * time.Second

// nsPrefix starts the name of every namespace this package creates, so a
// leftover is easy to recognise (`ip netns list | grep ^ctst-`).
const nsPrefix = "ctst-"

// nsCounter makes namespace names unique within one test process; the pid in
// the name makes them unique across the processes `go test ./...` starts.
var nsCounter atomic.Uint32

// RequirePrivileged skips the test, with the reason, unless the process runs
// as root, can create a network namespace and finds ip(8) in PATH. With
// CTSYNC_REQUIRE_PRIVILEGED=1 in the environment it fails the test instead.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if reason := privilegeProblem(); reason != "" {
		SkipOrFail(t, reason)
	}
}

// RequireTools is like [RequirePrivileged] for external programs a test
// needs (for example "conntrack" or "nft"): a missing one skips the test, or
// fails it under CTSYNC_REQUIRE_PRIVILEGED=1. `make deps` installs them all.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		SkipOrFail(t, fmt.Sprintf("%s not found in PATH (run `make deps` as root)", strings.Join(missing, ", ")))
	}
}

// SkipOrFail skips the test with reason, or fails it under
// CTSYNC_REQUIRE_PRIVILEGED=1: for a test that cannot run for want of
// something the machine should have (a tool, a device) rather than of a
// privilege.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequirePrivileged) == "1" {
		t.Fatalf("privileged test cannot run: %s (%s=1 forbids skipping it)", reason, EnvRequirePrivileged)
	}
	t.Skipf("skipping privileged test: %s (set %s=1 to make this a failure)", reason, EnvRequirePrivileged)
}

// privilegeProblem returns why privileged tests cannot run here, or "".
func privilegeProblem() string {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("needs root, running as uid %d", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "ip(8) not found in PATH (install iproute2, or run `make deps`)"
	}
	if err := probeNetNS(); err != nil {
		return fmt.Sprintf("cannot create a network namespace: %v", err)
	}
	return ""
}

// probeNetNS creates and drops an anonymous network namespace. The probe
// runs on a locked OS thread of its own goroutine that exits without
// unlocking, so the Go runtime discards the thread and no other goroutine
// ever runs in the probe namespace.
func probeNetNS() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		h, err := netns.New()
		if err == nil {
			err = h.Close()
		}
		errc <- err
	}()
	return <-errc
}

// NewNetNS creates a uniquely named network namespace ("ctst-PID-N"), brings
// its loopback interface up and returns its name. When the test and its
// subtests are done, every process still inside the namespace is killed and
// the namespace deleted; a failure to delete it fails the test.
//
// NewNetNS calls [RequirePrivileged] first, so it skips (or fails in CI)
// where namespaces cannot be created.
func NewNetNS(t testing.TB) string {
	t.Helper()
	RequirePrivileged(t)

	var name string
	for range 10 {
		candidate := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsCounter.Add(1))
		out, err := exec.Command("ip", "netns", "add", candidate).CombinedOutput()
		if err == nil {
			name = candidate
			break
		}
		// A namespace left behind by a dead process with the same pid: try
		// the next counter value rather than reuse or delete it.
		if strings.Contains(string(out), "File exists") {
			continue
		}
		t.Fatalf("ip netns add %s: %v: %s", candidate, err, strings.TrimSpace(string(out)))
	}
	if name == "" {
		t.Fatalf("ip netns add: no free name with prefix %s%d-", nsPrefix, os.Getpid())
	}
	t.Cleanup(func() {
		if err := deleteNetNS(name); err != nil {
			t.Errorf("clean up network namespace: %v", err)
		}
	})
	MustExec(t, name, "ip", "link", "set", "lo", "up")
	return name
}

// deleteNetNS kills the processes left in the namespace and deletes it.
func deleteNetNS(name string) error {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return fmt.Errorf("ip netns pids %s: %w", name, err)
	}
	for _, field := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(field)
		if err != nil || pid <= 1 {
			continue
		}
		// ESRCH: it exited in the meantime, which is what we want.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill process %d in namespace %s: %w", pid, name, err)
		}
	}
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns delete %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NetNSFd opens the named namespace and returns its file descriptor, to be
// passed as netlink.Config.NetNS; it is closed when the test ends. Opening
// does not move the calling thread into the namespace.
func NetNSFd(t testing.TB, name string) int {
	t.Helper()
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close network namespace %s: %v", name, err)
		}
	})
	return int(h)
}

// Exec runs name with args inside the network namespace ns (through
// `ip netns exec`) and returns its standard output. It gives up after
// [ExecTimeout]. On failure the error names the command and carries its
// standard error, trimmed. It does not fail the test; see [MustExec].
func Exec(t testing.TB, ns string, name string, args ...string) (stdout string, err error) {
	t.Helper()
	if ns == "" {
		return "", errors.New("kerneltest.Exec: empty namespace name (tests never touch the host namespace)")
	}
	// Not t.Context(): that is cancelled before cleanups run, and cleanups
	// legitimately run commands (dumps for a failure report, teardown).
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	// A child that forks a daemon keeping our pipes open must not hang us.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil {
		line := strings.Join(append([]string{name}, args...), " ")
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), ExecTimeout)
		}
		if msg := strings.TrimSpace(errBuf.String()); msg != "" {
			return outBuf.String(), fmt.Errorf("in netns %s: %s: %w: %s", ns, line, err, msg)
		}
		return outBuf.String(), fmt.Errorf("in netns %s: %s: %w", ns, line, err)
	}
	return outBuf.String(), nil
}

// MustExec is [Exec] that fails the test on error.
func MustExec(t testing.TB, ns string, name string, args ...string) string {
	t.Helper()
	out, err := Exec(t, ns, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Conntrack runs conntrack(8) with args inside the namespace ns; see [Exec].
// conntrack prints its summary ("N flow entries have been shown") on
// standard error, so the returned output holds only the entries.
func Conntrack(t testing.TB, ns string, args ...string) (string, error) {
	t.Helper()
	return Exec(t, ns, "conntrack", args...)
}

// ExecStdin is [Exec] with stdin as the command's standard input.
func ExecStdin(t testing.TB, ns, stdin string, name string, args ...string) (stdout string, err error) {
	t.Helper()
	if ns == "" {
		return "", errors.New("kerneltest.ExecStdin: empty namespace name (tests never touch the host namespace)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return outBuf.String(), fmt.Errorf("in netns %s: %s: %w: %s", ns, strings.Join(append([]string{name}, args...), " "), err, strings.TrimSpace(errBuf.String()))
	}
	return outBuf.String(), nil
}
