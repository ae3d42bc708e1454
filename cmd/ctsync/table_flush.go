package main

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
	return newCTCmd(s, &cobra.Command{
		Use:   "flush [-f ipv4|ipv6] [--yes]",
		Short: "Delete every conntrack entry (conntrack -F)",
		Long: `Empty the conntrack table, or with -f the entries of one family. On a terminal
it asks first; --yes skips the question. Without a terminal to ask on and
without --yes it refuses (exit 2), so a script cannot flush by accident.`,
		Example: `  ctsync table flush
  ctsync table flush --yes -f ipv6`,
	}, ctFlush, func(req *ctRequest) error { return confirmFlush(s, req) },
		func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
			if err := conn.Flush(ctx, req.family); err != nil {
				return err
			}
			fmt.Fprintln(s.err, "ctsync: connection tracking table has been emptied.")
			return nil
		})
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
