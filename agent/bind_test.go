package agent

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/ctsync/ctsync/config"
)

func TestClusterBind(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		cluster   config.Cluster
		bind, via string
		err       string // substring; "" = no error
	}{
		{"explicit", config.Cluster{Bind: "10.0.3.1:7946", Join: []string{"127.0.0.1:7946"}}, "10.0.3.1:7946", "", ""},
		{"explicit wildcard", config.Cluster{Bind: "0.0.0.0:7946"}, "0.0.0.0:7946", "", ""},
		{"wildcard when insecure", config.Cluster{Bind: "[::]:7946", Insecure: true}, "", "",
			"cluster.bind [::]:7946 listens on every address: refused with cluster.insecure"},
		{"route to the first peer, its port", config.Cluster{Join: []string{"127.0.0.1:3780", "127.0.0.2:7946"}},
			"127.0.0.1:3780", "127.0.0.1:3780", ""},
		{"first peer without a route", config.Cluster{Join: []string{"[fe80::2%nosuchif0]:7946", "127.0.0.1:7946"}},
			"127.0.0.1:7946", "127.0.0.1:7946", ""},
		{"no peer has a route", config.Cluster{Join: []string{"[fe80::2%nosuchif0]:7946"}},
			"", "", "no local address routes to a cluster.join peer ("},
		{"neither bind nor join", config.Cluster{}, "", "", "cluster.bind is not set and cluster.join is empty: set cluster.bind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bind, via, err := clusterBind(ctx, &tt.cluster)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("clusterBind = %q, %v; want an error with %q", bind, err, tt.err)
				}
				return
			}
			if err != nil || bind != tt.bind || via != tt.via {
				t.Fatalf("clusterBind = %q via %q, %v; want %q via %q", bind, via, err, tt.bind, tt.via)
			}
		})
	}
	// IPv6, where the host has it.
	if ln, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		ln.Close()
		bind, _, err := clusterBind(ctx, &config.Cluster{Join: []string{"[::1]:7946"}})
		if err != nil || bind != "[::1]:7946" {
			t.Errorf("clusterBind to [::1]:7946 = %q, %v", bind, err)
		}
	}
}

// TestWildcardBindWarns: a node listening on every address warns that
// memberlist advertises a guessed address.
func TestWildcardBindWarns(t *testing.T) {
	var logs logBuffer
	warnExposure(slog.New(slog.NewTextHandler(&logs, nil)), &config.Cluster{Bind: "0.0.0.0:7946"}, "0.0.0.0:7946")
	warnExposure(slog.New(slog.NewTextHandler(&logs, nil)), &config.Cluster{Bind: "10.0.3.1:7946"}, "10.0.3.1:7946")
	if got := logs.String(); strings.Count(got, "level=WARN") != 1 ||
		!strings.Contains(got, "cluster.bind listens on every address; memberlist advertises an address it guessed") {
		t.Fatalf("logs:\n%s", got)
	}
}
