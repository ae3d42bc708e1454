package sync

import (
	"bufio"
	"errors"
	"net"
	stdsync "sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// muxTransport wraps memberlist's NetTransport so that one TCP port serves
// both memberlist and ctsync's replication streams: an accepted connection
// whose first byte is streamMarker goes to ctsync, any other to memberlist
// (with that byte put back).
type muxTransport struct {
	*memberlist.NetTransport
	blocked  func(addr string) bool // fault injection: drop traffic to these
	streams  chan net.Conn          // to memberlist
	repl     func(c net.Conn, br *bufio.Reader)
	stop     chan struct{}
	wg       stdsync.WaitGroup
	shutOnce stdsync.Once
}

func newMuxTransport(nt *memberlist.NetTransport, repl func(c net.Conn, br *bufio.Reader), blocked func(string) bool) *muxTransport {
	t := &muxTransport{NetTransport: nt, streams: make(chan net.Conn), repl: repl, stop: make(chan struct{}), blocked: blocked}
	t.wg.Add(1)
	go t.route()
	return t
}

// WriteTo sends a memberlist packet, unless a partition drops it.
func (t *muxTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.blocked(addr) {
		return time.Now(), nil // lost on the way, as on a cut link
	}
	return t.NetTransport.WriteTo(b, addr)
}

// DialTimeout opens a memberlist stream, unless a partition refuses it.
func (t *muxTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.blocked(addr) {
		return nil, errPartitioned
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

// WriteToAddress is what memberlist actually calls (NetTransport is a
// NodeAwareTransport); it must be filtered like WriteTo.
func (t *muxTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.blocked(a.Addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteToAddress(b, a)
}

// DialAddressTimeout is what memberlist actually calls for streams.
func (t *muxTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.blocked(a.Addr) {
		return nil, errPartitioned
	}
	return t.NetTransport.DialAddressTimeout(a, timeout)
}

// StreamCh is what memberlist reads its incoming streams from.
func (t *muxTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the underlying transport, then routing. The order
// matters: NetTransport's accept loop may be blocked handing a new
// connection to its (unbuffered) stream channel, and its Shutdown waits
// for that loop, so the router keeps draining until the listener is gone.
func (t *muxTransport) Shutdown() error {
	var err error
	t.shutOnce.Do(func() {
		err = t.NetTransport.Shutdown()
		close(t.stop)
		t.wg.Wait()
	})
	return err
}

func (t *muxTransport) route() {
	defer t.wg.Done()
	in := t.NetTransport.StreamCh()
	for {
		select {
		case c := <-in:
			t.wg.Add(1)
			go t.classify(c)
		case <-t.stop:
			return
		}
	}
}

// classify peeks at a connection's first byte, with a deadline so that a
// silent client cannot hold a goroutine for long.
func (t *muxTransport) classify(c net.Conn) {
	defer t.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(hsTimeout))
	br := bufio.NewReaderSize(c, 64<<10)
	b, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if b[0] == streamMarker {
		_, _ = br.Discard(1)
		t.repl(c, br)
		return
	}
	select {
	case t.streams <- &peekedConn{Conn: c, r: br}:
	case <-t.stop:
		c.Close()
	}
}

var errPartitioned = errors.New("partitioned (fault injection)")

// peekedConn is a net.Conn whose reads go through a bufio.Reader that may
// hold bytes already read from it.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }
