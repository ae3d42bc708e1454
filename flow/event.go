package flow

// EventType is the kind of change a conntrack event reports.
type EventType uint8

// Event types.
const (
	EventNew EventType = iota + 1
	EventUpdate
	EventDestroy
)

func (t EventType) String() string {
	switch t {
	case EventNew:
		return "NEW"
	case EventUpdate:
		return "UPDATE"
	case EventDestroy:
		return "DESTROY"
	}
	return "UNKNOWN"
}

// Event is one change of a kernel table.
type Event struct {
	Type EventType
	Flow Flow
	// PortID is the netlink port id of the socket whose request caused the
	// change, 0 when the kernel itself (a packet, a timeout) caused it.
	PortID uint32
}
