package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: no such entry (ENOENT).
	ErrNotFound = errors.New("no such conntrack entry")
	// ErrExist: the entry exists already (EEXIST), or its NAT mapping is taken.
	ErrExist = errors.New("conntrack entry exists")
	// ErrOverrun: the kernel dropped messages because a socket's receive
	// buffer was full (ENOBUFS). Events were lost; the caller must resync.
	ErrOverrun = errors.New("netlink receive buffer overrun: events were lost")
	// ErrClosed: the Conn was closed.
	ErrClosed = errors.New("kernel connection closed")
)

// Config says where and how to talk to the kernel.
type Config struct {
	// NetNS is a network namespace: a name under /run/netns (as ip netns
	// add makes) or a path such as /proc/PID/ns/net. Empty: the namespace
	// of the calling process.
	NetNS string
	// Parallel is the number of sockets Bulk uses at once; 0 means 2.
	Parallel int
	// RequestTimeout bounds each request's wait for the kernel; 0 means 30s.
	RequestTimeout time.Duration
}

// Conn is a handle on one network namespace's conntrack table.
//
// It is safe for concurrent use: each operation borrows a netlink socket
// from a small pool, so operations run in parallel; an event watch has its
// own socket. Close waits for nothing and makes later calls fail with
// ErrClosed; a Watch in progress must be stopped through its context.
type Conn struct {
	cfg  Config
	nsfd int // -1 for the current namespace

	mu       stdsync.Mutex
	idle     []*sock
	closed   bool
	watchers map[*sock]uint32 // active watch sockets and their groups
	muted    bool             // events suppressed (Mute)
}

// Dial opens the conntrack table of cfg.NetNS.
func Dial(cfg Config) (*Conn, error) {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	c := &Conn{cfg: cfg, nsfd: -1}
	if cfg.NetNS != "" {
		var h netns.NsHandle
		var err error
		if strings.ContainsRune(cfg.NetNS, '/') {
			h, err = netns.GetFromPath(cfg.NetNS)
		} else {
			h, err = netns.GetFromName(cfg.NetNS)
		}
		if err != nil {
			return nil, fmt.Errorf("open network namespace %q: %w", cfg.NetNS, err)
		}
		c.nsfd = int(h)
	}
	// Open one socket now so that a missing privilege or module shows at Dial.
	s, err := c.get()
	if err != nil {
		c.closeNS()
		return nil, err
	}
	c.put(s)
	return c, nil
}

func (c *Conn) closeNS() {
	if c.nsfd >= 0 {
		unix.Close(c.nsfd)
		c.nsfd = -1
	}
}

// Close releases the sockets. It is idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for _, s := range c.idle {
		s.close()
	}
	c.idle = nil
	c.closeNS()
	return nil
}

// get borrows a request socket.
func (c *Conn) get() (*sock, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(c.idle); n > 0 {
		s := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return s, nil
	}
	nsfd := c.nsfd
	c.mu.Unlock()
	return openSock(nsfd, 0, requestBufSize)
}

// put returns a socket to the pool, or closes it if it may hold stale data.
func (c *Conn) put(s *sock) {
	if s.dirty {
		s.close()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.idle) >= 2*c.cfg.Parallel {
		s.close()
		return
	}
	c.idle = append(c.idle, s)
}

const (
	requestBufSize = 8 << 20  // receive buffer of request sockets: room for a batch of ACKs
	eventBufSize   = 64 << 20 // default receive buffer of event sockets
	readChunk      = 1 << 20  // one recvmsg
)

// sock is one netlink socket with its buffers. Not safe for concurrent use.
type sock struct {
	nl    *netlink.Conn
	raw   syscall.RawConn
	pid   uint32
	seq   uint32
	rbuf  []byte
	enc   encoder
	dirty bool // a request was abandoned: unread replies may be queued

	readFn func(fd uintptr) bool
	mm     *mmsg // recvmmsg state of an event socket (mmsg.go)
	mmFn   func(fd uintptr) bool
	n      int
	rerr   error
}

func openSock(nsfd int, groups uint32, rcvbuf int) (*sock, error) {
	cfg := &netlink.Config{Groups: groups}
	if nsfd >= 0 {
		cfg.NetNS = nsfd
	}
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("open ctnetlink socket: %w", err)
	}
	s := &sock{nl: nl, pid: nl.PID(), rbuf: make([]byte, readChunk)}
	s.readFn = s.read
	if s.raw, err = nl.SyscallConn(); err != nil {
		nl.Close()
		return nil, fmt.Errorf("open ctnetlink socket: %w", err)
	}
	// Errors need not echo our request; the sequence number identifies it.
	_ = nl.SetOption(netlink.CapAcknowledge, true)
	if rcvbuf > 0 {
		if err := nl.SetReadBuffer(rcvbuf); err != nil {
			nl.Close()
			return nil, fmt.Errorf("set netlink receive buffer: %w", err)
		}
	}
	_ = nl.SetWriteBuffer(4 << 20)
	s.seq = uint32(time.Now().UnixNano())
	return s, nil
}

