package sync

import (
	"errors"
	"net"
	"reflect"
	stdsync "sync"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

// memberlist (v0.7) keeps what it thinks of each node — alive, suspect,
// dead or left, and since when — in a table it does not export: the
// memberlist.Node its event delegate and Members() hand out carries a State
// field it never sets (hashicorp/memberlist#266), suspicion has no event at
// all, and NotifyLeave does not say whether a node failed or left. mlTable
// reads that table, under memberlist's own lock, so that `ctsync members`
// shows memberlist's view as it is when asked.
//
// The table's layout is checked when the reader is made: should a
// memberlist upgrade change it, newMLTable fails, the node logs so once and
// falls back to what the events tell (joined: alive; gone: dead), and
// TestMemberlistTableReadable fails.
type mlTable struct {
	lock  *stdsync.RWMutex // memberlist's nodeLock
	nodes reflect.Value    // memberlist's nodes: []*nodeState
}

// mlNode is one row of memberlist's table.
type mlNode struct {
	name  string
	addr  net.IP
	port  uint16
	state memberlist.NodeStateType
	since time.Time
}

var errMLLayout = errors.New("memberlist's node table has an unexpected layout")

func newMLTable(ml *memberlist.Memberlist) (*mlTable, error) {
	v := reflect.ValueOf(ml).Elem()
	lock, nodes := v.FieldByName("nodeLock"), v.FieldByName("nodes")
	if !lock.IsValid() || lock.Type() != reflect.TypeFor[stdsync.RWMutex]() ||
		!nodes.IsValid() || nodes.Kind() != reflect.Slice || nodes.Type().Elem().Kind() != reflect.Pointer {
		return nil, errMLLayout
	}
	st := nodes.Type().Elem().Elem()
	for _, f := range []struct {
		name string
		typ  reflect.Type
	}{
		{"Name", reflect.TypeFor[string]()}, {"Addr", reflect.TypeFor[net.IP]()}, {"Port", reflect.TypeFor[uint16]()},
		{"State", reflect.TypeFor[memberlist.NodeStateType]()}, {"StateChange", reflect.TypeFor[time.Time]()},
	} {
		sf, ok := st.FieldByName(f.name)
		if !ok || sf.Type != f.typ {
			return nil, errMLLayout
		}
	}
	// State must be nodeState's own (the embedded Node's is never set).
	if sf, _ := st.FieldByName("State"); len(sf.Index) != 1 {
		return nil, errMLLayout
	}
	return &mlTable{
		lock:  (*stdsync.RWMutex)(unsafe.Pointer(lock.UnsafeAddr())),
		nodes: reflect.NewAt(nodes.Type(), unsafe.Pointer(nodes.UnsafeAddr())).Elem(),
	}, nil
}

// read copies the table. It takes memberlist's lock: never call it from a
// memberlist callback (they run with the lock held).
func (t *mlTable) read() []mlNode {
	t.lock.RLock()
	defer t.lock.RUnlock()
	out := make([]mlNode, 0, t.nodes.Len())
	for i := range t.nodes.Len() {
		p := t.nodes.Index(i)
		if p.IsNil() {
			continue
		}
		ns := p.Elem()
		out = append(out, mlNode{
			name:  ns.FieldByName("Name").String(),
			addr:  append(net.IP(nil), ns.FieldByName("Addr").Bytes()...),
			port:  uint16(ns.FieldByName("Port").Uint()),
			state: memberlist.NodeStateType(ns.FieldByName("State").Int()),
			since: *(*time.Time)(unsafe.Pointer(ns.FieldByName("StateChange").UnsafeAddr())),
		})
	}
	return out
}
