package sync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/ctsync/ctsync/cache"
	"github.com/ctsync/ctsync/ratelog"
	"github.com/hashicorp/memberlist"
)

// Config configures a Node.
type Config struct {
	Node         string   // this node's unique name
	Bind         string   // host:port for memberlist and streams (TCP and UDP)
	Advertise    string   // host:port peers should use; "" = derived from Bind
	Join         []string // peers to contact; retried in the background
	Keys         [][]byte // cluster keys, the first is primary; nil = insecure
	Label        string   // cluster name
	Internal     *cache.Internal
	External     *cache.External
	Logger       *slog.Logger
	Epoch        uint64        // this incarnation; 0 = random
	DigestEvery  time.Duration // 0 = 1s
	JoinEvery    time.Duration // 0 = 2s
	BatchEntries int           // entries per message; 0 = 2048
	LocalTimings bool          // memberlist's fast loopback timings (tests)
	// ForgetDeparted: how long Members lists a member that left or
	// failed; 0 = DefaultForgetDeparted.
	ForgetDeparted time.Duration
	// EventEvery: at most one lifecycle line per peer and kind of event
	// in this interval; 0 = ratelog.DefaultEvery.
	EventEvery time.Duration
	// Network carries the node's dials and memberlist packets; nil = the
	// host's network. Tests give one that can be partitioned (netfake).
	Network Network
}

// Node is one member of the replication cluster. Create it with New (its
// port listens from then on), run it with Run, stop it by cancelling Run's
// context or with Close. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	sec   Security
	ml    *memberlist.Memberlist
	trans *muxTransport
	epoch uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     stdsync.WaitGroup
	kick   chan struct{} // membership changed

	memMu   stdsync.Mutex
	members map[string]member // our copy of memberlist's view, by name
	memGen  uint64            // membership events so far
	table   *mlTable          // memberlist's node table; nil: events only
	addr    string            // this node's advertised address

	mu      stdsync.Mutex
	peers   map[string]*peer // by node name
	closed  bool
	session atomic.Uint64

	stats counters
	warn  *ratelog.Limiter // repeated warnings: one line per kind per 10 s
	life  lifecycle        // peer lifecycle log, why never in sync (lifecycle.go)

	keys keyState // cluster key rotation (keys.go)
}

// counters are the node-wide counters.
type counters struct {
	authFailures   atomic.Uint64
	decodeErrors   atomic.Uint64
	badHello       atomic.Uint64
	unexpectedMsgs atomic.Uint64
	joinFailures   atomic.Uint64
	streamsRefused atomic.Uint64 // authenticated streams refused for their origin (checkOrigin, older session)
}

// peer is the state kept for one other node.
type peer struct {
	name    string
	addr    string
	cancel  context.CancelFunc
	done    chan struct{}
	reader  atomic.Pointer[cache.Reader] // the outgoing stream's change reader
	outConn atomic.Pointer[conn]         // the outgoing stream, while up
	retry   chan struct{}                // cuts a reconnect backoff short (the peer came back)

	// outgoing stream (our flows to it)
	connected   atomic.Bool
	caughtUp    atomic.Bool
	pending     atomic.Int64
	sentBytes   atomic.Uint64
	sentEntries atomic.Uint64
	sentMsgs    atomic.Uint64
	snapshots   atomic.Uint64
	digests     atomic.Uint64 // digests sent
	sendErrors  atomic.Uint64
	lastErr     atomic.Value // string

	// incoming stream (its flows to us)
	inMu        stdsync.Mutex
	inConn      *conn
	inSince     time.Time // when inConn was established
	inSession   uint64
	inEpoch     uint64
	recvBytes   atomic.Uint64
	recvEntries atomic.Uint64
	recvMsgs    atomic.Uint64
	stale       atomic.Uint64
	digestOK    atomic.Int64 // unix ns of the last matching digest
	mismatches  atomic.Uint64
	resyncAsked atomic.Uint64
	lastVersion atomic.Uint64
	// truncated: our copy of its flows was cut short by cache.max_flows,
	// so its digest cannot match; snapshots are not asked for (they would
	// be cut the same way) until the cache has room for what is missing.
	truncated   atomic.Bool
	resyncsHeld atomic.Uint64 // snapshots not asked for because of that

	// expectations (both directions)
	sentExpects   atomic.Uint64 // expectations sent (in whole sets)
	recvExpects   atomic.Uint64
	expMismatches atomic.Uint64
}

