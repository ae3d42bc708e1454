package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ctsync/ctsync/cache"
)

// The reasons a msgResync carries (its one field). The sender answers
// resyncExpects with its expectation set, any other reason with a full
// snapshot of its flows.
const (
	// resyncDigest: the receiver's copy did not match the owner's digest.
	resyncDigest = 1
	// resyncRequested: the operator asked for a resync (RequestResync).
	resyncRequested = 2
)

// accept takes a replication stream from the transport: its marker byte
// read, the pre-authentication deadline set. authDone gives back its
// pre-authentication slot (preauth.go).
func (n *Node) accept(c net.Conn, authDone func()) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		c.Close()
		authDone()
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		n.receive(c, authDone)
	}()
}

// receive runs one incoming replication stream: handshake, hello, the
// checks of the origin it names, then one message at a time until the
// stream ends, fails or is superseded.
func (n *Node) receive(c net.Conn, authDone func()) {
	defer c.Close()
	s, ok := n.handshakeIn(c, authDone)
	if !ok {
		return
	}
	stop := context.AfterFunc(n.ctx, func() { s.Close() })
	defer stop()

	in, ok := n.readHello(c, s)
	if !ok || !n.admitOrigin(in) {
		return
	}
	if !in.attach() {
		return
	}
	n.event("stream from peer up", in.origin, n.memberAddr(in.origin), "connected and authenticated: receiving its flows")
	n.streamBack(in.p, in.origin)

	end := "closed"
	defer func() {
		in.detach()
		n.event("stream from peer down", in.origin, n.memberAddr(in.origin), end)
	}()
	end = in.run()
}

// handshakeIn runs the server side of the handshake and gives back the
// pre-authentication slot; a failure is counted and, for a wrong key or
// handshake version, logged.
func (n *Node) handshakeIn(c net.Conn, authDone func()) (*conn, bool) {
	s, err := n.sec.serverHandshake(c, n.cfg.Node)
	authDone()
	if err == nil {
		return s, true
	}
	switch {
	case errors.Is(err, errAuth):
		n.stats.authFailures.Add(1)
		n.authFailed(authCause(err.Error()))
		n.warn.Warn(n.log, "refused stream", "refused a replication stream", "remote", c.RemoteAddr().String(), "err", err)
	case errors.Is(err, errHandshakeVersion):
		n.stats.decodeErrors.Add(1)
		n.warn.Warn(n.log, "handshake version", "refused a replication stream of another handshake version", "remote", c.RemoteAddr().String(), "err", err)
	default:
		n.stats.decodeErrors.Add(1)
	}
	return nil, false
}

// readHello reads the stream's first message, which must be a hello from
// the key holder the handshake authenticated, naming another node.
func (n *Node) readHello(c net.Conn, s *conn) (*streamIn, bool) {
	rd := newReader()
	_ = c.SetReadDeadline(time.Now().Add(n.idleTimeout()))
	b, err := s.readFrame()
	if err != nil {
		if errors.Is(err, errAuth) {
			n.stats.authFailures.Add(1)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			n.stats.badHello.Add(1)
		}
		return nil, false
	}
	t, err := rd.open(b)
	if err != nil || t != msgHello {
		n.stats.badHello.Add(1)
		return nil, false
	}
	origin, epoch, session, err := rd.hello()
	if err != nil || origin != s.peer || origin == n.cfg.Node {
		n.stats.badHello.Add(1)
		return nil, false
	}
	return &streamIn{n: n, c: c, s: s, rd: rd, origin: origin, epoch: epoch, session: session}, true
}

// admitOrigin reports whether the stream may speak for the origin its
// hello names: a live member at the address the stream comes from (a key
// holder could name anyone).
func (n *Node) admitOrigin(in *streamIn) bool {
	if why := n.checkOrigin(in.origin, in.c.RemoteAddr()); why != "" {
		n.refuse(in.origin, in.c.RemoteAddr(), why)
		if !n.everMember(in.origin) {
			n.cfg.External.Forget(in.origin) // never a member: keep nothing of it
		}
		return false
	}
	return true
}

// streamBack starts our stream to a peer that streams to us: it is alive,
// so stream back at once rather than wait for memberlist's gossip to say
// so (a restarted node refutes its "left" state only on the next gossip
// round).
func (n *Node) streamBack(p *peer, origin string) {
	n.mu.Lock()
	if p.cancel == nil && p.addr != "" && !n.closed {
		n.startSenderLocked(p, p.addr)
	}
	n.mu.Unlock()
	n.retryNow(origin)
}

