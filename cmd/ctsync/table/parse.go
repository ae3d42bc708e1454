package table

import (
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ctsync/ctsync/flow"
	"github.com/ctsync/ctsync/kernel"
)

// ctRequest is a checked conntrack(8) command line, ready to run.
type ctRequest struct {
	cmd   ctCmd
	given ctOpt

	// list, delete, update, events: which entries.
	filter flow.Filter
	extra  flow.ExtraFilter
	dump   kernel.DumpFilter

	// insert, add, get: the entry (get: its tuple). update: the timeout
	// and TCP state to set, given saying which.
	flow    flow.Flow
	byReply bool // get: look the entry up by its reply tuple
	byID    bool // get: no tuple, only --id (a ctsync extension)
	// insert without -t (a ctsync extension): the timeout is the kernel's
	// default for the entry, read when the table is open.
	defaultTimeout bool

	// update (and add on an existing entry): mark = (old &^ markMask) ^ mark.
	mark, markMask uint32
	status         flow.Status // update: bits to add

	family flow.Family // flush
	output outputFormat
	watch  kernel.WatchOptions
	count  int // events: stop after this many (0: never)

	netns  string
	yes    bool
	expect bool // --expect: the expectation table
}

// request checks the options against conntrack(8)'s rules for the command
// and converts them. Every problem is a usage error naming the option.
// args are the positional arguments left after flag parsing.
func (cf *ctFlags) request(args []string) (*ctRequest, error) {
	if err := cf.resolveArgs(args); err != nil {
		return nil, err
	}
	c := cf.cmd
	if bad := cf.given &^ cf.legal(); bad != 0 {
		return nil, usageErrorf("%s cannot be used with %s", optName(lowestBit(bad)), c)
	}

	p := parser{cf: cf, req: &ctRequest{cmd: c, given: cf.given}}
	p.common()
	p.protocol()
	p.addresses()
	switch c {
	case ctCreate, ctAdd, ctGet:
		p.entry()
	case ctFlush:
		p.req.family = p.family
	default:
		p.selection()
	}

	if p.err != nil {
		return nil, p.err
	}
	return p.req, nil
}

// lowestBit returns the lowest option bit of o.
func lowestBit(o ctOpt) ctOpt { return o & -o }

// parser converts the raw options; the first error sticks.
type parser struct {
	cf  *ctFlags
	req *ctRequest
	err error

	proto    uint8
	hasProto bool
	family   flow.Family
	// Addresses as given (prefixes: -s/-d may be networks in filters).
	src, dst, rsrc, rdst netip.Prefix
	snat, dnat, anynat   flow.NATSpec
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = usageErrorf(format, args...)
	}
}

func (p *parser) has(o ctOpt) bool   { return p.cf.has(o) }
func (p *parser) raw(o ctOpt) string { return p.cf.raw[o] }

// number parses an option's unsigned integer: decimal, or with base
// prefixes (0x...) where conntrack reads the value with strtoul(..., 0).
func (p *parser) number(o ctOpt, bitSize int, prefixes bool, what string) uint64 {
	if !p.has(o) {
		return 0
	}
	s := p.raw(o)
	base := 10
	if prefixes {
		base = 0
	}
	v, err := strconv.ParseUint(s, base, bitSize)
	if err != nil {
		p.fail("%s %q: want %s (0-%d)", optName(o), s, what, uint64(1)<<bitSize-1)
	}
	return v
}

// common handles the options every command treats alike.
func (p *parser) common() {
	r := p.req
	r.netns = p.raw(optNetNS)
	if p.has(optNetNS) && r.netns == "" {
		p.fail("--netns: want a namespace name or path")
	}
	if p.has(optYes) {
		yes, err := strconv.ParseBool(p.raw(optYes))
		if err != nil {
			p.fail("--yes=%q: want true or false", p.raw(optYes))
		}
		r.yes = yes
	}

	r.count = int(p.number(optCount, 31, false, "a number of events"))
	if p.has(optOutput) {
		o, err := parseOutput(p.raw(optOutput), p.cf.cmd)
		if err != nil {
			p.fail("%v", err)
		}
		r.output = o
	}

	if p.has(optEventMask) {
		p.eventMask()
	}
	if p.has(optBufferSize) {
		n := p.number(optBufferSize, 31, false, "a size in bytes")
		if n == 0 && p.err == nil {
			p.fail("--buffer-size: want a size in bytes greater than 0")
		}
		r.watch.ReadBuffer = int(n)
	}
}

