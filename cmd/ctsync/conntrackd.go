package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
	"github.com/ctsync/ctsync/stats"
)

// conntrackdName is the program name that selects conntrackd's command line:
// `ctsync conntrackd ARGS`, or the binary run through a symlink of that name.
const conntrackdName = "conntrackd"

// runAs is run for a binary invoked as name (the base name of argv[0]).
// Invoked as "conntrackd" (a symlink to ctsync), the command line is
// conntrackd's client command line: keepalived's primary-backup.sh and
// monitoring that call conntrackd keep working unchanged.
func runAs(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if name == conntrackdName {
		args = append([]string{conntrackdName}, args...)
	}
	return run(args, stdin, stdout, stderr)
}

// conntrackdUsage is conntrackd 1.4.7's usage text, limited to what ctsync
// accepts, with what each flag runs.
const conntrackdUsage = `Usage: conntrackd [commands] [options]   (ctsync's conntrackd-compatible client)

General commands:
  -C [configfile], configuration file: a ctsync YAML file names the control
                   socket; a conntrackd.conf is ignored (see ctsync config import)
  -v, display the version
  -h, display this help information

Client mode commands:
  -c [ct|expect], commit external cache to conntrack table  (ctsync commit)
  -f [internal|external], flush internal and external cache (ctsync flush)
  -i [ct|expect], display content of the internal cache     (ctsync cache internal)
  -e [ct|expect], display the content of the external cache (ctsync cache external)
  -k, kill conntrack daemon                                 (ctsync shutdown)
  -s [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics (ctsync stats)
  -R [ct|expect], resync with kernel conntrack table        (ctsync resync kernel)
  -n, request resync with other node                        (ctsync resync peers)
  -B, force a bulk send to other replica firewalls          (ctsync send-bulk)
  -t, flush the kernel table after PurgeTimeout             (ctsync purge)

ctsync options:
  --socket PATH, the daemon's control socket

Expectations (what helpers such as ftp announce) replicate with their master
flow. -i expect and -e expect list them as conntrack -L expect does; -s expect
counts them. -c and -R, with ct, expect or neither, commit or resync flows and
expectations together: ctsync writes an expectation only after its master,
and every master's expectations with it. -f flushes both.
Not available: -d (run ` + "`ctsync daemon`" + ` or its systemd unit), -F, -x.
Unlike conntrackd, -c exits 1 when a flow could not be committed.
`

func newConntrackdCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "conntrackd [-C FILE] -c|-f|-R|-B|-n|-t|-k|-s|-i|-e ...",
		Short: "Run conntrackd's client command line against the ctsync daemon",
		Long: `Accept conntrackd's client flags and run the matching control command, so
that scripts written for conntrackd (keepalived's primary-backup.sh, monitoring)
keep working: install a symlink named conntrackd to the ctsync binary, or call
` + "`ctsync conntrackd FLAGS`" + `. What conntrackd -h prints:

` + indentText(conntrackdUsage, "  ") + `
Exit status: 0 on success, 1 on any failure, a bad command line included (as
conntrackd does).`,
		Example: `  ln -s /usr/bin/ctsync /usr/local/sbin/conntrackd
  conntrackd -C /etc/conntrackd/conntrackd.conf -c
  ctsync conntrackd -s`,
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConntrackd(cmd.Context(), s, args)
		},
	}
}

// ctdCommand is one parsed conntrackd command line.
type ctdCommand struct {
	action byte   // the client command's letter: c f i e R s n B t k; 0 = none
	arg    string // its parameter, expanded from a prefix ("i" → "internal")
	xml    bool   // -x
	config string // -C
	socket string // --socket
	help   bool   // -h
	ver    bool   // -v
}

// ctdParams lists the parameters each client command accepts, in the order
// conntrackd matches a prefix against them. Commands absent take none.
var ctdParams = map[byte][]string{
	'c': {"ct", "expect"},
	'f': {"internal", "external"},
	'F': {"ct", "expect"},
	'i': {"ct", "expect"},
	'e': {"ct", "expect"},
	'R': {"ct", "expect"},
	's': {"network", "cache", "runtime", "link", "multicast", "rsqueue", "process", "queue", "ct", "expect"},
}

