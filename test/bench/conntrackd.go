package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/test/internal/labkit"
)

// conntrackdd drives conntrackd (conntrack-tools) in FTFW mode over UDP on
// the lab's veth, tuned generously: reliable netlink events, large netlink
// and socket buffers, a hash table and resend queue sized for n flows. Each
// node runs in the foreground as our child, with its own config, UNIX
// socket, lock file and log file in the lab's directory. It is driven with
// its own client: conntrackd -C CONF -s/-e/-i/-c/-n/-k.
type conntrackdd struct {
	l      *lab
	dir    string
	bin    string
	cmds   [2]*exec.Cmd
	exited [2]chan struct{} // closed when the node's process has been reaped
}

func newConntrackd(l *lab, n int) (*conntrackdd, error) {
	bin, err := exec.LookPath("conntrackd")
	if err != nil {
		return nil, fmt.Errorf("conntrackd not found (install it with `make deps`, Debian package conntrackd): %w", err)
	}
	d := &conntrackdd{l: l, dir: filepath.Join(l.dir, "conntrackd"), bin: bin}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	for i := range l.ns {
		conf := labkit.FTFW{
			Local:     addr(i),
			Peer:      addr(1 - i),
			Interface: l.veth[i],
			Flows:     n,
			LogFile:   filepath.Join(d.dir, fmt.Sprintf("node%d.log", i+1)),
			LockFile:  d.lock(i),
			Socket:    d.sock(i),
			Ignore:    []string{addr(0), addr(1)},
		}.Config()
		if err := os.WriteFile(d.conf(i), []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	l.onCleanup(func() { d.stop(0); d.stop(1) })
	return d, nil
}

func (d *conntrackdd) name() string { return "conntrackd" }
func (d *conntrackdd) conf(i int) string {
	return filepath.Join(d.dir, fmt.Sprintf("node%d.conf", i+1))
}
func (d *conntrackdd) sock(i int) string { return filepath.Join(d.dir, fmt.Sprintf("node%d.ctl", i+1)) }
func (d *conntrackdd) lock(i int) string {
	return filepath.Join(d.dir, fmt.Sprintf("node%d.lock", i+1))
}
func (d *conntrackdd) pid(i int) int { return d.cmds[i].Process.Pid }

// client runs conntrackd -C CONF args... against node i. The client reads
// the config only for the UNIX socket's path, so it runs in the bench's
// own namespace (it logs that the Interface is unknown there, harmlessly),
// which saves the few milliseconds of ip netns exec on every poll.
func (d *conntrackdd) client(i int, args ...string) *exec.Cmd {
	return exec.Command(d.bin, append([]string{"-C", d.conf(i)}, args...)...)
}

func (d *conntrackdd) run(i int, args ...string) ([]byte, error) {
	out, err := d.client(i, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("conntrackd %s on node %d: %v: %s", strings.Join(args, " "), i+1, err, bytes.TrimSpace(out))
	}
	return out, nil
}

func (d *conntrackdd) start(i int) error {
	os.Remove(d.lock(i)) // left by a node killed with SIGKILL
	logf, err := logFile(d.dir, fmt.Sprintf("node%d.out", i+1))
	if err != nil {
		return err
	}
	defer logf.Close()
	// No -d: console mode, so the process stays our child.
	cmd := exec.Command("ip", "netns", "exec", d.l.ns[i], d.bin, "-C", d.conf(i))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = daemonAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmds[i] = cmd
	exited := make(chan struct{})
	go func() {
		// Reap it if it dies on its own; stop and kill wait through here.
		cmd.Wait()
		close(exited)
	}()
	d.exited[i] = exited
	err = waitUntil(30*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		_, err := d.stats(i)
		return err == nil
	})
	select {
	case <-exited:
		log, _ := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("node%d.out", i+1)))
		return fmt.Errorf("conntrackd node %d exited: %s", i+1, bytes.TrimSpace(log))
	default:
	}
	if err == nil && os.Getenv("BENCH_CONNTRACKD_NORMAL") != "" {
		// conntrackd sets SCHED_RR at priority 99 for itself (its default,
		// and its configuration cannot turn it off); this puts it back to
		// the normal policy that ctsync runs with, for a comparison.
		if out, err := exec.Command("chrt", "--other", "-p", "0", strconv.Itoa(cmd.Process.Pid)).CombinedOutput(); err != nil {
			return fmt.Errorf("chrt conntrackd: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	return err
}

func (d *conntrackdd) ready() error {
	// FTFW has no membership: wait until each side has heard the other's
	// alive messages (one a second), so that the HELLO handshake is over.
	for i := range d.cmds {
		err := waitUntil(30*time.Second, func() bool {
			s, err := d.stats(i)
			return err == nil && s.PktsRecv >= 2
		})
		if err != nil {
			return fmt.Errorf("conntrackd node %d never heard its peer: %w", i+1, err)
		}
	}
	return nil
}

func (d *conntrackdd) stop(i int) {
	c := d.cmds[i]
	if c == nil || c.Process == nil {
		return
	}
	// -k is what an operator does; SIGTERM is the same in the daemon.
	d.run(i, "-k")
	select {
	case <-d.exited[i]:
	case <-time.After(10 * time.Second):
		c.Process.Kill()
		<-d.exited[i]
	}
	d.cmds[i] = nil
}

func (d *conntrackdd) kill(i int) {
	if c := d.cmds[i]; c != nil && c.Process != nil {
		c.Process.Signal(syscall.SIGKILL)
		<-d.exited[i]
		d.cmds[i] = nil
	}
}

// stats is conntrackd -s, parsed.
func (d *conntrackdd) stats(i int) (labkit.ConntrackdStats, error) {
	out, _, _, err := d.request(i, ctdStatsReq)
	if err != nil {
		return labkit.ConntrackdStats{}, err
	}
	return labkit.ParseConntrackdStats(out)
}

func (d *conntrackdd) external(i int) (int, error) {
	s, err := d.stats(i)
	return s.External, err
}

func (d *conntrackdd) internal(i int) (int, error) {
	s, err := d.stats(i)
	return s.Internal, err
}

// ownCache is conntrackd -i ct | wc -l.
func (d *conntrackdd) ownCache(i int) (int, error) {
	return d.countLines(i, nil, "-i", "ct")
}

// hasExternal dumps the external cache as conntrackd -e ct does (the
// daemon forks a child that writes a snapshot) and looks for "src=SRC ".
// The snapshot is taken between the request's write and the first byte
// of the answer (or its end, for an empty cache).
func (d *conntrackdd) hasExternal(i int, src netip.Addr) (bool, time.Time, time.Time, error) {
	out, lo, hi, err := d.request(i, ctdDumpExternalReq)
	return bytes.Contains(out, []byte("src="+src.String()+" ")), lo, hi, err
}

// conntrackd's control requests (include/conntrackd.h): the client sends
// one native-endian int and prints what comes back until the daemon
// closes the connection.
const (
	ctdDumpExternalReq = 17 // -e ct
	ctdStatsReq        = 21 // -s
)

// request sends one control request to node i's UNIX socket, as the
// conntrackd client does, and returns the answer; lo is when the request
// was written and hi when the first byte (or the end) of the answer came.
// The bench polls this way rather than through the client to spare a
// process start (about 2 ms) on every look.
func (d *conntrackdd) request(i int, code int32) (out []byte, lo, hi time.Time, err error) {
	c, err := net.DialTimeout("unix", d.sock(i), 5*time.Second)
	if err != nil {
		return nil, lo, hi, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(binary.NativeEndian.AppendUint32(nil, uint32(code))); err != nil {
		return nil, lo, hi, err
	}
	lo = time.Now()
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for {
		n, err := c.Read(chunk)
		if hi.IsZero() {
			hi = time.Now()
		}
		buf.Write(chunk[:n])
		if err == io.EOF {
			return buf.Bytes(), lo, hi, nil
		}
		if err != nil {
			return buf.Bytes(), lo, hi, err
		}
	}
}

// countLines runs the client and counts the lines of its output that hold
// match (all lines when match is nil).
func (d *conntrackdd) countLines(i int, match []byte, args ...string) (int, error) {
	cmd := d.client(i, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	n := 0
	r := bufio.NewReaderSize(out, 1<<16)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 && (match == nil || bytes.Contains(line, match)) {
			n++
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err != io.EOF {
				cmd.Wait()
				return n, err
			}
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return n, fmt.Errorf("conntrackd %s on node %d: %w", strings.Join(args, " "), i+1, err)
	}
	return n, nil
}

// commit is conntrackd -c, which blocks until the daemon has written the
// whole external cache (its exit status never says whether it worked).
func (d *conntrackdd) commit(i int) error {
	_, err := d.run(i, "-c")
	return err
}

// restarted asks the peer for a full resync (-n), as primary-backup.sh
// does on a backup.
func (d *conntrackdd) restarted(i int) error {
	_, err := d.run(i, "-n")
	return err
}
