package control_test

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
	"github.com/ctsync/ctsync/flow"
)

// expectBackend is a Backend whose caches hold one expectation.
type expectBackend struct {
	*controltest.Backend
	x flow.Expect
	q control.CacheQuery
}

func (b *expectBackend) CacheExpect(_ context.Context, q control.CacheQuery, fn func(string, *flow.Expect) error) error {
	b.q = q
	return fn("fw-b", &b.x)
}

func TestCacheExpect(t *testing.T) {
	a := netip.MustParseAddr
	x := flow.Expect{
		Tuple:   flow.Tuple{Src: a("10.0.0.2"), Dst: a("10.0.0.1"), Proto: flow.ProtoTCP, DstPort: 50000},
		Mask:    flow.Tuple{Src: a("255.255.255.255"), Dst: a("255.255.255.255"), Proto: flow.ProtoTCP, DstPort: 0xffff},
		Master:  flow.Tuple{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), Proto: flow.ProtoTCP, SrcPort: 40000, DstPort: 21},
		Timeout: 297, Helper: "ftp",
	}
	x.Set(flow.ExpectAttrTimeout | flow.ExpectAttrHelper)
	b := &expectBackend{Backend: &controltest.Backend{}, x: x}
	s := serve(t, b)
	var out bytes.Buffer
	n, err := s.c.Cache(t.Context(), control.CacheQuery{Cache: "external", Origin: "fw-b", Expect: true}, &out)
	check(t, "error", err, nil)
	check(t, "lines", n, 1)
	check(t, "listing", out.String(), x.String()+"\n")
	check(t, "origin asked", b.q.Origin, "fw-b")
	if !strings.HasPrefix(out.String(), "297 proto=6 src=10.0.0.2 dst=10.0.0.1 sport=0 dport=50000 mask-src=") {
		t.Errorf("not conntrack -L expect's format: %q", out.String())
	}
	n, err = s.c.Cache(t.Context(), control.CacheQuery{Cache: "internal", Expect: true, Count: true}, nil)
	check(t, "count error", err, nil)
	check(t, "count", n, 1)
	_, err = s.c.Cache(t.Context(), control.CacheQuery{Cache: "internal", Expect: true, Format: "json"}, &out)
	if err == nil || !strings.Contains(err.Error(), "conntrack -L expect") {
		t.Errorf("json listing of expectations: %v, want refused", err)
	}
	// A Backend without expectations refuses the query.
	s2 := serve(t, &controltest.Backend{})
	if _, err := s2.c.Cache(t.Context(), control.CacheQuery{Cache: "internal", Expect: true}, &out); err == nil || !strings.Contains(err.Error(), "expectations") {
		t.Errorf("backend without expectations: %v", err)
	}
}