// errCtdUsage marks command-line errors, after which the usage text is
// printed.
type errCtdUsage struct{ msg string }

func (e *errCtdUsage) Error() string { return e.msg }

// parseConntrackd reads conntrackd's command line the way conntrackd does:
// one letter per argument, and a command's optional parameter is the next
// argument unless it starts with '-'; a parameter may be abbreviated.
// Unlike conntrackd, two client commands in one call are refused rather
// than the last one silently winning.
func parseConntrackd(args []string) (*ctdCommand, error) {
	cmd := &ctdCommand{}
	next := func(i int) (string, bool) {
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			return args[i+1], true
		}
		return "", false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--socket" || strings.HasPrefix(a, "--socket="):
			if v, ok := strings.CutPrefix(a, "--socket="); ok {
				cmd.socket = v
			} else if i+1 < len(args) {
				i++
				cmd.socket = args[i]
			}
			if cmd.socket == "" {
				return nil, &errCtdUsage{"--socket: want the path of the daemon's control socket"}
			}
			continue
		case a == "--help":
			cmd.help = true
			continue
		case len(a) != 2 || a[0] != '-':
			return nil, &errCtdUsage{fmt.Sprintf("Unknown option: %s", a)}
		}
		switch c := a[1]; c {
		case 'h':
			cmd.help = true
		case 'v':
			cmd.ver = true
		case 'C':
			v, ok := next(i)
			if !ok {
				return nil, &errCtdUsage{"-C: missing config filename"}
			}
			cmd.config, i = v, i+1
		case 'x':
			if cmd.action != 'i' && cmd.action != 'e' {
				return nil, &errCtdUsage{"Invalid parameters: -x must follow -i or -e"}
			}
			cmd.xml = true
		case 'd':
			return nil, errors.New("-d: ctsync does not run the daemon from conntrackd's command line: " +
				"run `ctsync daemon` (in the foreground), or start its systemd unit (systemctl start ctsync)")
		case 'c', 'f', 'F', 'i', 'e', 'R', 's', 'n', 'B', 't', 'k':
			if cmd.action != 0 {
				return nil, &errCtdUsage{fmt.Sprintf("Invalid parameters: -%c and -%c: give one command per call", cmd.action, c)}
			}
			cmd.action = c
			v, ok := next(i)
			if !ok {
				continue
			}
			params, takes := ctdParams[c]
			if !takes {
				return nil, &errCtdUsage{fmt.Sprintf("Unknown option: %s", v)}
			}
			cmd.arg = ""
			for _, p := range params {
				if strings.HasPrefix(p, v) {
					cmd.arg = p
					break
				}
			}
			if cmd.arg == "" {
				return nil, &errCtdUsage{fmt.Sprintf("unknown parameter `%s' for option `-%c'", v, c)}
			}
			i++
		default:
			return nil, &errCtdUsage{fmt.Sprintf("Unknown option: %s", a)}
		}
	}
	return cmd, nil
}

// ctdAnswerLocally answers the command lines that need no daemon: -h, -v,
// and the ones ctsync refuses (with what to run instead). answered is false
// for a client command to send to the daemon.
func ctdAnswerLocally(s *streams, cmd *ctdCommand) (answered bool, err error) {
	switch {
	case cmd.help:
		_, err := io.WriteString(s.out, conntrackdUsage)
		return true, err
	case cmd.ver:
		_, err := fmt.Fprintf(s.out, "ctsync %s: conntrackd-compatible client (conntrackd 1.4 command line)\n", version)
		return true, err
	case cmd.action == 0:
		return true, errors.New("no client command given: ctsync does not run conntrackd's daemon; " +
			"run `ctsync daemon` or its systemd unit, and see `conntrackd -h` for the client commands")
	case cmd.action == 'F' && cmd.arg == "expect":
		return true, errors.New("-F expect is not available: `ctsync table flush --expect` empties the kernel's expectation table")
	case cmd.action == 'F':
		return true, errors.New("-F is not available: `ctsync purge --after 1s` deletes the replicated flows from the kernel, " +
			"`ctsync table flush` the whole table")
	case cmd.xml:
		return true, errors.New("-x: XML output is not available: use `ctsync cache internal|external -o json`")
	}
	return false, nil
}

