package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// socketPath returns a socket path in a new short directory: UNIX socket
// paths are limited to 107 bytes, which t.TempDir can exceed.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctsync-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ctsync.sock")
}

type served struct {
	srv  *control.Server
	c    *control.Client
	path string
	stop func() error // cancels Serve and returns what it returned
}

// serve runs a server with b on a new socket until the test ends. setup
// runs between Listen and Serve.
func serve(t *testing.T, b control.Backend, setup ...func(*control.Server)) *served {
	t.Helper()
	path := socketPath(t)
	srv, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, b, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &served{srv: srv, c: control.Dial(path), path: path, stop: stop}
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func lastCall(t *testing.T, b *controltest.Backend, method string, arg any) {
	t.Helper()
	check(t, "last backend call", b.LastCall(), controltest.Call{Method: method, Arg: arg})
}

func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	members := []control.Member{
		{Name: "fw-a", Addr: "10.0.3.1:7946", State: "alive", Self: true, Connected: true, InSync: true},
		{Name: "fw-b", Addr: "10.0.3.2:7946", State: "suspect"},
	}
	b := &controltest.Backend{
		CommitResult: control.CommitResult{Created: 99998, Replaced: 2, Seconds: 0.312},
		ResyncResult: control.ResyncResult{Flows: 10, Removed: 2, Seconds: 0.05},
		Peers:        3,
		StatsValue:   stats.Stats{Node: "fw-a", Internal: stats.Internal{Flows: 10}, Sync: stats.Sync{DecodeErrors: 3}},
		MemberList:   members,
		NotifyResult: control.NotifyResult{Steps: []control.NotifyStep{{Name: "commit", Seconds: 0.1, Detail: "2 flows"}}},
		HealthResult: control.HealthResult{Ready: true, Reason: "in sync"},
	}
	s := serve(t, b)
	c := s.c

	res, err := c.Commit(ctx)
	check(t, "Commit", res, b.CommitResult)
	check(t, "Commit error", err, nil)
	lastCall(t, b, "Commit", nil)

	for _, which := range []string{"internal", "external", ""} {
		check(t, "Flush "+which, c.Flush(ctx, which), nil)
		lastCall(t, b, "Flush", which)
	}

	rr, err := c.ResyncKernel(ctx)
	check(t, "ResyncKernel", rr, b.ResyncResult)
	check(t, "ResyncKernel error", err, nil)
	lastCall(t, b, "ResyncKernel", nil)

	n, err := c.ResyncPeers(ctx)
	check(t, "ResyncPeers", n, 3)
	check(t, "ResyncPeers error", err, nil)
	lastCall(t, b, "ResyncPeers", nil)

	n, err = c.SendBulk(ctx)
	check(t, "SendBulk", n, 3)
	check(t, "SendBulk error", err, nil)
	lastCall(t, b, "SendBulk", nil)

	for _, after := range []time.Duration{0, 1500 * time.Millisecond} {
		pr, err := c.Purge(ctx, after)
		check(t, "Purge error", err, nil)
		lastCall(t, b, "Purge", after)
		want := after
		if want == 0 {
			want = controltest.DefaultPurge
		}
		check(t, "Purge seconds", pr.Seconds, want.Seconds())
		if d := time.Until(pr.At); d <= 0 || d > want {
			t.Errorf("Purge at %v, want within %v from now", pr.At, want)
		}
	}

	var st stats.Stats
	check(t, "Stats error", c.Stats(ctx, &st), nil)
	check(t, "Stats", st, b.StatsValue)
	var raw json.RawMessage
	check(t, "Stats raw error", c.Stats(ctx, &raw), nil)
	if !json.Valid(raw) || !strings.Contains(string(raw), `"internal_cache"`) {
		t.Errorf("Stats raw = %s", raw)
	}

	ms, err := c.Members(ctx)
	check(t, "Members", ms, members)
	check(t, "Members error", err, nil)

	for _, state := range []string{"master", "backup", "fault", "stop", "MASTER"} {
		nr, err := c.Notify(ctx, state)
		check(t, "Notify error", err, nil)
		want := strings.ToLower(state)
		lastCall(t, b, "Notify", want)
		check(t, "Notify result", nr, control.NotifyResult{State: want, Steps: b.NotifyResult.Steps})
	}

	hr, err := c.Health(ctx)
	check(t, "Health", hr, control.HealthResult{Ready: true, Reason: "in sync"})
	check(t, "Health error", err, nil)

	var shut int
	b.Update(func(b *controltest.Backend) { b.OnShutdown = func() { shut++ } })
	check(t, "Shutdown", c.Shutdown(ctx), nil)
	lastCall(t, b, "Shutdown", nil)
	b.Update(func(*controltest.Backend) { check(t, "shutdown hook runs", shut, 1) })
}