// New creates the node's memberlist and starts listening on cfg.Bind.
func New(cfg Config) (*Node, error) {
	if cfg.Node == "" {
		return nil, errors.New("sync: node name required")
	}
	if cfg.Internal == nil || cfg.External == nil {
		return nil, errors.New("sync: caches required")
	}
	cfg.setDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger.With("component", "sync"), peers: make(map[string]*peer), kick: make(chan struct{}, 1),
		members: make(map[string]member), warn: ratelog.New(ratelog.DefaultEvery), life: newLifecycle(cfg.EventEvery)}
	n.epoch = cfg.Epoch
	if n.epoch == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		n.epoch = binary.BigEndian.Uint64(b[:]) | 1
	}
	n.sec.Label = cfg.Label
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("sync: cluster key: %w", err)
		}
		n.sec.Keyring = kr
	}

	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("sync: bind address: %w", err)
	}
	mlog := newLogBridge(n.log, n.warn, n.life.slow, func(cause string) { n.stats.authFailures.Add(1); n.authFailed(cause) })
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: mlog})
	if err != nil {
		return nil, fmt.Errorf("sync: listen on %s: %w", cfg.Bind, err)
	}
	n.trans = newMuxTransport(nt, cfg.Network, n.accept, func(a net.Addr) {
		n.warn.Warn(n.log, "preauth refused", "closed a connection to the cluster port: too many unauthenticated connections open (from its source, or in all)",
			"remote", a.String(), "max", maxPreAuth, "max_per_source", maxPreAuthPerSource)
	})

	mc, err := n.memberlistConfig(host, nt.GetAutoBindPort(), mlog)
	if err != nil {
		n.trans.Shutdown()
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		n.trans.Shutdown()
		return nil, fmt.Errorf("sync: start memberlist: %w", err)
	}
	n.ml = ml
	if n.table, err = newMLTable(ml); err != nil {
		n.log.Warn("members will show alive or dead only (no suspect, no left)", "err", err)
	}
	ln := ml.LocalNode() // safe now: nothing has run yet
	n.addr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// setDefaults fills in the zero fields that have a default.
