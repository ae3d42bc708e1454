package kernel

import (
	"context"
	"encoding/binary"
	"fmt"
	stdsync "sync"

	"github.com/ctsync/ctsync/flow"
	"golang.org/x/sys/unix"
)

// Op is what Bulk does with each flow.
type Op uint8

// Bulk operations.
const (
	OpCreate Op = iota // create; ErrExist per entry when it exists
	OpUpdate           // update timeout, status, mark, labels and TCP state in place
	OpDelete           // delete by original tuple and zone
	OpGet              // fetch by original tuple and zone into BulkOptions.Got
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpGet:
		return "get"
	}
	return "unknown"
}

// batchSize is how many requests go into one sendmsg. The kernel handles
// them one by one, synchronously inside sendmsg, and answers only failures
// (requests go without NLM_F_ACK) plus an ACK for the batch's last request,
// which tells that every answer of the batch has been read. Even a batch
// that fails whole fits the request socket's receive buffer.
const batchSize = 256

// BulkOptions tune Bulk.
type BulkOptions struct {
	Create CreateOptions // for OpCreate
	Update UpdateFields  // for OpUpdate
	// Got receives, for OpGet, each entry found (len(flows) entries; an
	// entry not found is left zero and its errs slot says ErrNotFound).
	// The kernel looks a tuple up in both directions: the entry found may
	// be one whose reply tuple is the flow's original tuple.
	Got []flow.Flow
}

// Bulk applies op to every flow, pipelining requests over Config.Parallel
// sockets. errs, when not nil, must have len(flows) entries and receives
// each entry's result (nil, or an error that errors.Is ErrExist/ErrNotFound
// where those fit). It returns the number of entries that failed, and an
// error only when a socket failed and entries were left with unknown results
// (their errs are set to that error too). Flows are not modified.
//
// Within one call there is no ordering between flows: callers that need
// masters before RELATED flows make two calls.
func (c *Conn) Bulk(ctx context.Context, op Op, flows []flow.Flow, o BulkOptions, errs []error) (failed int, err error) {
	if errs != nil && len(errs) != len(flows) {
		return 0, fmt.Errorf("bulk %s: %d results for %d flows", op, len(errs), len(flows))
	}
	if op == OpGet && len(o.Got) != len(flows) {
		return 0, fmt.Errorf("bulk %s: room for %d entries for %d flows", op, len(o.Got), len(flows))
	}
	if len(flows) == 0 {
		return 0, nil
	}
	if errs == nil {
		errs = make([]error, len(flows))
	}
	workers := c.cfg.Parallel
	if enough := len(flows)/batchSize + 1; workers > enough {
		workers = enough
	}
	per := (len(flows) + workers - 1) / workers
	var wg stdsync.WaitGroup
	failedBy := make([]int, workers)
	errBy := make([]error, workers)
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, len(flows))
		if lo >= hi {
			continue
		}
		werrs := errs[lo:hi]
		wo := o
		if op == OpGet {
			wo.Got = o.Got[lo:hi]
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			failedBy[w], errBy[w] = c.bulkWorker(ctx, op, flows[lo:hi], wo, werrs)
		}(w)
	}
	wg.Wait()
	for w := range failedBy {
		failed += failedBy[w]
		if err == nil && errBy[w] != nil {
			err = errBy[w]
		}
	}
	if err != nil {
		return failed, fmt.Errorf("bulk %s: %w", op, err)
	}
	return failed, nil
}

func (c *Conn) bulkWorker(ctx context.Context, op Op, flows []flow.Flow, o BulkOptions, errs []error) (failed int, err error) {
	s, err := c.get()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return len(flows), err
	}
	defer c.put(s)
	stop := s.deadline(ctx, c.cfg.RequestTimeout)
	defer stop()
	for lo := 0; lo < len(flows); lo += batchSize {
		hi := min(lo+batchSize, len(flows))
		bo := o
		if op == OpGet {
			bo.Got = o.Got[lo:hi]
		}
		n, err := s.batch(op, flows[lo:hi], bo, errs[lo:hi])
		failed += n
		if err != nil {
			s.dirty = true
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			for i := hi; i < len(flows); i++ {
				errs[i] = err
			}
			return failed + len(flows) - hi, err
		}
	}
	return failed, nil
}

// batch sends one batch and collects one ACK or error per request. Only
// failures and the last request are answered, so every errs slot is
// cleared first: a success leaves its slot as it is, and the caller's
// slots may hold the results of an earlier round.
func (s *sock) batch(op Op, flows []flow.Flow, o BulkOptions, errs []error) (failed int, err error) {
	clear(errs)
	if op == OpGet {
		clear(o.Got)
	}
	base := s.encodeBatch(op, flows, o)
	if err := s.send(s.enc.b); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return len(flows), err
	}
	a := batchAnswers{op: op, flows: flows, got: o.Got, errs: errs, base: base}
	return s.collect(&a)
}

