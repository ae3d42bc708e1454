package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// binary is the ctsync binary under test, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ctsync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ctsync")
	build := exec.Command("go", "build", "-o", binary, "github.com/ctsync/ctsync/cmd/ctsync")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ctsync:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lab is a set of nodes on one bridged link.
type lab struct {
	t     *testing.T
	dir   string
	sw    string // switch namespace
	key   string // key file
	nodes []*node
}

// node is one firewall: a namespace and (when started) its daemon.
type node struct {
	lab    *lab
	name   string
	ns     string
	addr   string // cluster address
	sock   string
	cfg    string
	log    string
	cmd    *exec.Cmd
	exited chan error
	env    []string // extra environment of the daemon
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newLab creates n namespaces on one link (10.99.0.0/24) with a shared key.
func newLab(t *testing.T, n int) *lab {
	t.Helper()
	kerneltest.RequirePrivileged(t)
	kerneltest.RequireTools(t, "ip", "conntrack")
	l := &lab{t: t, dir: t.TempDir()}
	l.sw = kerneltest.NewNetNS(t)
	kerneltest.MustExec(t, l.sw, "ip", "link", "add", "br0", "type", "bridge")
	kerneltest.MustExec(t, l.sw, "ip", "link", "set", "br0", "up")
	out, err := exec.Command(binary, "keygen").Output()
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	l.key = filepath.Join(l.dir, "cluster.key")
	if err := os.WriteFile(l.key, out, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		nd := &node{lab: l, name: fmt.Sprintf("fw%d", i+1), ns: kerneltest.NewNetNS(t), addr: fmt.Sprintf("10.99.0.%d:7946", i+1)}
		nd.sock = filepath.Join(l.dir, nd.name+".sock")
		nd.cfg = filepath.Join(l.dir, nd.name+".yaml")
		nd.log = filepath.Join(l.dir, nd.name+".log")
		// A veth pair made in the switch namespace, one end moved into the node.
		in, out := "v"+randHex(4), "v"+randHex(4)
		kerneltest.MustExec(t, l.sw, "ip", "link", "add", in, "type", "veth", "peer", "name", out)
		kerneltest.MustExec(t, l.sw, "ip", "link", "set", in, "netns", nd.ns)
		kerneltest.MustExec(t, l.sw, "ip", "link", "set", out, "master", "br0", "up")
		kerneltest.MustExec(t, nd.ns, "ip", "link", "set", in, "name", "sync0")
		kerneltest.MustExec(t, nd.ns, "ip", "addr", "add", fmt.Sprintf("10.99.0.%d/24", i+1), "dev", "sync0")
		kerneltest.MustExec(t, nd.ns, "ip", "link", "set", "sync0", "up")
		l.nodes = append(l.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range l.nodes {
			nd.stop()
		}
		if t.Failed() {
			for _, nd := range l.nodes {
				b, _ := os.ReadFile(nd.log)
				t.Logf("---- %s log (last 4 KiB) ----\n%s", nd.name, tail(b, 4096))
			}
		}
	})
	return l
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// start writes the node's configuration and runs its daemon.
func (nd *node) start(extra string) {
	t := nd.lab.t
	var join []string
	for _, o := range nd.lab.nodes {
		if o != nd {
			join = append(join, fmt.Sprintf("%q", o.addr))
		}
	}
	cfg := fmt.Sprintf(`node: %s
cluster:
  bind: %s
  join: [%s]
  key_file: %s
  name: e2e
control:
  socket: %s
log:
  level: debug
%s`, nd.name, nd.addr, strings.Join(join, ", "), nd.lab.key, nd.sock, extra)
	if err := os.WriteFile(nd.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	nd.cmd = exec.Command("ip", "netns", "exec", nd.ns, binary, "daemon", "--config", nd.cfg)
	nd.cmd.Env = append(os.Environ(), nd.env...)
	nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
	if err := nd.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", nd.name, err)
	}
	nd.exited = make(chan error, 1)
	go func() { nd.exited <- nd.cmd.Wait(); logf.Close() }()
	nd.waitFor("control socket", 20*time.Second, func() bool {
		_, err := nd.ctl("health")
		return err == nil || !strings.Contains(err.Error(), "not running")
	})
}

// stop ends the daemon with SIGTERM (SIGKILL after 10 s).
func (nd *node) stop() {
	if nd.cmd == nil || nd.cmd.Process == nil {
		return
	}
	nd.cmd.Process.Signal(os.Interrupt)
	select {
	case <-nd.exited:
	case <-time.After(10 * time.Second):
		nd.cmd.Process.Kill()
		<-nd.exited
	}
	nd.cmd = nil
}

// kill ends the daemon hard.
func (nd *node) kill() {
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Kill()
	<-nd.exited
	nd.cmd = nil
}

// ctl runs a ctsync control command against the node's daemon.
func (nd *node) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append(args, "--socket", nd.sock)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("ctsync %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (nd *node) mustCtl(args ...string) string {
	nd.lab.t.Helper()
	out, err := nd.ctl(args...)
	if err != nil {
		nd.lab.t.Fatal(err)
	}
	return out
}

func (nd *node) conntrack(args ...string) string {
	nd.lab.t.Helper()
	out, err := kerneltest.Conntrack(nd.lab.t, nd.ns, args...)
	if err != nil {
		nd.lab.t.Fatalf("%s: conntrack %s: %v", nd.name, strings.Join(args, " "), err)
	}
	return out
}

// waitFor polls cond (see wait.Until) and fails the test when it does not
// hold within timeout, or at once when the node's daemon exits meanwhile.
func (nd *node) waitFor(what string, timeout time.Duration, cond func() bool) {
	nd.lab.t.Helper()
	var exited error
	held := wait.Until(timeout, func() bool {
		select {
		case err := <-nd.exited:
			nd.exited <- err
			exited = fmt.Errorf("daemon exited (%v)", err)
			return true
		default:
		}
		return cond()
	})
	switch {
	case exited != nil:
		nd.lab.t.Fatalf("%s: %v while waiting for %s", nd.name, exited, what)
	case !held:
		nd.lab.t.Fatalf("%s: timed out after %v waiting for %s", nd.name, timeout, what)
	}
}

// count returns a cache's flow count as `ctsync cache ... --count` prints it.
func (nd *node) count(args ...string) int {
	out, err := nd.ctl(append([]string{"cache"}, append(args, "--count")...)...)
	if err != nil {
		return -1
	}
	var n int
	fmt.Sscan(strings.TrimSpace(out), &n)
	return n
}

var timeoutRE = regexp.MustCompile(`^(\S+\s+\d+ )\d+ `)

// table returns conntrack -L's lines, sorted, timeouts masked.
func (nd *node) table() string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(nd.conntrack("-L")), "\n") {
		if l != "" {
			lines = append(lines, timeoutRE.ReplaceAllString(l, "${1}T "))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