func (cfg *Config) setDefaults() {
	if cfg.DigestEvery <= 0 {
		cfg.DigestEvery = time.Second
	}
	if cfg.JoinEvery <= 0 {
		cfg.JoinEvery = 2 * time.Second
	}
	if cfg.BatchEntries <= 0 {
		cfg.BatchEntries = 2048
	}
	if cfg.ForgetDeparted <= 0 {
		cfg.ForgetDeparted = DefaultForgetDeparted
	}
	if cfg.EventEvery <= 0 {
		cfg.EventEvery = ratelog.DefaultEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Network == nil {
		cfg.Network = hostNetwork{}
	}
}

// memberlistConfig is memberlist's configuration for the node bound to
// host:port: its transport, addresses, keys and label, and the node's
// delegates.
func (n *Node) memberlistConfig(host string, port int, mlog *log.Logger) (*memberlist.Config, error) {
	cfg := n.cfg
	mc := memberlist.DefaultLANConfig()
	if cfg.LocalTimings {
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = cfg.Node
	mc.Transport = n.trans
	mc.BindAddr, mc.BindPort = host, port
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("sync: advertise address: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	} else if host == "0.0.0.0" || host == "::" {
		mc.AdvertiseAddr, mc.AdvertisePort = "", mc.BindPort
	} else {
		mc.AdvertiseAddr, mc.AdvertisePort = host, mc.BindPort
	}
	mc.Keyring = n.sec.Keyring
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Label = cfg.Label
	mc.EnableCompression = false
	mc.Delegate = delegate{n}
	mc.Events = events{n}
	mc.Logger = mlog
	mc.LogOutput = nil
	return mc, nil
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return h, port, nil
}

// Addr returns the address peers reach this node at.
func (n *Node) Addr() string { return n.addr }

// Run joins the cluster (retrying in the background), keeps one stream to
// every alive peer, and returns when ctx is cancelled, after leaving the
// cluster gracefully.
func (n *Node) Run(ctx context.Context) error {
	go func() {
		select {
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		n.cancel()
	}()
	joinT := time.NewTicker(n.cfg.JoinEvery)
	defer joinT.Stop()
	recon := time.NewTicker(500 * time.Millisecond)
	defer recon.Stop()
	n.join()
	for {
		n.reconcile()
		select {
		case <-n.ctx.Done():
			return n.Close()
		case <-joinT.C:
			n.join()
		case <-recon.C:
		case <-n.kick:
		}
	}
}

// join contacts configured peers that are not members yet.
func (n *Node) join() {
	if len(n.cfg.Join) == 0 {
		return
	}
	known := map[string]bool{}
	for _, addr := range n.aliveMembers() {
		known[addr] = true
	}
	var todo []string
	for _, j := range n.cfg.Join {
		if !known[j] {
			todo = append(todo, j)
		}
	}
	if len(todo) == 0 {
		return
	}
	if _, err := n.ml.Join(todo); err != nil {
		n.joinFailed(strings.Join(todo, ","), err)
	}
}

// reconcile starts a stream to every alive member and stops streams to
// members that are gone.
func (n *Node) reconcile() {
	n.refreshMembers()
	n.logSync()
	alive := n.aliveMembers()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	for name, addr := range alive {
		p := n.peers[name]
		if p != nil && p.cancel != nil && p.addr == addr {
			continue
		}
		if p == nil {
			p = n.peerLocked(name)
		}
		n.startSenderLocked(p, addr)
	}
	for name, p := range n.peers {
		if _, ok := alive[name]; !ok && p.cancel != nil && !p.streamingToUs() {
			p.cancel()
			p.cancel = nil
			p.connected.Store(false)
			p.caughtUp.Store(false)
		}
	}
}

func (n *Node) peerLocked(name string) *peer {
	p := n.peers[name]
	if p == nil {
		p = &peer{name: name, retry: make(chan struct{}, 1)}
		n.peers[name] = p
	}
	return p
}

// startSenderLocked (re)starts the stream of our flows to p at addr.
func (n *Node) startSenderLocked(p *peer, addr string) {
	if p.cancel != nil {
		p.cancel()
	}
	p.addr = addr
	ctx, cancel := context.WithCancel(n.ctx)
	p.cancel = cancel
	p.done = make(chan struct{})
	n.wg.Add(1)
	go n.sendLoop(ctx, p, addr, p.done)
}

// streamingToUs reports whether p has an authenticated stream open to us:
// proof that it is alive, often before memberlist's gossip says so.
func (p *peer) streamingToUs() bool {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	return p.inConn != nil
}

// retryNow makes a peer's stream reconnect at once if it is waiting.
func (n *Node) retryNow(name string) {
	n.mu.Lock()
	p := n.peers[name]
	n.mu.Unlock()
	if p != nil {
		select {
		case p.retry <- struct{}{}:
		default:
		}
	}
}

// Close leaves the cluster and stops every stream. It is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.cancel()
	for _, p := range n.peers {
		p.inMu.Lock()
		if p.inConn != nil {
			p.inConn.Close()
		}
		p.inMu.Unlock()
	}
	n.mu.Unlock()

	err := n.ml.Leave(time.Second)
	n.wg.Wait()
	if serr := n.ml.Shutdown(); err == nil {
		err = serr
	}
	if terr := n.trans.Shutdown(); err == nil {
		err = terr
	}
	return err
}

// ---------------------------------------------------------------- sending

// sendLoop keeps a stream to one peer up, reconnecting with backoff.
func (n *Node) sendLoop(ctx context.Context, p *peer, addr string, done chan struct{}) {
	defer n.wg.Done()
	defer close(done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := n.stream(ctx, p, addr)
		wasUp := p.connected.Swap(false)
		p.caughtUp.Store(false)
		if ctx.Err() != nil {
			return
		}

		p.sendErrors.Add(1)
		p.lastErr.Store(err.Error())
		if wasUp {
			n.event("stream to peer down", p.name, addr, err.Error())
		} else {
			n.log.Debug("stream to peer failed", "peer", p.name, "err", err)
		}

		if time.Since(start) > 10*time.Second {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		case <-p.retry:
			backoff = 50 * time.Millisecond
		}
	}
}

// stream runs one connection to a peer: hello, snapshot, then changes and
// digests until an error or ctx ends.
func (n *Node) stream(ctx context.Context, p *peer, addr string) error {
	s, err := n.dialPeer(ctx, p, addr)
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	p.outConn.Store(s)
	defer p.outConn.CompareAndSwap(s, nil)

	w := newWriter()
	if err := s.writeFrame(w.hello(n.cfg.Node, n.epoch, n.session.Add(1))); err != nil {
		return err
	}

	// The peer talks back on the same connection (resync requests).
	rerr := make(chan error, 1)
	r := n.cfg.Internal.NewReader()
	defer r.Close()
	p.reader.Store(r)
	defer p.reader.CompareAndSwap(r, nil)
	go func() { rerr <- n.readControl(s, p, r) }()

	p.connected.Store(true)
	n.event("stream to peer up", p.name, addr, "connected and authenticated: sending this node's flows")
	out := newStreamOut(n, s, w, r, p)
	defer out.stop()
	for {
		if err := out.sendPending(); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-rerr:
			return fmt.Errorf("peer closed the stream: %w", err)
		case <-r.Wake():
		case <-out.tick.C:
		case <-out.owed.C:
			out.owing = false
		}
	}
}

// dialPeer connects to the peer at addr and runs the client side of the
// handshake: it must answer to p's name.
func (n *Node) dialPeer(ctx context.Context, p *peer, addr string) (*conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, Control: setUserTimeout(n.userTimeout()), LocalAddr: n.localAddrFor(addr)}
	c, err := n.cfg.Network.DialContext(ctx, &d, addr)
	if err != nil {
		return nil, err
	}
	s, err := n.sec.clientHandshake(c, n.cfg.Node)
	if err != nil {
		c.Close()
		if errors.Is(err, errAuth) {
			n.stats.authFailures.Add(1)
			n.authFailed(authCause(err.Error()))
		}
		if errors.Is(err, errNoAnswer) {
			n.warn.Warn(n.log, "handshake refused by peer", "a peer refused our replication stream", "peer", p.name, "addr", addr, "err", err)
		}
		return nil, err
	}
	if s.peer != p.name {
		c.Close()
		return nil, fmt.Errorf("peer at %s says it is %q, want %q", addr, s.peer, p.name)
	}
	return s, nil
}

