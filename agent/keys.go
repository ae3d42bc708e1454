package agent

import (
	"context"
	"errors"

	"github.com/ctsync/ctsync/control"
	ctsync "github.com/ctsync/ctsync/sync"
)

// ListKeys implements control.Backend.
func (a *Agent) ListKeys(ctx context.Context) (control.KeysResult, error) {
	return keysResult(a.node.ListKeys(ctx))
}

// InstallKey implements control.Backend.
func (a *Agent) InstallKey(ctx context.Context, key []byte) (control.KeysResult, error) {
	return keysResult(a.node.InstallKey(ctx, key))
}

// UseKey implements control.Backend.
func (a *Agent) UseKey(ctx context.Context, key []byte) (control.KeysResult, error) {
	return keysResult(a.node.UseKey(ctx, key))
}

// RemoveKey implements control.Backend.
func (a *Agent) RemoveKey(ctx context.Context, key []byte) (control.KeysResult, error) {
	return keysResult(a.node.RemoveKey(ctx, key))
}

// keysResult converts a key operation's outcome; the errors that the
// request itself causes become control.ErrInvalid.
func keysResult(r ctsync.KeyResult, err error) (control.KeysResult, error) {
	out := control.KeysResult{Nodes: r.Nodes, Answered: r.Answered, Errors: r.Errors}
	for _, k := range r.Keys {
		out.Keys = append(out.Keys, control.KeyInfo(k))
	}
	if err != nil && (errors.Is(err, ctsync.ErrInsecure) || errors.Is(err, ctsync.ErrPrimaryKey) ||
		errors.Is(err, ctsync.ErrNotInstalled)) {
		err = &invalidError{err}
	}
	return out, err
}

// invalidError keeps an error's text and marks it control.ErrInvalid.
type invalidError struct{ err error }

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() []error {
	return []error{e.err, control.ErrInvalid}
}
