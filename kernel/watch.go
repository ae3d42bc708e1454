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

// WatchOptions tune Watch.
type WatchOptions struct {
	// New, Update and Destroy select event types; all false means all.
	New, Update, Destroy bool
	// ReadBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE);
	// 0 means 64 MiB. A larger buffer absorbs longer bursts.
	ReadBuffer int
	// OnOverrun, if set, is called when the kernel reports that events were
	// lost (ENOBUFS); the watch then goes on. If it returns an error, Watch
	// returns that error. Without OnOverrun, Watch returns ErrOverrun.
	OnOverrun func() error
	// Ready, if set, is called once the socket is subscribed: events from
	// then on are delivered.
	Ready func()
	// Idle, if set, is called whenever every queued event has been
	// delivered and Watch is about to wait for more: the moment to hand a
	// batch of events on. If it returns an error, Watch returns it.
	Idle func() error
}

// Watch delivers the table's events to fn in the kernel's order, from one
// socket read by one goroutine, until ctx is cancelled (then it returns nil)
// or fn returns an error. The *flow.Event is reused between calls.
//
// Lost events are never silent: see WatchOptions.OnOverrun.
func (c *Conn) Watch(ctx context.Context, o WatchOptions, fn func(*flow.Event) error) error {
	groups := uint32(0)
	if o.New {
		groups |= groupNew
	}
	if o.Update {
		groups |= groupUpdate
	}
	if o.Destroy {
		groups |= groupDestroy
	}
	if groups == 0 {
		groups = groupNew | groupUpdate | groupDestroy
	}
	rb := o.ReadBuffer
	if rb <= 0 {
		rb = eventBufSize
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	nsfd := c.nsfd
	c.mu.Unlock()
	s, err := openSock(nsfd, groups, rb)
	if err != nil {
		return fmt.Errorf("watch conntrack events: %w", err)
	}
	defer s.close()
	c.mu.Lock()
	if c.watchers == nil {
		c.watchers = make(map[*sock]uint32)
	}
	c.watchers[s] = groups
	if c.muted {
		_ = setGroups(s, groups, false)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.watchers, s)
		c.mu.Unlock()
	}()
	stop := s.deadline(ctx, 0)
	defer stop()
	if o.Ready != nil {
		o.Ready()
	}
	var ev flow.Event
	// lost reports events that cannot be read: the caller resyncs.
	lost := func(err error) error {
		if o.OnOverrun == nil {
			return fmt.Errorf("watch conntrack events: %w", err)
		}
		return o.OnOverrun()
	}
	handle := func(b []byte) error {
		it := msgIter{b: b}
		for it.next() {
			m := &it.m
			if m.typ>>8 != nfnlSubsysCT || len(m.data) < nfgenHdrLen {
				continue
			}
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
				continue
			}
			ev.PortID = m.pid
			if err := decodeFlow(m.data[nfgenHdrLen:], &ev.Flow); err != nil {
				// A message we cannot parse is a lost event: say so.
				if err := lost(err); err != nil {
					return err
				}
				continue
			}
			if err := fn(&ev); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		n, err := s.tryRecvBatch()
		if err == nil && n == 0 {
			if o.Idle != nil {
				if err := o.Idle(); err != nil {
					return err
				}
			}
			var b []byte
			if b, err = s.recv(); err == nil {
				if err := handle(b); err != nil {
					return err
				}
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrOverrun) {
				if err := lost(err); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("watch conntrack events: %w", err)
		}
		for i := range n {
			b, whole := s.datagram(i)
			if !whole {
				if err := lost(errors.New("event larger than its read buffer")); err != nil {
					return err
				}
				continue
			}
			if err := handle(b); err != nil {
				return err
			}
		}
	}
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
