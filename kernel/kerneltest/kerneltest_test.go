package kerneltest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func nsExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := os.Stat("/run/netns/" + name)
	if err == nil {
		return true
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat namespace %s: %v", name, err)
	}
	return false
}

func TestNewNetNSCreatesAndDeletes(t *testing.T) {
	RequirePrivileged(t)

	var name string
	var sleeper *exec.Cmd
	t.Run("inside", func(t *testing.T) {
		name = NewNetNS(t)
		if !strings.HasPrefix(name, nsPrefix) || len(name) > 15 {
			t.Errorf("namespace name %q: want prefix %q and at most 15 characters", name, nsPrefix)
		}
		if !nsExists(t, name) {
			t.Fatalf("namespace %s does not exist after NewNetNS", name)
		}
		link := MustExec(t, name, "ip", "-o", "link", "show", "lo")
		if !strings.Contains(link, ",UP") {
			t.Errorf("lo is not up in %s: %s", name, link)
		}
		// A process left running in the namespace must not keep it alive.
		sleeper = exec.Command("ip", "netns", "exec", name, "sleep", "300")
		if err := sleeper.Start(); err != nil {
			t.Fatalf("start sleep in %s: %v", name, err)
		}
	})
	if name == "" {
		t.Fatal("subtest did not create a namespace")
	}
	if nsExists(t, name) {
		t.Errorf("namespace %s still exists after its test ended", name)
	}
	if sleeper != nil {
		done := make(chan error, 1)
		go func() { done <- sleeper.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Error("process in the namespace exited cleanly; want it killed by the cleanup")
			}
		case <-time.After(10 * time.Second):
			_ = sleeper.Process.Kill()
			<-done
			t.Error("process in the namespace survived the namespace's cleanup")
		}
	}
}

func TestNewNetNSUnique(t *testing.T) {
	a, b := NewNetNS(t), NewNetNS(t)
	if a == b {
		t.Fatalf("two namespaces share the name %s", a)
	}
}

func TestExec(t *testing.T) {
	ns := NewNetNS(t)

	out, err := Exec(t, ns, "sh", "-c", "echo hello; echo ignored >&2")
	if err != nil || out != "hello\n" {
		t.Errorf("Exec echo = %q, %v; want %q, nil", out, err, "hello\n")
	}

	_, err = Exec(t, ns, "sh", "-c", "echo broken pipe dream >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "broken pipe dream") || !strings.Contains(err.Error(), ns) {
		t.Errorf("Exec failing command: err = %v; want it to name the namespace and carry stderr", err)
	}

	if _, err := Exec(t, "", "true"); err == nil {
		t.Error("Exec with an empty namespace name succeeded; want an error")
	}
}

func TestConntrackInFreshNamespace(t *testing.T) {
	RequireTools(t, "conntrack")
	ns := NewNetNS(t)

	if _, err := Conntrack(t, ns, "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "198.51.100.1",
		"--sport", "1000", "--dport", "53", "-t", "60"); err != nil {
		t.Fatal(err)
	}
	out, err := Conntrack(t, ns, "-L")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "src=192.0.2.1") {
		t.Errorf("conntrack -L in %s = %q; want exactly the inserted flow", ns, out)
	}

	// A second namespace starts with an empty table: tests do not see each other.
	other := NewNetNS(t)
	if out, err := Conntrack(t, other, "-L"); err != nil || out != "" {
		t.Errorf("conntrack -L in fresh namespace %s = %q, %v; want empty", other, out, err)
	}
}

func TestNetNSFd(t *testing.T) {
	ns := NewNetNS(t)
	if fd := NetNSFd(t, ns); fd < 0 {
		t.Fatalf("NetNSFd(%s) = %d", ns, fd)
	}
}