// encodeBatch encodes one request per flow into s.enc, all but the last
// without NLM_F_ACK, and returns the sequence number of the first.
func (s *sock) encodeBatch(op Op, flows []flow.Flow, o BulkOptions) (base uint32) {
	s.enc.reset()
	base = s.seq + 1
	for i := range flows {
		start := len(s.enc.b)
		if !s.encodeRequest(op, &flows[i], s.nextSeq(), o) {
			continue
		}
		if i != len(flows)-1 {
			clearAck(s.enc.b[start:])
		}
	}
	return base
}

// encodeRequest encodes op's request for f. For a flow Create would refuse
// it encodes, and returns false for, a harmless request that fails: the
// sequence stays dense and the error lands on this entry.
func (s *sock) encodeRequest(op Op, f *flow.Flow, seq uint32, o BulkOptions) bool {
	switch op {
	case OpCreate:
		if verr := f.Validate(); verr != nil {
			off := s.enc.begin(nfnlSubsysCT<<8|ctNew, nlmFRequest|nlmFAck, seq, 0, nfnetlinkV0)
			s.enc.end(off)
			return false
		}
		s.enc.appendCreate(f, seq, nlmFCreate|nlmFExcl, o.Create)
	case OpUpdate:
		s.enc.appendUpdate(f, seq, o.Update)
	case OpDelete:
		s.enc.appendTupleRequest(ctDelete, f, false, seq)
	case OpGet:
		s.enc.appendTupleRequest(ctGet, f, false, seq)
	}
	return true
}

// batchAnswers collects the kernel's answers to one batch.
type batchAnswers struct {
	op     Op
	flows  []flow.Flow
	got    []flow.Flow // OpGet's entries found
	errs   []error
	base   uint32 // the sequence number of the first request
	failed int
	next   int  // the first request whose answer may still come
	done   bool // the last request has been answered
}

// collect reads the answers until the last request's. The kernel answers
// the requests in order: every request before the last one answered has
// its result, those after it are unknown when the socket fails.
func (s *sock) collect(a *batchAnswers) (failed int, err error) {
	for !a.done {
		b, err := s.recv()
		if err != nil {
			return a.failed + a.unknown(err), err
		}
		it := msgIter{b: b}
		for it.next() {
			a.answer(&it.m)
		}
		if it.err != nil {
			return a.failed + a.unknown(it.err), it.err
		}
	}
	return a.failed, nil
}

// answer records one message of the kernel's answer.
func (a *batchAnswers) answer(m *msg) {
	idx := int(m.seq - a.base)
	if idx < 0 || idx >= len(a.flows) {
		return
	}
	a.next = max(a.next, idx)
	if m.typ != nlmsgError {
		if a.op == OpGet && m.typ == nfnlSubsysCT<<8|ctNew {
			a.fail(idx, a.decodeGot(m, idx))
		}
		return
	}
	a.next = max(a.next, idx+1)
	if idx == len(a.flows)-1 {
		a.done = true
	}
	a.fail(idx, a.result(m, idx))
}

// decodeGot decodes the entry OpGet found for request idx.
func (a *batchAnswers) decodeGot(m *msg, idx int) error {
	if len(m.data) < nfgenHdrLen {
		return errMalformed
	}
	return decodeFlow(m.data[nfgenHdrLen:], &a.got[idx])
}

// result is the outcome an ACK or error message reports for request idx.
func (a *batchAnswers) result(m *msg, idx int) error {
	e, perr := errnoOf(m.data)
	switch {
	case perr != nil:
		return perr
	case e == 0:
		return nil
	}
	if a.op == OpCreate && e == unix.EINVAL {
		if verr := a.flows[idx].Validate(); verr != nil {
			return verr
		}
	}
	return mapErrno(e)
}

// fail records err, if any, as request idx's result, unless it has one.
func (a *batchAnswers) fail(idx int, err error) {
	if err != nil && a.errs[idx] == nil {
		a.failed++
		a.errs[idx] = err
	}
}

// unknown gives err to every request from a.next on, whose results are
// unknown, and returns how many there are.
func (a *batchAnswers) unknown(err error) int {
	for i := a.next; i < len(a.errs); i++ {
		a.errs[i] = err
	}
	return len(a.errs) - a.next
}

// clearAck removes NLM_F_ACK from an encoded request.
func clearAck(m []byte) {
	fl := binary.NativeEndian.Uint16(m[6:])
	binary.NativeEndian.PutUint16(m[6:], fl&^nlmFAck)
}