func TestMembersEmptyIsList(t *testing.T) {
	s := serve(t, &controltest.Backend{})
	code, body := raw(t, s.path, http.MethodGet, "/v1/members", "")
	if code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /v1/members without members: %d %q, want 200 []", code, body)
	}
}

func TestHealthNotReady(t *testing.T) {
	b := &controltest.Backend{HealthResult: control.HealthResult{Ready: false, Reason: "cluster not joined"}}
	s := serve(t, b)
	hr, err := s.c.Health(t.Context())
	check(t, "Health error", err, nil)
	check(t, "Health", hr, control.HealthResult{Ready: false, Reason: "cluster not joined"})
	code, _ := raw(t, s.path, http.MethodGet, "/v1/health", "")
	check(t, "status", code, http.StatusServiceUnavailable)

	b.Update(func(b *controltest.Backend) { b.Errors = map[string]error{"Health": errors.New("agent stopped")} })
	hr, err = s.c.Health(t.Context())
	check(t, "Health error", err, nil)
	check(t, "Health", hr, control.HealthResult{Ready: false, Reason: "agent stopped"})
}

func TestCacheQuery(t *testing.T) {
	ctx := t.Context()
	web := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 40000, 80)
	ssh := controltest.TCPFlow("10.0.0.1", "10.0.0.3", 40001, 22)
	other := controltest.TCPFlow("10.0.1.1", "10.0.0.2", 40002, 80)
	b := &controltest.Backend{
		Internal: []controltest.Flow{{Origin: "fw-a", Flow: web}, {Origin: "fw-a", Flow: ssh}},
		External: []controltest.Flow{{Origin: "fw-b", Flow: web}, {Origin: "fw-c", Flow: other}},
	}
	s := serve(t, b)
	port80 := flow.Filter{HasProto: true, Proto: flow.ProtoTCP, HasDstPort: true, DstPort: 80}
	text := func(f flow.Flow, o flow.TextOptions) string { return string(f.AppendText(nil, o)) + "\n" }

	tests := []struct {
		name  string
		q     control.CacheQuery
		want  string
		lines int
	}{
		{"internal all", control.CacheQuery{Cache: "internal"},
			text(web, flow.TextOptions{}) + text(ssh, flow.TextOptions{}), 2},
		{"internal filtered", control.CacheQuery{Cache: "internal", Filter: port80},
			text(web, flow.TextOptions{}), 1},
		{"extended and id", control.CacheQuery{Cache: "internal", Filter: port80, Extended: true, ID: true},
			text(web, flow.TextOptions{Extended: true, ID: true}), 1},
		{"save", control.CacheQuery{Cache: "internal", Filter: port80, Format: "save"},
			string(web.AppendSave(nil, 'A')) + "\n", 1},
		{"json with origin", control.CacheQuery{Cache: "external", Format: "json"},
			string(web.AppendJSON(nil, "fw-b")) + "\n" + string(other.AppendJSON(nil, "fw-c")) + "\n", 2},
		{"one origin", control.CacheQuery{Cache: "external", Origin: "fw-c"},
			text(other, flow.TextOptions{}), 1},
		{"extra filter applied by the server", control.CacheQuery{Cache: "internal",
			Extra: flow.ExtraFilter{HasTimeout: true, Timeout: 7}}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			n, err := s.c.Cache(ctx, tt.q, &out)
			check(t, "error", err, nil)
			check(t, "lines", n, tt.lines)
			check(t, "output", out.String(), tt.want)
			lastCall(t, b, "Cache", tt.q)

			q := tt.q
			q.Count, q.Format, q.Extended, q.ID = true, "", false, false
			out.Reset()
			n, err = s.c.Cache(ctx, q, &out)
			check(t, "count error", err, nil)
			check(t, "count", n, tt.lines)
			check(t, "count output", out.String(), "")
			lastCall(t, b, "Cache", q)
		})
	}
}