// streamOut is the state of one outgoing stream once it is up: what it
// last told the peer of its digests, and when.
type streamOut struct {
	n *Node
	s *conn
	w *writer
	r *cache.Reader
	p *peer

	tick *time.Ticker // a digest at least this often
	// A digest goes out when the stream has caught up and the cache
	// changed, but no sooner than digestGap after the last one: under a
	// steady stream of changes the reader catches up after nearly every
	// batch, and a digest each time would cost more bytes than the
	// entries. owed fires when a held-back digest is due.
	digestGap time.Duration
	owed      *time.Timer
	owing     bool

	lastDigest, expDigest cache.Digest
	lastDigestAt          time.Time
}

func newStreamOut(n *Node, s *conn, w *writer, r *cache.Reader, p *peer) *streamOut {
	o := &streamOut{n: n, s: s, w: w, r: r, p: p,
		tick: time.NewTicker(n.cfg.DigestEvery), digestGap: n.cfg.DigestEvery / 4, owed: time.NewTimer(time.Hour)}
	o.owed.Stop()
	return o
}

func (o *streamOut) stop() {
	o.tick.Stop()
	o.owed.Stop()
}

// sendPending sends what the peer has not seen yet: a snapshot if the
// reader lost track, the changes, the expectation set if it changed, and
// a digest once caught up.
func (o *streamOut) sendPending() error {
	n, s, w, r, p := o.n, o.s, o.w, o.r, o.p
	if r.Lost() {
		p.caughtUp.Store(false)
		if err := n.sendSnapshot(s, w, r, p); err != nil {
			return err
		}
	}
	for {
		sent, err := n.sendChanges(s, w, r, p)
		if err != nil {
			return err
		}
		if sent == 0 {
			break
		}
	}

	// The expectation set, whole, when it changed (after the flows: the
	// masters it refers to go first).
	if xs, dg, ok := r.NextExpects(); ok {
		if err := n.send(s, p, w.expects(n.epoch, xs)); err != nil {
			return err
		}
		p.sentExpects.Add(uint64(len(xs)))
		o.expDigest = dg
	}

	dg, ver, ok := r.CaughtUp()
	if !ok {
		p.caughtUp.Store(false)
		p.pending.Store(int64(r.Pending()))
		return nil
	}
	p.caughtUp.Store(true)
	p.pending.Store(0)
	return o.digest(dg, ver)
}

// digest sends the digests of the flows (dg, at version ver) and of the
// expectations if one is due, or arms owed for when it will be.
func (o *streamOut) digest(dg cache.Digest, ver uint64) error {
	n, w := o.n, o.w
	since := time.Since(o.lastDigestAt)
	switch {
	case since >= n.cfg.DigestEvery || dg != o.lastDigest && since >= o.digestGap:
		if err := n.send(o.s, o.p, w.u64s(msgDigest, n.epoch, dg.Count, dg.Hash, ver)); err != nil {
			return err
		}
		if err := n.send(o.s, o.p, w.u64s(msgExpectDigest, n.epoch, o.expDigest.Count, o.expDigest.Hash)); err != nil {
			return err
		}
		o.lastDigest, o.lastDigestAt = dg, time.Now()
		o.p.digests.Add(1)
	case dg != o.lastDigest && !o.owing:
		o.owed.Reset(o.digestGap - since)
		o.owing = true
	}
	return nil
}

