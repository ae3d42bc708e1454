// Package httpserve is the one server shape of the daemon's two HTTP
// endpoints, the control socket (UNIX) and the metrics endpoint (TCP):
// the caller opens the listener first (so that a socket that cannot be
// bound stops the daemon before it starts anything), Serve answers until
// its context ends and then shuts down gracefully, Close stops at once.
// It imports nothing of ours.
package httpserve
