package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server runs an http.Server on a listener opened ahead of it. Its methods
// are safe for concurrent use.
type Server struct {
	ln    net.Listener
	grace time.Duration

	mu     sync.Mutex
	srv    *http.Server // set by Serve
	closed bool
}

// New returns a Server for ln. grace bounds how long Serve waits, once its
// context ends, for the requests in flight before it closes them.
func New(ln net.Listener, grace time.Duration) *Server {
	return &Server{ln: ln, grace: grace}
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests with srv until ctx ends, then shuts down: it stops
// accepting, lets the requests in flight finish for the grace period,
// closes those still running (and logs it), and returns nil. It returns an
// error when the listener fails, and when called twice or after Close.
func (s *Server) Serve(ctx context.Context, srv *http.Server, log *slog.Logger) error {
	if err := s.start(srv); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if s.isClosed() {
			return nil
		}
		return err
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at shutdown; closing them", "addr", s.ln.Addr().String(), "err", err)
		srv.Close()
	}
	<-errc
	return nil
}

// start records srv as the one Serve runs.
func (s *Server) start(srv *http.Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("closed before Serve")
	case s.srv != nil:
		return errors.New("Serve called twice: already serving")
	}
	s.srv = srv
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the server at once if Serve is running (cancel Serve's
// context for a graceful stop) and closes the listener. It is idempotent:
// only the first call returns the listener's error.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.srv != nil {
		s.srv.Close() // closes the listener too
	}
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
