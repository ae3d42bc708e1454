package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/config"
	"github.com/ctsync/ctsync/control"
)

// keysProcedure is the key rotation procedure, for the help texts.
const keysProcedure = `Rotating the cluster key, with nothing restarted and no flow lost:

  1. ctsync keygen > /etc/ctsync/new.key && chmod 600 /etc/ctsync/new.key
  2. ctsync keys install --file /etc/ctsync/new.key     (on any one node)
  3. on every node, add the new key to cluster.key_file as its second line
  4. ctsync keys use --file /etc/ctsync/new.key         (on any one node)
  5. on every node, make the new key the first line of cluster.key_file
  6. ctsync keys remove OLD-KEY                         (on any one node)
  7. on every node, remove the old key from cluster.key_file

Each command acts on every member of the cluster at once (through the
daemon of the node it runs on) and says how many members did it. A key
is shown by its fingerprint only, the first 8 hex digits of its SHA-256.`

func newKeysCmd(s *streams) *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys list|install|use|remove",
		Short: "Rotate the cluster key without downtime",
		Long: `List, install, use and remove cluster keys on every member of the running
cluster, so that the cluster key can change without a restart.

` + keysProcedure + controlExit,
	}
	keys.AddCommand(newKeysListCmd(s))
	for _, op := range []string{"install", "use", "remove"} {
		keys.AddCommand(newKeyOpCmd(s, op))
	}
	return keys
}

func newKeysListCmd(s *streams) *cobra.Command {
	var output *string
	cmd := controlCmd(&cobra.Command{
		Use:   "list [-o text|json]",
		Short: "List the cluster keys and which members hold them",
		Long: `List the keys the cluster members hold, by fingerprint (the first 8 hex digits
of the key's SHA-256; the keys themselves are never shown): on how many of
the members that answered each is installed, and on how many it is the
primary key, the one traffic is encrypted with. A member that does not
answer: exit 1.`,
	}, func(cmd *cobra.Command, c *control.Client, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		res, err := c.ListKeys(cmd.Context())
		if err != nil {
			return err
		}
		if *output == "json" {
			data, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(s.out, "%s\n", data); err != nil {
				return err
			}
			return keysFailure(&res)
		}
		answered := res.Answered - countAnswerErrors(&res)
		tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tINSTALLED\tPRIMARY")
		for _, k := range res.Keys {
			primary := "no"
			switch {
			case k.Primary == answered:
				primary = "yes"
			case k.Primary > 0:
				primary = fmt.Sprintf("on %d of %d", k.Primary, answered)
			}
			fmt.Fprintf(tw, "%s\t%d of %d\t%s\n", k.Fingerprint, k.Nodes, answered, primary)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(s.err, "ctsync: %d of %s answered.\n", answered, plural(res.Nodes, "member"))
		return keysFailure(&res)
	})
	output = outputFlag(cmd)
	return cmd
}

// countAnswerErrors counts the members that are in Errors although they
// answered (the rest did not answer at all).
func countAnswerErrors(res *control.KeysResult) int {
	n := len(res.Errors) - (res.Nodes - res.Answered)
	return max(n, 0)
}

func newKeyOpCmd(s *streams, op string) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:  op + " KEY|-|--file PATH",
		Args: cobra.MaximumNArgs(1),
	}
	switch op {
	case "install":
		cmd.Example = `  ctsync keygen > /etc/ctsync/new.key && chmod 600 /etc/ctsync/new.key
  ctsync keys install --file /etc/ctsync/new.key`
	case "use":
		cmd.Example = `  ctsync keys use --file /etc/ctsync/new.key`
	case "remove":
		cmd.Example = `  ctsync keys remove --file /etc/ctsync/old.key
  sed -n 2p /etc/ctsync/cluster.key | ctsync keys remove -`
	}
	const keyHelp = `

The key is base64, as ` + "`ctsync keygen`" + ` prints it: as the argument, or read
from standard input (-) or a file (--file), so that it need not show in ps.
Members that fail or do not answer are named: exit 1.`
	switch op {
	case "install":
		cmd.Short = "Add a key to every member's keyring"
		cmd.Long = `Add a key to the keyring of every cluster member. The members accept
traffic encrypted with it from then on, but still encrypt with their primary
key: make it primary with ` + "`ctsync keys use`" + ` once every node's key_file
lists it.` + keyHelp
	case "use":
		cmd.Short = "Make an installed key the primary key of every member"
		cmd.Long = `Make a key the primary key of every cluster member: memberlist encrypts with
it, and replication streams opened from then on authenticate with it (the
open ones go on). Refused while a member that answers does not hold the key.` + keyHelp
	case "remove":
		cmd.Short = "Remove a key from every member's keyring"
		cmd.Long = `Remove a key from the keyring of every cluster member. The replication streams
authenticated with it close and reconnect with the primary key at once; a
node that knows only the removed key can no longer join. The primary key
cannot be removed: make another key primary first (` + "`ctsync keys use`" + `).` + keyHelp
	}
	cmd.Flags().StringVar(&file, "file", "", "read the key from `PATH` (a file with one key, as ctsync keygen writes it)")
	return controlCmd(cmd, func(cmd *cobra.Command, c *control.Client, args []string) error {
		key, err := readKeyArg(cmd, s, args, file)
		if err != nil {
			return err
		}
		res, err := c.KeyOp(cmd.Context(), op, key)
		if err != nil {
			return err
		}
		ok := res.Nodes - len(res.Errors)
		switch op {
		case "install":
			fmt.Fprintf(s.out, "installed key %s on %d of %s\n", res.Key, ok, plural(res.Nodes, "member"))
		case "use":
			fmt.Fprintf(s.out, "key %s is the primary key on %d of %s\n", res.Key, ok, plural(res.Nodes, "member"))
		case "remove":
			fmt.Fprintf(s.out, "removed key %s from %d of %s\n", res.Key, ok, plural(res.Nodes, "member"))
		}
		return keysFailure(&res)
	})
}

