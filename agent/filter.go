package agent

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
)

// replFilter decides which flows are replicated and what of them leaves the
// node (filter.* in docs/interface.md, "Configuration file"): a flow failing
// any rule stays local, and its label bits outside filter.labels are cleared.
// It is immutable once built; Reload swaps in a new one.
type replFilter struct {
	protos    [256]bool
	ignore    []netip.Prefix
	tcpStates [256]bool
	anyState  bool
	zones     map[uint16]bool // nil = all
	marks     []config.MarkRule
	ports     []config.PortRule
	labels    flow.Labels // bits that may leave the node
	allLabels bool
	minAge    time.Duration
}

func newReplFilter(c *config.Filter) (*replFilter, error) {
	f := &replFilter{minAge: c.MinAge.Duration()}
	for _, p := range c.Protocols {
		n, err := flow.ParseProto(strings.ToLower(p))
		if err != nil {
			return nil, fmt.Errorf("filter.protocols: %w", err)
		}
		f.protos[n] = true
	}
	for _, a := range c.IgnoreAddresses {
		p, err := flow.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("filter.ignore_addresses: %w", err)
		}
		f.ignore = append(f.ignore, p)
	}
	f.anyState = len(c.TCPStates) == 0
	for _, s := range c.TCPStates {
		n, err := flow.ParseTCPState(s)
		if err != nil {
			return nil, fmt.Errorf("filter.tcp_states: %w", err)
		}
		f.tcpStates[n] = true
	}
	if len(c.Zones) > 0 {
		f.zones = make(map[uint16]bool, len(c.Zones))
		for _, z := range c.Zones {
			if z < 0 || z > 0xffff {
				return nil, fmt.Errorf("filter.zones: zone %d out of range", z)
			}
			f.zones[uint16(z)] = true
		}
	}
	for _, s := range c.Marks {
		m, err := config.ParseMark(s)
		if err != nil {
			return nil, fmt.Errorf("filter.marks: %w", err)
		}
		f.marks = append(f.marks, m)
	}
	for _, s := range c.IgnorePorts {
		r, err := config.ParsePortRule(s)
		if err != nil {
			return nil, fmt.Errorf("filter.ignore_ports: %w", err)
		}
		f.ports = append(f.ports, r)
	}
	m, err := c.LabelMask()
	if err != nil {
		return nil, err
	}
	f.labels = m
	f.allLabels = m == flow.Labels{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff,
		8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	return f, nil
}

// pass reports whether f is replicated.
func (r *replFilter) pass(f *flow.Flow) bool {
	if !r.protos[f.Proto()] {
		return false
	}
	for _, p := range r.ignore {
		// The flow's two real endpoints, as conntrackd checks them.
		if p.Contains(f.Orig.Src) || p.Contains(f.Reply.Src) {
			return false
		}
	}
	if f.Proto() == flow.ProtoTCP && !r.anyState && f.Has(flow.AttrTCP) && !r.tcpStates[f.TCP.State] {
		return false
	}
	if r.zones != nil && !r.zones[f.Zone] {
		return false
	}
	if len(r.marks) > 0 {
		ok := false
		for _, m := range r.marks {
			if f.Mark&m.Mask == m.Value {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.Orig.HasPorts() {
		for _, p := range r.ports {
			if p.Proto == f.Proto() && f.Orig.DstPort >= p.Min && f.Orig.DstPort <= p.Max {
				return false
			}
		}
	}
	return true
}

// mask clears the label bits that must not leave the node.
func (r *replFilter) mask(f *flow.Flow) {
	if r.allLabels || f.Labels.IsZero() {
		return
	}
	for i := range f.Labels {
		f.Labels[i] &= r.labels[i]
	}
	if f.Labels.IsZero() {
		f.Attrs &^= flow.AttrLabels
	}
}

// pendingFlow is a flow younger than filter.min_age: seen, not yet
// replicated. flow is its latest state, seen at the clock reading seen.
type pendingFlow struct {
	first, seen int64
	flow        flow.Flow
}

// pending holds the flows that wait for filter.min_age before they enter the
// internal cache (and so replication). Only the agent's loop goroutine uses
// it: events, resyncs and the promotion ticker all run there.
type pending map[flow.Key]*pendingFlow

// hold records f, first seen at now unless already held, and reports
// whether it is old enough to be replicated now (then it is no longer held
// and f carries its timeout as of now).
func (p pending) hold(f *flow.Flow, now int64, minAge time.Duration) bool {
	k := f.Key()
	e := p[k]
	if e == nil {
		e = &pendingFlow{first: now}
		p[k] = e
	}
	e.seen, e.flow = now, *f
	if now-e.first < int64(minAge) {
		return false
	}
	delete(p, k)
	return true
}

// drop forgets f: it ended (or stopped passing the filter) before it was
// old enough, and is never sent.
func (p pending) drop(f *flow.Flow) { delete(p, f.Key()) }

// due removes and returns the held flows old enough at now, their
// timeouts reduced by the time since their state was seen.
func (p pending) due(now int64, minAge time.Duration) []flow.Flow {
	var out []flow.Flow
	for k, e := range p {
		if now-e.first < int64(minAge) {
			continue
		}
		f := e.flow
		if el := uint32((now - e.seen) / int64(time.Second)); f.Timeout > el {
			f.Timeout -= el
		} else if f.Timeout > 0 {
			f.Timeout = 1
		}
		out = append(out, f)
		delete(p, k)
	}
	return out
}
