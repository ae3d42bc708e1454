package flow

import (
	"fmt"
	"net/netip"
	"strconv"
)

// ExpectAttr says which optional attributes an expectation carries.
type ExpectAttr uint16

// Expectation attribute presence bits.
const (
	ExpectAttrTimeout ExpectAttr = 1 << iota
	ExpectAttrID
	ExpectAttrHelper
	ExpectAttrZone
	ExpectAttrFlags
	ExpectAttrClass
	ExpectAttrNAT
	ExpectAttrFn
)

// Expectation flags (the kernel's NF_CT_EXPECT_*).
const (
	ExpectPermanent uint32 = 1 << 0
	ExpectInactive  uint32 = 1 << 1
	ExpectUserspace uint32 = 1 << 2
)

// Expect is a kernel expectation: a connection a helper (ftp, sip, ...)
// announced on a master connection; the first packet matching Tuple under
// Mask creates a RELATED flow whose Master is the expectation's Master.
type Expect struct {
	Tuple  Tuple // the expected connection's original tuple
	Mask   Tuple // which bits of Tuple must match (Proto is Tuple's)
	Master Tuple // the master connection's original tuple

	Timeout uint32 // seconds left
	ID      uint32
	Helper  string // the master's helper (ftp, sip, ...)
	Zone    uint16
	Flags   uint32 // Expect* bits
	Class   uint32

	// NAT: where the expected connection is mangled to (the helper's
	// saved address and port), in direction NATDir of the master.
	NATDir   uint32
	NATTuple Tuple
	Fn       string // the expectfn name, e.g. "nat-follow-master"

	Attrs ExpectAttr
}

// ExpectKey identifies an expectation within a table: the kernel finds
// expectations by tuple and zone.
type ExpectKey struct {
	Tuple Tuple
	Zone  uint16
}

// Key returns the expectation's identity.
func (e *Expect) Key() ExpectKey { return ExpectKey{Tuple: e.Tuple, Zone: e.Zone} }

// Has reports whether every attribute in a is set.
func (e *Expect) Has(a ExpectAttr) bool { return e.Attrs&a == a }

// Set marks attributes as present.
func (e *Expect) Set(a ExpectAttr) { e.Attrs |= a }

// Family returns the expectation's address family.
func (e *Expect) Family() Family { return e.Tuple.Family() }

// Validate checks that e can be created in a kernel table.
func (e *Expect) Validate() error {
	switch {
	case !e.Tuple.Src.IsValid() || !e.Tuple.Dst.IsValid():
		return fmt.Errorf("expectation without addresses")
	case !e.Master.Src.IsValid() || !e.Master.Dst.IsValid():
		return fmt.Errorf("expectation without master tuple")
	case e.Master.Family() != e.Tuple.Family():
		return fmt.Errorf("expectation and master of different families")
	case e.Mask.Src.IsValid() && e.Mask.Family() != e.Tuple.Family():
		return fmt.Errorf("expectation mask of another family")
	}
	return nil
}

// AppendText appends the expectation as conntrack -L expect prints it,
// byte for byte as libnetfilter_conntrack formats it: timeout, proto=, the
// expected tuple, mask-src=/mask-dst= and the mask's layer-4 fields,
// master-src=/master-dst= and the master's, zone=, the flags
// (PERMANENT,INACTIVE,USERSPACE), class= and helper=. NAT and the
// expectfn are not printed, as conntrack does not print them. No trailing
// newline is written.
func (e *Expect) AppendText(b []byte) []byte {
	start := len(b)
	if e.Has(ExpectAttrTimeout) {
		b = strconv.AppendUint(b, uint64(e.Timeout), 10)
		b = append(b, ' ')
	}
	b = append(b, "proto="...)
	b = strconv.AppendUint(b, uint64(e.Tuple.Proto), 10)
	b = append(b, ' ')
	fam := e.Family()
	b = appendNamedTuple(b, "src=", "dst=", &e.Tuple, fam, e.Tuple.Proto)
	b = appendNamedTuple(b, "mask-src=", "mask-dst=", &e.Mask, fam, e.Tuple.Proto)
	b = appendNamedTuple(b, "master-src=", "master-dst=", &e.Master, fam, e.Master.Proto)
	if e.Has(ExpectAttrZone) {
		b = append(b, "zone="...)
		b = strconv.AppendUint(b, uint64(e.Zone), 10)
		b = append(b, ' ')
	}
	delim := ""
	if e.Flags&ExpectPermanent != 0 {
		b = append(b, "PERMANENT"...)
		delim = ","
	}
	if e.Flags&ExpectInactive != 0 {
		b = append(b, delim...)
		b = append(b, "INACTIVE"...)
		delim = ","
	}
	if e.Flags&ExpectUserspace != 0 {
		b = append(b, delim...)
		b = append(b, "USERSPACE"...)
	}
	if e.Flags != 0 {
		b = append(b, ' ')
	}
	if e.Has(ExpectAttrClass) {
		b = append(b, "class="...)
		b = strconv.AppendUint(b, uint64(e.Class), 10)
		b = append(b, ' ')
	}
	if e.Has(ExpectAttrHelper) {
		b = append(b, "helper="...)
		b = append(b, e.Helper...)
	}
	if len(b) > start && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// String returns the conntrack -L expect line.
func (e *Expect) String() string { return string(e.AppendText(nil)) }

// appendNamedTuple is appendTupleText with the address labels given:
// libnetfilter_conntrack prints the family's addresses (zero when unset),
// then the protocol's fields.
func appendNamedTuple(b []byte, src, dst string, t *Tuple, fam Family, proto uint8) []byte {
	if fam == IPv4 || fam == IPv6 {
		b = append(b, src...)
		b = appendIP(b, t.Src, fam)
		b = append(b, ' ')
		b = append(b, dst...)
		b = appendIP(b, t.Dst, fam)
		b = append(b, ' ')
	}
	l4 := *t
	l4.Src, l4.Dst = netip.Addr{}, netip.Addr{}
	return appendTupleText(b, &l4, proto)
}

// ExpectEvent is one change of a kernel expectation table.
type ExpectEvent struct {
	Type   EventType // EventNew or EventDestroy (the kernel sends no updates)
	Expect Expect
	PortID uint32 // as Event.PortID
}
