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
	var strict bool
	cmd := &cobra.Command{
		Use:   "import [--strict] CONNTRACKD.CONF",
		Short: "Translate a conntrackd.conf into a ctsync configuration",
		Long: `Read a conntrackd.conf and print the equivalent ctsync configuration (YAML) on
standard output: the sync transport's addresses become cluster.bind and
cluster.join (port 7946 unless the file gives one; with no local address, bind
is left out when there is a peer, and is 127.0.0.1 otherwise, since an
insecure cluster never listens on every address), Filter becomes filter,
CommitTimeout and PurgeTimeout commit.timeout and purge_timeout,
DisableExternalCache On commit.mode: hot, the netlink buffer size
kernel.event_buffer, HashLimit cache.max_flows. Expectations replicate
(ExpectationSync On is what ctsync does anyway).

The control socket stays ctsync's own, ` + config.DefaultSocket + `: conntrackd's
UNIX { Path } (/var/run/conntrackd.ctl) lies outside what the ctsync unit may
write, and the conntrackd command (ctsync's client) finds ctsync's socket
without -C.

conntrackd neither encrypts nor authenticates its traffic, so the result sets
cluster.insecure: true, with a comment telling how to switch to a key made by
` + "`ctsync keygen`" + `: do it before going to production.

Every directive not translated as it is gets a note, on standard error and as
a comment at the top of the YAML, one per line and tagged:
  dropped: FILE:LINE: DIRECTIVE: REASON     no equivalent, ignored
  changed: FILE:LINE: DIRECTIVE: REASON     ctsync behaves differently (how)
  not needed: FILE:LINE: DIRECTIVE: REASON  ctsync does it itself

--strict makes a changed note an error, for CI: the YAML is still printed (its
comments say what changed), and the exit status is 1.

Exit status: 0 when the file was translated (with --strict: and no note is
changed), 1 when it cannot be read or has a syntax error (the line is named)
or, with --strict, when behaviour changed, 2 on a bad command line.`,
		Example: `  ctsync config import /etc/conntrackd/conntrackd.conf > /etc/ctsync/ctsync.yaml
  ctsync config check -c /etc/ctsync/ctsync.yaml
  ctsync config import --strict conntrackd.conf > ctsync.yaml 2> notes.txt   # in CI
  grep '^changed:' notes.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return configImport(s, args[0], strict)
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 when a note says ctsync behaves differently (tagged changed)")
	return cmd
}

// configImport is `ctsync config import [--strict] PATH`.
func configImport(s *streams, path string, strict bool) error {
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
	var count [3]int
	for _, n := range notes {
		count[n.Kind]++
	}
	if len(notes) > 0 {
		fmt.Fprintf(s.err, "ctsync: config import: %s not translated as they are: %d changed, %d dropped, %d not needed\n",
			plural(len(notes), "directive"), count[config.NoteChanged], count[config.NoteDropped], count[config.NoteNotNeeded])
	}
	for _, n := range notes {
		if n.Line == 0 { // about the file as a whole
			fmt.Fprintf(s.err, "%s: %s: %s: %s\n", n.Kind, path, n.Directive, n.Reason)
			continue
		}
		fmt.Fprintf(s.err, "%s: %s:%d: %s: %s\n", n.Kind, path, n.Line, n.Directive, n.Reason)
	}
	if strict && count[config.NoteChanged] > 0 {
		return fmt.Errorf("config import: --strict: ctsync behaves differently from %s in %s (the notes tagged changed)",
			path, plural(count[config.NoteChanged], "place"))
	}
	return nil
}