// firstWrite closes first when the first byte arrives.
type firstWrite struct {
	first chan struct{}
	once  sync.Once
	n     int
	head  []byte
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.first) })
	if len(w.head) < 200 {
		w.head = append(w.head, p[:min(len(p), 200)]...)
	}
	w.n += len(p)
	return len(p), nil
}

// TestCacheStreams lists 100k flows and checks that lines reach the client
// while the server is still producing them: a server that buffered the
// whole listing would never let the fake past the halfway mark.
func TestCacheStreams(t *testing.T) {
	const n = 100_000
	w := &firstWrite{first: make(chan struct{})}
	f := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 1000, 80)
	b := &controltest.Backend{CacheFunc: func(ctx context.Context, _ control.CacheQuery, fn func(string, *flow.Flow) error) error {
		for i := range n {
			if i == n/2 {
				select {
				case <-w.first:
				case <-time.After(20 * time.Second):
					return errors.New("nothing reached the client after half the listing: the server buffers it")
				}
			}
			f.Orig.SrcPort = uint16(i)
			if err := fn("fw-b", &f); err != nil {
				return err
			}
		}
		return nil
	}}
	s := serve(t, b)
	lines, err := s.c.Cache(t.Context(), control.CacheQuery{Cache: "external"}, w)
	check(t, "error", err, nil)
	check(t, "lines", lines, n)
	first := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 1000, 80)
	first.Orig.SrcPort = 0
	if want := string(first.AppendText(nil, flow.TextOptions{})) + "\n"; !strings.HasPrefix(string(w.head), want) {
		t.Errorf("listing starts %q, want %q", w.head, want)
	}
}

func TestCacheErrors(t *testing.T) {
	ctx := t.Context()
	f := controltest.TCPFlow("10.0.0.1", "10.0.0.2", 1000, 80)
	var fail error
	b := &controltest.Backend{CacheFunc: func(_ context.Context, _ control.CacheQuery, fn func(string, *flow.Flow) error) error {
		for range 10_000 { // far more than the server's buffer
			if err := fn("", &f); err != nil {
				return err
			}
		}
		return fail
	}}
	s := serve(t, b)

	b.Update(func(b *controltest.Backend) { fail = errors.New("cache reset during the listing") })
	n, err := s.c.Cache(ctx, control.CacheQuery{Cache: "internal"}, io.Discard)
	check(t, "lines before the error", n, 10_000)
	if err == nil || err.Error() != "cache reset during the listing" {
		t.Errorf("error after the listing started: %v, want the backend's", err)
	}

	b.Update(func(b *controltest.Backend) {
		b.Errors = map[string]error{"Cache": fmt.Errorf("no origin %q: %w", "fw-x", control.ErrInvalid)}
	})
	n, err = s.c.Cache(ctx, control.CacheQuery{Cache: "external", Origin: "fw-x"}, io.Discard)
	check(t, "lines", n, 0)
	se, ok := errors.AsType[*control.ServerError](err)
	if !ok || se.Status != http.StatusBadRequest || se.Message != `no origin "fw-x": invalid request` {
		t.Errorf("error before the listing started: %#v, want 400 with the backend's message", err)
	}
}

func TestBackendErrors(t *testing.T) {
	b := &controltest.Backend{Errors: map[string]error{
		"Commit": errors.New("netlink: no buffer space available"),
		"Notify": fmt.Errorf("already master: %w", control.ErrInvalid),
	}}
	s := serve(t, b)
	_, err := s.c.Commit(t.Context())
	se, ok := errors.AsType[*control.ServerError](err)
	if !ok || se.Status != http.StatusInternalServerError || err.Error() != "netlink: no buffer space available" {
		t.Errorf("Commit error = %#v, want 500 with the backend's message", err)
	}
	_, err = s.c.Notify(t.Context(), "master")
	se, ok = errors.AsType[*control.ServerError](err)
	if !ok || se.Status != http.StatusBadRequest {
		t.Errorf("Notify error = %#v, want 400", err)
	}
}

