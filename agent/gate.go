package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ctsync/ctsync/stats"
)

// Gate closes the RST window of a takeover (commit.gate). keepalived moves
// the VIPs first and runs `notify master` after; packets that reach the new
// master before their flows are in its kernel table would be dropped as
// INVALID and answered with a TCP reset (by a reject rule, or by the box's
// own stack for replies addressed to a VIP), or, for UDP and loose TCP
// pickup, take a fresh NAT mapping. While armed, the gate drops those
// packets instead: the peers retransmit, and after the takeover the
// retransmissions find their state.
//
// It is armed by `notify backup` and `notify fault`, and lifted by
// `notify master` once the flows are in the kernel, by `notify stop`, and
// when the daemon stops (fail-open: a stopped ctsync leaves the firewall
// as it would be without it). A crash leaves it armed; the restarted
// daemon keeps it.
type Gate interface {
	// Arm installs the gate (idempotent; counters restart).
	Arm(ctx context.Context) error
	// Lift removes it and returns the packets it dropped (idempotent).
	Lift(ctx context.Context) (dropped uint64, err error)
	// State reports whether the gate is installed and what it dropped.
	State(ctx context.Context) (armed bool, dropped uint64, err error)
}

// gateTable is the nftables table of the gate (family inet).
const gateTable = "ctsync_gate"

// gateRules drop, before any rule of the operator's (priority -300; the
// conntrack lookup, at -200 in prerouting, is done by then):
//   - forwarded packets in state new or invalid: packets of flows not yet
//     committed, and new connections (their SYN is retransmitted);
//   - packets to this box in state invalid, or new TCP without a lone SYN
//     (loose pickup): replies addressed to a VIP, which the local stack
//     would answer with a reset.
//
// Traffic of the box itself (VRRP, the cluster link, SSH, new TCP
// connections to it) passes. One named counter counts every drop; it
// outlives the rules, so that lifting (flushing the rules) is a single
// quick transaction and the count is read afterwards.
const gateRules = `table inet ` + gateTable + `
delete table inet ` + gateTable + `
table inet ` + gateTable + ` {
	counter dropped { }
	chain forward {
		type filter hook forward priority -300; policy accept;
		ct state new,invalid counter name "dropped" drop comment "ctsync gate: flow not committed yet"
	}
	chain input {
		type filter hook input priority -300; policy accept;
		ct state invalid counter name "dropped" drop comment "ctsync gate: flow not committed yet"
		meta l4proto tcp ct state new tcp flags & (syn | ack) != syn counter name "dropped" drop comment "ctsync gate: flow not committed yet"
	}
}
`

// nftGate drives the gate with nft(8), in the daemon's network namespace
// or in kernel.netns's.
type nftGate struct {
	netns string // "" = own; a name under /run/netns or a path
}

// newNftGate checks that nft (and nsenter, for another namespace) can be
// run, so that a missing tool stops the daemon at start, not at failover.
func newNftGate(netns string) (*nftGate, error) {
	need := []string{"nft"}
	if netns != "" {
		need = append(need, "nsenter")
	}
	for _, t := range need {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("commit.gate needs %s(8): install nftables (or set commit.gate: false): %w", t, err)
		}
	}
	return &nftGate{netns: netns}, nil
}

func (g *nftGate) nft(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	argv := append([]string{"nft"}, args...)
	if g.netns != "" {
		path := g.netns
		if !strings.Contains(path, "/") {
			path = "/run/netns/" + path
		}
		argv = append([]string{"nsenter", "--net=" + path, "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("nft %s: %s", strings.Join(args, " "), msg)
	}
	return out.Bytes(), nil
}

func (g *nftGate) Arm(ctx context.Context) error {
	_, err := g.nft(ctx, gateRules, "-f", "-")
	return err
}

func (g *nftGate) Lift(ctx context.Context) (uint64, error) {
	// Open first (one transaction: the rules go, the counter stays), then
	// count, then tidy up.
	if _, err := g.nft(ctx, "table inet "+gateTable+"\nflush table inet "+gateTable+"\n", "-f", "-"); err != nil {
		return 0, err
	}
	_, dropped, err := g.State(ctx)
	if err != nil {
		dropped = 0 // lifting matters more than counting
	}
	_, err = g.nft(ctx, "table inet "+gateTable+"\ndelete table inet "+gateTable+"\n", "-f", "-")
	return dropped, err
}

func (g *nftGate) State(ctx context.Context) (bool, uint64, error) {
	out, err := g.nft(ctx, "", "-j", "list", "table", "inet", gateTable)
	if err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return false, 0, nil
		}
		return false, 0, err
	}
	return parseGate(out)
}

// parseGate reads `nft -j list table` output of the gate's table: armed
// when it has rules; dropped is its counter.
func parseGate(js []byte) (armed bool, dropped uint64, err error) {
	var doc struct {
		Nftables []struct {
			Rule    json.RawMessage `json:"rule"`
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return false, 0, fmt.Errorf("nft -j: %w", err)
	}
	for _, o := range doc.Nftables {
		if o.Rule != nil {
			armed = true
		}
		if o.Counter != nil && o.Counter.Name == "dropped" {
			dropped = o.Counter.Packets
		}
	}
	return armed, dropped, nil
}

// armGate installs the gate (notify backup and fault).
func (a *Agent) armGate(ctx context.Context) (string, error) {
	if a.gate == nil {
		return "none (commit.gate: false)", nil
	}
	if err := a.gate.Arm(ctx); err != nil {
		return "", fmt.Errorf("commit gate: %w", err)
	}
	a.gateArmed.Store(true)
	a.gateDrops.Store(0)
	return "packets of unknown flows are dropped until notify master", nil
}

// liftGate removes the gate and keeps what it dropped for the stats.
func (a *Agent) liftGate(ctx context.Context) (string, error) {
	if a.gate == nil {
		return "none (commit.gate: false)", nil
	}
	dropped, err := a.gate.Lift(ctx)
	if err != nil {
		return "", fmt.Errorf("commit gate: %w", err)
	}
	was := a.gateArmed.Swap(false)
	a.gateDrops.Store(dropped)
	if !was {
		return "was not armed", nil
	}
	a.log.Info("commit gate lifted", "dropped_packets", dropped)
	return fmt.Sprintf("%d packets dropped while armed", dropped), nil
}

// gateStats reads the gate's counters while it is armed (at most once a
// second: stats may be polled).
func (a *Agent) gateStats() stats.Gate {
	s := stats.Gate{Enabled: a.gate != nil, Armed: a.gateArmed.Load(),
		LastSeconds: time.Duration(a.gateLast.Load()).Seconds()}
	if s.Armed {
		a.gateMu.Lock()
		if time.Since(a.gateRead) >= time.Second {
			a.gateRead = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if _, n, err := a.gate.State(ctx); err == nil {
				a.gateDrops.Store(n)
			}
			cancel()
		}
		a.gateMu.Unlock()
	}
	s.Dropped = a.gateDrops.Load()
	return s
}
