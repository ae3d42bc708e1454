package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// daemon is one replication daemon under test, on both nodes of the lab.
// Node 0 is A (where flows are made), node 1 is B.
type daemon interface {
	name() string
	// start starts node i and returns once its control socket answers.
	start(i int) error
	// ready waits until both nodes replicate to each other.
	ready() error
	// stop ends node i gracefully; kill ends it with SIGKILL.
	stop(i int)
	kill(i int)
	pid(i int) int
	// external is the number of flows node i holds from its peer; internal
	// the number of its own. Both are cheap enough to poll.
	external(i int) (int, error)
	internal(i int) (int, error)
	// ownCache lists node i's internal cache and counts it.
	ownCache(i int) (int, error)
	// hasExternal says whether node i holds a flow from src from its
	// peer. The daemon looked at its cache at some time in [lo, hi].
	hasExternal(i int, src netip.Addr) (ok bool, lo, hi time.Time, err error)
	// commit writes node i's external cache into its kernel table, and
	// returns when the daemon says it is done.
	commit(i int) error
	// restarted is what an operator does after restarting node i so that
	// it gets the peer's flows again (conntrackd: -n).
	restarted(i int) error
}

// ctsyncd drives ctsync daemons through their control sockets.
type ctsyncd struct {
	l    *lab
	dir  string
	bin  string
	cmds [2]*exec.Cmd
	ctl  [2]*control.Client // kept-alive clients for polling
}

func newCtsync(l *lab, bin string) (*ctsyncd, error) {
	d := &ctsyncd{l: l, dir: filepath.Join(l.dir, "ctsync"), bin: bin}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	if d.bin == "" {
		d.bin = filepath.Join(d.dir, "ctsync")
		if err := sh("go", "build", "-o", d.bin, "github.com/ctsync/ctsync/cmd/ctsync"); err != nil {
			return nil, err
		}
	}
	key, err := exec.Command(d.bin, "keygen").Output()
	if err != nil {
		return nil, fmt.Errorf("ctsync keygen: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "key"), key, 0o600); err != nil {
		return nil, err
	}
	for i := range l.ns {
		cfg := fmt.Sprintf("node: fw%d\ncluster:\n  bind: %s:7946\n  join: [\"%s:7946\"]\n  key_file: %s\ncontrol:\n  socket: %s\n",
			i+1, addr(i), addr(1-i), filepath.Join(d.dir, "key"), d.sock(i))
		if os.Getenv("BENCH_DEBUG") != "" {
			cfg += "log:\n  level: debug\n"
		}
		if err := os.WriteFile(d.cfg(i), []byte(cfg), 0o600); err != nil {
			return nil, err
		}
	}
	l.onCleanup(func() { d.stop(0); d.stop(1) })
	return d, nil
}

func (d *ctsyncd) name() string        { return "ctsync" }
func (d *ctsyncd) sock(i int) string   { return filepath.Join(d.dir, fmt.Sprintf("fw%d.sock", i+1)) }
func (d *ctsyncd) cfg(i int) string    { return filepath.Join(d.dir, fmt.Sprintf("fw%d.yaml", i+1)) }
func (d *ctsyncd) peer(i int) string   { return fmt.Sprintf("fw%d", 2-i) }
func (d *ctsyncd) pid(i int) int       { return d.cmds[i].Process.Pid }
func (d *ctsyncd) restarted(int) error { return nil }

func (d *ctsyncd) start(i int) error {
	logf, err := logFile(d.dir, fmt.Sprintf("fw%d.log", i+1))
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"netns", "exec", d.l.ns[i], d.bin, "daemon", "--config", d.cfg(i)}
	if p := os.Getenv("BENCH_PROFILE"); p != "" {
		args = append(args, "--cpuprofile", fmt.Sprintf("%s.fw%d.%d", p, i+1, time.Now().UnixNano()))
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = daemonAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmds[i] = cmd
	return waitUntil(30*time.Second, func() bool {
		_, err := control.Dial(d.sock(i)).Health(context.Background())
		return err == nil
	})
}

func (d *ctsyncd) ready() error {
	for i := range d.cmds {
		err := waitUntil(30*time.Second, func() bool {
			h, err := control.Dial(d.sock(i)).Health(context.Background())
			return err == nil && h.Ready
		})
		if err != nil {
			return fmt.Errorf("fw%d never became healthy: %w", i+1, err)
		}
	}
	return nil
}

func (d *ctsyncd) stop(i int) {
	c := d.cmds[i]
	if c == nil || c.Process == nil {
		return
	}
	c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		<-done
	}
	d.cmds[i] = nil
	d.dropClient(i)
}

func (d *ctsyncd) kill(i int) {
	if c := d.cmds[i]; c != nil && c.Process != nil {
		c.Process.Kill()
		c.Wait()
		d.cmds[i] = nil
	}
	d.dropClient(i)
}

// dropClient forgets node i's polling client (its daemon is gone).
func (d *ctsyncd) dropClient(i int) {
	if d.ctl[i] != nil {
		d.ctl[i].CloseIdle()
		d.ctl[i] = nil
	}
}

func (d *ctsyncd) stats(i int) (stats.Stats, error) {
	var s stats.Stats
	err := d.client(i).Stats(context.Background(), &s)
	return s, err
}

func (d *ctsyncd) external(i int) (int, error) {
	s, err := d.stats(i)
	if err != nil {
		return 0, err
	}
	for _, o := range s.External {
		if o.Origin == d.peer(i) {
			return o.Flows, nil
		}
	}
	return 0, nil
}

func (d *ctsyncd) internal(i int) (int, error) {
	s, err := d.stats(i)
	return s.Internal.Flows, err
}

func (d *ctsyncd) ownCache(i int) (int, error) {
	return d.client(i).Cache(context.Background(), control.CacheQuery{Cache: "internal", Count: true}, nil)
}

// client is node i's polling client: it keeps its connection between
// looks, so that a look costs one request, not a connection and a request.
func (d *ctsyncd) client(i int) *control.Client {
	if d.ctl[i] == nil {
		d.ctl[i] = control.DialKeepAlive(d.sock(i))
	}
	return d.ctl[i]
}

// hasExternal asks the daemon to count the external flows whose original
// source is src: one request on the control socket, the filter applied
// in the daemon.
func (d *ctsyncd) hasExternal(i int, src netip.Addr) (bool, time.Time, time.Time, error) {
	q := control.CacheQuery{Cache: "external", Origin: d.peer(i), Count: true,
		Filter: flow.Filter{OrigSrc: netip.PrefixFrom(src, src.BitLen())}}
	lo := time.Now()
	n, err := d.client(i).Cache(context.Background(), q, nil)
	return n > 0, lo, time.Now(), err
}

func (d *ctsyncd) commit(i int) error {
	cr, err := control.Dial(d.sock(i)).Commit(context.Background())
	if err != nil {
		return err
	}
	if cr.Failed > 0 {
		return errors.New(fmt.Sprint("commit: ", cr.Failed, " failed: ", cr.Errors))
	}
	return nil
}
