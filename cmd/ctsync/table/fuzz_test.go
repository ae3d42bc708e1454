package table

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/ctsync/ctsync/flow"
)

// Fuzz targets for conntrack(8)'s grammar: the options of the table
// subcommands and the lines of `table load`.

// tableSeeds are real command lines, from the tests and the README.
var tableSeeds = []struct {
	cmd  ctCmd
	args string
}{
	{ctList, "-s 1.1.1.4/24"},
	{ctList, "-s 2001:db8::9 --mask-src ffff:ffff:: -f ipv6"},
	{ctDelete, "-d 2.2.2.2 --mask-dst 255.255.0.0"},
	{ctList, "-p tcp --state ESTABLISHED --dport 80 --reply-port-dst 1000"},
	{ctList, "--orig-src 1.1.1.1 --orig-dst 2.2.2.2 --protonum udp --orig-port-src 5 --orig-port-dst 6"},
	{ctList, "-m 0x10/0xf0 -w 3 -u ASSURED,!SEEN_REPLY"},
	{ctList, "--src-nat 192.0.2.1:80 -p tcp"},
	{ctList, "-j -o json --state ESTABLISHED"},
	{ctGet, "-s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2"},
	{ctGet, "12345"},
	{ctDelete, "-p icmp --icmp-type 8 --icmp-code 0 --icmp-id 7"},
	{ctDelete, "-p gre --srckey 1 --dstkey 2"},
	{ctUpdate, "-p tcp --state TIME_WAIT -t 30 -m 1"},
	{ctCreate, "-s 10.0.0.1 -d 10.0.0.2 -p tcp --sport 1000 --dport 80 --state ESTABLISHED -t 100 -u SEEN_REPLY,ASSURED"},
	{ctCreate, "-s 2001:db8::1 -d 2001:db8::2 -p udp --sport 53 --dport 53 -t 30 -w 7"},
	{ctCreate, "-s 10.0.0.1 -d 10.0.0.2 -p sctp --sport 1 --dport 2 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 5"},
	{ctCreate, "-s 10.0.0.1 -d 10.0.0.2 -p dccp --sport 1 --dport 2 --state OPEN --role client -t 5"},
	{ctCreate, "-s 10.0.0.1 -d 10.0.0.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1 -t 30"},
	{ctCreate, "-s 10.0.0.1 -d 10.0.0.2 -n 192.0.2.1 -p tcp --sport 1 --dport 2 --state SYN_SENT -t 120"},
	{ctEvents, "-e NEW,DESTROY -p udp --buffer-size 1000000 -o timestamp"},
	{ctFlush, "-f ipv6"},
	{ctList, "-p 300"},
	{ctList, "-w 70000"},
	{ctCreate, "-t -1"},
	{ctList, "--state ESTABLISHED --sport 1"},
}

// saveRoundTrip checks that a flow that create/add parsed, written as a
// save line (as `table list -o save` writes it), reads back as the same
// flow. Save lines carry no mark, labels or helper.
func saveRoundTrip(t *testing.T, what string, r *ctRequest) {
	t.Helper()
	if r.cmd != ctCreate && r.cmd != ctAdd || r.defaultTimeout {
		return
	}
	line := string(r.flow.AppendSave(nil, 'I'))
	if line == "" {
		return
	}
	again, err := parseLoadLine(splitLoadLine(line))
	if err != nil {
		t.Fatalf("%s: parsed as %+v, saved as %q, which does not load: %v", what, r.flow, line, err)
	}
	want, got := saveView(r.flow), saveView(again.flow)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: saved as %q, which loads as\n%+v\nwant\n%+v", what, line, got, want)
	}
}

// saveView is the part of a flow a save line carries. Zone 0 is the
// default zone in either direction (conntrack -o save leaves it out too).
func saveView(f flow.Flow) flow.Flow {
	f.Attrs &^= flow.AttrMark | flow.AttrLabels | flow.AttrHelper
	f.Mark, f.Labels, f.Helper = 0, flow.Labels{}, ""
	if f.Zone == 0 {
		f.Attrs &^= flow.AttrZone
		f.ZoneDir = flow.ZoneBoth
	}
	return f
}

// newTestFlagSet is the flag set of a table subcommand, as parseArgs
// (parse_test.go) builds it.
func newTestFlagSet(c ctCmd) (*pflag.FlagSet, *ctFlags) {
	fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, addCTFlags(fs, c, false)
}

// checkUsageError requires a parse error to be a usage error (exit 2) of
// one line.
func checkUsageError(t *testing.T, what string, err error) {
	t.Helper()
	if _, ok := errors.AsType[*usageError](err); !ok {
		t.Fatalf("%s: error %q (%T) is not a usage error", what, err, err)
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s: usage error %q is not one line", what, msg)
	}
}

func FuzzTableArgs(f *testing.F) {
	for _, s := range tableSeeds {
		f.Add(uint8(s.cmd), s.args)
	}
	f.Fuzz(func(t *testing.T, c uint8, args string) {
		cmd := ctCmd(c % uint8(ctFlush+1))
		if cmd == ctAdd {
			return // load lines only: FuzzLoadLine
		}
		words := strings.Fields(args)
		what := "table " + cmd.String() + " " + args
		fs, cf := newTestFlagSet(cmd)
		if err := fs.Parse(words); err != nil {
			return // pflag's own errors, which run reports as usage errors
		}
		r, err := cf.request(fs.Args())
		if err != nil {
			if r != nil {
				t.Fatalf("%s: error %v and a request", what, err)
			}
			checkUsageError(t, what, err)
			return
		}
		saveRoundTrip(t, what, r)
	})
}

// loadSeeds are lines of conntrack -L -o save output and load files.
var loadSeeds = []string{
	"-I -t 431999 -u SEEN_REPLY,ASSURED -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p tcp --sport 1000 --dport 80 --reply-port-src 80 --reply-port-dst 1000 --state ESTABLISHED",
	"-A -t 30 -u UNSET -w 3 -s 2001:db8::1 -d 2001:db8::2 -r 2001:db8::2 -q 2001:db8::1 -p udp --sport 53 --dport 53 --reply-port-src 53 --reply-port-dst 53",
	"-I -t 29 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -n 192.0.2.1 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 7",
	"-I -t 10 -s 10.0.0.1 -d 10.0.0.2 -g 10.9.9.9 -q 10.0.0.1 -p sctp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2",
	"-I -t 10 --orig-zone 4 -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p gre --srckey 1 --dstkey 2 --reply-key-src 2 --reply-key-dst 1",
	"-I -t 10 -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p dccp --sport 1 --dport 2 --reply-port-src 2 --reply-port-dst 1 --state OPEN --role server",
	"-I -t 10 -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p 47",
	`-D conntrack -s 10.0.0.1 -p tcp`,
	`-U -p tcp --state TIME_WAIT -m 1`,
	`-F`,
	`-I "-s" "10.0.0.1" "a\"b"`,
	`-L`,
	`-I -D`,
	`-I filter -s 1.1.1.1`,
	"-I\t-t 1 -u ASSURED",
}

func FuzzLoadLine(f *testing.F) {
	for _, s := range loadSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words := splitLoadLine(line)
		for _, w := range words {
			if strings.ContainsAny(w, " \t\n\r") && !strings.Contains(line, `"`) {
				t.Fatalf("splitLoadLine(%q): word %q has blanks without quotes", line, w)
			}
		}
		r, err := parseLoadLine(words)
		if err != nil {
			if r != nil {
				t.Fatalf("load line %q: error %v and a request", line, err)
			}
			return
		}
		saveRoundTrip(t, "load line "+line, r)
	})
}
