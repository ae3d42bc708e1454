package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctsync/ctsync/kernel/kerneltest"
	"github.com/ctsync/ctsync/test/wait"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// delay slows every write down, to make a reader fall behind.
	delay time.Duration
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitTimeout bounds every wait.For of these tests.
const waitTimeout = 15 * time.Second

// overrunWarning is the line table events prints on an overrun
// (cmd/ctsync/table/events.go), pinned here as users see it.
const overrunWarning = "ctsync: WARNING: events were lost (netlink receive buffer overrun); raise --buffer-size"

// eventSockets counts the ctnetlink sockets of namespace ns subscribed to
// event groups: a watch is listening once its socket shows up.
func eventSockets(t *testing.T, ns string) int {
	t.Helper()
	out := kerneltest.MustExec(t, ns, "cat", "/proc/net/netlink")
	n := 0
	for _, l := range strings.Split(out, "\n") {
		// sk Eth Pid Groups ...
		if f := strings.Fields(l); len(f) > 3 && f[1] == "12" && f[3] != "00000000" {
			n++
		}
	}
	return n
}

// runCtx runs the command tree with a context the test controls.
func runCtx(ctx context.Context, args []string, stdout, stderr *syncBuffer) error {
	root := newRootCmd(&streams{in: strings.NewReader(""), out: stdout, err: stderr})
	root.SetArgs(args)
	_, err := root.ExecuteContextC(ctx)
	return err
}

var (
	userspace    = regexp.MustCompile(` \[USERSPACE\] portid=(\d+).*$`)
	eventTimeout = regexp.MustCompile(`^(\s*\[[A-Z]+\] \S+ +\d+ )\d+ `)
)

// TestTableEventsMatchConntrack watches the same changes with ctsync table
// events and conntrack -E.
func TestTableEventsMatchConntrack(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)

	ref := exec.Command("ip", "netns", "exec", ns, "conntrack", "-E")
	var refOut, refErr syncBuffer
	ref.Stdout, ref.Stderr = &refOut, &refErr
	if err := ref.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ref.Process.Kill() })

	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		var o, e bytes.Buffer
		code := run([]string{"table", "events", "--netns", ns, "--count", "3"}, strings.NewReader(""), &o, &e)
		out.Write(o.Bytes())
		errOut.Write(e.Bytes())
		done <- code
	}()
	wait.For(t, "both event watches", waitTimeout, func() bool { return eventSockets(t, ns) >= 2 })

	entry := []string{"-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "tcp", "--sport", "10", "--dport", "20"}
	for _, args := range [][]string{
		append(append([]string{"-I"}, entry...), "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "300"),
		append([]string{"-U", "-m", "5"}, entry...),
		append([]string{"-D"}, entry...),
	} {
		if _, errs, code := conntrackRun(t, ns, "", args...); code != 0 {
			t.Fatalf("conntrack %q: %s", args, errs)
		}
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("ctsync table events: exit %d: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ctsync table events --count 3 did not end")
	}
	wait.For(t, "conntrack -E's three events", waitTimeout, func() bool { return strings.Count(refOut.String(), "\n") >= 3 })
	if err := ref.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = ref.Wait()

	norm := func(s string) (lines, ports []string) {
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			if m := userspace.FindStringSubmatch(l); m != nil {
				ports = append(ports, m[1])
			}
			l = userspace.ReplaceAllString(l, "")
			lines = append(lines, eventTimeout.ReplaceAllString(l, "${1}T "))
		}
		return lines, ports
	}
	// conntrack -E writes from its SIGTERM handler while stdio may still be
	// flushing, and so sometimes prints its last line twice: compare the
	// three events the test caused.
	refLines := strings.SplitAfter(refOut.String(), "\n")
	if len(refLines) > 3 {
		refLines = refLines[:3]
	}
	want, wantPorts := norm(strings.Join(refLines, ""))
	got, gotPorts := norm(out.String())
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("events differ:\nconntrack -E:\n%s\nctsync table events:\n%s", refOut.String(), out.String())
	}
	if fmt.Sprint(wantPorts) != fmt.Sprint(gotPorts) || len(gotPorts) != 3 {
		t.Errorf("[USERSPACE] port ids: conntrack %v, ctsync %v", wantPorts, gotPorts)
	}
	for i, tag := range []string{"    [NEW] tcp", " [UPDATE] tcp", "[DESTROY] tcp"} {
		if i >= len(got) || !strings.HasPrefix(got[i], tag) {
			t.Errorf("event %d: want it to start with %q:\n%s", i, tag, out.String())
		}
	}
	if want := "ctsync: 3 flow events have been shown, 0 overruns.\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
}

