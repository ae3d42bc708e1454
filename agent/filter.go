package agent

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/flow"
)

// replFilter decides which flows are replicated (CONTRACT §2 filter): a
// flow failing any rule stays local.
type replFilter struct {
	protos    [256]bool
	ignore    []netip.Prefix
	tcpStates [256]bool
	anyState  bool
}

func newReplFilter(c *config.Filter) (*replFilter, error) {
	f := &replFilter{}
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
	return true
}
