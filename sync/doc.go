// Package sync replicates flows between ctsync nodes.
//
// Membership, failure detection and the cluster port are hashicorp/memberlist's:
// every node runs one memberlist with the cluster key in its keyring, so
// gossip is encrypted and authenticated. Flow replication rides on the same
// TCP port but not on memberlist's broadcast or push/pull paths, which are
// too slow and size-capped for flow tables (docs/design.md, "Why flows do
// not ride memberlist's broadcasts"): a transport wrapper hands connections
// that start with ctsync's marker byte to this package, everything else to
// memberlist.
//
// Each node keeps one stream to every peer, carrying its own flows only: a
// snapshot of its internal cache when the stream starts (or when the peer
// asks), then every change in order, coalesced per flow, then periodic
// digests. The receiver applies them to its external cache under the
// sender's name; a digest that does not match its copy makes it ask for a
// snapshot, so a peer that missed anything converges by itself. Streams are
// authenticated and encrypted with AES-GCM keys derived from the cluster key
// (handshake.go) unless the cluster is configured insecure: the sender's
// primary key at connect time, any key of the receiver's keyring. The
// handshake (version 2) derives a subkey per purpose with HKDF, never using
// the cluster key memberlist seals its packets with, and the dialling node
// confirms the key for the receiver's fresh nonce, so a recorded handshake
// cannot be replayed.
//
// A connection is unauthenticated until its handshake is over (or, for
// memberlist's streams, until memberlist closes it): at most maxPreAuth of
// them are open at once, maxPreAuthPerSource from one source, each with
// preAuthTimeout to finish and no stream buffers yet (preauth.go); more are
// closed at once and counted. memberlist's log lines go through the same
// rate limiter as ctsync's warnings, and its key and label failures count
// as authentication failures (delegate.go).
//
// Cluster key rotation (keys.go: ListKeys, InstallKey, UseKey, RemoveKey)
// sends key requests to every member as memberlist user messages, the only
// user messages there are, and gathers their answers.
//
// Wire messages (wire.go) are a version byte, a type byte and a msgpack body
// that only ever gains trailing fields. Nothing received is trusted: a
// message that fails to authenticate or decode is dropped and counted and
// its stream closed; the daemon never blocks on a peer. Trailing fields are
// skipped without recursion and refused when nested more than maxDepth (32)
// deep (msgp.go), and every length and count off the wire is checked
// against the bytes there before it becomes an int, 32-bit builds included.
//
// Imported by the agent; imports cache, flow and stats, never kernel.
package sync
