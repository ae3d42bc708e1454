package kernel_test

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

var expectTimeout = regexp.MustCompile(`^\d+ `)

// expectLines returns conntrack -L expect's lines, sorted, timeouts masked.
func expectLines(t *testing.T, ns string) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(conntrack(t, ns, "-L", "expect")), "\n") {
		if l != "" {
			lines = append(lines, expectTimeout.ReplaceAllString(l, "T "))
		}
	}
	sort.Strings(lines)
	return lines
}

// ourExpectLines is expectLines from ctsync's own dump and formatter.
func ourExpectLines(t *testing.T, c *kernel.Conn) []string {
	t.Helper()
	xs, err := c.ListExpect(ctx(t), kernel.ExpectFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range xs {
		lines = append(lines, expectTimeout.ReplaceAllString(xs[i].String(), "T "))
	}
	sort.Strings(lines)
	return lines
}

func TestExpectDumpMatchesConntrack(t *testing.T) {
	c, ns := dial(t)
	kerneltest.FTPExpectation(t, ns, 21, 50000)
	kerneltest.FTPExpectation(t, ns, 2121, 50001)
	want := expectLines(t, ns)
	if len(want) != 2 {
		t.Fatalf("conntrack -L expect: want 2 expectations, got %q", want)
	}
	got := ourExpectLines(t, c)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ctsync:\n%s\nconntrack:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	xs, err := c.ListExpect(ctx(t), kernel.ExpectFilter{Family: flow.IPv6})
	if err != nil || len(xs) != 0 {
		t.Errorf("IPv6 dump: %v, %v; want none", xs, err)
	}
}

// replicate copies the masters (flows with a helper) and expectations of
// src into dst, as a backup node commits them: masters first.
func replicate(t *testing.T, src, dst *kernel.Conn) []flow.Expect {
	t.Helper()
	flows, err := src.List(ctx(t), kernel.DumpFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		if flows[i].Helper == "" {
			continue
		}
		if err := dst.Create(ctx(t), &flows[i], kernel.CreateOptions{}); err != nil {
			t.Fatalf("create master %v: %v", flows[i].Orig, err)
		}
	}
	xs, err := src.ListExpect(ctx(t), kernel.ExpectFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range xs {
		if err := dst.CreateExpect(ctx(t), &xs[i]); err != nil {
			t.Fatalf("create expectation %s: %v", xs[i].String(), err)
		}
	}
	return xs
}

func TestExpectCreateMatchesOwner(t *testing.T) {
	src, ns := dial(t)
	kerneltest.FTPExpectation(t, ns, 21, 50000)
	kerneltest.FTPExpectation(t, ns, 2121, 50001)
	dst, ns2 := dial(t)
	xs := replicate(t, src, dst)
	if len(xs) != 2 {
		t.Fatalf("want 2 expectations, got %d", len(xs))
	}
	want, got := expectLines(t, ns), expectLines(t, ns2)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("copy:\n%s\noriginal:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Get, create again (exists), delete (then gone), flush.
	x := xs[0]
	x.Attrs &^= flow.ExpectAttrID
	g, err := dst.GetExpect(ctx(t), &x)
	if err != nil || g.Tuple != x.Tuple || g.Master != x.Master || g.Helper != "ftp" {
		t.Fatalf("get: %+v, %v", g, err)
	}
	if err := dst.CreateExpect(ctx(t), &x); !errors.Is(err, kernel.ErrExist) {
		t.Errorf("second create: %v, want ErrExist", err)
	}
	if err := dst.DeleteExpect(ctx(t), &x); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := dst.GetExpect(ctx(t), &x); !errors.Is(err, kernel.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if err := dst.DeleteExpect(ctx(t), &x); !errors.Is(err, kernel.ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
	if n := len(expectLines(t, ns2)); n != 1 {
		t.Errorf("after delete: %d expectations, want 1", n)
	}
	if err := dst.FlushExpect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(expectLines(t, ns2)); n != 0 {
		t.Errorf("after flush: %d expectations, want 0", n)
	}
	// The master must exist.
	if err := src.FlushExpect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	dst2, _ := dial(t)
	if err := dst2.CreateExpect(ctx(t), &x); !errors.Is(err, kernel.ErrNotFound) {
		t.Errorf("create without master: %v, want ErrNotFound", err)
	}
}

// TestExpectCreateByConntrack checks an expectation conntrack -I expect
// creates on a master ctsync created is dumped as conntrack prints it.
func TestExpectCreateByConntrack(t *testing.T) {
	c, ns := dial(t)
	f := tcpFlow("10.0.0.1", "10.0.0.2", 40000, 21)
	f.Helper = "ftp"
	if err := c.Create(ctx(t), &f, kernel.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	conntrack(t, ns, "-I", "expect", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "tcp", "--sport", "40000", "--dport", "21",
		"--tuple-src", "10.0.0.2", "--tuple-dst", "10.0.0.1", "--tuple-port-src", "0", "--tuple-port-dst", "50000",
		"--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255", "--mask-port-src", "0", "--mask-port-dst", "65535", "-t", "200")
	want, got := expectLines(t, ns), ourExpectLines(t, c)
	if len(want) != 1 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ctsync:\n%s\nconntrack:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWatchExpect(t *testing.T) {
	c, ns := dial(t)
	evc := make(chan flow.ExpectEvent, 16)
	ready := make(chan struct{})
	wctx, cancel := context.WithCancel(ctx(t))
	done := make(chan error, 1)
	go func() {
		done <- c.WatchExpect(wctx, kernel.WatchOptions{Ready: func() { close(ready) }}, func(ev *flow.ExpectEvent) error {
			evc <- *ev
			return nil
		})
	}()
	<-ready
	kerneltest.FTPExpectation(t, ns, 21, 50000)
	if err := c.FlushExpect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []flow.EventType{flow.EventNew, flow.EventDestroy} {
		select {
		case ev := <-evc:
			if ev.Type != want || ev.Expect.Tuple.DstPort != 50000 || ev.Expect.Master.DstPort != 21 {
				t.Errorf("event %v %s, want %v of the :50000 expectation", ev.Type, ev.Expect.String(), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %v event", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
