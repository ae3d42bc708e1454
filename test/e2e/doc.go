// Package e2e runs the real ctsync binary as daemons, each in its own
// network namespace with its own conntrack table, joined by veth pairs to a
// bridge in a switch namespace, with conntrack(8) as the oracle.
//
// It needs root (privileged tier); TestMain builds the binary once.
package e2e
