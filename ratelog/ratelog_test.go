package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTest(every time.Duration) (*Limiter, *fakeClock, *bytes.Buffer, *slog.Logger) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l := New(every)
	l.now = clk.now
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	return l, clk, &buf, log
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestLimiterSuppressesAndCounts(t *testing.T) {
	l, clk, buf, log := newTest(10 * time.Second)
	for i := 0; i < 100; i++ {
		l.Warn(log, "overrun", "kernel event overrun", "n", i)
		clk.advance(50 * time.Millisecond) // 5 s in all
	}
	got := lines(buf)
	if len(got) != 1 || got[0] != `level=WARN msg="kernel event overrun" n=0` {
		t.Fatalf("100 warnings in 5 s logged %q, want only the first", got)
	}
	clk.advance(5 * time.Second)
	l.Warn(log, "overrun", "kernel event overrun", "n", 100)
	got = lines(buf)
	if len(got) != 1 || got[0] != `level=WARN msg="kernel event overrun" n=100 suppressed=99` {
		t.Fatalf("after the interval: %q, want the line with suppressed=99", got)
	}
	// The count restarts: the next line after a quiet interval has none.
	clk.advance(11 * time.Second)
	l.Warn(log, "overrun", "kernel event overrun", "n", 101)
	if got = lines(buf); len(got) != 1 || strings.Contains(got[0], "suppressed") {
		t.Fatalf("after a quiet interval: %q, want one line without suppressed", got)
	}
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	l, clk, buf, log := newTest(10 * time.Second)
	l.Warn(log, "a", "first a")
	l.Warn(log, "b", "first b")
	l.Warn(log, "a", "second a")
	l.Error(log, "c", "first c")
	clk.advance(time.Second)
	l.Warn(log, "b", "second b")
	got := lines(buf)
	want := []string{`level=WARN msg="first a"`, `level=WARN msg="first b"`, `level=ERROR msg="first c"`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLimiterDisabledLevelIsNotCounted(t *testing.T) {
	l, clk, buf, _ := newTest(10 * time.Second)
	quiet := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelError}))
	l.Warn(quiet, "k", "not logged")
	if got := lines(buf); got != nil {
		t.Fatalf("a warning below the level was logged: %q", got)
	}
	clk.advance(time.Hour)
	if ok, n := l.allow("k"); !ok || n != 0 {
		t.Fatalf("allow after a disabled-level line: %v, %d; want true, 0", ok, n)
	}
}

func TestNilLimiterLogsEverything(t *testing.T) {
	var l *Limiter
	_, _, buf, log := newTest(time.Second)
	for i := 0; i < 3; i++ {
		l.Warn(log, "k", "line")
	}
	if got := lines(buf); len(got) != 3 {
		t.Fatalf("nil limiter logged %d lines, want 3", len(got))
	}
	l.Warn(nil, "k", "no logger: no panic")
}

func TestLimiterDoesNotModifyArgs(t *testing.T) {
	l, clk, buf, log := newTest(time.Second)
	args := make([]any, 2, 10)
	args[0], args[1] = "x", 1
	l.Warn(log, "k", "m", args...)
	l.Warn(log, "k", "m", args...)
	clk.advance(2 * time.Second)
	l.Warn(log, "k", "m", args...)
	if extra := args[:4]; extra[2] != nil {
		t.Fatalf("Warn wrote into the caller's args: %v", extra)
	}
	lines(buf)
}

func TestLimiterForgetsOldKeys(t *testing.T) {
	l, clk, _, log := newTest(time.Second)
	for i := 0; i < maxKeys; i++ {
		l.Warn(log, fmt.Sprint(i), "m")
	}
	clk.advance(2 * time.Second)
	l.Warn(log, "new", "m")
	if n := len(l.keys); n != 1 {
		t.Fatalf("%d keys remembered after the old ones expired, want 1", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := New(time.Hour)
	var buf bytes.Buffer
	var mu stdsync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	var wg stdsync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				l.Warn(log, "k", "m")
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("8000 concurrent warnings logged %d lines, want 1", n)
	}
}

type lockedWriter struct {
	mu *stdsync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
