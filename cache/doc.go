// Package cache holds ctsync's two flow caches.
//
// Internal holds this node's own flows, as learned from the kernel (dump,
// then events). Each change gets a version from a per-node counter and is
// appended to a change log that replication reads with a cursor, so a slow
// peer never blocks the kernel side and repeated changes to one flow
// coalesce into one message. Snapshot walks the cache in chunks for bulk
// sends; Digest is an order-independent summary (count and XOR of per-flow
// hashes of key and version) that a peer compares with its copy.
//
// External holds the flows of other nodes, per origin node, at the versions
// their owners gave them. Stale or reordered updates never win; a snapshot
// from an owner replaces what it held; entries age on a monotonic clock from
// the last time their owner vouched for them.
//
// Storage is compact and pointer-free (a chunked slab indexed by a map of
// fixed-size keys): the garbage collector has nothing to scan and memory per
// flow stays under 200 bytes. The package does no I/O; its clock is injected.
// Internal and External are safe for concurrent use.
//
// Imported by the agent (and the sync package through the agent's wiring);
// it imports only flow and stats (the leaf its OriginStats live in).
package cache
