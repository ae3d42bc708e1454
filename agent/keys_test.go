package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ctsync/ctsync/control"
	ctsync "github.com/ctsync/ctsync/sync"
)

func TestKeysResult(t *testing.T) {
	in := ctsync.KeyResult{Nodes: 2, Answered: 2, Keys: []ctsync.KeyInfo{{Fingerprint: "0123abcd", Nodes: 2, Primary: 2}}}
	out, err := keysResult(in, nil)
	if err != nil || out.Nodes != 2 || out.Answered != 2 || len(out.Keys) != 1 || out.Keys[0] != (control.KeyInfo{Fingerprint: "0123abcd", Nodes: 2, Primary: 2}) {
		t.Fatalf("keysResult = %+v, %v", out, err)
	}
	for _, e := range []error{ctsync.ErrInsecure, fmt.Errorf("%w: it is primary", ctsync.ErrPrimaryKey), ctsync.ErrNotInstalled} {
		_, err := keysResult(ctsync.KeyResult{}, e)
		if !errors.Is(err, control.ErrInvalid) || !errors.Is(err, e) || err.Error() != e.Error() {
			t.Errorf("keysResult(%v) error = %v: want the same text, marked ErrInvalid", e, err)
		}
	}
	if _, err := keysResult(ctsync.KeyResult{}, errors.New("boom")); errors.Is(err, control.ErrInvalid) {
		t.Error("an operational error is marked ErrInvalid")
	}
}
