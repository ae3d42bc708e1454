package table

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

func newTableFlushCmd(s *streams) *cobra.Command {
	var expect bool
	cmd := newCTCmd(s, &cobra.Command{
		Use:   "flush [-f ipv4|ipv6] [--expect] [--yes]",
		Short: "Delete every conntrack entry (conntrack -F)",
		Long: `Empty the conntrack table, or with -f the entries of one family. On a terminal
it asks first; --yes skips the question. Without a terminal to ask on and
without --yes it refuses (exit 2), so a script cannot flush by accident.
With --expect, empty the expectation table instead (conntrack -F expect).`,
		Example: `  ctsync table flush
  ctsync table flush --yes -f ipv6
  ctsync table flush --yes --expect`,
	}, ctFlush, func(req *ctRequest) error {
		if expect {
			if err := expectOnly(req, "table flush"); err != nil {
				return err
			}
			if req.family != flow.FamilyUnspec {
				return usageErrorf("table flush --expect: -f does not apply: the kernel flushes every expectation")
			}
		}
		return confirmFlush(s, req)
	},
		func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
			if req.expect {
				if err := conn.FlushExpect(ctx); err != nil {
					return err
				}
				fmt.Fprintln(s.err, "ctsync: expectation table has been emptied.")
				return nil
			}
			if err := conn.Flush(ctx, req.family); err != nil {
				return err
			}
			fmt.Fprintln(s.err, "ctsync: connection tracking table has been emptied.")
			return nil
		})
	cmd.Flags().BoolVar(&expect, "expect", false, "flush the expectation table instead (conntrack -F expect)")
	return cmd
}

// confirmFlush asks on the terminal unless --yes was given.
func confirmFlush(s *streams, req *ctRequest) error {
	if req.yes {
		return nil
	}
	if !isTerminal(s.in) {
		return usageErrorf("table flush: standard input is not a terminal to confirm on; add --yes to flush")
	}
	what := "the whole conntrack table"
	if req.expect {
		what = "the expectation table"
	}
	if req.family != flow.FamilyUnspec {
		what = "every " + req.family.String() + " entry of the conntrack table"
	}
	if req.netns != "" {
		what += " of network namespace " + req.netns
	}
	fmt.Fprintf(s.err, "Flush %s? [y/N] ", what)
	answer, err := bufio.NewReader(s.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("flush cancelled; the table was not changed")
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
