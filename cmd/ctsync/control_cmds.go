package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
)

// addControlCommands adds the commands that talk to the running daemon over its
// control socket (docs/interface.md, "Control commands"), and the --socket flag
// they share.
func addControlCommands(root *cobra.Command, s *streams) {
	root.PersistentFlags().String("socket", "",
		"the daemon's control socket `PATH` (default: control.socket of the configuration file, else "+config.DefaultSocket+")")
	root.AddCommand(
		newCommitCmd(s),
		newFlushCmd(s),
		newResyncCmd(s),
		newSendBulkCmd(s),
		newPurgeCmd(s),
		newCacheCmd(s),
		newStatsCmd(s),
		newMembersCmd(s),
		newNotifyCmd(s),
		newHealthCmd(s),
		newShutdownCmd(s),
		newKeysCmd(s), // keys_cmd.go
	)
}

// controlExit is the exit status text every control command shares.
const controlExit = `

Exit status: 0 on success, 1 when the daemon is not running or the operation
failed, 2 on a bad command line.`

// dialControl returns a client for the daemon's control socket: --socket if
// given, else control.socket of the configuration file (--config, or the
// default file if it exists), else the default socket.
func dialControl(cmd *cobra.Command) (*control.Client, error) {
	if f := cmd.Flag("socket"); f != nil && f.Changed {
		if f.Value.String() == "" {
			return nil, usageErrorf("--socket: want the path of the daemon's control socket")
		}
		return control.Dial(f.Value.String()), nil
	}
	cf := cmd.Flag("config")
	if cf == nil {
		return control.Dial(config.DefaultSocket), nil
	}
	path := cf.Value.String()
	if !cf.Changed {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return control.Dial(config.DefaultSocket), nil
		}
	}
	c, err := config.Load(path)
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		return nil, fmt.Errorf("control socket: %s (run `ctsync config check`, or give --socket PATH)", first)
	}
	if c.Control.Socket == "" {
		return nil, fmt.Errorf("control socket: control.socket is empty in %s (give --socket PATH)", path)
	}
	return control.Dial(c.Control.Socket), nil
}

// controlCmd completes cmd: run gets a client for the daemon.
func controlCmd(cmd *cobra.Command, run func(cmd *cobra.Command, c *control.Client, args []string) error) *cobra.Command {
	cmd.Long += controlExit
	if cmd.Args == nil {
		cmd.Args = cobra.NoArgs
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := dialControl(cmd)
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
	return cmd
}

func newCommitCmd(s *streams) *cobra.Command {
	return controlCmd(&cobra.Command{
		Use:   "commit",
		Short: "Write the external cache into the kernel table (conntrackd -c)",
		Long: `Write the flows of the other nodes (the external cache) into the kernel
conntrack table and wait until it is done. Prints how many flows were created,
replaced (they existed already: updated in place, or swapped for the replica
when its NAT or helper differs), kept local (the kernel refused the replica and
the live entry was put back, or the replica's tuples belong to another local
connection) and failed, and the time taken; the first failures follow on
standard error. A flow not written stays in the external cache, and the next
commit retries it. Any flow not written: exit 1. Flows this node refuses (its
filter.* rules, a loopback address, or one ending or starting at its own
address without NAT) are not written and are counted as skipped, not failed.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		res, err := c.Commit(cmd.Context())
		if err != nil {
			return err
		}
		printCommit(s, &res)
		return commitFailure(&res)
	})
}

// printCommit prints a commit's outcome, and its first errors on stderr.
func printCommit(s *streams, res *control.CommitResult) {
	kept := ""
	if res.KeptLocal > 0 {
		kept = fmt.Sprintf(", %d kept local", res.KeptLocal)
	}
	fmt.Fprintf(s.out, "committed %d flows in %.3fs: %d created, %d replaced%s, %d failed\n",
		res.Created+res.Replaced+res.KeptLocal+res.Failed, res.Seconds, res.Created, res.Replaced, kept, res.Failed)
	if n := res.Expectations + res.ExpectationsExisting + res.ExpectationsFailed; n > 0 {
		fmt.Fprintf(s.out, "committed %d expectations: %d created, %d existing, %d failed\n",
			n, res.Expectations, res.ExpectationsExisting, res.ExpectationsFailed)
	}
	if res.Skipped+res.ExpectationsSkipped > 0 {
		what := plural(res.Skipped, "flow")
		if res.ExpectationsSkipped > 0 {
			what += " and " + plural(res.ExpectationsSkipped, "expectation")
		}
		fmt.Fprintf(s.out, "skipped %s this node refuses (its filter, a loopback or its own address): not written\n", what)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(s.err, "ctsync: commit: %s\n", e)
	}
	if more := res.Failed + res.KeptLocal + res.ExpectationsFailed - len(res.Errors); more > 0 && len(res.Errors) > 0 {
		fmt.Fprintf(s.err, "ctsync: commit: ... and %d more (see the daemon's log)\n", more)
	}
}

// commitFailure is the error of a commit that did not write every flow
// (failed, or kept local): they remain in the external cache.
func commitFailure(res *control.CommitResult) error {
	n := res.Failed + res.KeptLocal
	if n == 0 {
		return nil
	}
	total := res.Created + res.Replaced + n
	if res.KeptLocal == 0 {
		return fmt.Errorf("commit: %d of %d flows failed; %s", n, total, remainHint(max(res.Remaining, n)))
	}
	return fmt.Errorf("commit: %d of %d flows not written (%d failed, %d kept local); %s",
		n, total, res.Failed, res.KeptLocal, remainHint(max(res.Remaining, n)))
}

// remainHint says that flows remain to be retried.
func remainHint(n int) string {
	return fmt.Sprintf("%d flows remain in the external cache: run `ctsync commit` to retry", n)
}

func newFlushCmd(s *streams) *cobra.Command {
	return controlCmd(&cobra.Command{
		Use:       "flush [internal|external]",
		Short:     "Empty the internal or external cache, or both (conntrackd -f)",
		Long:      `Empty the internal cache (this node's flows), the external cache (the other nodes' flows), or both when no cache is named. The kernel table is not touched.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"internal", "external"},
	}, func(cmd *cobra.Command, c *control.Client, args []string) error {
		which := ""
		if len(args) == 1 {
			which = args[0]
			if which != "internal" && which != "external" {
				return usageErrorf("unknown cache %q: want internal or external (or nothing for both)", which)
			}
		}
		if err := c.Flush(cmd.Context(), which); err != nil {
			return err
		}
		if which == "" {
			fmt.Fprintln(s.out, "flushed both caches")
		} else {
			fmt.Fprintf(s.out, "flushed the %s cache\n", which)
		}
		return nil
	})
}

