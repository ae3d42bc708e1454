package agent

import "time"

// Clock is the agent's time source for what depends on elapsed time: the
// caches' ages, filter.min_age, orphan expectations, the address cache
// and the scheduled purge. Tests give a fake one and advance it instead of
// sleeping; the loop's polling tickers stay on the real clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless
	// the returned Timer is stopped first (time.AfterFunc).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a call scheduled by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call; it reports whether it did (time.Timer.Stop).
	Stop() bool
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// epoch0 is the origin of the real clock's monotonic readings.
var epoch0 = time.Now()

// setClock makes c the agent's clock; nil is the real one.
func (a *Agent) setClock(c Clock) {
	if c == nil {
		a.clock, a.epoch = realClock{}, epoch0
		return
	}
	a.clock, a.epoch = c, c.Now()
}

// monotonic is the agent's clock for the caches: ns since its epoch.
func (a *Agent) monotonic() int64 { return int64(a.clock.Now().Sub(a.epoch)) }
