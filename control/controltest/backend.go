// Package controltest provides a fake control.Backend for tests of the
// control socket and of the CLI commands that use it.
package controltest

import (
	"context"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// DefaultPurge is the delay Purge reports for after == 0, standing in for
// the daemon's purge_timeout.
const DefaultPurge = 60 * time.Second

// Flow is one flow of a fake cache, with its origin node.
type Flow struct {
	Origin string
	Flow   flow.Flow
}

// Call is one call the Backend received: the method's name and its
// argument (nil, a string, a time.Duration or a control.CacheQuery; the
// key methods record the key base64-encoded, as a string).
type Call struct {
	Method string
	Arg    any
}

// Backend is a control.Backend that records every call and answers with
// the canned values of its fields. Set the fields before the server runs,
// or later through Update; it is safe for concurrent use.
type Backend struct {
	CommitResult control.CommitResult
	ResyncResult control.ResyncResult
	Peers        int                  // ResyncPeers and SendBulk
	Internal     []Flow               // Cache("internal")
	External     []Flow               // Cache("external"), filtered by q.Origin
	StatsValue   stats.Stats          // Stats
	MemberList   []control.Member     // Members
	NotifyResult control.NotifyResult // Notify (State is set to the state asked)
	HealthResult control.HealthResult // Health
	KeysResult   control.KeysResult   // ListKeys, InstallKey, UseKey, RemoveKey
	// Errors makes a method fail: method name ("Commit", "Cache", ...) →
	// error.
	Errors map[string]error
	// CacheFunc, if set, replaces the listing of Internal and External.
	CacheFunc func(ctx context.Context, q control.CacheQuery, fn func(string, *flow.Flow) error) error
	// OnShutdown, if set, runs when Shutdown is called.
	OnShutdown func()

	mu    sync.Mutex
	calls []Call
}

var _ control.Backend = (*Backend)(nil)

// Update runs fn with the Backend locked, to change its fields while a
// server uses it.
func (b *Backend) Update(fn func(*Backend)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b)
}

// Calls returns the calls received so far, in order.
func (b *Backend) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Call(nil), b.calls...)
}

// LastCall returns the last call received, or the zero Call.
func (b *Backend) LastCall() Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		return Call{}
	}
	return b.calls[len(b.calls)-1]
}

// record logs a call and returns the error the method must fail with.
// b.mu must be held.
func (b *Backend) record(method string, arg any) error {
	b.calls = append(b.calls, Call{Method: method, Arg: arg})
	return b.Errors[method]
}

func (b *Backend) Commit(context.Context) (control.CommitResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.CommitResult, b.record("Commit", nil)
}

func (b *Backend) Flush(_ context.Context, which string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.record("Flush", which)
}

func (b *Backend) ResyncKernel(context.Context) (control.ResyncResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ResyncResult, b.record("ResyncKernel", nil)
}

func (b *Backend) ResyncPeers(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Peers, b.record("ResyncPeers", nil)
}

func (b *Backend) SendBulk(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Peers, b.record("SendBulk", nil)
}

func (b *Backend) Purge(_ context.Context, after time.Duration) (control.PurgeResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.record("Purge", after)
	if after == 0 {
		after = DefaultPurge
	}
	return control.PurgeResult{At: time.Now().Add(after), Seconds: after.Seconds()}, err
}

// Cache lists Internal or External: the flows that match q.Filter (and
// q.Origin). It does not apply q.Extra, as a real Backend need not.
func (b *Backend) Cache(ctx context.Context, q control.CacheQuery, fn func(string, *flow.Flow) error) error {
	b.mu.Lock()
	err := b.record("Cache", q)
	custom := b.CacheFunc
	flows := b.Internal
	if q.Cache == "external" {
		flows = b.External
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if custom != nil {
		return custom(ctx, q, fn)
	}
	for i := range flows {
		f := &flows[i]
		if q.Origin != "" && f.Origin != q.Origin || !q.Filter.Match(&f.Flow) {
			continue
		}
		fl := f.Flow
		if err := fn(f.Origin, &fl); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) Stats(context.Context) (stats.Stats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.StatsValue, b.record("Stats", nil)
}

func (b *Backend) Members(context.Context) ([]control.Member, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]control.Member(nil), b.MemberList...), b.record("Members", nil)
}

func (b *Backend) Notify(_ context.Context, state string) (control.NotifyResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := b.NotifyResult
	res.State = state
	return res, b.record("Notify", state)
}

func (b *Backend) Health(context.Context) (control.HealthResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.HealthResult, b.record("Health", nil)
}

func (b *Backend) Shutdown(context.Context) error {
	b.mu.Lock()
	err := b.record("Shutdown", nil)
	hook := b.OnShutdown
	b.mu.Unlock()
	if err == nil && hook != nil {
		hook()
	}
	return err
}

func (b *Backend) ListKeys(context.Context) (control.KeysResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.KeysResult, b.record("ListKeys", nil)
}

func (b *Backend) keyOp(method string, key []byte) (control.KeysResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.KeysResult, b.record(method, base64.StdEncoding.EncodeToString(key))
}

func (b *Backend) InstallKey(_ context.Context, key []byte) (control.KeysResult, error) {
	return b.keyOp("InstallKey", key)
}

func (b *Backend) UseKey(_ context.Context, key []byte) (control.KeysResult, error) {
	return b.keyOp("UseKey", key)
}

func (b *Backend) RemoveKey(_ context.Context, key []byte) (control.KeysResult, error) {
	return b.keyOp("RemoveKey", key)
}

// TCPFlow returns an ESTABLISHED, ASSURED TCP flow without NAT, with a
// timeout, status, mark and id, as a kernel dump carries them.
func TCPFlow(src, dst string, sport, dport uint16) flow.Flow {
	orig := flow.Tuple{
		Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Proto: flow.ProtoTCP, SrcPort: sport, DstPort: dport,
	}
	f := flow.Flow{
		Orig: orig, Reply: orig.Invert(),
		Timeout: 431999,
		Status:  flow.StatusSeenReply | flow.StatusAssured | flow.StatusConfirmed,
		TCP:     flow.TCPInfo{State: flow.TCPEstablished},
		ID:      uint32(sport)<<16 | uint32(dport),
	}
	f.Set(flow.AttrTimeout | flow.AttrStatus | flow.AttrTCP | flow.AttrMark | flow.AttrID | flow.AttrUse)
	f.Use = 1
	return f
}