func newResyncCmd(s *streams) *cobra.Command {
	resync := &cobra.Command{
		Use:   "resync",
		Short: "Rebuild the internal cache from the kernel, or ask peers to resend",
	}
	resync.AddCommand(controlCmd(&cobra.Command{
		Use:   "kernel",
		Short: "Rebuild the internal cache from a kernel dump (conntrackd -R)",
		Long:  `Dump the kernel conntrack table and rebuild the internal cache (this node's flows) from it.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		res, err := c.ResyncKernel(cmd.Context())
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "rebuilt the internal cache from the kernel table in %.3fs: %d flows, %d removed\n",
			res.Seconds, res.Flows, res.Removed)
		return nil
	}), controlCmd(&cobra.Command{
		Use:   "peers",
		Short: "Ask the peers to send their flows again (conntrackd -n)",
		Long:  `Ask every peer to send all its flows again, to refill the external cache.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		n, err := c.ResyncPeers(cmd.Context())
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "asked %s to send their flows again\n", plural(n, "peer"))
		return nil
	}))
	return resync
}

func newSendBulkCmd(s *streams) *cobra.Command {
	return controlCmd(&cobra.Command{
		Use:   "send-bulk",
		Short: "Send all internal flows to the peers (conntrackd -B)",
		Long:  `Send every flow of the internal cache (this node's flows) to every peer again.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		n, err := c.SendBulk(cmd.Context())
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "sent the internal cache to %s\n", plural(n, "peer"))
		return nil
	})
}

func newPurgeCmd(s *streams) *cobra.Command {
	var after time.Duration
	cmd := controlCmd(&cobra.Command{
		Use:   "purge [--after DURATION]",
		Short: "Schedule the deletion of the replicated flows from the kernel (conntrackd -t)",
		Long: `After the delay (default: purge_timeout of the configuration), delete from the
kernel table every flow that the replication filter would replicate, as
conntrackd -t does when a node becomes backup. A commit before then cancels it.`,
		Example: `  ctsync purge
  ctsync purge --after 30s`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		if cmd.Flags().Changed("after") && after <= 0 {
			return usageErrorf("--after %s: want a positive duration such as 30s (leave it out for purge_timeout)", after)
		}
		res, err := c.Purge(cmd.Context(), after)
		if err != nil {
			return err
		}
		d := time.Duration(res.Seconds * float64(time.Second)).Round(time.Millisecond)
		fmt.Fprintf(s.out, "purge scheduled in %s (at %s); a commit before then cancels it\n",
			d, res.At.Local().Format(time.DateTime))
		return nil
	})
	cmd.Flags().DurationVar(&after, "after", 0, "delay before the purge, e.g. 30s (default: purge_timeout)")
	return cmd
}

func newCacheCmd(s *streams) *cobra.Command {
	cache := &cobra.Command{
		Use:   "cache internal|external [filters] [-o FORMAT] [--count]",
		Short: "List the daemon's internal or external cache (conntrackd -i/-e)",
		Long: `List the flows of a cache of the running daemon: internal (this node's own
flows, which it replicates) or external (the other nodes' flows, which a
commit writes into the kernel). Filters and output formats are those of
` + "`ctsync table list`" + `.`,
	}
	cache.AddCommand(newCacheListCmd(s, "internal"), newCacheListCmd(s, "external"))
	return cache
}

func newCacheListCmd(s *streams, which string) *cobra.Command {
	cmd := &cobra.Command{
		Use: which + " [filters] [-o FORMAT] [--count]",
		Long: `List the flows of the ` + which + ` cache that match every filter given, one line
each on standard output, formatted as ` + "`ctsync table list`" + ` formats kernel
entries (-o json adds each flow's origin node); the number shown goes to
standard error. --count prints only the number.`,
		Example: `  ctsync cache ` + which + `
  ctsync cache ` + which + ` -p tcp --dport 443 -o extended
  ctsync cache ` + which + ` --count
  ctsync cache ` + which + ` --expect`,
	}
	if which == "internal" {
		cmd.Short = "List this node's own flows (conntrackd -i)"
	} else {
		cmd.Short = "List the flows of the other nodes (conntrackd -e)"
		cmd.Example += "\n  ctsync cache external --origin fw-b -o json"
	}
	lf := table.AddListFlags(cmd.Flags())
	cmd.Flags().SortFlags = false
	if f := cmd.Flags().Lookup("netns"); f != nil {
		f.Hidden = true // the daemon's caches are the daemon's table's
	}
	count := cmd.Flags().Bool("count", false, "print only the number of matching flows")
	origin := cmd.Flags().String("origin", "", "only the flows of peer `NODE`")
	expect := cmd.Flags().Bool("expect", false, "list the cache's expectations instead, as conntrack -L expect does (no filters)")
	if which == "internal" {
		cmd.Flags().Lookup("origin").Hidden = true
	}
	cmd.Args = cobra.ArbitraryArgs // resolved by ListFlags.Parse: "-n IP" and strays
	return controlCmd(cmd, func(cmd *cobra.Command, c *control.Client, args []string) error {
		req, err := lf.Parse(args)
		if err != nil {
			return err
		}
		q := control.CacheQuery{Cache: which, Origin: *origin, Filter: req.Filter, Extra: req.Extra, Count: *count}
		switch {
		case lf.NetNSGiven():
			return usageErrorf("--netns does not apply to the daemon's caches (the daemon's kernel.netns does)")
		case cmd.Flags().Changed("origin") && which == "internal":
			return usageErrorf("--origin applies to the external cache only: the internal cache holds this node's flows")
		case cmd.Flags().Changed("origin") && *origin == "":
			return usageErrorf("--origin: want a node name")
		case *count && lf.OutputGiven():
			return usageErrorf("--count prints only the number: leave out -o")
		case *expect && lf.OutputGiven():
			return usageErrorf("--expect lists expectations in conntrack -L expect's format only: leave out -o")
		case *expect && (len(args) > 0 || otherFlags(cmd, "expect", "origin", "count", "socket", "config")):
			return usageErrorf("--expect takes no filters")
		}
		if *expect {
			q = control.CacheQuery{Cache: which, Origin: *origin, Count: *count, Expect: true, Format: "text"}
			return listCacheExpect(cmd.Context(), s, c, q)
		}

		switch {
		case req.Save:
			q.Format = "save"
		case req.JSON:
			q.Format = "json"
		default:
			q.Format, q.Extended, q.ID = "text", req.Text.Extended, req.Text.ID
		}
		if *count {
			n, err := c.Cache(cmd.Context(), q, nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.out, n)
			return nil
		}
		n, err := c.Cache(cmd.Context(), q, s.out)
		if err != nil {
			return err
		}
		summary(s, "%d flow entries have been shown.", n)
		return nil
	})
}

// listCacheExpect lists a cache's expectations as conntrack -L expect does,
// or with q.Count only their number.
func listCacheExpect(ctx context.Context, s *streams, c *control.Client, q control.CacheQuery) error {
	n, err := c.Cache(ctx, q, s.out)
	if q.Count && err == nil {
		fmt.Fprintln(s.out, n)
		return nil
	}
	if err != nil {
		return err
	}
	summary(s, "%d expectations have been shown.", n)
	return nil
}

// summary prints conntrack's closing line on standard error, as the table
// commands do.
func summary(s *streams, format string, n int) {
	fmt.Fprintf(s.err, "ctsync: "+format+"\n", n)
}

// outputFlag adds -o text|json.
func outputFlag(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("output", "o", "text", "output `FORMAT`: text or json")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usageErrorf("-o %q: want text or json", o)
	}
	return nil
}

func newStatsCmd(s *streams) *cobra.Command {
	var output *string
	cmd := controlCmd(&cobra.Command{
		Use:   "stats [-o text|json]",
		Short: "Show the daemon's statistics (conntrackd -s)",
		Long: `Show the daemon's statistics: cache sizes, sync traffic, errors, losses,
overruns, commit results and per-peer lag. -o json prints them as the daemon
sends them (curl --unix-socket SOCKET http://ctsync/v1/stats gives the same).
On an insecure cluster (cluster.insecure: true) a warning comes first, and
"insecure" is true.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.Stats(cmd.Context(), &raw); err != nil {
			return err
		}
		return writeStats(s.out, raw, *output)
	})
	output = outputFlag(cmd)
	return cmd
}

// writeStats prints the daemon's statistics as it sent them (raw JSON):
// indented for -o json, rendered as text otherwise, after a warning on an
// insecure cluster.
func writeStats(w io.Writer, raw json.RawMessage, output string) error {
	if output == "json" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("stats: bad answer from the daemon: %w", err)
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	var sec struct {
		Insecure bool `json:"insecure"`
	}
	if json.Unmarshal(raw, &sec) == nil && sec.Insecure {
		fmt.Fprint(w, insecureWarning)
	}
	return renderJSON(w, raw)
}

// insecureWarning heads `ctsync stats` on a node with cluster.insecure.
const insecureWarning = `WARNING: INSECURE CLUSTER (cluster.insecure: true): cluster traffic is neither encrypted nor
authenticated; anyone who can reach the cluster port can read this node's flows and inject flows.

`

func newMembersCmd(s *streams) *cobra.Command {
	var output *string
	cmd := controlCmd(&cobra.Command{
		Use:   "members [-o text|json]",
		Short: "List the cluster members",
		Long: `List the cluster members as this node's memberlist sees them now: name, cluster
address, state and for how long, whether this node's sync stream to it is
connected, and whether their flows are in sync both ways.

States: alive; suspect (it does not answer memberlist's probes: it is declared
dead unless it answers within the suspicion timeout); dead (it failed: stopped
without leaving, crashed, or cut off); left (it left gracefully). A member that
is dead or left is listed for 5 minutes, then dropped.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ms, err := c.Members(cmd.Context())
		if err != nil {
			return err
		}
		if *output == "json" {
			if ms == nil {
				ms = []control.Member{}
			}
			data, err := json.MarshalIndent(ms, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.out, "%s\n", data)
			return err
		}
		tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADDR\tSTATE\tSINCE\tCONNECTED\tIN-SYNC")
		for _, m := range ms {
			name, conn, insync := m.Name, yesNo(m.Connected), yesNo(m.InSync)
			if m.Self {
				name += " (self)"
				conn, insync = "-", "-"
			}
			since := (time.Duration(m.Since) * time.Second).String() + " ago"
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, m.Addr, m.State, since, conn, insync)
		}
		return tw.Flush()
	})
	output = outputFlag(cmd)
	return cmd
}

func newNotifyCmd(s *streams) *cobra.Command {
	return controlCmd(&cobra.Command{
		Use:   "notify master|backup|fault|stop",
		Short: "Tell the daemon about a keepalived transition",
		Long: `Tell the daemon that keepalived moved this node to a new state, and wait until
the daemon has done what the transition needs:

  master  commit the external cache, make the committed flows this node's own,
          rebuild the internal cache from the kernel, send everything to peers
  backup  ask the peers to resend their flows and schedule a purge
  fault   schedule a purge
  stop    keepalived stopped

Each is one ordered, atomic call into the daemon. keepalived's own notify
arguments are accepted too, so the command can be keepalived's notify script
as it is: GROUP|INSTANCE NAME STATE [PRIORITY], STATE being MASTER, BACKUP,
FAULT or STOP (DELETED, an instance removed from keepalived's configuration,
counts as STOP). On master, flows the commit could not write stay in the
external cache (the rest is flushed) and the output says how many remain;
` + "`ctsync commit`" + ` retries them. Exit 1 then: keepalived ignores a notify
script's exit status, but an operator or a check reading it sees the failure.
Skipped flows, which this node refuses, are not failures.`,
		Example: `  ctsync notify master
  # keepalived.conf, in vrrp_instance or vrrp_sync_group:
  notify "/usr/bin/ctsync notify"`,
		Args: cobra.RangeArgs(1, 4),
	}, func(cmd *cobra.Command, c *control.Client, args []string) error {
		state, err := notifyState(args)
		if err != nil {
			return err
		}
		res, err := c.Notify(cmd.Context(), state)
		if err != nil {
			return err
		}
		total := 0.0
		for _, st := range res.Steps {
			total += st.Seconds
		}
		fmt.Fprintf(s.out, "notify %s: done in %.3fs\n", res.State, total)
		tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
		for _, st := range res.Steps {
			line := fmt.Sprintf("  %s\t%.3fs", st.Name, st.Seconds)
			if st.Detail != "" {
				line += "\t" + st.Detail
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		if res.Commit != nil {
			printCommit(s, res.Commit)
		}
		if res.Remaining > 0 {
			// keepalived ignores a notify script's exit status; an
			// operator or a check reading it learns that flows remain.
			return fmt.Errorf("notify %s: %s", res.State, remainHint(res.Remaining))
		}
		if res.Commit != nil {
			return commitFailure(res.Commit)
		}
		return nil
	})
}

// notifyState reads notify's arguments: a state alone, or keepalived's
// notify script arguments TYPE NAME STATE [PRIORITY].
func notifyState(args []string) (string, error) {
	var state string
	switch len(args) {
	case 1:
		state = args[0]
	case 3, 4:
		if t := strings.ToUpper(args[0]); t != "GROUP" && t != "INSTANCE" {
			return "", usageErrorf("notify %s: want a state (master, backup, fault, stop) or keepalived's GROUP|INSTANCE NAME STATE [PRIORITY]", strings.Join(args, " "))
		}
		state = args[2]
	default:
		return "", usageErrorf("notify %s: want a state (master, backup, fault, stop) or keepalived's GROUP|INSTANCE NAME STATE [PRIORITY]", strings.Join(args, " "))
	}
	switch s := strings.ToLower(state); s {
	case "master", "backup", "fault", "stop":
		return s, nil
	case "deleted":
		return "stop", nil
	}
	return "", usageErrorf("unknown state %q: want master, backup, fault or stop", state)
}

func newHealthCmd(s *streams) *cobra.Command {
	return controlCmd(&cobra.Command{
		Use:   "health",
		Short: "Exit 0 when this node is ready to take over",
		Long: `Exit 0 when this node is ready to take over: it has been in sync with a peer
since it started, and every peer streaming to it has confirmed this node's copy
of its flows. It stays ready when no peer is alive (the peer died, the sync
link is down): that is when it must take over. Exit 1 with the reason on
standard error when it is not ready, or the daemon is not running; a node that
never synced says why (no peer reachable, cluster key mismatch, cluster name
mismatch). Usable as a keepalived track_script with a positive weight:

  vrrp_script ctsync { script "/usr/bin/ctsync health"; interval 2; fall 3 }`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		res, err := c.Health(cmd.Context())
		if err != nil {
			return err
		}
		if !res.Ready {
			if res.Reason == "" {
				return errors.New("not ready")
			}
			return fmt.Errorf("not ready: %s", res.Reason)
		}
		if res.Reason != "" {
			fmt.Fprintf(s.out, "ready: %s\n", res.Reason)
		} else {
			fmt.Fprintln(s.out, "ready")
		}
		return nil
	})
}

func newShutdownCmd(s *streams) *cobra.Command {
	return controlCmd(&cobra.Command{
		Use:   "shutdown",
		Short: "Stop the daemon (conntrackd -k)",
		Long:  `Ask the daemon to stop, as SIGTERM does: it leaves the cluster gracefully. Returns once the daemon has accepted.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		if err := c.Shutdown(cmd.Context()); err != nil {
			return err
		}
		fmt.Fprintln(s.out, "the daemon is shutting down")
		return nil
	})
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// otherFlags reports whether a flag other than those named was given.
func otherFlags(cmd *cobra.Command, names ...string) bool {
	other := false
	cmd.Flags().Visit(func(f *pflag.Flag) {
		for _, n := range names {
			if f.Name == n {
				return
			}
		}
		other = true
	})
	return other
}