// eventMask reads -e: the events to show.
func (p *parser) eventMask() {
	w := &p.req.watch
	for _, part := range strings.Split(p.raw(optEventMask), ",") {
		switch strings.ToUpper(strings.TrimSpace(part)) {
		case "NEW":
			w.New = true
		case "UPDATE", "UPDATES":
			w.Update = true
		case "DESTROY":
			w.Destroy = true
		case "ALL":
			w.New, w.Update, w.Destroy = true, true, true
		default:
			p.fail("--event-mask %q: unknown event %q (want NEW, UPDATES, DESTROY or ALL)", p.raw(optEventMask), part)
		}
	}
}

// protocol handles -p and checks that protocol options fit it, as the
// protocol extensions of conntrack(8) only exist after -p names them.
func (p *parser) protocol() {
	if p.has(optProto) {
		v, err := flow.ParseProto(p.raw(optProto))
		if err != nil {
			p.fail("-p %q: unknown protocol (want a name such as tcp, udp, icmp or a number 0-255)", p.raw(optProto))
			return
		}
		p.proto, p.hasProto = v, true
	}

	check := func(opts ctOpt, ok bool, need string) {
		if given := p.cf.given & opts; given != 0 && !ok {
			p.fail("%s needs %s", optName(lowestBit(given)), need)
		}
	}
	check(optPorts, p.hasProto && flow.HasPorts(p.proto), "-p with a protocol that has ports (tcp, udp, udplite, sctp, dccp)")
	if !p.stateByName() { // --state NAME alone is resolved in selection
		check(optState, p.hasProto && (p.proto == flow.ProtoTCP || p.proto == flow.ProtoSCTP || p.proto == flow.ProtoDCCP), "-p tcp, sctp or dccp (as in -p tcp --state ESTABLISHED)")
	}
	check(optICMP, p.hasProto && flow.IsICMP(p.proto), "-p icmp or -p icmpv6")
	check(optVTags, p.hasProto && p.proto == flow.ProtoSCTP, "-p sctp")
	check(optKeys, p.hasProto && p.proto == flow.ProtoGRE, "-p gre")
	check(optRole, p.hasProto && p.proto == flow.ProtoDCCP, "-p dccp")

	if p.cf.cmd == ctUpdate && p.has(optState) && p.proto != flow.ProtoTCP {
		p.fail("--state: table update can set the state of TCP entries only")
	}
}

// stateByName reports whether --state is a filter given without -p, which
// ctsync takes as the state of that name in any protocol (an extension:
// conntrack(8) refuses --state without -p). A load line follows conntrack.
func (p *parser) stateByName() bool {
	c := p.cf.cmd
	return p.has(optState) && !p.hasProto && !p.cf.inLoad && (c == ctList || c == ctDelete || c == ctEvents)
}

// addresses parses the addresses, NAT and family options and checks that
// they agree on one family, as conntrack(8) does.
func (p *parser) addresses() {
	prefix := func(o ctOpt) netip.Prefix {
		if !p.has(o) {
			return netip.Prefix{}
		}
		pf, err := flow.ParsePrefix(p.raw(o))
		if err != nil {
			p.fail("%s: %v", optName(o), err)
			return netip.Prefix{}
		}
		if pf.Bits() != pf.Addr().BitLen() && o&(optReplySrc|optReplyDst) != 0 {
			// conntrack: "CIDR notation unavailable for `--reply-src'".
			p.fail("%s %q: want an address, not a network", optName(o), p.raw(o))
		}
		p.setFamily(flow.FamilyOf(pf.Addr()))
		return pf
	}
	p.src, p.dst = prefix(optSrc), prefix(optDst)
	p.rsrc, p.rdst = prefix(optReplySrc), prefix(optReplyDst)
	p.src = p.mask(optMaskSrc, optSrc, p.src)
	p.dst = p.mask(optMaskDst, optDst, p.dst)

	nat := func(o ctOpt) flow.NATSpec {
		if !p.has(o) || p.raw(o) == natBare {
			return flow.NATSpec{}
		}
		n, err := flow.ParseNATSpec(p.raw(o))
		if err != nil {
			p.fail("%s: %v", optName(o), err)
			return flow.NATSpec{}
		}
		p.setFamily(flow.FamilyOf(n.Addr))
		return n
	}
	p.snat, p.dnat, p.anynat = nat(optSrcNAT), nat(optDstNAT), nat(optAnyNAT)
	if p.has(optAnyNAT) && p.has(optSrcNAT|optDstNAT) {
		p.fail("--any-nat cannot be combined with --src-nat or --dst-nat")
	}

	if p.has(optFamily) {
		fam, err := flow.ParseFamily(p.raw(optFamily))
		if err != nil {
			p.fail("--family %q: want ipv4 or ipv6", p.raw(optFamily))
			return
		}
		p.setFamily(fam)
	}
	if p.hasProto && (p.proto == flow.ProtoICMP && p.family == flow.IPv6 ||
		p.proto == flow.ProtoICMPv6 && p.family == flow.IPv4) {
		p.fail("-p %s does not exist in family %s", flow.ProtoName(p.proto), p.family)
	}
}

