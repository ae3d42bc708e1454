// Package table is conntrack(8)'s command-line grammar and the `ctsync table`
// commands built on it (docs/interface.md, "Kernel table"): the option
// matrix, the parser that turns a command line into a checked request, the
// operations that run it against the kernel table, and conntrack's output
// formats.
//
// It is not the daemon: it talks to the kernel package only, never to agent
// or sync. cmd/ctsync, the composition root, is its only importer: it adds
// Command to the command tree, maps IsUsageError to exit status 2, reuses the
// list filters on `ctsync cache` (AddListFlags) and asks Option, SetsStatus
// and GivenProto for shell completion.
package table
