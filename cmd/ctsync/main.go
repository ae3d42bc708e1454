package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
)

// Exit codes, as docs/interface.md ("Exit codes") promises.
const (
	exitOK      = 0 // success
	exitFailure = 1 // operational failure; one line on stderr says what failed
	exitUsage   = 2 // bad command line: unknown command or flag, bad value, wrong arguments
)

func main() {
	os.Exit(runAs(filepath.Base(os.Args[0]), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the process exit code.
// It writes nothing to the real stdio: everything goes to the given streams,
// so tests call it directly.
//
// The first SIGINT or SIGTERM cancels the commands' context (cmd.Context());
// a second one kills the process the default way, so a stuck command can
// always be interrupted.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // restore default handling after the first signal

	s := &streams{in: stdin, out: stdout, err: stderr}
	root := newRootCmd(s)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "ctsync: %v\n", err)
	if table.IsUsageError(err) {
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitFailure
}
