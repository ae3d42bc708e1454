package control_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
)

func TestKeysRoundTrip(t *testing.T) {
	ctx := t.Context()
	want := control.KeysResult{Nodes: 3, Answered: 2, Errors: map[string]string{"fw-c": "no answer"},
		Keys: []control.KeyInfo{{Fingerprint: "0123abcd", Nodes: 2, Primary: 2}, {Fingerprint: "89abcdef", Nodes: 1}}}
	b := &controltest.Backend{KeysResult: want}
	s := serve(t, b)

	got, err := s.c.ListKeys(ctx)
	want.Op = "list"
	check(t, "ListKeys", got, want)
	if err != nil {
		t.Fatal(err)
	}
	lastCall(t, b, "ListKeys", nil)

	key := make([]byte, 32)
	key[0] = 7
	b64 := base64.StdEncoding.EncodeToString(key)
	for _, op := range []string{"install", "use", "remove"} {
		got, err := s.c.KeyOp(ctx, op, b64+"\n")
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		want.Op, want.Key = op, control.KeyFingerprint(key)
		check(t, op, got, want)
		method := map[string]string{"install": "InstallKey", "use": "UseKey", "remove": "RemoveKey"}[op]
		lastCall(t, b, method, b64)
	}
	if _, err := s.c.KeyOp(ctx, "rotate", b64); err == nil {
		t.Error("KeyOp rotate: no error")
	}
}

func TestKeyFingerprint(t *testing.T) {
	// SHA-256 of 16 zero bytes starts 374708ff.
	if got := control.KeyFingerprint(make([]byte, 16)); got != "374708ff" {
		t.Fatalf("KeyFingerprint = %q", got)
	}
}

func TestKeysBadRequests(t *testing.T) {
	b := &controltest.Backend{}
	s := serve(t, b)
	tests := []struct {
		method, url, body string
		code              int
		msg               string
	}{
		{"POST", "/v1/keys/install", ``, 400, "empty body"},
		{"POST", "/v1/keys/install", `{}`, 400, "key: missing"},
		{"POST", "/v1/keys/use", `{"key":"not base64!"}`, 400, "not base64"},
		{"POST", "/v1/keys/remove", `{"key":"AAAA"}`, 400, "3 bytes long, want 16, 24 or 32"},
		{"POST", "/v1/keys/install", `{"key":"AAAAAAAAAAAAAAAAAAAAAA==","primary":true}`, 400, "unknown field"},
		{"POST", "/v1/keys", ``, 405, "wants GET"},
		{"GET", "/v1/keys/install", ``, 405, "wants POST"},
		{"POST", "/v1/keys/rotate", `{"key":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 404, "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url+" "+tt.body, func(t *testing.T) {
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

func TestKeysBackendErrors(t *testing.T) {
	b := &controltest.Backend{Errors: map[string]error{
		"ListKeys":  fmt.Errorf("the cluster is insecure: %w", control.ErrInvalid),
		"RemoveKey": errors.New("boom"),
	}}
	s := serve(t, b)
	_, err := s.c.ListKeys(t.Context())
	if se, ok := errors.AsType[*control.ServerError](err); !ok || se.Status != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "insecure") {
		t.Errorf("ListKeys error = %#v, want 400 insecure", err)
	}
	_, err = s.c.KeyOp(t.Context(), "remove", "AAAAAAAAAAAAAAAAAAAAAA==")
	if se, ok := errors.AsType[*control.ServerError](err); !ok || se.Status != http.StatusInternalServerError {
		t.Errorf("RemoveKey error = %#v, want 500", err)
	}
}