func (p *parser) setFamily(f flow.Family) {
	switch {
	case f == flow.FamilyUnspec:
	case p.family == flow.FamilyUnspec:
		p.family = f
	case p.family != f:
		p.fail("mismatched address family: IPv4 and IPv6 in one command")
	}
}

// mask applies --mask-src/--mask-dst (conntrack's netmask form of a CIDR)
// to the address of --src/--dst.
func (p *parser) mask(o, addrOpt ctOpt, pf netip.Prefix) netip.Prefix {
	if !p.has(o) {
		return pf
	}
	if !p.has(addrOpt) {
		p.fail("%s needs %s", optName(o), optName(addrOpt))
		return pf
	}
	m, err := netip.ParseAddr(p.raw(o))
	if err != nil || m.Zone() != "" {
		p.fail("%s %q: want a netmask such as 255.255.255.0", optName(o), p.raw(o))
		return pf
	}
	p.setFamily(flow.FamilyOf(m))
	b := m.AsSlice()
	ones := 0
	for i, x := range b {
		n := bits.LeadingZeros8(^x)
		ones += n
		if n < 8 {
			if x<<n != 0 || !allZero(b[i+1:]) {
				p.fail("%s %q: only contiguous netmasks are supported", optName(o), p.raw(o))
				return pf
			}
			break
		}
	}
	if !pf.IsValid() || m.BitLen() != pf.Addr().BitLen() {
		return pf
	}
	return netip.PrefixFrom(pf.Addr(), ones).Masked()
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// state parses --state for the protocol.
func (p *parser) state() uint8 {
	s := p.raw(optState)
	var v uint8
	var err error
	switch p.proto {
	case flow.ProtoTCP:
		v, err = flow.ParseTCPState(s)
	case flow.ProtoSCTP:
		v, err = flow.ParseSCTPState(s)
	case flow.ProtoDCCP:
		v, err = flow.ParseDCCPState(s)
	}
	if err != nil {
		p.fail("--state: %v", err)
	}
	return v
}

func (p *parser) role() uint8 {
	v, err := flow.ParseDCCPRole(p.raw(optRole))
	if err != nil {
		p.fail("--role: %v", err)
	}
	return v
}

func (p *parser) markOpt() (value, mask uint32) {
	v, m, err := flow.ParseMark(p.raw(optMark))
	if err != nil {
		p.fail("--mark: %v", err)
	}
	return v, m
}

// zone returns the zone options as one zone and direction, for commands
// that set it. A flow has one zone; conntrack's separate zones for the two
// directions in one entry are not supported.
func (p *parser) zone() (uint16, flow.ZoneDir, bool) {
	given := p.cf.given & optZones
	if given == 0 {
		return 0, flow.ZoneBoth, false
	}
	if given&(given-1) != 0 {
		p.fail("give one of --zone, --orig-zone and --reply-zone: an entry has one zone")
		return 0, flow.ZoneBoth, false
	}
	z := uint16(p.number(given, 16, true, "a zone"))
	switch given {
	case optOrigZone:
		return z, flow.ZoneOrig, true
	case optReplyZone:
		return z, flow.ZoneReply, true
	}
	return z, flow.ZoneBoth, true
}

// selection builds the filter of list, delete, update and events.
func (p *parser) selection() {
	r := p.req
	p.tupleFilter()
	p.extraFilter()
	if p.cf.cmd == ctUpdate {
		p.updateSets() // -t, -m, -u and --state are what update sets, not filters
	} else {
		p.attributeFilter()
	}
	if p.err != nil {
		return
	}
	if err := r.filter.Validate(); err != nil {
		p.fail("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	p.dumpFilter()
}

// tupleFilter selects by family, protocol, addresses, ports, ICMP, SCTP
// tags, id and NAT.
func (p *parser) tupleFilter() {
	f := &p.req.filter
	f.Family = p.family
	f.HasProto, f.Proto = p.hasProto, p.proto
	f.OrigSrc, f.OrigDst, f.ReplySrc, f.ReplyDst = p.src, p.dst, p.rsrc, p.rdst
	f.HasSrcPort, f.SrcPort = p.has(optSport), uint16(p.number(optSport, 16, false, "a port"))
	f.HasDstPort, f.DstPort = p.has(optDport), uint16(p.number(optDport, 16, false, "a port"))
	f.HasReplySrcPort, f.ReplySrcPort = p.has(optReplySport), uint16(p.number(optReplySport, 16, false, "a port"))
	f.HasReplyDstPort, f.ReplyDstPort = p.has(optReplyDport), uint16(p.number(optReplyDport, 16, false, "a port"))
	f.HasICMPType, f.ICMPType = p.has(optICMPType), uint8(p.number(optICMPType, 8, false, "an ICMP type"))
	f.HasICMPCode, f.ICMPCode = p.has(optICMPCode), uint8(p.number(optICMPCode, 8, false, "an ICMP code"))
	f.HasICMPID, f.ICMPID = p.has(optICMPID), uint16(p.number(optICMPID, 16, false, "an ICMP id"))
	f.HasOrigVTag, f.OrigVTag = p.has(optOrigVTag), uint32(p.number(optOrigVTag, 32, true, "a tag"))
	f.HasReplyVTag, f.ReplyVTag = p.has(optReplyVTag), uint32(p.number(optReplyVTag, 32, true, "a tag"))
	f.HasID, f.ID = p.has(optID), uint32(p.number(optID, 32, true, "an entry id"))
	f.HasSrcNAT, f.SrcNAT = p.has(optSrcNAT), p.snat
	f.HasDstNAT, f.DstNAT = p.has(optDstNAT), p.dnat
	f.HasAnyNAT, f.AnyNAT = p.has(optAnyNAT), p.anynat
}

// extraFilter selects by GRE keys and DCCP role.
func (p *parser) extraFilter() {
	x := &p.req.extra
	x.HasSrcKey, x.SrcKey = p.has(optSrcKey), uint16(p.number(optSrcKey, 16, true, "a GRE key"))
	x.HasDstKey, x.DstKey = p.has(optDstKey), uint16(p.number(optDstKey, 16, true, "a GRE key"))
	x.HasReplySrcKey, x.ReplySrcKey = p.has(optReplySrcKey), uint16(p.number(optReplySrcKey, 16, true, "a GRE key"))
	x.HasReplyDstKey, x.ReplyDstKey = p.has(optReplyDstKey), uint16(p.number(optReplyDstKey, 16, true, "a GRE key"))
	if p.has(optRole) {
		x.HasRole, x.Role = true, p.role()
	}
}

// updateSets reads what update sets: timeout, mark, status bits, TCP state.
func (p *parser) updateSets() {
	r := p.req
	if p.has(optTimeout) {
		r.flow.Timeout = uint32(p.number(optTimeout, 32, false, "a timeout in seconds"))
	}
	if p.has(optMark) {
		r.mark, r.markMask = p.markOpt()
	}
	if p.has(optStatus) {
		st, err := flow.ParseStatus(p.raw(optStatus))
		if err != nil {
			p.fail("--status: %v", err)
		}
		r.status = st
	}
	if p.has(optState) {
		r.flow.TCP.State = p.state()
	}
	if !p.has(optTimeout | optMark | optStatus | optState) {
		p.fail("table update needs something to set: -t SECONDS, -m MARK[/MASK], -u STATUS or --state STATE")
	}
}

// attributeFilter selects by state, status, mark, zones and timeout.
func (p *parser) attributeFilter() {
	f, x := &p.req.filter, &p.req.extra
	switch {
	case p.stateByName():
		st, err := flow.ParseAnyState(p.raw(optState))
		if err != nil {
			p.fail("--state: %v", err)
		}
		f.HasAnyState, f.AnyState = true, st
	case p.has(optState):
		f.HasState, f.State = true, p.state()
	}
	if p.has(optStatus) {
		set, unset, err := flow.ParseStatusFilter(p.raw(optStatus))
		if err != nil {
			p.fail("--status: %v", err)
		}
		f.HasStatus, f.StatusSet, f.StatusUnset = true, set, unset
	}
	if p.has(optMark) {
		f.HasMark = true
		f.Mark, f.MarkMask = p.markOpt()
	}
	f.HasZone, f.Zone = p.has(optZone), uint16(p.number(optZone, 16, true, "a zone"))
	f.HasOrigZone, f.OrigZone = p.has(optOrigZone), uint16(p.number(optOrigZone, 16, true, "a zone"))
	f.HasReplyZone, f.ReplyZone = p.has(optReplyZone), uint16(p.number(optReplyZone, 16, true, "a zone"))
	x.HasTimeout, x.Timeout = p.has(optTimeout), uint32(p.number(optTimeout, 32, false, "a timeout in seconds"))
}

// dumpFilter is what the kernel can filter itself, as conntrack asks it
// to: family, mark and (kernel >= 6.8) zone. The filter still decides.
func (p *parser) dumpFilter() {
	r := p.req
	f := &r.filter
	r.dump.Family = f.Family
	if f.HasMark && p.cf.cmd != ctUpdate {
		r.dump.Mark, r.dump.MarkMask = f.Mark, f.MarkMask
	}
	if f.HasZone && f.Zone != 0 {
		r.dump.Zone, r.dump.HasZone = f.Zone, true
	}
}

// entry builds the flow of insert, add (load -A) and get from the tuple
// options, checking what conntrack(8) requires: a protocol, both addresses
// of the original or the reply direction, both ports (keys) of a direction
// for protocols that have them, the ICMP type and code, and for insert and
// add a timeout, for TCP and SCTP the state, for SCTP the verification tags.
// Two ctsync extensions: insert (not a load line) without -t takes the
// kernel's default timeout, and get with --id alone finds the entry by id.
func (p *parser) entry() {
	r, c := p.req, p.cf.cmd
	if p.err != nil {
		return
	}
	if c == ctGet && p.has(optID) && p.cf.given&optTuple == 0 {
		// get --id N alone (a ctsync extension; conntrack -G wants the
		// tuple): the entry is looked up by its id.
		r.byID = true
		r.filter.HasID, r.filter.ID = true, uint32(p.number(optID, 32, true, "an entry id"))
		return
	}
	if !p.checkEntry() {
		return
	}

	orig := p.origTuple()
	reply, ok := p.natReply(p.replyTuple(orig))
	if !ok {
		return
	}
	r.flow.Orig, r.flow.Reply = orig, reply
	if c == ctGet {
		r.filter.HasID, r.filter.ID = p.has(optID), uint32(p.number(optID, 32, true, "an entry id"))
		return
	}

	p.entryAttributes()
	if p.err == nil {
		if err := r.flow.Validate(); err != nil {
			p.fail("%v", err)
		}
	}
}

// l4Given reports whether both ports (GRE: keys) of the original and of the
// reply direction were given, for protocol proto.
func (p *parser) l4Given(proto uint8) (orig, reply bool) {
	if proto == flow.ProtoGRE {
		return p.has(optSrcKey) && p.has(optDstKey), p.has(optReplySrcKey) && p.has(optReplyDstKey)
	}
	return p.has(optSport) && p.has(optDport), p.has(optReplySport) && p.has(optReplyDport)
}

// checkEntry checks that the options describe one whole entry (entry's
// list) and reports whether they do; it marks an insert without -t for the
// kernel's default timeout.
func (p *parser) checkEntry() bool {
	r, c := p.req, p.cf.cmd
	create := c == ctCreate || c == ctAdd
	if !p.hasProto {
		p.fail("%s needs -p PROTO", c)
		return false
	}
	if create && !p.has(optTimeout) {
		if c == ctAdd || p.cf.inLoad {
			// Load lines follow conntrack -R: -o save always writes -t.
			p.fail("%s needs -t SECONDS", c)
			return false
		}
		// insert without -t (a ctsync extension): the kernel's default.
		r.defaultTimeout = true
	}

	if !p.checkEntryAddrs() {
		return false
	}

	proto := p.proto
	origL4, replyL4 := p.l4Given(proto)
	switch {
	case flow.HasPorts(proto):
		// DCCP is the exception: Linux 6.16 dropped its tracker and tracks
		// it generically, without ports, and save lines say so.
		if !origL4 && !replyL4 && proto != flow.ProtoDCCP {
			p.fail("%s -p %s needs --sport and --dport (or --reply-port-src and --reply-port-dst)", c, flow.ProtoName(proto))
			return false
		}
	case proto == flow.ProtoGRE:
		if !origL4 && !replyL4 {
			p.fail("%s -p gre needs --srckey and --dstkey (or --reply-key-src and --reply-key-dst)", c)
			return false
		}
	case flow.IsICMP(proto):
		if !p.has(optICMPType) || !p.has(optICMPCode) {
			p.fail("%s -p %s needs --icmp-type and --icmp-code", c, flow.ProtoName(proto))
			return false
		}
	}

	stateful := proto == flow.ProtoTCP || proto == flow.ProtoSCTP
	if create && stateful && !p.has(optState) {
		p.fail("%s -p %s needs --state STATE", c, flow.ProtoName(proto))
		return false
	}
	if create && proto == flow.ProtoSCTP && !(p.has(optOrigVTag) && p.has(optReplyVTag)) {
		p.fail("%s -p sctp needs --orig-vtag and --reply-vtag", c)
		return false
	}
	return true
}

// checkEntryAddrs checks that both addresses of a direction were given, and
// that -s and -d are addresses, not networks.
func (p *parser) checkEntryAddrs() bool {
	c := p.cf.cmd
	origAddrs := p.has(optSrc) && p.has(optDst)
	replyAddrs := p.has(optReplySrc) && p.has(optReplyDst)
	if !origAddrs && !replyAddrs {
		p.fail("%s needs --src and --dst (or --reply-src and --reply-dst)", c)
		return false
	}
	for _, o := range []ctOpt{optSrc, optDst} {
		pf := p.src
		if o == optDst {
			pf = p.dst
		}
		if pf.IsValid() && pf.Bits() != pf.Addr().BitLen() {
			p.fail("%s %q: %s needs an address, not a network", optName(o), p.raw(o), c)
			return false
		}
	}
	return true
}

// port parses a 16-bit port or (GRE) key option.
func (p *parser) port(o ctOpt, what string) uint16 {
	return uint16(p.number(o, 16, o&optKeys != 0, what))
}

// origTuple is the entry's original direction: as given, or where a part
// was not given, the reply direction's inverted. It records whether the
// entry is looked up by its reply tuple (get).
func (p *parser) origTuple() flow.Tuple {
	proto := p.proto
	orig := flow.Tuple{Proto: proto}

	// Addresses: a direction not given is the other one inverted.
	origAddrs := p.has(optSrc) && p.has(optDst)
	if origAddrs {
		orig.Src, orig.Dst = p.src.Addr(), p.dst.Addr()
	} else {
		orig.Src, orig.Dst = p.rdst.Addr(), p.rsrc.Addr()
	}
	if p.has(optSrc) {
		orig.Src = p.src.Addr()
	}
	if p.has(optDst) {
		orig.Dst = p.dst.Addr()
	}
	p.req.byReply = !origAddrs

	// Layer 4.
	origL4, replyL4 := p.l4Given(proto)
	switch {
	case flow.HasPorts(proto):
		if origL4 {
			orig.SrcPort, orig.DstPort = p.port(optSport, "a port"), p.port(optDport, "a port")
		} else if replyL4 {
			orig.SrcPort, orig.DstPort = p.port(optReplyDport, "a port"), p.port(optReplySport, "a port")
		}
	case proto == flow.ProtoGRE:
		if origL4 {
			orig.SrcPort, orig.DstPort = p.port(optSrcKey, "a GRE key"), p.port(optDstKey, "a GRE key")
		} else {
			orig.SrcPort, orig.DstPort = p.port(optReplyDstKey, "a GRE key"), p.port(optReplySrcKey, "a GRE key")
		}
	case flow.IsICMP(proto):
		orig.ICMPType = uint8(p.number(optICMPType, 8, false, "an ICMP type"))
		orig.ICMPCode = uint8(p.number(optICMPCode, 8, false, "an ICMP code"))
		orig.ICMPID = p.port(optICMPID, "an ICMP id")
	}
	return orig
}

// replyTuple is the entry's reply direction: orig inverted, with the reply
// options given on top.
func (p *parser) replyTuple(orig flow.Tuple) flow.Tuple {
	reply := orig.Invert()
	if p.has(optReplySrc) {
		reply.Src = p.rsrc.Addr()
	}
	if p.has(optReplyDst) {
		reply.Dst = p.rdst.Addr()
	}
	if p.has(optReplySport) {
		reply.SrcPort = p.port(optReplySport, "a port")
	}
	if p.has(optReplyDport) {
		reply.DstPort = p.port(optReplyDport, "a port")
	}
	if p.has(optReplySrcKey) {
		reply.SrcPort = p.port(optReplySrcKey, "a GRE key")
	}
	if p.has(optReplyDstKey) {
		reply.DstPort = p.port(optReplyDstKey, "a GRE key")
	}
	return reply
}

// natReply applies --src-nat and --dst-nat to the reply tuple: source NAT
// is where replies go back to, destination NAT where they come from. It
// reports false on a NAT option that cannot apply.
func (p *parser) natReply(reply flow.Tuple) (flow.Tuple, bool) {
	c := p.cf.cmd
	for _, n := range []struct {
		opt  ctOpt
		spec flow.NATSpec
	}{{optSrcNAT, p.snat}, {optDstNAT, p.dnat}} {
		if !p.has(n.opt) {
			continue
		}
		if !n.spec.Addr.IsValid() {
			p.fail("%s needs an address: %s %s IP[:PORT]", optName(n.opt), c, optName(n.opt))
			return reply, false
		}
		if n.spec.HasPort && !flow.HasPorts(p.proto) {
			p.fail("%s %q: a port needs a protocol with ports", optName(n.opt), p.raw(n.opt))
			return reply, false
		}
		if n.opt == optSrcNAT {
			reply.Dst = n.spec.Addr
			if n.spec.HasPort {
				reply.DstPort = n.spec.Port
			}
		} else {
			reply.Src = n.spec.Addr
			if n.spec.HasPort {
				reply.SrcPort = n.spec.Port
			}
		}
	}
	return reply, true
}

// entryAttributes sets what insert and add give the entry beyond its
// tuples: timeout, status, mark, zone and the protocol's state.
func (p *parser) entryAttributes() {
	r := p.req
	f := &r.flow
	f.Timeout = uint32(p.number(optTimeout, 32, false, "a timeout in seconds"))
	f.Set(flow.AttrTimeout)
	if p.has(optStatus) {
		st, err := flow.ParseStatus(p.raw(optStatus))
		if err != nil {
			p.fail("--status: %v", err)
		}
		f.Status = st
		r.status = st
	}
	f.Set(flow.AttrStatus)
	if p.has(optMark) {
		// conntrack ignores a mask on create, and add sets the mark of
		// an existing entry to the value too.
		r.mark, _ = p.markOpt()
		r.markMask = 0xffffffff
		f.Mark = r.mark
		f.Set(flow.AttrMark)
	}
	if z, dir, ok := p.zone(); ok {
		f.Zone, f.ZoneDir = z, dir
		f.Set(flow.AttrZone)
	}
	p.protoState()
}

// protoState sets the state of a TCP, SCTP or DCCP entry (SCTP: and its
// verification tags; DCCP: and its role, both optional).
func (p *parser) protoState() {
	f := &p.req.flow
	switch p.proto {
	case flow.ProtoTCP:
		f.TCP.State = p.state()
		f.Set(flow.AttrTCP)
	case flow.ProtoSCTP:
		f.SCTP.State = p.state()
		f.SCTP.VTagOrig = uint32(p.number(optOrigVTag, 32, true, "a tag"))
		f.SCTP.VTagReply = uint32(p.number(optReplyVTag, 32, true, "a tag"))
		f.Set(flow.AttrSCTP)
	case flow.ProtoDCCP:
		if p.has(optState | optRole) {
			if p.has(optState) {
				f.DCCP.State = p.state()
			}
			if p.has(optRole) {
				f.DCCP.Role = p.role()
			}
			f.Set(flow.AttrDCCP)
		}
	}
}
