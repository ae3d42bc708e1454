// Package kernel is ctsync's only door to the kernel's connection-tracking
// table: it speaks ctnetlink over netlink sockets and converts entries to and
// from the library-independent flow.Flow.
//
// It offers a streaming dump (memory independent of table size), get, count,
// per-CPU statistics, create with everything a flow needs on another node
// (both tuples, NAT through CTA_NAT_SRC/CTA_NAT_DST, status, protocol state,
// timeout, mark, zones, labels, helper, sequence adjustment), update, delete,
// flush, a pipelined bulk path with per-entry errors (Bulk) and an ordered
// event watch that reports receive-buffer overruns as ErrOverrun instead of
// losing events silently. The expectation table (the connections helpers
// such as ftp and sip expect, conntrack -L expect) has dump, get, create on
// an existing master, delete, flush and an event watch (expect.go,
// flow.Expect). Every operation can target another network namespace
// (Config.NetNS), and ReadSysctl reads that namespace's sysctls (the
// conntrack timeouts, for instance).
//
// Messages are encoded and decoded by hand (codec.go) on sockets opened with
// mdlayher/netlink; ti-mo/conntrack is used for the operations it does well
// (flush, global counters) and as an independent decoder in tests.
//
// It is not a cache and keeps no state beyond its sockets. Imported by the
// agent and the CLI; it never imports sync.
package kernel
