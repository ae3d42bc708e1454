package table

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// The operations behind the table subcommands and table load's lines. Each
// writes the entries it shows to w, one line each in req.output's format,
// and returns how many it handled; the callers print conntrack's summary
// and decide what zero means.

// dialTable opens the conntrack table of a network namespace ("" for the
// current one).
func dialTable(netns string) (*kernel.Conn, error) {
	conn, err := kernel.Dial(kernel.Config{NetNS: netns})
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w (the kernel table needs root or CAP_NET_ADMIN)", err)
		}
		return nil, err
	}
	return conn, nil
}

// matches applies the request's filters.
func (r *ctRequest) matches(f *flow.Flow) bool {
	return r.filter.Match(f) && r.extra.Match(f)
}

// lineWriter buffers output lines.
type lineWriter struct {
	w   *bufio.Writer
	buf []byte
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: bufio.NewWriter(w)} }

// write formats f as one line; a flow the format has no line for (a save
// line needs addresses) is skipped.
func (lw *lineWriter) write(o *outputFormat, f *flow.Flow, op byte, ev flow.EventType) error {
	lw.buf = o.appendLine(lw.buf[:0], f, op, ev)
	if len(lw.buf) == 0 {
		return nil
	}
	lw.buf = append(lw.buf, '\n')
	_, err := lw.w.Write(lw.buf)
	return err
}

func (lw *lineWriter) flush() error { return lw.w.Flush() }

// listEntries writes every matching entry (conntrack -L).
func listEntries(ctx context.Context, conn *kernel.Conn, req *ctRequest, w io.Writer) (int, error) {
	lw := newLineWriter(w)
	n := 0
	err := conn.Dump(ctx, req.dump, func(f *flow.Flow) error {
		if !req.matches(f) {
			return nil
		}
		n++
		return lw.write(&req.output, f, 'A', 0)
	})
	if ferr := lw.flush(); err == nil {
		err = ferr
	}
	return n, err
}

// getEntry writes the entry with the request's tuple (conntrack -G), or
// with its id alone.
func getEntry(ctx context.Context, conn *kernel.Conn, req *ctRequest, w io.Writer) error {
	if req.byID {
		n, err := listEntries(ctx, conn, req, w)
		if err == nil && n == 0 {
			err = errNoSuchEntry
		}
		return err
	}
	f, err := conn.Get(ctx, &req.flow, req.byReply)
	if errors.Is(err, kernel.ErrNotFound) || err == nil && req.filter.HasID && f.ID != req.filter.ID {
		return errNoSuchEntry
	}
	if err != nil {
		return err
	}
	lw := newLineWriter(w)
	if err := lw.write(&req.output, &f, 'A', 0); err != nil {
		return err
	}
	return lw.flush()
}

// errNoSuchEntry is conntrack's "such conntrack doesn't exist".
var errNoSuchEntry = errors.New("such conntrack doesn't exist")

// deleteEntries deletes every matching entry and writes each one deleted
// (conntrack -D). An entry that vanishes meanwhile is not counted.
func deleteEntries(ctx context.Context, conn *kernel.Conn, req *ctRequest, w io.Writer) (int, error) {
	lw := newLineWriter(w)
	n := 0
	err := conn.Dump(ctx, req.dump, func(f *flow.Flow) error {
		if !req.matches(f) {
			return nil
		}
		if err := conn.Delete(ctx, f); err != nil {
			if errors.Is(err, kernel.ErrNotFound) {
				return nil
			}
			return err
		}
		n++
		return lw.write(&req.output, f, 'D', 0)
	})
	if ferr := lw.flush(); err == nil {
		err = ferr
	}
	return n, err
}

// updateEntries changes every matching entry and writes each one changed as
// the kernel has it afterwards (conntrack -U). An entry the update would
// not change is left alone and not counted, as conntrack does; so is one
// that vanishes meanwhile.
func updateEntries(ctx context.Context, conn *kernel.Conn, req *ctRequest, w io.Writer) (int, error) {
	lw := newLineWriter(w)
	n := 0
	err := conn.Dump(ctx, req.dump, func(f *flow.Flow) error {
		if !req.matches(f) {
			return nil
		}
		nf, u, changed := req.updateOf(f)
		if !changed {
			return nil
		}

		if err := conn.Update(ctx, &nf, u); err != nil {
			if errors.Is(err, kernel.ErrNotFound) {
				return nil
			}
			return err
		}

		got, err := conn.Get(ctx, &nf, false)
		if errors.Is(err, kernel.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n++
		return lw.write(&req.output, &got, 'A', 0)
	})
	if ferr := lw.flush(); err == nil {
		err = ferr
	}
	return n, err
}

// updateOf returns the entry f as the request would change it, the fields
// to send and whether anything changes. The new mark is conntrack's
// (old & ~MASK) ^ MARK, computed here and sent whole.
func (r *ctRequest) updateOf(f *flow.Flow) (flow.Flow, kernel.UpdateFields, bool) {
	nf := *f
	var u kernel.UpdateFields
	changed := false

	if r.given&optTimeout != 0 {
		nf.Timeout = r.flow.Timeout
		u.Timeout = true
		changed = changed || !f.Has(flow.AttrTimeout) || f.Timeout != nf.Timeout
	}
	if r.given&optMark != 0 {
		nf.Mark = (f.Mark &^ r.markMask) ^ r.mark
		u.Mark = true
		changed = changed || !f.Has(flow.AttrMark) || f.Mark != nf.Mark
	}
	if r.given&optStatus != 0 {
		nf.Status = f.Status | r.status
		u.Status = true
		changed = changed || nf.Status != f.Status
	}
	if r.given&optState != 0 && f.Proto() == flow.ProtoTCP {
		nf.TCP.State = r.flow.TCP.State
		nf.Set(flow.AttrTCP)
		u.TCP = true
		changed = changed || !f.Has(flow.AttrTCP) || f.TCP.State != nf.TCP.State
	}
	return nf, u, changed
}

// createEntry creates the request's entry (conntrack -I); an existing entry
// is an error. For load -A it updates an existing entry instead, with the
// timeout, status bits, mark and protocol state of the line.
func createEntry(ctx context.Context, conn *kernel.Conn, req *ctRequest) error {
	if req.defaultTimeout {
		req.flow.Timeout = defaultTimeout(conn, &req.flow)
	}
	err := conn.Create(ctx, &req.flow, kernel.CreateOptions{})
	if err == nil || req.cmd != ctAdd || !errors.Is(err, kernel.ErrExist) {
		if errors.Is(err, kernel.ErrExist) {
			return errors.New("such conntrack exists (table update changes it; a load line -A creates or updates)")
		}
		return err
	}

	// load -A on an existing entry: update it.
	old, err := conn.Get(ctx, &req.flow, false)
	if err != nil {
		return err
	}
	nf, u, changed := req.updateOf(&old)
	if !changed {
		return nil
	}
	return conn.Update(ctx, &nf, u)
}

// defaultTimeout is the timeout of insert without -t: the kernel's own for
// the entry's protocol, state and status, read from the sysctl of the
// table's network namespace, or the kernel's compiled-in default where that
// cannot be read (see flow.DefaultTimeout).
func defaultTimeout(conn *kernel.Conn, f *flow.Flow) uint32 {
	sysctls, seconds := flow.DefaultTimeout(f)
	for _, name := range sysctls {
		v, err := conn.ReadSysctl(name)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
			return uint32(n)
		}
	}
	return seconds
}
