package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/kernel/kerneltest"
)

// logBuffer is an io.Writer safe for the agent's goroutines.
type logBuffer struct {
	mu  stdsync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestInsecureIsLoud: an insecure node says so in a WARN line at start and
// at every reload, and in its stats; a node with a key does not.
func TestInsecureIsLoud(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		var logs logBuffer
		cfg := config.Default()
		cfg.Node = "fw-a"
		cfg.Cluster.Bind = "127.0.0.1:0"
		cfg.Cluster.Insecure = insecure
		a, err := New(Options{Config: cfg, Kernel: kerneltest.NewMemTable(), Keys: [][]byte{make([]byte, 32)},
			Logger: slog.New(slog.NewTextHandler(&logs, nil)), SyncTimings: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()

		const line = `level=WARN msg="INSECURE CLUSTER: cluster.insecure is true, so cluster traffic is neither encrypted nor authenticated: anyone who can reach the cluster port can read this node's flows and inject flows into its tables`
		if got := strings.Count(logs.String(), line); got != map[bool]int{true: 1, false: 0}[insecure] {
			t.Errorf("insecure %v: %d INSECURE lines at start in:\n%s", insecure, got, logs.String())
		}
		if err := a.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(logs.String(), line); got != map[bool]int{true: 2, false: 0}[insecure] {
			t.Errorf("insecure %v: %d INSECURE lines after a reload in:\n%s", insecure, got, logs.String())
		}

		v, err := a.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Insecure *bool `json:"insecure"`
		}
		if err := json.Unmarshal(js, &got); err != nil || got.Insecure == nil || *got.Insecure != insecure {
			t.Errorf("insecure %v: stats JSON has insecure %v (%v)", insecure, got.Insecure, err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}