// runConntrackd runs a conntrackd command line. Every error, a bad command
// line included, exits 1, as conntrackd's do.
func runConntrackd(ctx context.Context, s *streams, args []string) error {
	cmd, err := parseConntrackd(args)
	if err != nil {
		if _, ok := errors.AsType[*errCtdUsage](err); ok {
			io.WriteString(s.err, conntrackdUsage)
		}
		return err
	}
	if answered, err := ctdAnswerLocally(s, cmd); answered {
		return err
	}

	socket, err := ctdSocket(cmd)
	if err != nil {
		return err
	}
	c := control.Dial(socket)
	switch cmd.action {
	case 'c':
		// ct, expect or both: one commit writes the masters, then their
		// expectations, then the RELATED flows (an expectation cannot be
		// created without its master).
		res, err := c.Commit(ctx)
		if err != nil {
			return err
		}
		printCommit(s, &res)
		return commitFailure(&res)
	case 'f':
		return c.Flush(ctx, cmd.arg)
	case 'R':
		// ct, expect or both: the kernel resync reloads flows and
		// expectations.
		_, err := c.ResyncKernel(ctx)
		return err
	case 'n':
		_, err := c.ResyncPeers(ctx)
		return err
	case 'B':
		_, err := c.SendBulk(ctx)
		return err
	case 't':
		_, err := c.Purge(ctx, 0)
		return err
	case 'k':
		return c.Shutdown(ctx)
	case 'i', 'e':
		which := "internal"
		if cmd.action == 'e' {
			which = "external"
		}
		if cmd.arg == "expect" {
			// conntrack -L expect's lines, as `ctsync cache --expect`.
			_, err := c.Cache(ctx, control.CacheQuery{Cache: which, Expect: true, Format: "text"}, s.out)
			return err
		}
		w := &ctdCacheWriter{w: s.out}
		_, err := c.Cache(ctx, control.CacheQuery{Cache: which, Format: "text"}, w)
		if ferr := w.flush(); err == nil {
			err = ferr
		}
		return err
	case 's':
		var st stats.Stats
		if err := c.Stats(ctx, &st); err != nil {
			return err
		}
		var xs ctdExpectCounts
		if cmd.arg == "expect" {
			for i, which := range []string{"internal", "external"} {
				n, err := c.Cache(ctx, control.CacheQuery{Cache: which, Expect: true, Count: true}, nil)
				if err != nil {
					return err
				}
				xs[i] = n
			}
		}
		return writeCtdStats(s.out, cmd.arg, &st, &xs)
	}
	return fmt.Errorf("-%c: not handled", cmd.action) // unreachable: parseConntrackd knows the letters
}

