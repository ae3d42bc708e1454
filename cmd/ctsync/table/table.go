package table

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/kernel"
)

// Command returns `ctsync table` (docs/interface.md, "Kernel table"): the
// kernel table managed like conntrack(8), with its option names, meanings,
// checks and exit codes. Its commands read in and write out and errOut only.
func Command(in io.Reader, out, errOut io.Writer) *cobra.Command {
	s := &streams{in: in, out: out, err: errOut}
	table := &cobra.Command{
		Use:   "table",
		Short: "Manage the kernel conntrack table like conntrack(8)",
		Long: `Manage the kernel connection-tracking table directly, without the daemon, with
conntrack(8)'s options and meanings: "ctsync table list -p tcp --state ESTABLISHED"
is "conntrack -L -p tcp --state ESTABLISHED". Every subcommand takes --netns NAME
to work on another network namespace's table.

Exit status: 0 on success, 1 when the operation failed (nothing matched a
delete or update, no such entry, the entry exists), 2 on a bad command line.`,
	}
	table.AddCommand(
		newTableListCmd(s),
		newTableGetCmd(s),
		newTableDeleteCmd(s),
		newTableFlushCmd(s),
		newTableInsertCmd(s),
		newTableUpdateCmd(s),
		newTableEventsCmd(s),
		newTableLoadCmd(s),
		newTableCountCmd(s),
		newTableStatsCmd(s),
	)
	return table
}

// ctRun runs a parsed command against an open table.
type ctRun func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error

// newCTCmd completes cmd as a subcommand taking conntrack(8)'s options for
// command c; check, if set, runs before the table is opened.
func newCTCmd(s *streams, cmd *cobra.Command, c ctCmd, check func(*ctRequest) error, run ctRun) *cobra.Command {
	cf := addCTFlags(cmd.Flags(), c, false)
	cmd.Flags().SortFlags = false
	cmd.Args = cobra.ArbitraryArgs // resolved by ctFlags.request: "-n IP" and strays
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req, err := cf.request(args)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(req); err != nil {
				return err
			}
		}

		conn, err := dialTable(req.netns)
		if err != nil {
			return err
		}
		defer conn.Close()
		return run(cmd.Context(), s, conn, req)
	}
	return cmd
}

// summary prints conntrack's closing line on standard error.
func summary(s *streams, format string, n int) {
	fmt.Fprintf(s.err, "ctsync: "+format+"\n", n)
}

func newTableListCmd(s *streams) *cobra.Command {
	var expect bool
	cmd := newCTCmd(s, &cobra.Command{
		Use:   "list [filters] [-o FORMAT]",
		Short: "List conntrack entries (conntrack -L)",
		Long: `List the entries of the conntrack table that match every filter given, one
line each on standard output, as conntrack -L prints them; the number shown
goes to standard error. -s and -d take an address or a network (IP/BITS).
Beyond conntrack: --state without -p matches the state of that name in any protocol (tcp, sctp, dccp).
With --expect, the expectation table (conntrack -L expect): the connections
helpers (ftp, sip, ...) expect; only -f applies.`,
		Example: `  ctsync table list
  ctsync table list -p tcp --dport 80
  ctsync table list --state ESTABLISHED
  ctsync table list --state ESTABLISHED -p tcp -o extended,id
  ctsync table list -s 10.0.0.0/8 --src-nat
  ctsync table list -w 10 -o save > zone10.txt
  ctsync table list --expect`,
	}, ctList, func(req *ctRequest) error {
		if expect {
			return expectOnly(req, "table list")
		}
		return nil
	}, func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
		if req.expect {
			n, err := listExpectations(ctx, conn, req.dump.Family, s.out)
			if err != nil {
				return err
			}
			summary(s, "%d expectations have been shown.", n)
			return nil
		}
		n, err := listEntries(ctx, conn, req, s.out)
		if err != nil {
			return err
		}
		summary(s, "%d flow entries have been shown.", n)
		return nil
	})
	cmd.Flags().BoolVar(&expect, "expect", false, "list the expectation table instead (conntrack -L expect)")
	return cmd
}

