package table

import (
	"fmt"
	"math"
	"strconv"

	"github.com/spf13/pflag"
)

// ctCmd is one conntrack(8) command: a `ctsync table` subcommand, or the
// command letter of a `table load` line.
type ctCmd uint8

const (
	ctList   ctCmd = iota // -L, table list
	ctGet                 // -G, table get
	ctDelete              // -D, table delete
	ctUpdate              // -U, table update
	ctCreate              // -I, table insert
	ctAdd                 // -A, load only: create, or update when it exists
	ctEvents              // -E, table events
	ctFlush               // -F, table flush
)

func (c ctCmd) String() string {
	return [...]string{"list", "get", "delete", "update", "insert", "add (-A)", "events", "flush"}[c]
}

// ctOpt is a bit set of the options a command line gave.
type ctOpt uint64

// The options, in conntrack(8)'s order (its option matrix), then the
// protocol options, then ctsync's own.
const (
	optSrc ctOpt = 1 << iota
	optDst
	optReplySrc
	optReplyDst
	optProto
	optTimeout
	optStatus
	optEventMask
	optMaskSrc
	optMaskDst
	optMark
	optID
	optFamily
	optSrcNAT
	optDstNAT
	optOutput
	optBufferSize
	optAnyNAT
	optZone
	optOrigZone
	optReplyZone

	optSport
	optDport
	optReplySport
	optReplyDport
	optState
	optICMPType
	optICMPCode
	optICMPID
	optOrigVTag
	optReplyVTag
	optSrcKey
	optDstKey
	optReplySrcKey
	optReplyDstKey
	optRole

	optNetNS // ctsync only: not on table load lines
	optCount
	optYes
)

const (
	optPorts      = optSport | optDport | optReplySport | optReplyDport
	optICMP       = optICMPType | optICMPCode | optICMPID
	optVTags      = optOrigVTag | optReplyVTag
	optKeys       = optSrcKey | optDstKey | optReplySrcKey | optReplyDstKey
	optProtoOpts  = optPorts | optState | optICMP | optVTags | optKeys | optRole
	optAddrs      = optSrc | optDst | optReplySrc | optReplyDst
	optTuple      = optAddrs | optProto | optPorts | optICMP | optKeys
	optNAT        = optSrcNAT | optDstNAT | optAnyNAT
	optZones      = optZone | optOrigZone | optReplyZone
	optCtsyncOnly = optNetNS | optCount | optYes
	// What table update sets rather than selects by.
	optUpdates = optTimeout | optStatus | optMark | optState
)

// ctLegal is conntrack(8)'s table of legal option combinations, per
// command (conntrack.c's commands_v_options and the protocol extensions'
// own tables). An option outside a command's set is a usage error, as
// conntrack's "Illegal option `--zone' with this command" is. ctsync is
// stricter in one place: options conntrack accepts but would silently
// ignore are refused: --state, the SCTP tags and the DCCP role on get, and
// the tags and the role on update (which sets the TCP state only).
var ctLegal = [...]ctOpt{
	ctList: optTuple | optState | optVTags | optRole | optStatus | optMaskSrc | optMaskDst |
		optMark | optFamily | optSrcNAT | optDstNAT | optAnyNAT | optOutput | optZones | optNetNS,
	ctGet: optTuple | optID | optOutput | optNetNS,
	ctDelete: optTuple | optState | optVTags | optRole | optTimeout | optStatus | optMaskSrc |
		optMaskDst | optMark | optID | optFamily | optSrcNAT | optDstNAT | optOutput | optZones | optNetNS,
	ctUpdate: optTuple | optState | optTimeout | optStatus | optMaskSrc | optMaskDst | optMark |
		optID | optFamily | optSrcNAT | optDstNAT | optOutput | optNetNS,
	ctCreate: optTuple | optState | optVTags | optRole | optTimeout | optStatus | optMark |
		optSrcNAT | optDstNAT | optZones | optNetNS,
	ctAdd: optTuple | optState | optVTags | optRole | optTimeout | optStatus | optMark |
		optSrcNAT | optDstNAT | optZones,
	ctEvents: optTuple | optState | optVTags | optRole | optEventMask | optMaskSrc | optMaskDst |
		optMark | optFamily | optSrcNAT | optDstNAT | optAnyNAT | optOutput | optBufferSize |
		optZones | optNetNS | optCount,
	ctFlush: optFamily | optNetNS | optYes,
}

