// Package ratelog keeps repeated log lines from flooding the log: a Limiter
// lets through at most one line per key per interval, and the next line it
// lets through for that key says how many it suppressed in between.
//
// Keys name a kind of warning ("kernel overrun", "peer stream error"), not
// an instance: they should come from a small fixed set, as the Limiter
// remembers every key it saw in the last interval.
package ratelog

import (
	"context"
	"log/slog"
	stdsync "sync"
	"time"
)

// DefaultEvery is the interval the daemon uses for its repeated warnings.
const DefaultEvery = 10 * time.Second

// maxKeys bounds the keys a Limiter remembers; past it, keys whose interval
// is over are forgotten (their suppressed count, if any, is lost).
const maxKeys = 1024

// Limiter rate-limits log lines by key. The zero value is not usable; use
// New. A nil *Limiter logs every line. It is safe for concurrent use.
type Limiter struct {
	every time.Duration
	now   func() time.Time

	mu   stdsync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	last       time.Time // when the last line for the key was logged
	suppressed int       // lines dropped since
}

// New returns a Limiter that logs at most one line per key per every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, keys: make(map[string]*keyState)}
}

// allow reports whether a line for key may be logged now and, if so, how
// many lines for it were suppressed since the last one.
func (l *Limiter) allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[key]
	if st == nil {
		if len(l.keys) >= maxKeys {
			for k, s := range l.keys {
				if now.Sub(s.last) >= l.every {
					delete(l.keys, k)
				}
			}
		}
		l.keys[key] = &keyState{last: now}
		return true, 0
	}
	if now.Sub(st.last) < l.every {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return true, n
}

// Log logs msg at level on log unless a line for key was logged less than
// the interval ago. A line that follows suppressed ones carries the
// attribute suppressed=N.
func (l *Limiter) Log(ctx context.Context, log *slog.Logger, level slog.Level, key, msg string, args ...any) {
	if log == nil || !log.Enabled(ctx, level) {
		return
	}
	if l != nil {
		ok, n := l.allow(key)
		if !ok {
			return
		}
		if n > 0 {
			args = append(args[:len(args):len(args)], "suppressed", n)
		}
	}
	log.Log(ctx, level, msg, args...)
}

// Warn is Log at slog.LevelWarn.
func (l *Limiter) Warn(log *slog.Logger, key, msg string, args ...any) {
	l.Log(context.Background(), log, slog.LevelWarn, key, msg, args...)
}

// Error is Log at slog.LevelError.
func (l *Limiter) Error(log *slog.Logger, key, msg string, args ...any) {
	l.Log(context.Background(), log, slog.LevelError, key, msg, args...)
}