func newTableGetCmd(s *streams) *cobra.Command {
	return newCTCmd(s, &cobra.Command{
		Use:   "get (-p PROTO TUPLE | ID) [-o FORMAT]",
		Short: "Show one conntrack entry (conntrack -G)",
		Long: `Show the entry with the given tuple: -p and either the original direction (-s,
-d and for port protocols --sport, --dport) or the reply direction (-r, -q,
--reply-port-src, --reply-port-dst). No such entry: exit 1.
Beyond conntrack: "get ID" (or --id ID alone) shows the entry with that id.`,
		Example: `  ctsync table get -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 22
  ctsync table get 3979507854`,
	}, ctGet, nil, func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
		if err := getEntry(ctx, conn, req, s.out); err != nil {
			return err
		}
		summary(s, "%d flow entries have been shown.", 1)
		return nil
	})
}

func newTableDeleteCmd(s *streams) *cobra.Command {
	return newCTCmd(s, &cobra.Command{
		Use:   "delete (ID | --id ID | filters) [-o FORMAT]",
		Short: "Delete conntrack entries (conntrack -D)",
		Long: `Delete every entry that matches the filters (the same as table list's, plus
--id) and print each one deleted. Nothing matched: exit 1.
Beyond conntrack: "delete ID" is "delete --id ID", and --state without -p matches any protocol's state of that name.`,
		Example: `  ctsync table delete 3979507854
  ctsync table delete --id 3979507854
  ctsync table delete -s 192.168.1.100
  ctsync table delete -d 10.0.0.5 -p udp`,
	}, ctDelete, nil, func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
		n, err := deleteEntries(ctx, conn, req, s.out)
		return changed(s, n, err, "deleted", "no conntrack entry matched; nothing was deleted")
	})
}

func newTableInsertCmd(s *streams) *cobra.Command {
	return newCTCmd(s, &cobra.Command{
		Use:   "insert -p PROTO TUPLE [-t SECONDS] [--state S] [-u STATUS] [-m MARK] [-w ZONE] [--src-nat IP[:PORT]] [--dst-nat IP[:PORT]]",
		Short: "Create a conntrack entry (conntrack -I)",
		Long: `Create one entry. Required, as for conntrack -I: -p, both addresses of the
original direction (-s, -d) or of the reply direction (-r, -q), both ports for
tcp, udp, udplite and sctp, --state for tcp and sctp, --orig-vtag and
--reply-vtag for sctp, --icmp-type and --icmp-code for icmp and icmpv6,
--srckey and --dstkey for gre. (dccp needs no ports: Linux 6.16 and later track
it without them.) Without a reply tuple the reply is the original one
inverted; --src-nat sets where replies go back to (the reply destination),
--dst-nat where they come from (the reply source), and the kernel sets up that
NAT. An existing entry: exit 1.
Beyond conntrack: without -t the entry gets the kernel's default timeout for its protocol and state (the namespace's nf_conntrack_*_timeout* sysctl).`,
		Example: `  ctsync table insert -p tcp -s 192.168.1.100 -d 8.8.8.8 --sport 12345 --dport 80 --state ESTABLISHED -t 600
  ctsync table insert -p tcp -s 192.168.1.100 -d 8.8.8.8 --sport 12345 --dport 80 --state ESTABLISHED
  ctsync table insert -p udp -s 10.0.0.1 -d 8.8.8.8 --sport 5353 --dport 53 -t 30 --src-nat 203.0.113.5
  ctsync table insert -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 30`,
	}, ctCreate, nil, func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
		if err := createEntry(ctx, conn, req); err != nil {
			return err
		}
		summary(s, "%d flow entries have been created.", 1)
		return nil
	})
}

func newTableUpdateCmd(s *streams) *cobra.Command {
	return newCTCmd(s, &cobra.Command{
		Use:   "update (ID | --id ID | filters) [-t SECONDS] [-m MARK[/MASK]] [-u STATUS] [--state S]",
		Short: "Change conntrack entries (conntrack -U)",
		Long: `Change the timeout, mark, status bits or TCP state of every entry that matches
the filters (addresses, ports, protocol, NAT, --id; -m, -u, -t and --state are
what is set). The new mark is (old & ~MASK) ^ MARK, the mask defaulting to all
bits; status bits are added. Each changed entry is printed. Nothing matched, or
nothing changed: exit 1.
Beyond conntrack: "update ID ..." is "update --id ID ...".`,
		Example: `  ctsync table update 3979507854 -t 600
  ctsync table update --id 3979507854 -t 600
  ctsync table update -s 10.0.0.1 -m 1
  ctsync table update -p tcp -m 0/0xffff0000`,
	}, ctUpdate, nil, func(ctx context.Context, s *streams, conn *kernel.Conn, req *ctRequest) error {
		n, err := updateEntries(ctx, conn, req, s.out)
		return changed(s, n, err, "updated", "no conntrack entry matched or needed a change; nothing was updated")
	})
}