// localAddrFor returns the address an outgoing stream to addr leaves from:
// this node's advertised IP (any port), so that a multi-homed node's
// stream arrives from the address its peers know it by (a receiver
// refuses a stream from another address than its origin's, see
// checkOrigin). nil (the kernel's choice) when the advertised IP is
// unspecified or of another family than addr's.
func (n *Node) localAddrFor(addr string) net.Addr {
	self, err := netip.ParseAddrPort(n.addr)
	if err != nil || self.Addr().IsUnspecified() {
		return nil
	}
	to, err := netip.ParseAddrPort(addr)
	if err != nil || to.Addr().Unmap().Is4() != self.Addr().Unmap().Is4() {
		return nil
	}
	return &net.TCPAddr{IP: self.Addr().Unmap().AsSlice()}
}

func (n *Node) send(s *conn, p *peer, b []byte) error {
	p.sentBytes.Add(uint64(len(b)))
	p.sentMsgs.Add(1)
	return s.writeFrame(b)
}

// sendChanges sends up to one batch of changes and returns how many.
func (n *Node) sendChanges(s *conn, w *writer, r *cache.Reader, p *peer) (int, error) {
	w.startEntries(n.epoch)
	cnt, err := r.Next(n.cfg.BatchEntries, func(e *cache.Entry) { w.entry(e) })
	if err != nil || cnt == 0 {
		return 0, nil // lost: the loop takes a snapshot
	}
	p.sentEntries.Add(uint64(cnt))
	return cnt, n.send(s, p, w.endEntries(cnt))
}

// sendSnapshot sends every flow of the internal cache, bracketed.
func (n *Node) sendSnapshot(s *conn, w *writer, r *cache.Reader, p *peer) error {
	p.snapshots.Add(1)
	start := time.Now()
	defer func() { n.log.Debug("snapshot sent", "peer", p.name, "took", time.Since(start)) }()
	snap := r.Snapshot()
	if err := n.send(s, p, w.u64s(msgSnapBegin, n.epoch, uint64(snap.Len()))); err != nil {
		return err
	}
	for more := true; more; {
		w.startEntries(n.epoch)
		cnt := 0
		more = snap.Next(n.cfg.BatchEntries, func(e *cache.Entry) { w.entry(e); cnt++ })
		if cnt > 0 {
			p.sentEntries.Add(uint64(cnt))
			if err := n.send(s, p, w.endEntries(cnt)); err != nil {
				return err
			}
		}
	}
	return n.send(s, p, w.u64s(msgSnapEnd, n.epoch))
}

// readControl reads what the receiving peer sends back: resync requests.
func (n *Node) readControl(s *conn, p *peer, r *cache.Reader) error {
	rd := newReader()
	for {
		b, err := s.readFrame()
		if err != nil {
			return err
		}
		t, err := rd.open(b)
		if err != nil {
			n.stats.decodeErrors.Add(1)
			return err
		}
		switch t {
		case msgResync:
			var reason uint64
			if rd.u64s(&reason) == nil && reason == resyncExpects {
				r.ResendExpects()
			} else {
				r.ForceSnapshot()
			}
		default:
			n.stats.unexpectedMsgs.Add(1)
		}
	}
}

// RequestResync asks every connected peer for a snapshot of its flows.
func (n *Node) RequestResync() int {
	w := newWriter()
	msg := w.u64s(msgResync, resyncRequested)
	n.mu.Lock()
	defer n.mu.Unlock()
	asked := 0
	for _, p := range n.peers {
		p.inMu.Lock()
		if p.inConn != nil && p.inConn.sendLocked(msg) == nil {
			asked++
			p.resyncAsked.Add(1)
		}
		p.inMu.Unlock()
	}
	return asked
}

// SendBulk makes every outgoing stream resend a full snapshot of this
// node's flows, and returns how many streams will.
func (n *Node) SendBulk() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	cnt := 0
	for _, p := range n.peers {
		if r := p.reader.Load(); r != nil {
			r.ForceSnapshot()
			cnt++
		}
	}
	return cnt
}
