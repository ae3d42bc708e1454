package table

import (
	"bufio"
	"context"
	"io"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// The expectation table (conntrack's "expect" table: -L expect, -F expect)
// through --expect on table list and table flush.

// expectOpts are the options that apply with --expect.
const expectOpts = optFamily | optNetNS | optYes

// listExpectations writes the expectation table as conntrack -L expect does.
func listExpectations(ctx context.Context, conn *kernel.Conn, fam flow.Family, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	n := 0
	var line []byte
	err := conn.DumpExpect(ctx, kernel.ExpectFilter{Family: fam}, func(x *flow.Expect) error {
		n++
		line = x.AppendText(line[:0])
		line = append(line, '\n')
		_, err := bw.Write(line)
		return err
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

// expectOnly marks req as one for the expectation table and rejects the
// options that do not apply to it.
func expectOnly(req *ctRequest, what string) error {
	req.expect = true
	if extra := req.given &^ expectOpts; extra != 0 {
		return usageErrorf("%s --expect: %s does not apply to the expectation table (only -f and --netns do)", what, optName(lowestBit(extra)))
	}
	return nil
}
