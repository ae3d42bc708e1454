package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/control/controltest"
	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/stats"
)

// fill sets every field reachable from v to a value that is not zero, so
// that omitempty hides nothing: a slice gets one element, a pointer a
// value, a map one entry. It fails on a time.Duration that JSON would
// encode (as nanoseconds): durations go out in seconds.
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(1700000000, 500_000_000)))
		return
	case reflect.TypeFor[time.Duration]():
		t.Errorf("%s is a time.Duration encoded in JSON (as nanoseconds): use seconds", path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(t, v.Field(i), path+"."+f.Name)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), path+"[0]")
	case reflect.Map:
		// Map keys are data (node names), not field names.
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, path+"{key}")
		fill(t, e, path+"{value}")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Interface:
	default:
		t.Errorf("%s: cannot fill a %s", path, v.Kind())
	}
}

var snakeCase = regexp.MustCompile(`^[a-z0-9_]+$`)

// checkJSON walks a JSON document and reports every key that is not
// snake_case, every epoch that is not a string (a 64-bit number that
// JSON tools reading doubles would round), and every "id" of 0 (a flow
// without a kernel id leaves "id" out).
func checkJSON(t *testing.T, what string, data []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		var doc any
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, data)
		}
		walkJSON(t, what, "", doc)
	}
}

func walkJSON(t *testing.T, what, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := path + "." + k
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %s is not snake_case", what, p)
			}
			if strings.Contains(k, "epoch") {
				if _, ok := e.(string); !ok {
					t.Errorf("%s: %s = %v is not a string (64-bit epochs are written as strings)", what, p, e)
				}
			}
			if n, ok := e.(json.Number); ok && k == "id" && n.String() == "0" {
				t.Errorf(`%s: %s is 0: a flow without a kernel id must leave "id" out`, what, p)
			}
			walkJSON(t, what, p, e)
		}
	case []any:
		for i, e := range v {
			walkJSON(t, what, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// TestJSONConvention asks every endpoint of the control socket that
// answers JSON, with every field of its answer filled in, and checks one
// convention: snake_case keys, epochs as strings, no "id" of 0.
func TestJSONConvention(t *testing.T) {
	var st stats.Stats
	fill(t, reflect.ValueOf(&st).Elem(), "Stats")
	b := &controltest.Backend{StatsValue: st}
	fill(t, reflect.ValueOf(&b.CommitResult).Elem(), "CommitResult")
	fill(t, reflect.ValueOf(&b.ResyncResult).Elem(), "ResyncResult")
	fill(t, reflect.ValueOf(&b.MemberList).Elem(), "Members")
	fill(t, reflect.ValueOf(&b.NotifyResult).Elem(), "NotifyResult")
	fill(t, reflect.ValueOf(&b.HealthResult).Elem(), "HealthResult")
	fill(t, reflect.ValueOf(&b.KeysResult).Elem(), "KeysResult")
	// Flows of the caches carry no kernel id (ID 0).
	f := flow.Flow{Orig: flow.Tuple{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 1000, DstPort: 80, Proto: flow.ProtoTCP},
		Reply: flow.Tuple{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"), SrcPort: 80, DstPort: 1000, Proto: flow.ProtoTCP}}
	b.Internal = []controltest.Flow{{Flow: f}}
	b.External = []controltest.Flow{{Origin: "fw-b", Flow: f}}

	dir, err := os.MkdirTemp("", "ctsync-json-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "ctsync.sock")
	srv, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, b, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()

	requests := []struct{ method, path, body string }{
		{"GET", "/v1/stats", ""},
		{"GET", "/v1/members", ""},
		{"GET", "/v1/health", ""},
		{"GET", "/v1/keys", ""},
		{"POST", "/v1/keys/install", `{"key":"AAAAAAAAAAAAAAAAAAAAAA=="}`},
		{"POST", "/v1/commit", ""},
		{"POST", "/v1/notify", `{"state":"master"}`},
		{"POST", "/v1/purge", `{"after_seconds":5}`},
		{"POST", "/v1/resync/kernel", ""},
		{"POST", "/v1/resync/peers", ""},
		{"POST", "/v1/send-bulk", ""},
		{"POST", "/v1/flush", `{}`},
		{"POST", "/v1/cache", `{"cache":"internal","format":"json"}`},
		{"POST", "/v1/cache", `{"cache":"external","format":"json"}`},
		{"POST", "/v1/cache", `{"cache":"external","count":true}`},
		{"POST", "/v1/commit/nothing", ""}, // an error answer
	}
	for _, r := range requests {
		req, err := http.NewRequestWithContext(ctx, r.method, "http://ctsync"+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			t.Errorf("%s %s: empty answer (%s)", r.method, r.path, res.Status)
			continue
		}
		checkJSON(t, r.method+" "+r.path+" "+r.body, body)
	}
}