// readKeyArg returns the base64 key of install, use or remove: the
// argument, standard input (-) or --file. It never echoes the key.
func readKeyArg(cmd *cobra.Command, s *streams, args []string, file string) (string, error) {
	fromFile := cmd.Flags().Changed("file")
	switch {
	case len(args) == 1 && fromFile:
		return "", usageErrorf("give the key as an argument or with --file, not both")
	case len(args) == 0 && !fromFile:
		return "", usageErrorf("want the key: KEY, - to read it from standard input, or --file PATH")
	case fromFile && file == "":
		return "", usageErrorf("--file: want the path of a key file")
	}
	var data, from string
	switch {
	case fromFile:
		from = file
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("key file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 16<<10))
		if err != nil {
			return "", fmt.Errorf("key file %s: %w", file, err)
		}
		data = string(b)
	case args[0] == "-":
		from = "standard input"
		b, err := io.ReadAll(io.LimitReader(s.in, 16<<10))
		if err != nil {
			return "", fmt.Errorf("read the key from standard input: %w", err)
		}
		data = string(b)
	default:
		from = "the key argument"
		data = args[0]
	}
	keys, err := config.ParseKeys(data)
	switch {
	case err != nil:
		return "", usageErrorf("%s: %v (want a key as `ctsync keygen` prints it)", from, err)
	case len(keys) != 1:
		return "", usageErrorf("%s holds %d keys: want one", from, len(keys))
	}
	return base64.StdEncoding.EncodeToString(keys[0]), nil
}

// keysFailure is the error of a key operation some members failed: one
// line naming them.
func keysFailure(res *control.KeysResult) error {
	if len(res.Errors) == 0 {
		return nil
	}
	names := make([]string, 0, len(res.Errors))
	for n := range res.Errors {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + strings.ReplaceAll(res.Errors[n], "\n", " ")
	}
	return fmt.Errorf("keys %s: failed on %d of %s: %s", res.Op, len(names), plural(res.Nodes, "member"), strings.Join(parts, "; "))
}
