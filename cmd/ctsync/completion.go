package main

import (
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctsync/ctsync/cmd/ctsync/table"
	"github.com/ctsync/ctsync/flow"
)

// The shell completion of flag and argument values (cobra's hidden
// __complete command, which the bash, zsh and fish scripts of `ctsync
// completion` call). Every list comes from what the parsers accept, so a
// completed word is never refused.

// eventMasks are the -e names of table events (cmd/ctsync/table, parser.eventMask).
var eventMasks = []string{"NEW", "UPDATES", "DESTROY", "ALL"}

// notifyStates are notify's states (notifyState), with what each does.
var notifyStates = []cobra.Completion{
	cobra.CompletionWithDesc("master", "commit the external cache and take over the flows"),
	cobra.CompletionWithDesc("backup", "ask the peers to resend, schedule a purge"),
	cobra.CompletionWithDesc("fault", "schedule a purge"),
	cobra.CompletionWithDesc("stop", "keepalived stopped"),
}

// addCompletions registers the value completions on every command of the
// tree that has the flags or arguments concerned. It runs once the tree is
// built, so the commands themselves need not know about completion.
func addCompletions(cmd *cobra.Command) {
	fs := cmd.LocalNonPersistentFlags()
	// A hidden conntrack option is one the command refuses.
	has := func(name string) bool { f := fs.Lookup(name); return f != nil && !f.Hidden }
	register := func(name string, fn cobra.CompletionFunc) {
		if has(name) {
			// The flag exists, so registering cannot fail.
			_ = cmd.RegisterFlagCompletionFunc(name, fn)
		}
	}
	register("proto", wordList(flow.ProtoNames()))
	register("state", completeState)
	register("family", wordList([]string{"ipv4", "ipv6"}))
	register("role", wordList(flow.DCCPRoleNames()))
	register("event-mask", commaList(eventMasks))
	register("netns", completeNetNS)
	if f := fs.Lookup("status"); has("status") {
		names := flow.StatusNames()
		if table.SetsStatus(f) {
			names = append(names, "UNSET") // flow.ParseStatus
		} else {
			names = append(names, "UNREPLIED", "UNSET") // flow.ParseStatusFilter
		}
		register("status", commaList(names))
	}
	if f := fs.Lookup("output"); f != nil {
		if table.Option(f) {
			register("output", completeTableOutput(has("event-mask"))) // -o timestamp: events only
		} else {
			register("output", wordList([]string{"text", "json"})) // outputFlag
		}
	}
	if cmd.Name() == "notify" && cmd.HasParent() && !cmd.Parent().HasParent() {
		cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range notifyStates {
				if strings.HasPrefix(s, toComplete) {
					out = append(out, s)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	for _, sub := range cmd.Commands() {
		addCompletions(sub)
	}
}

// wordList completes one word from words.
func wordList(words []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, w := range words {
			if strings.HasPrefix(w, toComplete) {
				out = append(out, w)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// commaList completes the last word of a comma-separated list ("-o
// extended,i" → "extended,id"), leaving out the words already given.
func commaList(words []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		done, last := "", toComplete
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			done, last = toComplete[:i+1], toComplete[i+1:]
		}
		given := strings.Split(strings.ToUpper(done), ",")
		var out []cobra.Completion
		for _, w := range words {
			if strings.HasPrefix(w, last) && !slices.Contains(given, strings.ToUpper(w)) {
				out = append(out, done+w)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeTableOutput completes the -o of the table and cache commands:
// save and json stand alone, the others combine (table.CheckOutput).
func completeTableOutput(events bool) cobra.CompletionFunc {
	combinable := []string{"text", "extended", "id"}
	if events {
		combinable = append(combinable, "timestamp")
	}
	first, more := commaList(append(slices.Clone(combinable), "save", "json")), commaList(combinable)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		done, _, found := strings.Cut(toComplete, ",")
		switch {
		case !found:
			return first(cmd, args, toComplete)
		case done == "save" || done == "json":
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return more(cmd, args, toComplete)
	}
}

// completeState completes --state with the states of the protocol -p names,
// or, without -p, of every protocol that has states (--state alone matches
// that state in any of them).
func completeState(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	protos := []uint8{flow.ProtoTCP, flow.ProtoSCTP, flow.ProtoDCCP}
	if f := cmd.Flags().Lookup("proto"); f != nil {
		if name, ok := table.GivenProto(f); ok {
			p, err := flow.ParseProto(name)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			protos = []uint8{p}
		}
	}
	var names []string
	for _, p := range protos {
		for _, n := range flow.StateNames(p) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return wordList(names)(cmd, args, toComplete)
}

// completeNetNS completes --netns with the named namespaces (ip netns).
func completeNetNS(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil, cobra.ShellCompDirectiveDefault // a path, then
	}
	var out []cobra.Completion
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), toComplete) {
			out = append(out, e.Name())
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
