// Package control is the daemon's local control API: HTTP/1.1 with JSON
// bodies over a UNIX socket (control.socket, mode 0600), so that the ctsync
// CLI and operators alike can talk to a running daemon:
//
//	curl --unix-socket /run/ctsync/ctsync.sock http://ctsync/v1/stats
//
// The daemon calls Listen, which also takes the instance lock (an flock on
// the socket path + ".lock": a second daemon on the same socket refuses to
// start, a socket left by a crashed one is removed), then Serve with its
// Backend. The CLI calls Dial and one Client method per command. Every
// connection's peer credentials are checked: only root and the daemon's
// own user may talk, others get 403.
//
// Endpoints (errors are {"error":"..."}, 4xx for a bad request, 5xx for a
// failure; request bodies are at most 1 MiB):
//
//	POST /v1/commit         → CommitResult
//	POST /v1/flush          {"cache":"internal|external|"} → {"flushed":"..."}
//	POST /v1/resync/kernel  → ResyncResult
//	POST /v1/resync/peers   → {"peers":N}
//	POST /v1/send-bulk      → {"peers":N}
//	POST /v1/purge          {"after_seconds":F} → PurgeResult
//	POST /v1/cache          CacheQuery → text/plain, one flow per line
//	                        (with "count": {"count":N}); an error after the
//	                        listing started comes in the Ctsync-Error trailer
//	GET  /v1/stats          → the Backend's statistics
//	GET  /v1/members        → []Member
//	POST /v1/notify         {"state":"master|backup|fault|stop"} → NotifyResult
//	GET  /v1/health         → 200 or 503 with HealthResult
//	POST /v1/shutdown       → 202
//	GET  /v1/keys           → KeysResult: the cluster keys by fingerprint
//	POST /v1/keys/install   {"key":"BASE64"} → KeysResult
//	POST /v1/keys/use       {"key":"BASE64"} → KeysResult
//	POST /v1/keys/remove    {"key":"BASE64"} → KeysResult
//
// The package defines the API (Backend and the result types) and the
// transport, nothing of what the operations do: the agent implements
// Backend. It imports only the standard library, flow, stats (the types
// of Backend.Stats and of the commit and notify results) and
// internal/httpserve (the server shape it shares with metrics);
// cmd/ctsync and the agent import it. control/controltest has a fake
// Backend.
package control