// streamIn is the state of one incoming replication stream, from its
// hello on: who it speaks for, and when we last asked it for a resync.
type streamIn struct {
	n       *Node
	c       net.Conn
	s       *conn
	rd      *reader
	w       *writer // resync requests
	p       *peer
	origin  string
	epoch   uint64
	session uint64
	ext     *cache.External

	// Entries are parsed and applied a chunk at a time: a chunk is small
	// enough to stay in the CPU's cache and costs little memory (an entry
	// is 384 bytes parsed).
	batch []cache.Entry

	lastAsk, lastExpAsk time.Time // last resync asked for, flows and expectations
}

// attach makes the stream its origin's incoming stream, closing the one
// it replaces, unless an open stream of a newer session of the same
// incarnation is there: then the stream is refused.
func (in *streamIn) attach() bool {
	n := in.n
	n.mu.Lock()
	p := n.peerLocked(in.origin)
	n.mu.Unlock()

	p.inMu.Lock()
	if p.inConn != nil && p.inEpoch == in.epoch && in.session < p.inSession {
		p.inMu.Unlock()
		n.refuse(in.origin, in.c.RemoteAddr(), "an older session of the same incarnation is superseded by an open one")
		return false
	}
	if p.inConn != nil {
		p.inConn.Close()
	}
	p.inConn, p.inSession, p.inEpoch = in.s, in.session, in.epoch
	p.inSince = time.Now()
	p.inMu.Unlock()

	in.p, in.ext, in.w = p, n.cfg.External, newWriter()
	in.batch = make([]cache.Entry, 256)
	return true
}

// detach undoes attach if the stream is still its origin's. The session
// mark goes with the stream that set it: a stream that ended never locks
// the origin's next one out.
func (in *streamIn) detach() {
	p := in.p
	p.inMu.Lock()
	if p.inConn == in.s {
		p.inConn, p.inSession, p.inEpoch = nil, 0, 0
	}
	p.inMu.Unlock()
}

// active reports whether the stream is still its origin's (a newer one
// replaces it).
func (in *streamIn) active() bool {
	in.p.inMu.Lock()
	defer in.p.inMu.Unlock()
	return in.p.inConn == in.s
}

// run reads and handles messages until the stream ends, and returns why
// it ended, for the log.
func (in *streamIn) run() string {
	n, p := in.n, in.p
	for {
		_ = in.c.SetReadDeadline(time.Now().Add(n.idleTimeout()))
		b, err := in.s.readFrame()
		if err != nil {
			if errors.Is(err, errAuth) {
				n.stats.authFailures.Add(1)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.stats.decodeErrors.Add(1)
			}
			return err.Error()
		}
		p.recvBytes.Add(uint64(len(b)))
		p.recvMsgs.Add(1)

		t, err := in.rd.open(b)
		if err == nil {
			err = in.handle(t)
		}
		if err != nil {
			n.stats.decodeErrors.Add(1)
			n.warn.Warn(n.log, "dropped stream", "dropping a replication stream", "peer", in.origin, "err", err)
			return "dropped: " + err.Error()
		}
		if !in.active() {
			return "superseded by a newer stream from the same peer"
		}
	}
}

// handle dispatches one message, opened in in.rd, to its handler. An
// error drops the stream.
func (in *streamIn) handle(t msgType) error {
	switch t {
	case msgSnapBegin:
		return in.onSnapBegin()
	case msgEntries:
		return in.onEntries()
	case msgSnapEnd:
		return in.onSnapEnd()
	case msgDigest:
		return in.onDigest()
	case msgExpects:
		return in.onExpects()
	case msgExpectDigest:
		return in.onExpectDigest()
	default:
		in.n.stats.unexpectedMsgs.Add(1)
		return nil
	}
}

// onSnapBegin: a snapshot of the origin's flows begins (of size flows,
// a field older senders do not send).
func (in *streamIn) onSnapBegin() error {
	var ep, size uint64
	if err := in.rd.u64sMin(1, &ep, &size); err != nil || ep != in.epoch {
		return err
	}
	in.ext.BeginSnapshot(in.origin, in.epoch)
	in.ext.Reserve(in.origin, in.epoch, size)
	return nil
}

// onEntries applies a batch of the origin's flows, a chunk at a time.
func (in *streamIn) onEntries() error {
	return in.rd.chunks(in.batch, func(ep uint64, es []cache.Entry) error {
		if ep != in.epoch {
			return fmt.Errorf("%w: entries of epoch %d on a stream of epoch %d", errWire, ep, in.epoch)
		}
		in.p.recvEntries.Add(uint64(len(es)))
		if stale := in.ext.ApplyBatch(in.origin, in.epoch, es); stale > 0 {
			in.p.stale.Add(uint64(stale))
		}
		return nil
	})
}