// ctFlagDef describes one option: its name as ctsync spells it (conntrack's
// long name, or its best-known one), conntrack's other spellings, and help.
type ctFlagDef struct {
	opt      ctOpt
	long     string
	short    string
	aliases  []string // conntrack's other long names; accepted, not shown
	usage    string   // help; a `quoted` word names the argument
	setUsage string   // help where the option sets a value (insert, update)
	typ      string   // pflag type: "" (string), "bool" or "nat" (optional argument)
}

var ctFlagDefs = []ctFlagDef{
	{opt: optSrc, long: "src", short: "s", aliases: []string{"orig-src"},
		usage:    "original source `IP` or network (IP/BITS)",
		setUsage: "original source `IP`"},
	{opt: optDst, long: "dst", short: "d", aliases: []string{"orig-dst"},
		usage:    "original destination `IP` or network (IP/BITS)",
		setUsage: "original destination `IP`"},
	{opt: optReplySrc, long: "reply-src", short: "r", usage: "reply source `IP`"},
	{opt: optReplyDst, long: "reply-dst", short: "q", usage: "reply destination `IP`"},
	{opt: optMaskSrc, long: "mask-src", usage: "netmask `MASK` of --src, e.g. 255.255.255.0 (or write --src IP/BITS)"},
	{opt: optMaskDst, long: "mask-dst", usage: "netmask `MASK` of --dst"},
	{opt: optProto, long: "proto", short: "p", aliases: []string{"protonum"},
		usage: "layer-4 protocol `PROTO`: a name (tcp, udp, udplite, sctp, dccp, gre, icmp, icmpv6, ...) or a number 0-255"},
	{opt: optFamily, long: "family", short: "f", usage: "address `FAMILY`: ipv4 or ipv6 (default: both)"},
	{opt: optSport, long: "sport", aliases: []string{"orig-port-src"},
		usage: "original source `PORT` (tcp, udp, udplite, sctp, dccp)"},
	{opt: optDport, long: "dport", aliases: []string{"orig-port-dst"},
		usage: "original destination `PORT`"},
	{opt: optReplySport, long: "reply-port-src", usage: "reply source `PORT`"},
	{opt: optReplyDport, long: "reply-port-dst", usage: "reply destination `PORT`"},
	{opt: optState, long: "state",
		usage:    "protocol `STATE` (tcp, sctp, dccp), e.g. ESTABLISHED; without -p, that state of any of them",
		setUsage: "protocol `STATE` to set (tcp, sctp, dccp), e.g. ESTABLISHED"},
	{opt: optICMPType, long: "icmp-type", aliases: []string{"icmpv6-type"}, usage: "ICMP or ICMPv6 `TYPE`"},
	{opt: optICMPCode, long: "icmp-code", aliases: []string{"icmpv6-code"}, usage: "ICMP or ICMPv6 `CODE`"},
	{opt: optICMPID, long: "icmp-id", aliases: []string{"icmpv6-id"}, usage: "ICMP or ICMPv6 query `ID`"},
	{opt: optOrigVTag, long: "orig-vtag", usage: "SCTP verification `TAG`, original direction"},
	{opt: optReplyVTag, long: "reply-vtag", usage: "SCTP verification `TAG`, reply direction"},
	{opt: optSrcKey, long: "srckey", aliases: []string{"orig-key-src"}, usage: "GRE source `KEY`, original direction"},
	{opt: optDstKey, long: "dstkey", aliases: []string{"orig-key-dst"}, usage: "GRE destination `KEY`, original direction"},
	{opt: optReplySrcKey, long: "reply-key-src", usage: "GRE source `KEY`, reply direction"},
	{opt: optReplyDstKey, long: "reply-key-dst", usage: "GRE destination `KEY`, reply direction"},
	{opt: optRole, long: "role", usage: "DCCP `ROLE`: client or server"},
	{opt: optTimeout, long: "timeout", short: "t",
		usage:    "`SECONDS` left, compared exactly",
		setUsage: "timeout in `SECONDS`"},
	{opt: optStatus, long: "status", short: "u",
		usage:    "`STATUS[,...]` bits that must be set: ASSURED, SEEN_REPLY, FIXED_TIMEOUT, EXPECTED, OFFLOAD, HW_OFFLOAD; UNREPLIED; !NAME: must be clear",
		setUsage: "`STATUS[,...]` bits to set: ASSURED, SEEN_REPLY, FIXED_TIMEOUT (UNSET: none)"},
	{opt: optMark, long: "mark", short: "m",
		usage:    "`MARK[/MASK]`: entries whose mark & MASK == MARK",
		setUsage: "`MARK[/MASK]` to set: new mark = (old & ~MASK) ^ MARK"},
	{opt: optZone, long: "zone", short: "w", usage: "conntrack `ZONE`, both directions"},
	{opt: optOrigZone, long: "orig-zone", usage: "conntrack `ZONE` of the original direction"},
	{opt: optReplyZone, long: "reply-zone", usage: "conntrack `ZONE` of the reply direction"},
	{opt: optSrcNAT, long: "src-nat", short: "n", typ: "nat",
		usage:    "source-NATed entries; with `IP[:PORT]` ([IPv6]:PORT) those NATed to it",
		setUsage: "source NAT to `IP[:PORT]` ([IPv6]:PORT)"},
	{opt: optDstNAT, long: "dst-nat", short: "g", typ: "nat",
		usage:    "destination-NATed entries; with `IP[:PORT]` ([IPv6]:PORT) those NATed to it",
		setUsage: "destination NAT to `IP[:PORT]` ([IPv6]:PORT)"},
	{opt: optAnyNAT, long: "any-nat", short: "j", typ: "nat", usage: "source- or destination-NATed entries; with `IP[:PORT]` those NATed to it"},
	{opt: optID, long: "id", usage: "conntrack entry `ID` (as -o id shows it)"},
	{opt: optOutput, long: "output", short: "o",
		usage: "`FORMAT[,...]` of text (default), extended, id, save, json; e.g. -o extended,id"},
	{opt: optEventMask, long: "event-mask", short: "e", usage: "`EVENTS` to show: NEW, UPDATES, DESTROY or ALL, comma-separated"},
	{opt: optBufferSize, long: "buffer-size", short: "b", usage: "netlink receive buffer of `BYTES` (default 64 MiB)"},
	{opt: optNetNS, long: "netns", usage: "network namespace `NAME` under /run/netns, or a path (default: the current one)"},
	{opt: optCount, long: "count", usage: "exit after `N` events (default: until interrupted)"},
	{opt: optYes, long: "yes", usage: "flush without asking", typ: "bool"},
}

