package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ctsync/ctsync/config"
)

// resolveTimeout bounds the name lookup of a join peer when cluster.bind
// is derived from it.
const resolveTimeout = 5 * time.Second

// clusterBind returns the address to listen on for cluster traffic:
// cluster.bind, or when it is not set, the local address the kernel would
// use to reach the first join peer that resolves, on that peer's port (the
// nodes of a cluster use the same port). It never sends a packet: a UDP
// socket is connected, its local address read, and closed. Like
// config.Validate, it refuses every address on an insecure cluster.
func clusterBind(ctx context.Context, c *config.Cluster) (bind, via string, err error) {
	if c.Bind != "" {
		if c.Insecure && isWildcard(c.Bind) {
			return "", "", fmt.Errorf("cluster.bind %s listens on every address: refused with cluster.insecure", c.Bind)
		}
		return c.Bind, "", nil
	}
	if len(c.Join) == 0 {
		return "", "", errors.New("cluster.bind is not set and cluster.join is empty: set cluster.bind to this node's address on the sync link")
	}
	var errs []string
	for _, peer := range c.Join {
		local, err := routeTo(ctx, peer)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, port, _ := net.SplitHostPort(peer)
		return net.JoinHostPort(local.String(), port), peer, nil
	}
	return "", "", fmt.Errorf("cluster.bind is not set and no local address routes to a cluster.join peer (%s): "+
		"set cluster.bind to this node's address on the sync link", strings.Join(errs, "; "))
}

// routeTo returns the local address the kernel picks to reach peer
// (host:port, host names resolved).
func routeTo(ctx context.Context, peer string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", peer) // connect(2) only: nothing is sent
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	ua, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%s: local address %v is not UDP", peer, conn.LocalAddr())
	}
	a := ua.AddrPort().Addr().Unmap()
	if !a.IsValid() || a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("%s: no local address routes to it", peer)
	}
	return a, nil // a link-local address keeps its zone: binding needs it
}

// isWildcard reports whether bind (host:port) is on the unspecified
// address: every address of the host.
func isWildcard(bind string) bool {
	host, _, err := net.SplitHostPort(bind)
	a, perr := netip.ParseAddr(host)
	return err == nil && perr == nil && a.IsUnspecified()
}

// warnExposure logs, at every start and reload, what the cluster settings
// expose: an insecure cluster, and a bind on every address.
func warnExposure(log *slog.Logger, c *config.Cluster, bind string) {
	if c.Insecure {
		log.Warn("INSECURE CLUSTER: cluster.insecure is true, so cluster traffic is neither encrypted nor authenticated: "+
			"anyone who can reach the cluster port can read this node's flows and inject flows into its tables; "+
			"create a key with `ctsync keygen`, copy it to every node and set cluster.key_file",
			"bind", bind)
	}
	if isWildcard(bind) {
		msg := "cluster.bind listens on every address; memberlist advertises an address it guessed: " +
			"set cluster.bind to the sync link's address, or cluster.advertise"
		if c.Advertise != "" {
			msg = "cluster.bind listens on every address; bind to the sync link's address to keep strangers off the cluster port"
		}
		log.Warn(msg, "bind", bind)
	}
}
