package metrics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/ctsync/ctsync/internal/httpserve"
	"github.com/ctsync/ctsync/stats"
)

// Source returns the daemon's current statistics; it is called once per
// scrape, with the request's context.
type Source func(ctx context.Context) (stats.Stats, error)

// Render returns the metrics of s alone (not the process and Go runtime
// ones) in the text exposition format (version 0.0.4), families sorted by
// name and series by labels.
func Render(s stats.Stats) ([]byte, error) { return render(s, time.Now()) }

func render(s stats.Stats, now time.Time) ([]byte, error) {
	fams, err := statsGatherer(s, now).Gather()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// statsGatherer is a registry holding the metrics of s only. A pedantic
// registry: it checks what the collector sends (names, label values,
// consistent families) at every gather.
func statsGatherer(s stats.Stats, now time.Time) prometheus.Gatherer {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(statsCollector{s: s, now: now})
	return reg
}

// Handler serves GET and HEAD /metrics from src, with the process and Go
// runtime metrics of the client library's collectors, a short pointer on
// /, and 404 for anything else.
func Handler(src Source, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runtime := prometheus.NewRegistry()
	runtime.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) { // and HEAD
		s, err := src(r.Context())
		if err != nil {
			log.Warn("metrics scrape failed", "err", err)
			http.Error(w, "ctsync: statistics unavailable: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		g := prometheus.Gatherers{runtime, statsGatherer(s, time.Now())}
		promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: errLog, ErrorHandling: promhttp.HTTPErrorOnError}).ServeHTTP(w, r)
	})
	// /metrics with another method: the mux's own 405 would say "Method
	// Not Allowed"; keep the answer scrapers have always had.
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ctsync: Prometheus metrics are at /metrics")
	})
	return mux
}

// shutdownGrace is how long Serve waits for scrapes in flight once its
// context ends before it closes their connections.
const shutdownGrace = 5 * time.Second

// Server is the metrics endpoint, in the control socket's shape: Listen
// binds the address (so that a bad metrics.listen stops the daemon before
// it starts anything else), Serve answers scrapes until its context ends,
// Close releases the address.
type Server struct {
	http *httpserve.Server
}

// Listen binds addr (host:port; an empty host is every address).
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	return &Server{http: httpserve.New(ln, shutdownGrace)}, nil
}

// Addr is the bound address (with the port chosen, for port 0).
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// Serve answers scrapes from src until ctx ends, then shuts down: it stops
// accepting, lets scrapes in flight finish for a few seconds, and returns
// nil. It returns an error only when the listener fails. Call it once;
// call Close afterwards.
func (s *Server) Serve(ctx context.Context, src Source, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           Handler(src, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := s.http.Serve(ctx, srv, log); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Close stops the endpoint if Serve is still running (abruptly: cancel
// Serve's context for a graceful stop) and releases the address. It is
// idempotent.
func (s *Server) Close() error { return s.http.Close() }