// ctdSocket returns the control socket: --socket; else, if -C names a
// ctsync YAML file, its control.socket; else (no -C, or a conntrackd.conf)
// control.socket of the default ctsync configuration file if it exists,
// else the default socket.
//
// A file counts as ctsync's when it loads as a ctsync configuration, or is
// named *.yaml / *.yml (then a load failure is reported rather than the
// file ignored).
func ctdSocket(cmd *ctdCommand) (string, error) {
	if cmd.socket != "" {
		return cmd.socket, nil
	}
	if cmd.config != "" {
		c, err := config.Load(cmd.config)
		switch ext := filepath.Ext(cmd.config); {
		case err == nil:
			return ctdConfigSocket(c, cmd.config)
		case ext == ".yaml" || ext == ".yml":
			first, _, _ := strings.Cut(err.Error(), "\n")
			return "", fmt.Errorf("-C %s: %s (run `ctsync config check -c %s`)", cmd.config, first, cmd.config)
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("can't open config file `%s'", cmd.config)
		}
		// A conntrackd.conf: its UNIX { Path } is conntrackd's socket, not
		// ctsync's. Fall through to ctsync's own configuration.
	}
	if _, err := os.Stat(defaultConfigPath); err != nil {
		return config.DefaultSocket, nil
	}
	c, err := config.Load(defaultConfigPath)
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		return "", fmt.Errorf("control socket: %s (run `ctsync config check`, or give --socket PATH)", first)
	}
	return ctdConfigSocket(c, defaultConfigPath)
}

func ctdConfigSocket(c *config.Config, path string) (string, error) {
	if c.Control.Socket == "" {
		return "", fmt.Errorf("control socket: control.socket is empty in %s", path)
	}
	return c.Control.Socket, nil
}

// ctdCacheWriter turns `ctsync cache` text lines (conntrack -L lines) into
// conntrackd -i/-e lines: the timeout field (the third) is removed, as
// conntrackd prints none. Lines are passed through as they complete.
type ctdCacheWriter struct {
	w   io.Writer
	buf []byte
}

func (c *ctdCacheWriter) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := ctdCacheLine(string(c.buf[:i]))
		c.buf = c.buf[i+1:]
		if _, err := io.WriteString(c.w, line+"\n"); err != nil {
			return len(p), err
		}
	}
}

// flush writes an unterminated last line, if any.
func (c *ctdCacheWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	line := ctdCacheLine(string(c.buf))
	c.buf = nil
	_, err := io.WriteString(c.w, line+"\n")
	return err
}

// ctdCacheLine removes the timeout from "tcp      6 431999 ESTABLISHED ...":
// the third field, when it is a number.
func ctdCacheLine(line string) string {
	i := 0
	for range 2 { // skip the protocol name and number, with their padding
		for i < len(line) && line[i] != ' ' {
			i++
		}
		for i < len(line) && line[i] == ' ' {
			i++
		}
	}
	j := i
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j == i || j >= len(line) || line[j] != ' ' {
		return line
	}
	return line[:i] + line[j+1:]
}

// ctdExpectCounts holds the number of expectations in the internal and
// the external cache, for -s expect.
type ctdExpectCounts [2]int

