package table

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// overrunWarning is printed each time the kernel reports lost events.
const overrunWarning = "ctsync: WARNING: events were lost (netlink receive buffer overrun); raise --buffer-size"

// errEnoughEvents ends a watch once --count events were shown.
var errEnoughEvents = errors.New("enough events")

// watchEvents prints the table's events (conntrack -E) until ctx ends
// (SIGINT, SIGTERM) or --count events were shown, then conntrack's summary
// with the number of overruns. Lost events are reported as they happen and
// the watch goes on.
func watchEvents(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
	lw := newLineWriter(s.out)
	var names portNames
	shown, overruns := 0, 0

	o := req.watch
	o.OnOverrun = func() error {
		overruns++
		_, err := fmt.Fprintln(s.err, overrunWarning)
		return err
	}
	err := conn.Watch(ctx, o, func(ev *flow.Event) error {
		if !req.matches(&ev.Flow) {
			return nil
		}
		b := req.output.appendLine(lw.buf[:0], &ev.Flow, saveOp(ev.Type), ev.Type)
		if len(b) == 0 {
			return nil
		}
		if ev.PortID != 0 && !req.output.save && !req.output.json {
			b = appendUserspace(b, ev.PortID, req.netns == "", &names)
		}

		lw.buf = append(b, '\n')
		if _, err := lw.w.Write(lw.buf); err != nil {
			return err
		}
		if err := lw.flush(); err != nil {
			return err
		}

		shown++
		if req.count > 0 && shown >= req.count {
			return errEnoughEvents
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnoughEvents) {
		return err
	}
	fmt.Fprintf(s.err, "ctsync: %d flow events have been shown, %d overruns.\n", shown, overruns)
	return nil
}

// appendUserspace appends what conntrack -E adds to an event a process
// caused with a request: its netlink port id and, when the watch is on the
// current namespace (own), the name of the program that holds the port.
func appendUserspace(b []byte, port uint32, own bool, names *portNames) []byte {
	b = append(b, " [USERSPACE] portid="...)
	b = strconv.AppendUint(b, uint64(port), 10)
	if own {
		if name := names.lookup(port); name != "" {
			b = append(b, " progname="...)
			b = append(b, name...)
		}
	}
	return b
}

// saveOp is the command of an event's -o save line, as conntrack -E writes it.
func saveOp(t flow.EventType) byte {
	switch t {
	case flow.EventNew:
		return 'A'
	case flow.EventUpdate:
		return 'U'
	case flow.EventDestroy:
		return 'D'
	}
	return 0
}

// portNames finds the program behind a netlink port id as conntrack -E
// does: the port's socket inode from /proc/net/netlink, then the process
// holding that socket. It remembers the last answer.
type portNames struct {
	port uint32
	name string
}

func (p *portNames) lookup(port uint32) string {
	if port == p.port {
		return p.name
	}
	p.port, p.name = port, programOfPort(port)
	return p.name
}

func programOfPort(port uint32) string {
	inode := netlinkInode(port)
	if inode == "" {
		return ""
	}
	target := "socket:[" + inode + "]"
	holds := func(pid string) bool {
		dir := "/proc/" + pid + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		for _, fd := range fds {
			if l, err := os.Readlink(dir + fd.Name()); err == nil && l == target {
				return true
			}
		}
		return false
	}
	// Most programs get their own pid as the first port id.
	pid := strconv.FormatUint(uint64(port), 10)
	if !holds(pid) {
		pid = ""
		procs, _ := os.ReadDir("/proc")
		for _, d := range procs {
			if _, err := strconv.Atoi(d.Name()); err == nil && d.IsDir() && holds(d.Name()) {
				pid = d.Name()
				break
			}
		}
	}
	if pid == "" {
		return ""
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(string(stat), "(")
	name, _, ok2 := strings.Cut(rest, ")")
	if !ok || !ok2 {
		return ""
	}
	return name
}

// netlinkInode returns the socket inode of a NETLINK_NETFILTER port from
// /proc/net/netlink, or "".
func netlinkInode(port uint32) string {
	fh, err := os.Open("/proc/net/netlink")
	if err != nil {
		return ""
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	want := strconv.FormatUint(uint64(port), 10)
	for sc.Scan() {
		// sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
		f := strings.Fields(sc.Text())
		if len(f) >= 10 && f[1] == "12" && f[2] == want {
			return f[9]
		}
	}
	return ""
}
