// Package flow defines the library-independent value of one connection-tracking
// entry (a "flow"): its two tuples, NAT, status, protocol state, timeout, mark,
// zone, labels, helper and sequence adjustment.
//
// It is the vocabulary shared by the kernel layer, the caches, replication and
// the CLI, and depends on the standard library only so that it can sit below
// all of them without import cycles. It also writes flows as conntrack(8)
// prints them (AppendText, AppendSave, AppendJSON) and selects them as
// conntrack's filter options do (Filter and its parsers). It does no I/O.
// Values are plain data: copy them freely; they are not safe for concurrent
// mutation.
package flow