func (s *sock) close() { s.nl.Close() }

func (s *sock) nextSeq() uint32 {
	s.seq++
	return s.seq
}

// send writes one buffer of complete netlink messages to the kernel.
func (s *sock) send(b []byte) error {
	var serr error
	err := s.raw.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("netlink send: %w", serr)
	}
	return nil
}

// recv reads one datagram. ENOBUFS is returned as ErrOverrun; the socket
// stays usable.
func (s *sock) recv() ([]byte, error) {
	err := s.raw.Read(s.readFn)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("netlink receive: %w", context.DeadlineExceeded)
		}
		return nil, err
	}
	if s.rerr == unix.ENOBUFS {
		return nil, ErrOverrun
	}
	if s.rerr != nil {
		return nil, fmt.Errorf("netlink receive: %w", s.rerr)
	}
	return s.rbuf[:s.n], nil
}

// read is the raw read callback of recv, bound once so that reads do not
// allocate.
func (s *sock) read(fd uintptr) bool {
	s.n, s.rerr = unix.Read(int(fd), s.rbuf)
	return s.rerr != unix.EAGAIN
}

// deadline applies ctx's deadline (or the default timeout) to reads and
// writes, and wakes the socket when ctx is cancelled. The returned stop must
// be called when the operation ends.
func (s *sock) deadline(ctx context.Context, def time.Duration) (stop func()) {
	d, ok := ctx.Deadline()
	if !ok && def > 0 {
		d = time.Now().Add(def)
	}
	_ = s.nl.SetDeadline(d)
	if ctx.Done() == nil {
		return func() {}
	}
	woken := make(chan struct{})
	stopWake := context.AfterFunc(ctx, func() {
		defer close(woken)
		_ = s.nl.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stopWake() {
			// The wake-up has started: let it finish, so that it cannot
			// touch the socket once it is back in the pool.
			<-woken
		}
	}
}

// msg is one parsed netlink message.
type msg struct {
	typ   uint16
	flags uint16
	seq   uint32
	pid   uint32
	data  []byte // after the netlink header
}

// msgIter walks the netlink messages of one datagram.
type msgIter struct {
	b   []byte
	m   msg
	err error
}

func (it *msgIter) next() bool {
	if len(it.b) < nlmsgHdrLen {
		return false
	}
	l32 := binary.NativeEndian.Uint32(it.b) // checked before int(): 2^31 on is negative on 32-bit
	if l32 < nlmsgHdrLen || uint64(l32) > uint64(len(it.b)) {
		it.err = errMalformed
		return false
	}
	l := int(l32)
	it.m = msg{
		typ:   binary.NativeEndian.Uint16(it.b[4:]),
		flags: binary.NativeEndian.Uint16(it.b[6:]),
		seq:   binary.NativeEndian.Uint32(it.b[8:]),
		pid:   binary.NativeEndian.Uint32(it.b[12:]),
		data:  it.b[nlmsgHdrLen:l],
	}
	al := (l + 3) &^ 3
	if al > len(it.b) {
		al = len(it.b)
	}
	it.b = it.b[al:]
	return true
}

// errnoOf decodes an NLMSG_ERROR payload: 0 for an ACK.
func errnoOf(data []byte) (unix.Errno, error) {
	if len(data) < 4 {
		return 0, errMalformed
	}
	code := int32(binary.NativeEndian.Uint32(data))
	if code > 0 {
		return 0, errMalformed
	}
	return unix.Errno(-code), nil
}

// mapErrno turns a kernel error into one of the package's errors where one
// fits, keeping the errno for errors.Is.
func mapErrno(e unix.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.ENOENT:
		return fmt.Errorf("%w (%v)", ErrNotFound, e)
	case unix.EEXIST:
		return fmt.Errorf("%w (%v)", ErrExist, e)
	}
	return e
}

// request sends the message in s.enc and calls fn for every data message
// answering it, until the kernel's ACK, error or NLMSG_DONE.
func (s *sock) request(ctx context.Context, timeout time.Duration, fn func(m *msg) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	seq := binary.NativeEndian.Uint32(s.enc.b[8:])
	stop := s.deadline(ctx, timeout)
	defer stop()
	if err := s.send(s.enc.b); err != nil {
		s.dirty = true
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	var cbErr error
	for {
		b, err := s.recv()
		if err != nil {
			s.dirty = true
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		it := msgIter{b: b}
		for it.next() {
			m := &it.m
			if m.seq != seq {
				continue // a late answer to an abandoned request
			}
			switch m.typ {
			case nlmsgDone:
				if len(m.data) >= 4 {
					if e, _ := errnoOf(m.data); e != 0 {
						return mapErrno(e)
					}
				}
				return cbErr
			case nlmsgError:
				e, err := errnoOf(m.data)
				if err != nil {
					return err
				}
				if e != 0 {
					return mapErrno(e)
				}
				return cbErr
			default:
				if cbErr == nil && fn != nil {
					cbErr = fn(m)
				}
			}
		}
		if it.err != nil {
			s.dirty = true
			return it.err
		}
	}
}
