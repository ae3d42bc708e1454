package sync

import (
	"fmt"
	"sort"
	"time"

	"github.com/ctsync/ctsync/stats"
)

// PeerStats describe the replication with one peer (defined in the leaf
// package stats, which the statistics' readers import).
type PeerStats = stats.Peer

// Stats are the replication counters of this node (stats.Sync).
type Stats = stats.Sync

// Stats returns a snapshot of the counters.
func (n *Node) Stats() Stats {
	st := Stats{
		Node: n.cfg.Node, Epoch: n.epoch, Members: n.ml.NumMembers(), Health: n.ml.GetHealthScore(),
		AuthFailures: n.stats.authFailures.Load(), DecodeErrors: n.stats.decodeErrors.Load(),
		BadHellos: n.stats.badHello.Load(), UnexpectedMsgs: n.stats.unexpectedMsgs.Load(),
		JoinFailures: n.stats.joinFailures.Load(), StreamsRefused: n.stats.streamsRefused.Load(),
		PreAuthRefused: n.trans.gate.refused.Load(),
	}

	type peerAddr struct {
		p    *peer
		addr string // p.addr changes under n.mu
	}
	n.mu.Lock()
	peers := make([]peerAddr, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, peerAddr{p, p.addr})
	}
	n.mu.Unlock()

	for _, pa := range peers {
		p := pa.p
		ps := PeerStats{
			Peer: p.name, Addr: pa.addr, Connected: p.connected.Load(), CaughtUp: p.caughtUp.Load(),
			Pending: p.pending.Load(), SentBytes: p.sentBytes.Load(), SentMsgs: p.sentMsgs.Load(),
			SentEntries: p.sentEntries.Load(), Snapshots: p.snapshots.Load(), SendErrors: p.sendErrors.Load(),
			RecvBytes: p.recvBytes.Load(), RecvMsgs: p.recvMsgs.Load(), RecvEntries: p.recvEntries.Load(),
			Stale: p.stale.Load(), Mismatches: p.mismatches.Load(), ResyncAsked: p.resyncAsked.Load(),
			SentExpects: p.sentExpects.Load(), RecvExpects: p.recvExpects.Load(), ExpMismatches: p.expMismatches.Load(),
			CopyTruncated: p.truncated.Load(), ResyncsHeld: p.resyncsHeld.Load(),
		}
		if e, ok := p.lastErr.Load().(string); ok {
			ps.LastError = e
		}
		if t := p.digestOK.Load(); t != 0 {
			ps.LastDigestMatch = time.Unix(0, t)
		}
		ps.InSync = ps.CaughtUp && n.recentDigest(p)
		st.Peers = append(st.Peers, ps)
	}

	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Peer < st.Peers[j].Peer })
	return st
}

// Healthy reports whether this node is ready to take over: it has been
// in sync with the cluster (a fresh node that never synced is not ready),
// and every peer it currently receives from has confirmed that this node's
// copy of its flows is complete (a recent matching digest). A peer whose
// stream is down — dead, or cut off — does not make the node unready: its
// last confirmed flows are all anyone has, and a node must be able to take
// over exactly when its master dies. Nor does a peer that reconnected a
// moment ago: a firewall coming back must not make the master it streams
// to look unready (keepalived would demote it) while the first digest is
// on its way. So a node that was in sync once stays ready when no peer is
// alive. The reason says what is missing; for a node that never synced,
// why: no peer reachable, a cluster key or a cluster name mismatch.
func (n *Node) Healthy() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	synced := false
	grace := 5 * n.cfg.DigestEvery
	for name, p := range n.peers {
		p.inMu.Lock()
		connected := p.inConn != nil && time.Since(p.inSince) > grace
		p.inMu.Unlock()
		recent := n.recentDigest(p)
		if p.digestOK.Load() != 0 {
			synced = true
		}
		if connected && !recent && p.truncated.Load() {
			return false, fmt.Sprintf("this node's copy of peer %s's flows is incomplete: the external cache is full (cache.max_flows)", name)
		}
		if connected && !recent {
			return false, fmt.Sprintf("this node's copy of peer %s's flows is not confirmed complete yet", name)
		}
	}
	if !synced {
		return false, "never in sync with a peer yet: " + n.neverSyncedWhy()
	}
	return true, "in sync with every peer it hears"
}