func newTableEventsCmd(s *streams) *cobra.Command {
	return newCTCmd(s, &cobra.Command{
		Use:   "events [filters] [-o FORMAT] [-e EVENTS] [-b BYTES] [--count N]",
		Short: "Show conntrack events as they happen (conntrack -E)",
		Long: `Print the table's events ([NEW], [UPDATE], [DESTROY]) that match the filters
until interrupted (SIGINT, SIGTERM) or --count events were shown, then the
number shown and the number of receive-buffer overruns on standard error.
Events lost to an overrun are reported when it happens, never hidden.`,
		Example: `  ctsync table events
  ctsync table events -e NEW,DESTROY -p tcp
  ctsync table events -o timestamp --count 10`,
	}, ctEvents, nil, watchEvents)
}

func newTableLoadCmd(s *streams) *cobra.Command {
	var netns string
	cmd := &cobra.Command{
		Use:   "load FILE|-",
		Short: "Run a file of conntrack commands (conntrack -R)",
		Long: `Run a file (or standard input, "-") with one -I, -A, -U, -D or -F command per
line in conntrack syntax, as table list -o save writes them: -A creates an entry
or updates it when it exists. Empty lines and # comments are skipped. Every line
is checked before any runs; the load stops at the first line that fails and
names it (exit 1). A -D or -U that matches nothing is not a failure here.`,
		Example: `  ctsync table list -w 10 -o save | sed 's/-w 10/-w 11/' | ctsync table load -
  ctsync table load --netns fw-b flows.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, name, done, err := openLoadFile(args[0], s.in)
			if err != nil {
				return err
			}
			defer done()
			lines, err := readLoadFile(r, name)
			if err != nil {
				return err
			}
			conn, err := dialTable(netns)
			if err != nil {
				return err
			}
			defer conn.Close()
			return runLoad(cmd.Context(), conn, lines, name, s.out)
		},
	}
	addNetNSFlag(cmd, &netns)
	return cmd
}

func addNetNSFlag(cmd *cobra.Command, netns *string) {
	for i := range ctFlagDefs {
		if d := &ctFlagDefs[i]; d.opt == optNetNS {
			cmd.Flags().StringVar(netns, d.long, "", d.usage)
		}
	}
}

func newTableCountCmd(s *streams) *cobra.Command {
	var netns string
	cmd := &cobra.Command{
		Use:   "count",
		Short: "Print the number of conntrack entries (conntrack -C)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := dialTable(netns)
			if err != nil {
				return err
			}
			defer conn.Close()
			n, _, err := conn.Count(cmd.Context())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.out, "%d\n", n)
			return err
		},
	}
	addNetNSFlag(cmd, &netns)
	return cmd
}

func newTableStatsCmd(s *streams) *cobra.Command {
	var netns string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print the per-CPU conntrack statistics (conntrack -S)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := dialTable(netns)
			if err != nil {
				return err
			}
			defer conn.Close()
			stats, err := conn.Stats(cmd.Context())
			if err != nil {
				return err
			}
			var b []byte
			for _, c := range stats {
				b = fmt.Appendf(b, "cpu=%-4d\tfound=%d invalid=%d insert=%d insert_failed=%d drop=%d early_drop=%d error=%d search_restart=%d clash_resolve=%d chaintoolong=%d \n",
					c.CPU, c.Found, c.Invalid, c.Insert, c.InsertFailed, c.Drop, c.EarlyDrop, c.Error, c.SearchRestart, c.ClashResolve, c.ChainTooLong)
			}
			_, err = s.out.Write(b)
			return err
		},
	}
	addNetNSFlag(cmd, &netns)
	return cmd
}

// changed ends a command that changed n entries, as conntrack does: the
// summary on standard error, or exit 1 with none when nothing changed.
func changed(s *streams, n int, err error, verb, none string) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New(none)
	}
	summary(s, "%d flow entries have been "+verb+".", n)
	return nil
}
