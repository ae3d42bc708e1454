package sync

import (
	"context"
	"io"
	"net"
	stdsync "sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// muxTransport wraps memberlist's NetTransport so that one TCP port serves
// both memberlist and ctsync's replication streams: an accepted connection
// whose first byte is streamMarker goes to ctsync, any other to memberlist
// (with that byte put back).
//
// Every accepted connection is unauthenticated until proven otherwise, and
// a stranger can open as many as it likes, so each one first takes a slot
// of the pre-authentication gate (preauth.go): connections over its global
// or per-source bound are closed at once, without a goroutine or a buffer.
// A replication stream gives its slot back when its handshake ends (the
// peer proved the key, or failed); a memberlist stream keeps its slot until
// memberlist closes it (they are short: push/pull, fallback pings, user
// messages). Until then a connection costs a goroutine and a few hundred
// bytes: the first byte is read without a buffer, the handshake reads
// exact sizes, and the stream's 64 KiB buffers are made only after it.
type muxTransport struct {
	*memberlist.NetTransport
	net      Network       // what dials and packets go through
	streams  chan net.Conn // to memberlist
	repl     func(c net.Conn, authDone func())
	gate     *preAuthGate
	refused  func(addr net.Addr) // told of each connection over a bound
	deadline time.Duration       // preAuthTimeout
	stop     chan struct{}
	wg       stdsync.WaitGroup
	shutOnce stdsync.Once
}

// newMuxTransport routes nt's streams. repl takes a replication stream
// with its marker byte read and the pre-authentication deadline set; it
// must call authDone once the handshake is over, either way. refused is
// told of each connection closed for a pre-authentication bound.
func newMuxTransport(nt *memberlist.NetTransport, nw Network, repl func(c net.Conn, authDone func()), refused func(net.Addr)) *muxTransport {
	t := &muxTransport{NetTransport: nt, net: nw, streams: make(chan net.Conn), repl: repl, refused: refused, stop: make(chan struct{}),
		gate: newPreAuthGate(maxPreAuth, maxPreAuthPerSource), deadline: preAuthTimeout}
	t.wg.Add(1)
	go t.route()
	return t
}

// WriteTo sends a memberlist packet, unless the network drops it.
func (t *muxTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !t.net.Deliver(addr) {
		return time.Now(), nil // lost on the way, as on a cut link
	}
	return t.NetTransport.WriteTo(b, addr)
}

// DialTimeout opens a memberlist stream through the network (as
// NetTransport does: a plain TCP dial).
func (t *muxTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.net.DialContext(context.Background(), &net.Dialer{Timeout: timeout}, addr)
}

// WriteToAddress is what memberlist actually calls (NetTransport is a
// NodeAwareTransport); it must be filtered like WriteTo.
func (t *muxTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if !t.net.Deliver(a.Addr) {
		return time.Now(), nil // lost on the way, as on a cut link
	}
	return t.NetTransport.WriteToAddress(b, a)
}

// DialAddressTimeout is what memberlist actually calls for streams.
func (t *muxTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
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
			release, ok := t.gate.acquire(c.RemoteAddr())
			if !ok {
				c.Close() // over the pre-authentication bound: nothing spent on it
				t.refused(c.RemoteAddr())
				continue
			}
			t.wg.Add(1)
			go t.classify(c, release)
		case <-t.stop:
			return
		}
	}
}

// classify reads a connection's first byte, under the pre-authentication
// deadline (which also bounds the replication handshake that follows; a
// memberlist stream gets memberlist's own deadline).
func (t *muxTransport) classify(c net.Conn, release func()) {
	defer t.wg.Done()
	_ = c.SetDeadline(time.Now().Add(t.deadline))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		release()
		return
	}
	if b[0] == streamMarker {
		t.repl(c, release)
		return
	}
	select {
	case t.streams <- &peekedConn{Conn: c, first: b[0], pending: true, release: release}:
	case <-t.stop:
		c.Close()
		release()
	}
}

// peekedConn is a memberlist stream whose first byte was read by
// classify: reads return it first. Closing it frees its pre-authentication
// slot.
type peekedConn struct {
	net.Conn
	first   byte
	pending bool   // first not returned yet
	release func() // idempotent
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.pending && len(b) > 0 {
		p.pending = false
		b[0] = p.first
		return 1, nil
	}
	return p.Conn.Read(b)
}

func (p *peekedConn) Close() error {
	err := p.Conn.Close()
	p.release()
	return err
}