// writeCtdStats prints statistics in the layout of conntrackd -s
// [section], with the numbers ctsync has. Sections ctsync has no
// counterpart for (rsqueue, process, queue) print nothing, as conntrackd
// does when they are empty.
func writeCtdStats(w io.Writer, section string, st *stats.Stats, xs *ctdExpectCounts) error {
	var b bytes.Buffer
	switch section {
	case "expect":
		// conntrackd's expectation caches are named like its flow caches.
		fmt.Fprintf(&b, "cache internal:\ncurrent active connections:\t%12d\n\n", xs[0])
		fmt.Fprintf(&b, "cache external:\ncurrent active connections:\t%12d\n\n", xs[1])
		ctdLinkStats(&b, st)
	case "", "ct":
		ctdCacheStats(&b, st)
		ctdLinkStats(&b, st)
		fmt.Fprintf(&b, "message tracking:\n%20d Malformed msgs %20d Lost msgs\n\n",
			st.Sync.DecodeErrors+st.Sync.AuthFailures, st.Internal.Lost)
	case "cache":
		ctdCacheStats(&b, st)
	case "network":
		var sendErr uint64
		for _, p := range st.Sync.Peers {
			sendErr += p.SendErrors
		}
		fmt.Fprintf(&b, "network statistics:\n\trecv:\n")
		fmt.Fprintf(&b, "\t\tMalformed messages:\t%20d\n", st.Sync.DecodeErrors)
		fmt.Fprintf(&b, "\t\tAuthentication failed:\t%20d\n", st.Sync.AuthFailures)
		fmt.Fprintf(&b, "\t\tBad hello:\t\t%20d\n", st.Sync.BadHellos)
		fmt.Fprintf(&b, "\t\tUnexpected type:\t%20d\n", st.Sync.UnexpectedMsgs)
		fmt.Fprintf(&b, "\tsend:\n\t\tErrors:\t\t\t%20d\n\n", sendErr)
		fmt.Fprintf(&b, "sequence tracking statistics:\n\tPackets lost:\t\t%20d\n\n", st.Internal.Lost)
		ctdLinkStats(&b, st)
	case "runtime":
		fmt.Fprintf(&b, "daemon uptime: %d min\n\n", int64(st.UptimeSeconds)/60)
		k := st.Kernel
		fmt.Fprintf(&b, "netlink stats:\n")
		fmt.Fprintf(&b, "\tevents received:\t%20d\n", k.EventsNew+k.EventsUpdate+k.EventsDestroy)
		fmt.Fprintf(&b, "\tevents filtered:\t%20d\n", k.Filtered)
		fmt.Fprintf(&b, "\tnetlink overrun:\t%20d\n", k.Overruns)
		fmt.Fprintf(&b, "\tresync with kernel table:\t%12d\n", k.Resyncs)
		fmt.Fprintf(&b, "\tresync failed:\t\t%20d\n", k.ResyncFailures)
		fmt.Fprintf(&b, "\tflush kernel table:\t%20d\n\n", st.Purge.Runs)
	case "link", "multicast":
		ctdLinkStats(&b, st)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ctdCacheStats is the "cache internal:" / "cache external:" block.
func ctdCacheStats(b *bytes.Buffer, st *stats.Stats) {
	fmt.Fprintf(b, "cache internal:\n")
	fmt.Fprintf(b, "current active connections:\t%12d\n", st.Internal.Flows)
	fmt.Fprintf(b, "connections created:\t\t%12d\tfailed:\t%12d\n", st.Kernel.EventsNew, st.Internal.Full)
	fmt.Fprintf(b, "connections updated:\t\t%12d\tfailed:\t%12d\n", st.Kernel.EventsUpdate, 0)
	fmt.Fprintf(b, "connections destroyed:\t\t%12d\tfailed:\t%12d\n\n", st.Kernel.EventsDestroy, 0)

	var flows int
	var applied, stale, full, expired uint64
	for _, o := range st.External {
		flows += o.Flows
		applied += o.Applied
		stale += o.Stale
		full += o.Full
		expired += o.Expired
	}
	fmt.Fprintf(b, "cache external:\n")
	fmt.Fprintf(b, "current active connections:\t%12d\n", flows)
	fmt.Fprintf(b, "connections applied:\t\t%12d\tfailed:\t%12d\n", applied, full)
	fmt.Fprintf(b, "connections stale:\t\t%12d\n", stale)
	fmt.Fprintf(b, "connections expired:\t\t%12d\n", expired)
	fmt.Fprintf(b, "connections committed:\t\t%12d\tfailed:\t%12d\n\n", st.Commit.Committed, st.Commit.Failed)
}

// ctdLinkStats is conntrackd's per-link traffic block, one per peer.
func ctdLinkStats(b *bytes.Buffer, st *stats.Stats) {
	for _, p := range st.Sync.Peers {
		state := "DISCONNECTED"
		if p.Connected {
			state = "RUNNING"
		}
		fmt.Fprintf(b, "sync traffic (peer=%s addr=%s status=%s):\n", p.Peer, p.Addr, state)
		fmt.Fprintf(b, "%20d Bytes sent %20d Bytes recv\n", p.SentBytes, p.RecvBytes)
		fmt.Fprintf(b, "%20d Pckts sent %20d Pckts recv\n", p.SentMsgs, p.RecvMsgs)
		fmt.Fprintf(b, "%20d Error send %20d Error recv\n\n", p.SendErrors, 0)
	}
}
