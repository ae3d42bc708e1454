package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/ctsync/ctsync/flow"
)

// Multicast groups (NFNLGRP_CONNTRACK_*) as a bind bitmask.
const (
	groupNew     = 1 << 0
	groupUpdate  = 1 << 1
	groupDestroy = 1 << 2
)

// WatchOptions tune Watch and WatchExpect.
type WatchOptions struct {
	// New, Update and Destroy select event types; all false means all.
	New, Update, Destroy bool
	// ReadBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE);
	// 0 means 64 MiB. A larger buffer absorbs longer bursts.
	ReadBuffer int
	// OnOverrun, if set, is called when the kernel reports that events were
	// lost (ENOBUFS); the watch then goes on. If it returns an error, the
	// watch returns that error. Without OnOverrun, it returns ErrOverrun.
	OnOverrun func() error
	// Ready, if set, is called once the socket is subscribed: events from
	// then on are delivered.
	Ready func()
	// Idle, if set, is called whenever every queued event has been
	// delivered and the watch is about to wait for more: the moment to hand
	// a batch of events on. If it returns an error, the watch returns it.
	Idle func() error
}

// Watch delivers the table's events to fn in the kernel's order, from one
// socket read by one goroutine, until ctx is cancelled (then it returns nil)
// or fn returns an error. The *flow.Event is reused between calls.
//
// Lost events are never silent: see WatchOptions.OnOverrun.
func (c *Conn) Watch(ctx context.Context, o WatchOptions, fn func(*flow.Event) error) error {
	return watch(ctx, c, o, &flowEvents, fn)
}

// flowEvents is what Watch reads: conntrack entries' events, which Mute
// silences.
var flowEvents = watchKind[flow.Event]{
	name:    "conntrack events",
	subsys:  nfnlSubsysCT,
	groups:  [3]uint32{groupNew, groupUpdate, groupDestroy},
	mutable: true,
	decode:  decodeFlowEvent,
}

// decodeFlowEvent decodes one ctnetlink event message into ev; ok is false
// for a message that is not an event.
func decodeFlowEvent(m msg, ev *flow.Event) (ok bool, err error) {
	switch m.typ & 0xff {
	case ctNew:
		if m.flags&(nlmFCreate|nlmFExcl) != 0 {
			ev.Type = flow.EventNew
		} else {
			ev.Type = flow.EventUpdate
		}
	case ctDelete:
		ev.Type = flow.EventDestroy
	default:
		return false, nil
	}
	ev.PortID = m.pid
	return true, decodeFlow(m.data[nfgenHdrLen:], &ev.Flow)
}

// watchKind says what one watch reads and how it decodes it: Watch and
// WatchExpect are the one loop, watch, over two kinds.
type watchKind[E any] struct {
	name    string    // in errors: "watch <name>: ..."
	subsys  uint16    // the nfnetlink subsystem of its messages
	groups  [3]uint32 // the multicast groups of new, update and destroy events
	mutable bool      // Mute silences it
	// decode fills ev from one message of subsys; ok is false for a
	// message that is not an event. The message is passed by value: a
	// pointer into the loop's iterator would move it to the heap, once per
	// datagram.
	decode func(m msg, ev *E) (ok bool, err error)
}

// subscription returns the multicast groups o selects.
func (k *watchKind[E]) subscription(o WatchOptions) uint32 {
	var groups uint32
	for i, on := range [3]bool{o.New, o.Update, o.Destroy} {
		if on {
			groups |= k.groups[i]
		}
	}
	if groups == 0 {
		groups = k.groups[0] | k.groups[1] | k.groups[2]
	}
	return groups
}

// watch is the loop of Watch and WatchExpect: it opens a socket subscribed
// to k's groups and hands every event on it to fn until ctx is cancelled
// (nil) or fn, Idle or OnOverrun fails (their error).
func watch[E any](ctx context.Context, c *Conn, o WatchOptions, k *watchKind[E], fn func(*E) error) error {
	s, err := c.openWatch(k.subscription(o), o.ReadBuffer, k.mutable)
	if err != nil {
		return fmt.Errorf("watch %s: %w", k.name, err)
	}
	defer c.closeWatch(s)

	stop := s.deadline(ctx, 0)
	defer stop()
	if o.Ready != nil {
		o.Ready()
	}

	w := watcher[E]{kind: k, o: o, s: s, fn: fn}
	for {
		rerr, err := w.step()
		if err != nil {
			return err
		}
		if rerr == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(rerr, ErrOverrun) {
			return fmt.Errorf("watch %s: %w", k.name, rerr)
		}
		if err := w.lost(rerr); err != nil {
			return err
		}
	}
}

