package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ctsync/ctsync/internal/httpserve"
	"github.com/ctsync/ctsync/stats"
)

// maxBody bounds every request body.
const maxBody = 1 << 20

// shutdownGrace is how long Serve waits for requests in flight once its
// context ends before it closes their connections.
const shutdownGrace = 5 * time.Second

// Server is the daemon's end of the control socket: it holds the instance
// lock and the listening socket. Create it with Listen, run it with Serve,
// release it with Close. Its methods are safe for concurrent use.
type Server struct {
	path     string
	lockPath string
	lock     *os.File
	http     *httpserve.Server

	// allowed decides which peer uids may talk; tests replace it.
	allowed  func(uid uint32) bool
	rejected atomic.Uint64

	closeOnce sync.Once
}

// Listen takes the daemon's instance lock, an flock on path+".lock", and
// listens on the UNIX socket at path (mode 0600; the directory is created
// 0755 if missing). While another process holds the lock it fails with
// "another ctsync daemon is running"; a socket left behind by a daemon that
// crashed is removed, so it never blocks a restart. Anything else at path (a
// regular file, a directory, a symlink) is never removed: Listen fails and
// says what is there.
func Listen(path string) (*Server, error) {
	if path == "" {
		return nil, errors.New("control socket: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}

	lockPath := path + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control socket lock: %w", err)
	}
	if err := flock(lock); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another ctsync daemon is running (lock %s is held)", lockPath)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}

	// With the lock held, a socket at path was left by a daemon that is
	// gone. Anything else is not ours to remove (a control.socket naming
	// a real file by mistake, a symlink planted there).
	switch fi, err := os.Lstat(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		lock.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	case fi.Mode().Type() != os.ModeSocket:
		lock.Close()
		return nil, fmt.Errorf("control socket %s is %s, not a socket: not removing it; remove it or choose another control.socket",
			path, fileKind(fi.Mode()))
	default:
		if err := os.Remove(path); err != nil {
			lock.Close()
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
	}

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // Close removes it, while still holding the lock
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		os.Remove(path)
		lock.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}

	self := uint32(os.Getuid())
	return &Server{
		path:     path,
		lockPath: lockPath,
		lock:     lock,
		http:     httpserve.New(ln, shutdownGrace),
		allowed:  func(uid uint32) bool { return uid == 0 || uid == self },
	}, nil
}

// fileKind names the type of a file, for messages.
func fileKind(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case os.ModeDir:
		return "a directory"
	case os.ModeSymlink:
		return "a symbolic link"
	case os.ModeNamedPipe:
		return "a named pipe"
	case os.ModeDevice, os.ModeDevice | os.ModeCharDevice:
		return "a device"
	}
	return fmt.Sprintf("a file of type %v", m.Type())
}

func flock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return err
	}
	return ferr
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Rejected returns the number of requests refused because the peer was
// neither root nor the daemon's own user.
func (s *Server) Rejected() uint64 { return s.rejected.Load() }

// Stats returns b's statistics with the control socket's own filled in:
// what GET /v1/stats answers, and what the daemon's metrics read.
func (s *Server) Stats(ctx context.Context, b Backend) (stats.Stats, error) {
	st, err := b.Stats(ctx)
	if err != nil {
		return stats.Stats{}, err
	}
	st.Control.Rejected = s.Rejected()
	return st, nil
}

// Serve answers requests on the socket with b until ctx ends, then shuts
// down gracefully: it stops accepting, lets requests in flight finish for a
// few seconds (their contexts are cancelled with ctx, so long operations
// return early), and returns nil. It returns an error only when the socket
// fails. Call it once; call Close afterwards.
func (s *Server) Serve(ctx context.Context, b Backend, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           newHandler(s, b, log, ctx),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if err := s.http.Serve(ctx, srv, log); err != nil {
		return fmt.Errorf("control socket %s: %w", s.path, err)
	}
	return nil
}

// Close stops the server if Serve is still running (abruptly: cancel Serve's
// context for a graceful stop), removes the socket and releases the lock.
// It is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.close() })
	return err
}

func (s *Server) close() error {
	err := s.http.Close()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	// The lock file stays: removing it would let two daemons lock two
	// different files of the same name.
	if cerr := s.lock.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// peer is the credentials of the process at the other end of a connection.
type peer struct {
	uid, pid uint32
	err      error
}

type peerKey struct{}

// connContext reads the peer's credentials (SO_PEERCRED) once per
// connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

func peerOf(c net.Conn) peer {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peer{err: fmt.Errorf("%T has no credentials", c)}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return peer{err: err}
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return peer{err: err}
	}
	if cerr != nil {
		return peer{err: cerr}
	}
	return peer{uid: cred.Uid, pid: uint32(cred.Pid)}
}
