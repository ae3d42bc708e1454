package sync

import (
	"bufio"
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
	streams  chan net.Conn // to memberlist
	repl     func(c net.Conn, br *bufio.Reader)
	stop     chan struct{}
	wg       stdsync.WaitGroup
	shutOnce stdsync.Once
}

func newMuxTransport(nt *memberlist.NetTransport, repl func(c net.Conn, br *bufio.Reader)) *muxTransport {
	t := &muxTransport{NetTransport: nt, streams: make(chan net.Conn), repl: repl, stop: make(chan struct{})}
	t.wg.Add(1)
	go t.route()
	return t
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

// peekedConn is a net.Conn whose reads go through a bufio.Reader that may
// hold bytes already read from it.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }
