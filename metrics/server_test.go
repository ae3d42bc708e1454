package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/stats"
)

func staticSource(s stats.Stats) Source {
	return func(context.Context) (stats.Stats, error) { return s, nil }
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler(staticSource(fullStats()), nil))
	defer srv.Close()
	want, err := Render(fullStats())
	if err != nil {
		t.Fatal(err)
	}
	// The vouched timestamps depend on the time of the scrape.
	want = dropLines(want, "ctsync_external_vouched_timestamp_seconds{")

	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
	}
	fams, err := parseExposition(string(body))
	if err != nil {
		t.Fatal(err)
	}
	// The ctsync_ families are Render's; the client library adds the
	// process and Go runtime ones.
	var ours []string
	for _, l := range strings.SplitAfter(string(body), "\n") {
		if strings.HasPrefix(l, "ctsync_") || strings.HasPrefix(l, "# HELP ctsync_") || strings.HasPrefix(l, "# TYPE ctsync_") {
			ours = append(ours, l)
		}
	}
	if got := string(dropLines([]byte(strings.Join(ours, "")), "ctsync_external_vouched_timestamp_seconds{")); got != string(want) {
		t.Errorf("GET /metrics: the ctsync_ families differ from Render:\n%s", lineDiff(string(want), got))
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
		"process_start_time_seconds", "go_goroutines", "go_memstats_heap_inuse_bytes"} {
		if _, ok := sample(fams, name); !ok {
			t.Errorf("GET /metrics lacks %s", name)
		}
	}
	if !strings.Contains(string(body), "\ngo_info{version=") {
		t.Error("GET /metrics lacks go_info")
	}
	if strings.Contains(string(body), "ctsync_up") {
		t.Error("GET /metrics serves ctsync_up: Prometheus has up")
	}

	res, err = http.Head(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD /metrics: %s, %d bytes of body", res.Status, len(body))
	}

	tests := []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/", 200, "/metrics"},
		{"GET", "/metrics/", 404, ""},
		{"GET", "/metricsx", 404, ""},
		{"GET", "/favicon.ico", 404, ""},
		{"GET", "/v1/stats", 404, ""},
		{"POST", "/metrics", 405, ""},
		{"DELETE", "/metrics", 405, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.code || !strings.Contains(string(body), tt.contains) {
			t.Errorf("%s %s: %s %q, want %d containing %q", tt.method, tt.path, res.Status, body, tt.code, tt.contains)
		}
		if tt.code == 405 && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, res.Header.Get("Allow"))
		}
	}
}

func TestHandlerSourceError(t *testing.T) {
	src := func(context.Context) (stats.Stats, error) { return stats.Stats{}, errors.New("agent stopping") }
	rec := httptest.NewRecorder()
	Handler(src, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "agent stopping") {
		t.Errorf("got %d %q, want 500 with the error", rec.Code, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "ctsync_ready") {
		t.Error("a failed scrape served metrics")
	}
}

// TestHandlerFreshStats: the handler keeps nothing between scrapes.
func TestHandlerFreshStats(t *testing.T) {
	var n uint64
	src := func(context.Context) (stats.Stats, error) {
		n++
		return stats.Stats{Transitions: n}, nil
	}
	h := Handler(src, nil)
	for i := 1; i <= 3; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if want := "ctsync_transitions_total " + string(rune('0'+i)) + "\n"; !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape %d lacks %q", i, want)
		}
	}
}

func TestServerLifecycle(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, staticSource(stats.Stats{Ready: true}), nil) }()
	url := "http://" + s.Addr().String() + "/metrics"
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "ctsync_ready 1\n") {
		t.Fatalf("%s %q", res.Status, body)
	}

	// The address is taken: a second Listen fails and says which setting.
	if _, err := Listen(s.Addr().String()); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Errorf("second Listen on %s: %v, want an address-in-use error naming metrics.listen", s.Addr(), err)
	}

	// The daemon stops: Serve shuts down and returns nil, Close releases
	// the port.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still listening after Close")
	}
}

// TestServerCloseBeforeServe: a daemon that fails between Listen and
// Serve releases the port, and a late Serve returns at once.
func TestServerCloseBeforeServe(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background(), staticSource(stats.Stats{}), nil); err == nil {
		t.Error("Serve after Close returned nil, want an error")
	}
	s2, err := Listen(s.Addr().String())
	if err != nil {
		t.Fatalf("the port was not released: %v", err)
	}
	_ = s2.Close()
}

// dropLines removes the lines starting with prefix.
func dropLines(b []byte, prefix string) []byte {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, ""))
}
