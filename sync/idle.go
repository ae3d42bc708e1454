package sync

import "time"

// minIdleTimeout is the least time an incoming replication stream may stay
// silent, mid-frame or between frames, before the node drops it. A live
// sender is never silent for long: it sends a digest every DigestEvery
// once caught up, and entries until then. Without the bound a peer that
// hangs (or a client that authenticated and stalls) would hold the
// receiving goroutine and its stream until the node stops.
var minIdleTimeout = 30 * time.Second

// idleTimeout is the read deadline of an incoming stream's next frame.
func (n *Node) idleTimeout() time.Duration { return max(minIdleTimeout, 20*n.cfg.DigestEvery) }