// TestTableEventsFilters shows only the selected event types and entries.
func TestTableEventsFilters(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runCtx(context.Background(), []string{"table", "events", "--netns", ns, "--count", "2",
			"-e", "NEW,DESTROY", "-p", "udp", "-o", "save"}, &out, &errOut)
	}()
	wait.For(t, "the event watch", waitTimeout, func() bool { return eventSockets(t, ns) >= 1 })
	for _, args := range [][]string{
		{"-I", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "tcp", "--sport", "1", "--dport", "2", "--state", "ESTABLISHED", "-t", "60"},
		{"-I", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "60"},
		{"-U", "-s", "1.1.1.1", "-p", "udp", "-m", "1"},
		{"-D", "-s", "1.1.1.1"},
	} {
		if _, errs, code := conntrackRun(t, ns, "", args...); code != 0 {
			t.Fatalf("conntrack %q: %s", args, errs)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ctsync table events --count 2 did not end")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "-A -t ") || !strings.HasPrefix(lines[1], "-D -t ") ||
		!strings.Contains(lines[0], "-p udp") || !strings.Contains(lines[1], "-p udp") {
		t.Errorf("events -e NEW,DESTROY -p udp -o save printed:\n%s\nwant the udp entry's -A and -D lines", out.String())
	}
}

// TestTableEventsOverrun makes the kernel drop events and checks that the
// watch says so, counts it and goes on.
func TestTableEventsOverrun(t *testing.T) {
	kerneltest.RequireTools(t, "conntrack")
	t.Parallel()
	ns := kerneltest.NewNetNS(t)
	out := &syncBuffer{delay: time.Millisecond} // a slow reader
	var errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runCtx(ctx, []string{"table", "events", "--netns", ns, "-b", "1"}, out, &errOut)
	}()
	wait.For(t, "the event watch", waitTimeout, func() bool { return eventSockets(t, ns) >= 1 })

	var burst strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&burst, "-I -s 10.%d.%d.1 -d 10.0.0.2 -p udp --sport 1 --dport 2 -t 60\n", i/256, i%256)
	}
	if _, errs, code := conntrackRun(t, ns, burst.String(), "-R", "-"); code != 0 {
		t.Fatalf("conntrack -R: %s", errs)
	}
	wait.For(t, "the overrun warning", waitTimeout, func() bool { return strings.Contains(errOut.String(), overrunWarning) })
	// The watch goes on after the overrun.
	shownBefore := strings.Count(out.String(), "\n")
	// While the slow reader still drains the burst its socket may be full
	// (the kernel then counts one more overrun), so new entries are created
	// until one is shown.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; !strings.Contains(out.String(), "src=9.9."); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no event shown after the overrun (%d entries created):\n%s", i, errOut.String())
		}
		src := fmt.Sprintf("9.9.%d.%d", i/256, i%256)
		if _, errs, code := conntrackRun(t, ns, "", "-I", "-s", src, "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2", "-t", "60"); code != 0 {
			t.Fatalf("conntrack -I: %s", errs)
		}
		wait.Until(500*time.Millisecond, func() bool { return strings.Contains(out.String(), "src=9.9.") })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ctsync table events ended with %v", err)
	}
	m := regexp.MustCompile(`ctsync: (\d+) flow events have been shown, (\d+) overruns\.\n$`).FindStringSubmatch(errOut.String())
	if m == nil || m[2] == "0" {
		t.Fatalf("summary missing or without overruns:\n%s", errOut.String())
	}
	if shownBefore == 0 {
		t.Errorf("no event shown before the overrun")
	}
	t.Logf("summary: %s", strings.TrimSpace(m[0]))
}
