package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/config"
)

// newConfigImportCmd is `ctsync config import conntrackd.conf`.
func newConfigImportCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "import CONNTRACKD.CONF",
		Short: "Translate a conntrackd.conf into a ctsync configuration",
		Long: `Read a conntrackd.conf and print the equivalent ctsync configuration (YAML) on
standard output: the sync transport's addresses become cluster.bind and
cluster.join (port 7946 unless the file gives one; with no local address, bind
is left out when there is a peer, and is 127.0.0.1 otherwise, since an
insecure cluster never listens on every address), Filter becomes filter,
UNIX { Path } control.socket, CommitTimeout and PurgeTimeout commit.timeout
and purge_timeout, the netlink buffer size kernel.event_buffer, HashLimit
cache.max_flows.

conntrackd neither encrypts nor authenticates its traffic, so the result sets
cluster.insecure: true, with a comment telling how to switch to a key made by
` + "`ctsync keygen`" + `: do it before going to production.

Every directive that has no ctsync equivalent is listed on standard error,
one per line, with the reason. Exit status: 0 when the file was translated
(notes or not), 1 when it cannot be read or has a syntax error (the line is
named), 2 on a bad command line.`,
		Example: `  ctsync config import /etc/conntrackd/conntrackd.conf > /etc/ctsync/ctsync.yaml
  ctsync config check -c /etc/ctsync/ctsync.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := args[0]
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("config import: %w", err)
			}
			out, notes, err := config.Import(data)
			if ie, ok := errors.AsType[*config.ImportError](err); ok {
				return fmt.Errorf("config import: %s:%d: %s", path, ie.Line, ie.Msg)
			}
			if err != nil {
				return err
			}
			if _, err := s.out.Write(out); err != nil {
				return err
			}
			if len(notes) > 0 {
				fmt.Fprintf(s.err, "ctsync: config import: %s not translated:\n", plural(len(notes), "directive"))
			}
			for _, n := range notes {
				if n.Line == 0 { // about the file as a whole
					fmt.Fprintf(s.err, "  %s: %s: %s\n", path, n.Directive, n.Reason)
					continue
				}
				fmt.Fprintf(s.err, "  %s:%d: %s: %s\n", path, n.Line, n.Directive, n.Reason)
			}
			return nil
		},
	}
}