// onSnapEnd: the snapshot is complete.
func (in *streamIn) onSnapEnd() error {
	var ep uint64
	if err := in.rd.u64s(&ep); err != nil || ep != in.epoch {
		return err
	}
	in.ext.EndSnapshot(in.origin, in.epoch)
	return nil
}

// onDigest compares the origin's digest of its flows with our copy: a
// match vouches for the copy, a mismatch asks for a snapshot (at most one
// every two digest periods, and none while our cache is too full to hold
// it).
func (in *streamIn) onDigest() error {
	var ep, count, hash, ver uint64
	if err := in.rd.u64s(&ep, &count, &hash, &ver); err != nil || ep != in.epoch {
		return err
	}
	n, p := in.n, in.p
	p.lastVersion.Store(ver)
	got, synced := in.ext.Digest(in.origin, in.epoch)
	switch {
	case synced && got.Count == count && got.Hash == hash:
		in.ext.Vouch(in.origin)
		p.digestOK.Store(time.Now().UnixNano())
		p.truncated.Store(false)
	case synced && n.copyCutShort(p, in.origin, got.Count, count):
		// Another snapshot would be cut the same way.
	case time.Since(in.lastAsk) > 2*n.cfg.DigestEvery:
		// Missed something (or no snapshot yet): ask for one.
		n.log.Debug("digest mismatch: asking for a snapshot", "peer", in.origin, "synced", synced,
			"have", got.Count, "owner_has", count)
		p.mismatches.Add(1)
		p.resyncAsked.Add(1)
		in.lastAsk = time.Now()
		return in.s.sendLocked(in.w.u64s(msgResync, resyncDigest))
	}
	return nil
}

// onExpects replaces our copy of the origin's expectation set.
func (in *streamIn) onExpects() error {
	ep, xs, err := in.rd.expects()
	switch {
	case err != nil:
		return err
	case ep != in.epoch:
		return fmt.Errorf("%w: expectations of epoch %d on a stream of epoch %d", errWire, ep, in.epoch)
	case in.ext.ReplaceExpects(in.origin, in.epoch, xs):
		in.p.recvExpects.Add(uint64(len(xs)))
	default:
		in.p.stale.Add(1)
	}
	return nil
}

// onExpectDigest compares the origin's digest of its expectations with
// our copy, and on a mismatch asks for the set again.
func (in *streamIn) onExpectDigest() error {
	var ep, count, hash uint64
	if err := in.rd.u64s(&ep, &count, &hash); err != nil || ep != in.epoch {
		return err
	}
	got, synced := in.ext.ExpectDigest(in.origin, in.epoch)
	if (synced && got.Count == count && got.Hash == hash) || time.Since(in.lastExpAsk) <= 2*in.n.cfg.DigestEvery {
		return nil
	}
	// Missed a set, or one of ours expired early: ask for the set again
	// (not a whole snapshot).
	in.n.log.Debug("expectation digest mismatch: asking for the set", "peer", in.origin, "have", got.Count, "owner_has", count)
	in.p.expMismatches.Add(1)
	in.lastExpAsk = time.Now()
	return in.s.sendLocked(in.w.u64s(msgResync, resyncExpects))
}

// copyCutShort reports, for a mismatching digest of origin (have flows
// held, the owner has owns), whether the mismatch is this node's cache
// being full: flows of origin were dropped for lack of room since its last
// snapshot began and the cache has no room for what is missing. Then
// asking for a snapshot would only bring the same flows and drop the same
// ones, every two digest periods forever: it is held back, said once in
// the log and in the peer's stats, until room frees up.
func (n *Node) copyCutShort(p *peer, origin string, have, owns uint64) bool {
	cut, room := n.cfg.External.Truncated(origin)
	if cut && room >= 0 && uint64(room) < max(owns-min(owns, have), 1) {
		p.resyncsHeld.Add(1)
		if !p.truncated.Swap(true) {
			n.warn.Warn(n.log, "copy cut short", "the external cache is full (cache.max_flows): this node's copy of a peer's flows is incomplete; not asking for snapshots until there is room",
				"peer", origin, "have", have, "owner_has", owns, "room", room)
		}
		return true
	}
	p.truncated.Store(false)
	return false
}

// refuse counts and logs (rate-limited) an authenticated stream refused
// for the origin its hello names.
func (n *Node) refuse(origin string, remote net.Addr, why string) {
	n.stats.streamsRefused.Add(1)
	if n.rejoining(origin, remote) {
		// A restarted member streams as soon as it joined, often before
		// this node's memberlist holds it alive again: it retries then.
		n.log.Debug("refused a replication stream: the member is not alive again yet", "origin", origin, "remote", remote.String(), "reason", why)
		return
	}
	n.warn.Warn(n.log, "refused origin", "refused a replication stream", "origin", origin, "remote", remote.String(), "reason", why)
}
