package sync

// preAuthState returns the node's unauthenticated connections now, the
// most it held at once, and how many it refused for a bound.
func preAuthState(n *Node) (open, peak int, refused uint64) {
	open, peak = n.trans.gate.counts()
	return open, peak, n.trans.gate.refused.Load()
}
