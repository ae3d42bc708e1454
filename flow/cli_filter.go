package flow

// ExtraFilter holds the conntrack(8) filter criteria that Filter does not
// cover: the GRE keys (--srckey, --dstkey, --reply-key-src, --reply-key-dst),
// the DCCP role (--role) and the exact timeout of conntrack -D -t. The CLI
// applies it next to a Filter. The zero value matches every flow.
//
// Like Filter it is a plain comparable value and Match does not allocate.
type ExtraFilter struct {
	// GRE keys, original and reply direction; only GRE flows match them.
	HasSrcKey, HasDstKey, HasReplySrcKey, HasReplyDstKey bool
	SrcKey, DstKey, ReplySrcKey, ReplyDstKey             uint16

	// The DCCP role (see ParseDCCPRole); only DCCP flows that carry their
	// protocol state match it.
	HasRole bool
	Role    uint8

	// The seconds left, compared for equality as conntrack -D -t does.
	HasTimeout bool
	Timeout    uint32
}

// Match reports whether the flow passes every criterion of the filter.
func (f *ExtraFilter) Match(fl *Flow) bool {
	if f.HasSrcKey || f.HasDstKey || f.HasReplySrcKey || f.HasReplyDstKey {
		if fl.Proto() != ProtoGRE ||
			f.HasSrcKey && fl.Orig.SrcPort != f.SrcKey ||
			f.HasDstKey && fl.Orig.DstPort != f.DstKey ||
			f.HasReplySrcKey && fl.Reply.SrcPort != f.ReplySrcKey ||
			f.HasReplyDstKey && fl.Reply.DstPort != f.ReplyDstKey {
			return false
		}
	}
	if f.HasRole && (fl.Proto() != ProtoDCCP || !fl.Has(AttrDCCP) || fl.DCCP.Role != f.Role) {
		return false
	}
	if f.HasTimeout && (!fl.Has(AttrTimeout) || fl.Timeout != f.Timeout) {
		return false
	}
	return true
}