// raw sends one request without the Client.
func raw(t *testing.T, path, method, url, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://ctsync"+url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

func TestBadRequests(t *testing.T) {
	b := &controltest.Backend{}
	s := serve(t, b)
	huge := `{"cache":"internal","origin":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		method, url, body string
		code              int
		msg               string
	}{
		{"POST", "/v1/cache", `{"cache":`, 400, "bad request body"},
		{"POST", "/v1/cache", `not json`, 400, "bad request body"},
		{"POST", "/v1/cache", ``, 400, "empty body"},
		{"POST", "/v1/cache", `{"cache":"internal","colour":"red"}`, 400, "unknown field"},
		{"POST", "/v1/cache", `{"cache":"internal"} {}`, 400, "bad request body"},
		{"POST", "/v1/cache", huge, 413, "larger than 1048576 bytes"},
		{"POST", "/v1/cache", `{"cache":"everything"}`, 400, "want internal or external"},
		{"POST", "/v1/cache", `{"cache":"internal","origin":"fw-b"}`, 400, "only the external cache"},
		{"POST", "/v1/cache", `{"cache":"internal","format":"xml"}`, 400, "want text, save or json"},
		{"POST", "/v1/cache", `{"cache":"internal","format":"json","id":true}`, 400, "cannot be combined"},
		{"POST", "/v1/cache", `{"cache":"internal","filter":{"HasSrcPort":true,"SrcPort":80}}`, 400, "port filters need -p"},
		{"POST", "/v1/flush", `{"cache":"both"}`, 400, "want internal, external or empty"},
		{"POST", "/v1/notify", `{"state":"primary"}`, 400, "want master, backup, fault or stop"},
		{"POST", "/v1/notify", ``, 400, "empty body"},
		{"POST", "/v1/purge", `{"after_seconds":-1}`, 400, "want a number of seconds >= 0"},
		{"POST", "/v1/purge", `{"after_seconds":1e300}`, 400, "want a number of seconds >= 0"},
		{"GET", "/v1/commit", ``, 405, "wants POST"},
		{"POST", "/v1/stats", ``, 405, "wants GET"},
		{"GET", "/v1/nothing", ``, 404, "no endpoint /v1/nothing"},
	}
	for _, tt := range tests {
		name := tt.method + " " + tt.url + " " + tt.body
		t.Run(name[:min(len(name), 60)], func(t *testing.T) {
			code, body := raw(t, s.path, tt.method, tt.url, tt.body)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if code != tt.code || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("got %d %q, want %d and an error containing %q", code, e.Error, tt.code, tt.msg)
			}
		})
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("the backend was called for bad requests: %v", calls)
	}
}

func TestPeerCredentials(t *testing.T) {
	b := &controltest.Backend{}
	var seen []uint32
	var mu sync.Mutex
	s := serve(t, b, func(srv *control.Server) {
		control.SetAllowed(srv, func(uid uint32) bool {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, uid)
			return false
		})
	})
	_, err := s.c.Commit(t.Context())
	se, ok := errors.AsType[*control.ServerError](err)
	if !ok || se.Status != http.StatusForbidden || !strings.Contains(se.Message, "permission denied") {
		t.Errorf("Commit by a refused peer: %#v, want 403 permission denied", err)
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("the backend was called for a refused peer: %v", calls)
	}
	check(t, "Rejected", s.srv.Rejected(), uint64(1))
	st, err := s.srv.Stats(t.Context(), b)
	check(t, "Stats error", err, nil)
	check(t, "Stats control.rejected", st.Control.Rejected, uint64(1))
	mu.Lock()
	check(t, "peer uids checked", seen, []uint32{uint32(os.Getuid())})
	mu.Unlock()
}

func TestNotRunning(t *testing.T) {
	path := socketPath(t)
	_, err := control.Dial(path).Commit(t.Context())
	want := "ctsync daemon is not running (no control socket at " + path +
		"); start it with `ctsync daemon` or `systemctl start ctsync`"
	if !errors.Is(err, control.ErrNotRunning) || err.Error() != want {
		t.Errorf("no socket: %v\nwant %s", err, want)
	}

	// A socket file nobody listens on: a daemon that crashed.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	_, err = control.Dial(path).Health(t.Context())
	if !errors.Is(err, control.ErrNotRunning) || !strings.Contains(err.Error(), "nothing listens on the control socket "+path) {
		t.Errorf("stale socket: %v, want ErrNotRunning", err)
	}
}

func TestListenLock(t *testing.T) {
	path := socketPath(t)
	s1, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	for _, p := range []struct {
		path string
		mode fs.FileMode
	}{{path, fs.ModeSocket | 0o600}, {path + ".lock", 0o600}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != p.mode {
			t.Errorf("%s: mode %v, want %v", p.path, fi.Mode(), p.mode)
		}
	}

	_, err = control.Listen(path)
	want := "another ctsync daemon is running (lock " + path + ".lock is held)"
	if err == nil || err.Error() != want {
		t.Fatalf("second Listen: %v, want %q", err, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the second Listen disturbed the first one's socket: %v", err)
	}

	check(t, "Close", s1.Close(), nil)
	check(t, "second Close", s1.Close(), nil)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Close: %v, want it removed", err)
	}
	s2, err := control.Listen(path)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	s2.Close()
}

func TestListenStale(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, path string)
	}{
		{"socket of a crashed daemon", func(t *testing.T, path string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}},
		{"lock file left behind", func(t *testing.T, path string) {
			if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := socketPath(t)
			tt.leave(t, path)
			s, err := control.Listen(path)
			if err != nil {
				t.Fatalf("Listen over a stale file: %v", err)
			}
			defer s.Close()
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Type() != fs.ModeSocket {
				t.Errorf("socket: %v %v", fi, err)
			}
		})
	}

	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(filepath.Dir(socketPath(t)), "run", "ctsync", "ctsync.sock")
		s, err := control.Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fi, err := os.Stat(filepath.Dir(path))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("directory: %v %v, want mode 0755", fi, err)
		}
	})
}

// TestListenNeverRemovesOtherFiles: only a socket left at the control
// socket's path is removed; anything else (a mistyped control.socket
// naming a real file, a symlink planted there) is left alone, with an
// error saying what is in the way.
func TestListenNeverRemovesOtherFiles(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, path string)
		what  string
	}{
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "a regular file"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "a directory"},
		{"symlink", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "target")
			if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "a symbolic link"},
		{"named pipe", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "a named pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := socketPath(t)
			tt.leave(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = control.Listen(path)
			want := "control socket " + path + " is " + tt.what + ", not a socket: not removing it; remove it or choose another control.socket"
			if err == nil || err.Error() != want {
				t.Fatalf("Listen = %v, want %q", err, want)
			}
			after, err := os.Lstat(path)
			if err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
				t.Fatalf("%s was disturbed: %v %v", path, after, err)
			}
			if before.Mode().IsRegular() {
				if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
					t.Fatalf("content %q, %v", b, err)
				}
			}
			// The lock was released: once the file is gone, Listen works.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			s, err := control.Listen(path)
			if err != nil {
				t.Fatalf("Listen once the file is gone: %v", err)
			}
			s.Close()
		})
	}
}

// TestServeStops checks that cancelling Serve's context ends requests in
// flight (their context is cancelled) and returns nil.
func TestServeStops(t *testing.T) {
	entered := make(chan struct{})
	b := &controltest.Backend{CacheFunc: func(ctx context.Context, _ control.CacheQuery, _ func(string, *flow.Flow) error) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}
	s := serve(t, b)
	errc := make(chan error, 1)
	go func() {
		_, err := s.c.Cache(context.Background(), control.CacheQuery{Cache: "internal"}, io.Discard)
		errc <- err
	}()
	<-entered
	check(t, "Serve", s.stop(), nil)
	err := <-errc
	se, ok := errors.AsType[*control.ServerError](err)
	if !ok || se.Status != http.StatusServiceUnavailable || se.Message != "the daemon is shutting down" {
		t.Errorf("request in flight at shutdown: %#v, want 503", err)
	}
	_, err = s.c.Commit(t.Context())
	if !errors.Is(err, control.ErrNotRunning) {
		t.Errorf("after Serve returned: %v, want ErrNotRunning", err)
	}
}

// TestShutdownEndpoint checks that /v1/shutdown answers before the backend
// stops the server.
func TestShutdownEndpoint(t *testing.T) {
	b := &controltest.Backend{}
	var s *served
	b.OnShutdown = func() { go s.stop() }
	s = serve(t, b)
	code, body := raw(t, s.path, http.MethodPost, "/v1/shutdown", "")
	if code != http.StatusAccepted || !strings.Contains(body, "shutting down") {
		t.Errorf("POST /v1/shutdown: %d %q, want 202", code, body)
	}
	check(t, "Serve", s.stop(), nil)
}
