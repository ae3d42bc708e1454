package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
)

// defaultConfigPath is where every command looks for its configuration unless
// --config says otherwise (docs/interface.md, "Configuration file").
const defaultConfigPath = "/etc/ctsync/ctsync.yaml"

// streams are the standard streams a command reads and writes. Commands use
// these, never os.Stdin/os.Stdout/os.Stderr, so tests can run them in-process.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// usageErrorf returns a usage error (exit status 2; table.UsageError).
// Commands return it for command lines that are wrong on their face, before
// doing any work.
func usageErrorf(format string, args ...any) error { return table.UsageErrorf(format, args...) }

// newRootCmd builds the whole command tree. It holds no state outside the
// returned tree, so every call (every test) gets a fresh one.
func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "ctsync",
		Short: "Replicate the conntrack table across a firewall cluster",
		Long: `ctsync keeps the connection-tracking state of a firewall cluster in sync, so that
established connections (NAT included) survive a keepalived failover, and
manages the local kernel conntrack table with conntrack(8) semantics.`,
		// --version (and -v) print what `ctsync version` prints.
		Version:       version,
		SilenceUsage:  true, // a failure prints one line, not the usage text
		SilenceErrors: true, // run prints errors and picks the exit code
		// Without a subcommand, print the help (exit 0).
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	// A template without actions: the text itself (braces escaped).
	root.SetVersionTemplate(strings.NewReplacer("{{", `{{"{{"}}`).Replace(versionText()))
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return table.UsageError(err)
	})

	// --config/-c is on every command (docs/interface.md, "Configuration
	// file"). Cobra panics when a subcommand defines a shorthand that a
	// persistent flag of an ancestor already uses, so no subcommand may use
	// -c for anything else. conntrack(8)'s filter flags ("Kernel table"
	// there) do not use -c, and the conntrackd letters listed under
	// "Control commands" name the matching conntrackd commands, not ctsync
	// flags. TestFlagShorthands keeps it so.
	var configPath string
	root.PersistentFlags().StringVarP(&configPath, "config", "c", defaultConfigPath, "configuration file")

	root.AddCommand(newVersionCmd(s))
	root.AddCommand(newGenDocsCmd())
	root.AddCommand(table.Command(s.in, s.out, s.err))
	addConfigCommands(root, s)
	addKeygenCommand(root, s)
	addControlCommands(root, s)
	addDaemonCommand(root, s)
	root.AddCommand(newConntrackdCmd(s))

	// Cobra adds these lazily inside Execute; add them now so that the
	// pass below covers them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag() // so the man page lists --version
	dropPowerShell(root)
	enforceUsageErrors(root)
	addCompletions(root) // completion.go
	return root
}

// enforceUsageErrors makes every command in the tree report a bad command
// line as a usageError: argument validators are wrapped, and a command with
// subcommands rejects an unknown one (cobra would otherwise print the help
// and exit 0, or pass the word on as an argument).
func enforceUsageErrors(cmd *cobra.Command) {
	switch {
	case cmd.Args != nil:
		validate := cmd.Args
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := validate(cmd, args); err != nil {
				// Cobra's count errors ("accepts 1 arg(s), received 0")
				// name no argument: say which the command takes.
				if !strings.Contains(err.Error(), cmd.CommandPath()) {
					err = fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())
				}
				return table.UsageError(err)
			}
			return nil
		}
	case cmd.HasSubCommands():
		cmd.Args = unknownSubcommand
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
	}
	if cmd.HasSubCommands() && !cmd.Runnable() {
		// A group such as `ctsync table`: alone it prints its help.
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, sub := range cmd.Commands() {
		enforceUsageErrors(sub)
	}
}

// unknownSubcommand is the argument validator of commands that only group
// subcommands: any positional argument left is a subcommand that does not
// exist.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(suggestions, " or "))
	}
	return usageErrorf("%s", msg)
}

// dropPowerShell removes cobra's `completion powershell`: ctsync runs on
// Linux firewalls only, the package ships the bash, zsh and fish scripts,
// and a command nobody can use there would only add a man page and a line
// to the help.
func dropPowerShell(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		for _, sub := range c.Commands() {
			if sub.Name() == "powershell" {
				c.RemoveCommand(sub)
			}
		}
	}
}