// openWatch opens an event socket subscribed to groups, with a receive
// buffer of rcvbuf bytes (0: eventBufSize). A mutable one is registered so
// that Mute silences it. closeWatch undoes it.
func (c *Conn) openWatch(groups uint32, rcvbuf int, mutable bool) (*sock, error) {
	if rcvbuf <= 0 {
		rcvbuf = eventBufSize
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	nsfd := c.nsfd
	c.mu.Unlock()

	s, err := openSock(nsfd, groups, rcvbuf)
	if err != nil || !mutable {
		return s, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchers == nil {
		c.watchers = make(map[*sock]uint32)
	}
	c.watchers[s] = groups
	if c.muted {
		_ = setGroups(s, groups, false)
	}
	return s, nil
}

// closeWatch unregisters and closes a socket of openWatch.
func (c *Conn) closeWatch(s *sock) {
	c.mu.Lock()
	delete(c.watchers, s)
	c.mu.Unlock()
	s.close()
}

// watcher is the state of one watch loop.
type watcher[E any] struct {
	kind *watchKind[E]
	o    WatchOptions
	s    *sock
	fn   func(*E) error
	ev   E // reused for every event
}

// step reads the datagrams queued on the socket or, when there are none,
// says the watch is idle and waits for one; then it hands their events to
// fn. rerr is a failed read, for the loop to judge; err is what fn, Idle or
// OnOverrun returned, which ends the watch.
func (w *watcher[E]) step() (rerr, err error) {
	n, rerr := w.s.tryRecvBatch()
	if rerr != nil {
		return rerr, nil
	}
	if n == 0 {
		return w.waitOne()
	}
	for i := range n {
		b, whole := w.s.datagram(i)
		if !whole {
			err = w.lost(errors.New("event larger than its read buffer"))
		} else {
			err = w.handle(b)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// waitOne calls Idle, then waits for one datagram and handles it.
func (w *watcher[E]) waitOne() (rerr, err error) {
	if w.o.Idle != nil {
		if err := w.o.Idle(); err != nil {
			return nil, err
		}
	}
	b, rerr := w.s.recv()
	if rerr != nil {
		return rerr, nil
	}
	return nil, w.handle(b)
}

// handle decodes the events of one datagram and hands each to fn.
func (w *watcher[E]) handle(b []byte) error {
	it := msgIter{b: b}
	for it.next() {
		m := &it.m
		if m.typ>>8 != w.kind.subsys || len(m.data) < nfgenHdrLen {
			continue
		}
		ok, err := w.kind.decode(*m, &w.ev)
		if !ok {
			continue
		}
		if err != nil {
			// A message we cannot parse is a lost event: say so.
			if err := w.lost(err); err != nil {
				return err
			}
			continue
		}
		if err := w.fn(&w.ev); err != nil {
			return err
		}
	}
	return nil
}

// lost reports events that cannot be read: the caller resyncs.
func (w *watcher[E]) lost(err error) error {
	if w.o.OnOverrun == nil {
		return fmt.Errorf("watch %s: %w", w.kind.name, err)
	}
	return w.o.OnOverrun()
}

// Mute stops (or resumes) the delivery of every event to this Conn's
// watches: their sockets leave (or rejoin) their multicast groups. While
// no socket in the kernel listens, the kernel does no event work for the
// entries it creates, which more than doubles the rate of a bulk create. A
// node that commits flows it already knows uses this and repairs what it
// missed meanwhile (flows packets created or destroyed) with a resync.
func (c *Conn) Mute(mute bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.muted = mute
	var first error
	for s, groups := range c.watchers {
		if err := setGroups(s, groups, !mute); err != nil && first == nil {
			first = fmt.Errorf("conntrack events: %w", err)
		}
	}
	return first
}

// setGroups joins or leaves the multicast groups in the bitmask.
func setGroups(s *sock, groups uint32, join bool) error {
	for g := uint32(1); g <= 3; g++ { // NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY
		if groups&(1<<(g-1)) == 0 {
			continue
		}
		var err error
		if join {
			err = s.nl.JoinGroup(g)
		} else {
			err = s.nl.LeaveGroup(g)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
