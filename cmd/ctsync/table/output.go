package table

import (
	"fmt"
	"strings"
	"time"

	"github.com/ctsync/ctsync/flow"
)

// outputFormat is a parsed -o: conntrack(8)'s line (with -o extended and
// -o id), -o save lines that table load (and conntrack -R) read back, or
// one JSON object per line.
type outputFormat struct {
	text      flow.TextOptions
	save      bool
	json      bool
	timestamp bool // events: "[SECONDS.MICROSECONDS]\t" first, as conntrack -E -o timestamp
}

// parseOutput parses -o's comma-separated list for command c.
func parseOutput(s string, c ctCmd) (outputFormat, error) {
	var o outputFormat
	var other []string
	for _, part := range strings.Split(s, ",") {
		switch part = strings.ToLower(strings.TrimSpace(part)); part {
		case "text":
		case "extended":
			o.text.Extended = true
			other = append(other, part)
		case "id":
			o.text.ID = true
			other = append(other, part)
		case "save":
			o.save = true
		case "json":
			o.json = true
		case "timestamp":
			if c != ctEvents {
				return o, fmt.Errorf("-o timestamp applies to table events only")
			}
			o.timestamp = true
			other = append(other, part)
		case "xml", "ktimestamp", "labels", "userspace":
			return o, fmt.Errorf("-o %s is not supported (want text, extended, id, save or json)", part)
		default:
			return o, fmt.Errorf("-o %q: unknown output format %q (want text, extended, id, save or json)", s, part)
		}
	}
	switch {
	case o.save && o.json:
		return o, fmt.Errorf("-o save and -o json cannot be combined")
	case o.save && len(other) > 0:
		return o, fmt.Errorf("-o save cannot be combined with -o %s: use -o save only", other[0])
	case o.json && len(other) > 0:
		return o, fmt.Errorf("-o json cannot be combined with -o %s: use -o json only", other[0])
	}
	return o, nil
}

// appendLine appends f as one output line without the newline. op is the
// command letter of a save line ('A' for what is listed, 'D' for what was
// deleted, ...); ev tags event lines. It appends nothing for a flow that
// has no line in the format (a save line needs addresses).
func (o *outputFormat) appendLine(b []byte, f *flow.Flow, op byte, ev flow.EventType) []byte {
	switch {
	case o.save:
		return f.AppendSave(b, op)
	case o.json:
		return f.AppendJSON(b, "")
	}
	if o.timestamp {
		now := time.Now()
		b = fmt.Appendf(b, "[%08d.%06d]\t", now.Unix(), now.Nanosecond()/1000)
	}
	t := o.text
	t.Event = ev
	return f.AppendText(b, t)
}
