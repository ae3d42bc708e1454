package table

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ctsync/ctsync/flow"
)

// streams are the standard streams a command reads and writes, as
// cmd/ctsync hands them over: never os.Stdin/os.Stdout/os.Stderr, so tests
// run the commands in-process.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// usageError marks an error in the command line itself (unknown command or
// flag, bad option, value or argument): cmd/ctsync prints it with a hint to
// --help and exits 2. Everything else is an operational failure (exit 1).
// The table commands and cmd/ctsync's own share it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usage error (exit status 2), for command lines that
// are wrong on their face, before any work is done.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// UsageError marks err as a usage error (exit status 2).
func UsageError(err error) error { return &usageError{err: err} }

// UsageErrorf is usageErrorf for cmd/ctsync's commands.
func UsageErrorf(format string, args ...any) error { return usageErrorf(format, args...) }

// IsUsageError reports whether err, or an error it wraps, is a usage error
// (exit status 2).
func IsUsageError(err error) bool {
	_, ok := errors.AsType[*usageError](err)
	return ok
}

// ListFlags are table list's filter and -o options registered on another
// command's flags (`ctsync cache internal|external`). Not safe for
// concurrent use: one command line at a time.
type ListFlags struct{ cf *ctFlags }

// AddListFlags registers table list's options on fs.
func AddListFlags(fs *pflag.FlagSet) ListFlags {
	return ListFlags{cf: addCTFlags(fs, ctList, false)}
}

// ListQuery is a checked table list command line: which flows, and the
// output format asked for.
type ListQuery struct {
	Filter flow.Filter
	Extra  flow.ExtraFilter
	Save   bool // -o save
	JSON   bool // -o json
	Text   flow.TextOptions
}

// Parse checks the options parsed into l with the positional arguments
// left (args) as table list does; every problem is a usage error.
func (l ListFlags) Parse(args []string) (ListQuery, error) {
	req, err := l.cf.request(args)
	if err != nil {
		return ListQuery{}, err
	}
	o := req.output
	return ListQuery{Filter: req.filter, Extra: req.extra, Save: o.save, JSON: o.json, Text: o.text}, nil
}

// NetNSGiven reports whether --netns was given.
func (l ListFlags) NetNSGiven() bool { return l.cf.has(optNetNS) }

// OutputGiven reports whether -o was given.
func (l ListFlags) OutputGiven() bool { return l.cf.has(optOutput) }

// CheckOutput reports whether format is a valid -o for table list (events
// false) or table events (true); shell completion offers only such words.
func CheckOutput(format string, events bool) error {
	c := ctList
	if events {
		c = ctEvents
	}
	_, err := parseOutput(format, c)
	return err
}

// Option reports whether f is one of conntrack(8)'s options as this package
// registers them.
func Option(f *pflag.Flag) bool {
	_, ok := f.Value.(*ctValue)
	return ok
}

// SetsStatus reports whether f, a -u/--status option, sets status bits on
// its command (insert, update) rather than selecting entries by them.
func SetsStatus(f *pflag.Flag) bool {
	for i := range ctFlagDefs {
		if d := &ctFlagDefs[i]; d.opt == optStatus {
			return d.setUsage != "" && f.Usage == d.setUsage
		}
	}
	return false
}

// GivenProto returns the -p value given on the command line that f, any
// option of it, belongs to, if -p was given there.
func GivenProto(f *pflag.Flag) (string, bool) {
	v, ok := f.Value.(*ctValue)
	if !ok || !v.cf.has(optProto) {
		return "", false
	}
	return v.cf.raw[optProto], true
}
