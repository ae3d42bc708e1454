package table

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ctsync/ctsync/kernel"
)

// loadLine is one command of a load file.
type loadLine struct {
	num int
	req *ctRequest
}

// The commands a load line may carry, as conntrack -R takes them.
var loadCommands = map[string]ctCmd{
	"-I": ctCreate, "--create": ctCreate,
	"-A": ctAdd, "--add": ctAdd,
	"-U": ctUpdate, "--update": ctUpdate,
	"-D": ctDelete, "--delete": ctDelete,
	"-F": ctFlush, "--flush": ctFlush,
}

// Commands conntrack has but a load file cannot carry.
var loadRefused = map[string]bool{
	"-L": true, "--dump": true, "-G": true, "--get": true, "-E": true, "--event": true,
	"-C": true, "--count": true, "-S": true, "--stats": true, "-R": true, "--load-file": true,
	"-V": true, "--version": true, "-h": true, "--help": true,
}

// readLoadFile parses every line of a load file before anything runs, so a
// bad line changes nothing (as conntrack -R does). Empty lines, lines of
// blanks and # comments are skipped.
func readLoadFile(r io.Reader, name string) ([]loadLine, error) {
	var lines []loadLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for num := 1; sc.Scan(); num++ {
		text := strings.TrimLeft(sc.Text(), " \t")
		if text == "" || strings.TrimSpace(text) == "" || text[0] == '#' {
			continue
		}
		req, err := parseLoadLine(splitLoadLine(text))
		if err != nil {
			return nil, usageErrorf("%s line %d: %v", name, num, err)
		}
		lines = append(lines, loadLine{num: num, req: req})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return lines, nil
}

// splitLoadLine splits a line into words as conntrack -R does: on blanks,
// with "double quotes" grouping and \ escaping inside them.
func splitLoadLine(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, c := range s {
		switch {
		case quoted && escaped:
			cur.WriteRune(c)
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// parseLoadLine parses one line's words with the same options and checks
// as the subcommand of the line's command.
func parseLoadLine(words []string) (*ctRequest, error) {
	cmd, at := ctCmd(0), -1
	for i, w := range words {
		if c, ok := loadCommands[w]; ok {
			if at >= 0 {
				return nil, fmt.Errorf("more than one command (%s and %s)", words[at], w)
			}
			cmd, at = c, i
		} else if loadRefused[w] {
			return nil, fmt.Errorf("%s cannot be used in a load file (want -I, -A, -U, -D or -F)", w)
		}
	}
	if at < 0 {
		return nil, errors.New("no command (want -I, -A, -U, -D or -F)")
	}

	args := append(append([]string{}, words[:at]...), words[at+1:]...)
	// conntrack's optional table name after the command.
	if at < len(args) && !strings.HasPrefix(args[at], "-") {
		if args[at] != "conntrack" {
			return nil, fmt.Errorf("table %q is not supported (only conntrack)", args[at])
		}
		args = append(args[:at], args[at+1:]...)
	}

	fs := pflag.NewFlagSet("load", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	cf := addCTFlags(fs, cmd, true)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	req, err := cf.request(fs.Args())
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return nil, ue.err
		}
		return nil, err
	}
	return req, nil
}

// runLoad runs the lines in order and stops at the first that fails. Deleted
// and updated entries are written to w, as conntrack -R does; a -D or -U
// that matches nothing is not an error in a load file.
func runLoad(ctx context.Context, conn *kernel.Conn, lines []loadLine, name string, w io.Writer) error {
	for _, l := range lines {
		var err error
		switch r := l.req; r.cmd {
		case ctCreate, ctAdd:
			err = createEntry(ctx, conn, r)
		case ctDelete:
			_, err = deleteEntries(ctx, conn, r, w)
		case ctUpdate:
			_, err = updateEntries(ctx, conn, r, w)
		case ctFlush:
			err = conn.Flush(ctx, r.family)
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", name, l.num, err)
		}
	}
	return nil
}

// openLoadFile opens a load file; "-" is standard input.
func openLoadFile(path string, stdin io.Reader) (io.Reader, string, func(), error) {
	if path == "-" {
		return stdin, "stdin", func() {}, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	return fh, path, func() { fh.Close() }, nil
}