// natBare is the value of a NAT option given without an argument (the
// filter "NATed at all"); see ctFlags.resolveArgs for "-n IP".
const natBare = "any"

// ctFlags collects the options of one command line as the user gave them.
// request checks and converts them.
type ctFlags struct {
	cmd    ctCmd
	inLoad bool
	fs     *pflag.FlagSet
	given  ctOpt
	raw    map[ctOpt]string
	// sets records every option in the order it was parsed, with the
	// number of positional arguments seen before it, so that "-n IP" (an
	// optional argument in a separate word, as conntrack allows) can be
	// told from a stray argument.
	sets []flagSet
}

type flagSet struct {
	opt   ctOpt
	nargs int
	bare  bool // a NAT option without an argument
	taken bool
}

// ctValue is the pflag.Value of one option name; it records the raw text.
type ctValue struct {
	cf   *ctFlags
	def  *ctFlagDef
	text string
}

func (v *ctValue) String() string { return v.text }

func (v *ctValue) Type() string {
	if v.def.typ != "" {
		return v.def.typ
	}
	return "string"
}

func (v *ctValue) Set(s string) error {
	cf := v.cf
	v.text = s
	cf.given |= v.def.opt
	cf.raw[v.def.opt] = s
	cf.sets = append(cf.sets, flagSet{
		opt:   v.def.opt,
		nargs: len(cf.fs.Args()),
		bare:  v.def.opt&optNAT != 0 && s == natBare,
	})
	return nil
}

