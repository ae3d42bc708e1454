package kerneltest

import (
	"context"
	"fmt"
	"net/netip"
	stdsync "sync"
	"sync/atomic"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// MemTable is an in-memory conntrack table with the kernel.Conn methods the
// agent uses (Dump, Watch, Bulk, Close), for cluster tests that run several
// nodes in one process. Changes made through Insert, Update, Remove and
// Bulk produce events to watchers, in order. It is safe for concurrent use.
type MemTable struct {
	mu       stdsync.Mutex
	flows    map[flow.Key]flow.Flow
	nextID   uint32
	watchers map[chan *flow.Event]*atomic.Bool // value: events were lost
	closed   bool
	lose     int // events still to drop, as a socket overrun would
	muted    bool
	local    []netip.Addr // the node's own addresses (SetLocalAddrs)

	// BeforeBulk, if set, runs at the start of every Bulk call (outside the
	// table's lock): a test's way to change the table while a commit runs.
	BeforeBulk func()
}

// Mute suppresses every event, like kernel.Conn.Mute.
func (m *MemTable) Mute(mute bool) error {
	m.mu.Lock()
	m.muted = mute
	m.mu.Unlock()
	return nil
}

// LoseEvents makes the next n events vanish for every watcher, each of
// which then sees an overrun, as after ENOBUFS on a real socket.
func (m *MemTable) LoseEvents(n int) {
	m.mu.Lock()
	m.lose = n
	m.mu.Unlock()
}

// NewMemTable returns an empty table.
func NewMemTable() *MemTable {
	return &MemTable{flows: make(map[flow.Key]flow.Flow), watchers: make(map[chan *flow.Event]*atomic.Bool)}
}

func (m *MemTable) emitLocked(t flow.EventType, f *flow.Flow, portID uint32) {
	if m.muted {
		return
	}
	if m.lose > 0 {
		m.lose--
		for _, lost := range m.watchers {
			lost.Store(true)
		}
		return
	}
	for ch, lost := range m.watchers {
		select {
		case ch <- &flow.Event{Type: t, Flow: *f, PortID: portID}:
		default:
			lost.Store(true) // like ENOBUFS: the watcher must resync
		}
	}
}

// Insert adds or replaces a flow (a packet creating a connection) and
// reports a NEW event.
func (m *MemTable) Insert(f flow.Flow) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insertLocked(f, 0)
}

func (m *MemTable) insertLocked(f flow.Flow, portID uint32) {
	m.nextID++
	f.ID = m.nextID
	f.Attrs |= flow.AttrID | flow.AttrStatus | flow.AttrTimeout | flow.AttrMark
	f.Status |= flow.StatusConfirmed
	m.flows[f.Key()] = f
	m.emitLocked(flow.EventNew, &f, portID)
}

// Update changes a flow in place and reports an UPDATE event.
func (m *MemTable) Update(f flow.Flow) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.flows[f.Key()]
	if !ok {
		return false
	}
	f.ID = old.ID
	f.Attrs |= flow.AttrID | flow.AttrStatus | flow.AttrTimeout | flow.AttrMark
	m.flows[f.Key()] = f
	m.emitLocked(flow.EventUpdate, &f, 0)
	return true
}

// Remove deletes a flow (expiry) and reports a DESTROY event.
func (m *MemTable) Remove(k flow.Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeLocked(k, 0)
}

func (m *MemTable) removeLocked(k flow.Key, portID uint32) bool {
	f, ok := m.flows[k]
	if !ok {
		return false
	}
	delete(m.flows, k)
	m.emitLocked(flow.EventDestroy, &f, portID)
	return true
}

func (m *MemTable) hasOrigLocked(t flow.Tuple) bool {
	for k := range m.flows {
		if k.Orig == t {
			return true
		}
	}
	return false
}

// Len returns the number of flows.
func (m *MemTable) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.flows)
}

// Get returns the flow with key k.
func (m *MemTable) Get(k flow.Key) (flow.Flow, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.flows[k]
	return f, ok
}

// Flows returns a copy of every flow.
func (m *MemTable) Flows() []flow.Flow {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]flow.Flow, 0, len(m.flows))
	for _, f := range m.flows {
		out = append(out, f)
	}
	return out
}

