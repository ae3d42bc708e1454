package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/config"
)

// addConfigCommands adds `ctsync config check` and `ctsync config default`
// (docs/interface.md, "Configuration file").
func addConfigCommands(root *cobra.Command, s *streams) {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file or print the default one",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration file and list every problem",
		Long: `Validate the configuration file (--config) the way the daemon would, including
the cluster key file. Prints "config OK: PATH" and exits 0, or prints every
problem, one per line as KEY: PROBLEM, and exits 1. Warnings, on standard
error as "warning: KEY: PROBLEM", do not change the exit status: a
control.socket outside what the shipped systemd unit may write (` + strings.Join(config.UnitWritableDirs, ", ") + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := cmd.Flag("config").Value.String()
			return checkConfig(s, path)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print a fully commented default configuration file",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(s.out, config.DefaultYAML())
			return err
		},
	})
	cmd.AddCommand(newConfigImportCmd(s))
	root.AddCommand(cmd)
}

// checkConfig is `ctsync config check`. Warnings (valid but likely wrong)
// go to standard error as "warning: KEY: PROBLEM" and do not fail it.
func checkConfig(s *streams, path string) error {
	c, err := config.Check(path)
	if c == nil {
		// With problems, warn about what did decode.
		c, _ = config.Load(path)
	}
	if c != nil {
		for _, w := range c.Warnings() {
			fmt.Fprintf(s.err, "warning: %s\n", w)
		}
	}
	if err == nil {
		_, err := fmt.Fprintf(s.out, "config OK: %s\n", path)
		return err
	}
	ps, ok := errors.AsType[config.Problems](err)
	if !ok {
		return err // unreadable, or not YAML: one line
	}
	for _, p := range ps {
		fmt.Fprintln(s.err, p)
	}
	noun := "problems"
	if len(ps) == 1 {
		noun = "problem"
	}
	return fmt.Errorf("config %s: %d %s", path, len(ps), noun)
}