// addCTFlags registers every conntrack option on fs for command c. Options
// the command does not take stay registered but hidden, so that using one
// is a clear usage error rather than "unknown flag". inLoad leaves out
// ctsync's own options (--netns, --count, --yes), which a load line cannot
// carry.
func addCTFlags(fs *pflag.FlagSet, c ctCmd, inLoad bool) *ctFlags {
	cf := &ctFlags{cmd: c, inLoad: inLoad, fs: fs, raw: make(map[ctOpt]string)}
	legal := cf.legal()
	for i := range ctFlagDefs {
		d := &ctFlagDefs[i]
		if inLoad && d.opt&optCtsyncOnly != 0 {
			continue
		}
		if d.opt&optCtsyncOnly != 0 && d.opt&legal == 0 {
			continue // ctsync's own options exist only where they mean something
		}

		usage := d.usage
		if d.setUsage != "" && (c == ctCreate || c == ctAdd || c == ctUpdate && d.opt&optUpdates != 0) {
			usage = d.setUsage
		}
		f := fs.VarPF(&ctValue{cf: cf, def: d}, d.long, d.short, usage)
		switch {
		case d.opt&optNAT != 0:
			f.NoOptDefVal = natBare
		case d.typ == "bool":
			f.NoOptDefVal = "true"
		}
		f.Hidden = d.opt&legal == 0

		for _, a := range d.aliases {
			fa := fs.VarPF(&ctValue{cf: cf, def: d}, a, "", usage)
			fa.Hidden = true
		}
	}
	return cf
}

// legal returns the options the command takes.
func (cf *ctFlags) legal() ctOpt {
	l := ctLegal[cf.cmd]
	if cf.inLoad {
		l &^= optCtsyncOnly
	}
	return l
}

func (cf *ctFlags) has(o ctOpt) bool { return cf.given&o != 0 }

// optName returns the option's name for messages: "--zone".
func optName(o ctOpt) string {
	for i := range ctFlagDefs {
		if ctFlagDefs[i].opt == o {
			return "--" + ctFlagDefs[i].long
		}
	}
	return fmt.Sprintf("option %#x", uint64(o))
}

// resolveArgs gives each positional argument to the NAT option written
// right before it without a value ("--src-nat 1.2.3.4", which conntrack
// reads as the option's optional argument). For delete, get and update a
// positional argument of decimal digits only is the entry id, as --id ("delete
// 3979507854", a ctsync extension: conntrack -D takes none). Any other
// positional argument is a usage error.
func (cf *ctFlags) resolveArgs(args []string) error {
	for i, a := range args {
		last := -1
		for j := range cf.sets {
			if cf.sets[j].nargs == i {
				last = j
			}
		}
		if last >= 0 && cf.sets[last].bare && !cf.sets[last].taken {
			cf.sets[last].taken = true
			cf.raw[cf.sets[last].opt] = a
			continue
		}

		byID := cf.cmd == ctDelete || cf.cmd == ctGet || cf.cmd == ctUpdate
		switch {
		case byID && !cf.inLoad && allDigits(a):
			if cf.has(optID) {
				return usageErrorf("unexpected argument %q: the entry id is given already (--id %s)", a, cf.raw[optID])
			}
			id, err := strconv.ParseUint(a, 10, 32)
			if err != nil {
				return usageErrorf("entry id %q: want a number 0-%d", a, uint32(math.MaxUint32))
			}
			cf.given |= optID
			// Decimal without leading zeros, so --id's parser (which
			// takes 0x and octal prefixes) reads the same number.
			cf.raw[optID] = strconv.FormatUint(id, 10)
		case cf.cmd == ctDelete || cf.cmd == ctUpdate:
			if cf.inLoad {
				return usageErrorf("unexpected argument %q: %s selects entries with options, such as --id ID or -s IP", a, cf.cmd)
			}
			return usageErrorf("unexpected argument %q: %s selects entries with options, such as --id ID or -s IP, or by a decimal ID alone", a, cf.cmd)
		default:
			return usageErrorf("unexpected argument %q: %s takes options only (see --help)", a, cf.cmd)
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
