package sync

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// minIdleTimeout is the least time an incoming replication stream may stay
// silent, mid-frame or between frames, before the node drops it. A live
// sender is never silent for long: it sends a digest every DigestEvery
// once caught up, and entries until then. Without the bound a peer that
// hangs (or a client that authenticated and stalls) would hold the
// receiving goroutine and its stream until the node stops.
var minIdleTimeout = 30 * time.Second

// idleTimeout is the read deadline of an incoming stream's next frame.
func (n *Node) idleTimeout() time.Duration { return max(minIdleTimeout, 20*n.cfg.DigestEvery) }

// minUserTimeout is the least time data sent on a replication stream may
// stay unacknowledged before the kernel aborts the connection
// (TCP_USER_TIMEOUT). A sender always has data in flight (a digest every
// DigestEvery), so a peer cut off by a partition is noticed within this
// time; the stream then redials every few seconds at most, and resumes as
// soon as the network heals, instead of waiting out TCP's retransmission
// backoff (up to two minutes) on a connection that looked fine.
var minUserTimeout = 10 * time.Second

// userTimeout is the TCP_USER_TIMEOUT of outgoing streams.
func (n *Node) userTimeout() time.Duration { return max(minUserTimeout, 10*n.cfg.DigestEvery) }

// setUserTimeout is a net.Dialer Control function that sets
// TCP_USER_TIMEOUT on the socket.
func setUserTimeout(d time.Duration) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
		}); err != nil {
			return err
		}
		return serr
	}
}