// Dump calls fn for every flow matching filter's family and mark.
func (m *MemTable) Dump(ctx context.Context, filter kernel.DumpFilter, fn func(*flow.Flow) error) error {
	for _, f := range m.Flows() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if filter.Family != 0 && f.Family() != filter.Family {
			continue
		}
		if filter.MarkMask != 0 && f.Mark&filter.MarkMask != filter.Mark {
			continue
		}
		if filter.HasZone && f.Zone != filter.Zone {
			continue
		}
		if err := fn(&f); err != nil {
			return err
		}
	}
	return nil
}

// Watch delivers events until ctx ends.
func (m *MemTable) Watch(ctx context.Context, o kernel.WatchOptions, fn func(*flow.Event) error) error {
	ch := make(chan *flow.Event, 1<<16)
	lost := new(atomic.Bool)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return kernel.ErrClosed
	}
	m.watchers[ch] = lost
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, ch)
		m.mu.Unlock()
	}()
	if o.Ready != nil {
		o.Ready()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-ch:
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(ch) == 0 && o.Idle != nil {
			if err := o.Idle(); err != nil {
				return err
			}
		}
		if lost.Swap(false) {
			if o.OnOverrun == nil {
				return kernel.ErrOverrun
			}
			if err := o.OnOverrun(); err != nil {
				return err
			}
		}
	}
}

// memPortID is the port id MemTable reports for changes made through Bulk.
const memPortID = 4242

// Bulk applies op to every flow like kernel.Conn.Bulk.
func (m *MemTable) Bulk(ctx context.Context, op kernel.Op, flows []flow.Flow, o kernel.BulkOptions, errs []error) (int, error) {
	if op == kernel.OpGet && len(o.Got) != len(flows) {
		return 0, fmt.Errorf("bulk get: room for %d entries for %d flows (memtable)", len(o.Got), len(flows))
	}
	if m.BeforeBulk != nil {
		m.BeforeBulk()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	failed := 0
	for i := range flows {
		f := flows[i]
		var err error
		switch op {
		case kernel.OpCreate:
			if verr := f.Validate(); verr != nil {
				err = verr
			} else if _, ok := m.flows[f.Key()]; ok {
				err = fmt.Errorf("%w (memtable)", kernel.ErrExist)
			} else if f.Master != nil && !m.hasOrigLocked(*f.Master) {
				// As the kernel: an expected flow needs its master.
				err = fmt.Errorf("%w: no master (memtable)", kernel.ErrNotFound)
			} else {
				if o.Create.Timeout != 0 {
					f.Timeout = o.Create.Timeout
				}
				if f.Master != nil {
					f.Status |= flow.StatusExpected
				}
				m.insertLocked(f, memPortID)
			}
		case kernel.OpDelete:
			if !m.removeLocked(f.Key(), memPortID) {
				err = fmt.Errorf("%w (memtable)", kernel.ErrNotFound)
			}
		case kernel.OpGet:
			got, ok := m.flows[f.Key()]
			if !ok {
				got = flow.Flow{}
				err = fmt.Errorf("%w (memtable)", kernel.ErrNotFound)
			}
			o.Got[i] = got
		case kernel.OpUpdate:
			old, ok := m.flows[f.Key()]
			if !ok {
				err = fmt.Errorf("%w (memtable)", kernel.ErrNotFound)
				break
			}
			if o.Update.Mark {
				old.Mark = f.Mark
			}
			if o.Update.Timeout {
				old.Timeout = f.Timeout
			}
			if o.Update.Status {
				old.Status = f.Status | flow.StatusConfirmed
			}
			if o.Update.Labels {
				old.Labels = f.Labels
			}
			if o.Update.TCP && f.Proto() == flow.ProtoTCP {
				old.TCP.State = f.TCP.State
			}
			m.flows[f.Key()] = old
			m.emitLocked(flow.EventUpdate, &old, memPortID)
		}
		if err != nil {
			failed++
		}
		if errs != nil {
			errs[i] = err
		}
	}
	return failed, nil
}

// Close makes later Watch calls fail.
func (m *MemTable) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// SetLocalAddrs sets the addresses LocalAddrs reports: the node's own
// interface addresses, as kernel.Conn.LocalAddrs reads them.
func (m *MemTable) SetLocalAddrs(addrs ...netip.Addr) {
	m.mu.Lock()
	m.local = append([]netip.Addr(nil), addrs...)
	m.mu.Unlock()
}

// LocalAddrs returns the addresses SetLocalAddrs set (none by default).
func (m *MemTable) LocalAddrs() ([]netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]netip.Addr(nil), m.local...), nil
}
