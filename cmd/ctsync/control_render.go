package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// renderJSON prints a JSON document for people, whatever its shape, so that
// `ctsync stats` keeps working as the daemon's statistics grow: objects as
// indented "key: value" lines (top-level objects as sections separated by
// blank lines), lists of objects as tables (or, when a table would be wider
// than the terminal, one block per element with its values in columns),
// lists of plain values on one line. Keys keep the daemon's order. Values
// are shown with units: a key ending in _seconds as a rounded duration
// (the suffix dropped), _bytes in KiB/MiB/GiB, _at as a local time with
// its age; other fractions are rounded to 3 significant digits. No line is
// wider than renderWidth unless a single word is.
func renderJSON(w io.Writer, data []byte) error {
	return renderJSONAt(w, data, time.Now())
}

// renderWidth is the widest line renderJSON writes (unless a single value
// is wider).
const renderWidth = 100

func renderJSONAt(w io.Writer, data []byte, now time.Time) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := parseJSONNode(dec, 0)
	if err != nil {
		return fmt.Errorf("bad answer from the daemon: %w", err)
	}
	var b bytes.Buffer
	r := &renderer{b: &b, now: now}
	switch {
	case root.kind == '{':
		r.object(root, 0, true)
	case root.kind == '[':
		r.list(root, 0)
	default:
		b.WriteString(r.inline("", root) + "\n")
	}
	_, err = w.Write(b.Bytes())
	return err
}

// jsonNode is a decoded JSON value that keeps the order of object keys.
type jsonNode struct {
	kind  byte // '{', '[' or 0 for a plain value
	keys  []string
	items []*jsonNode // the values of an object (by keys) or the elements of a list
	text  string      // a plain value as printed
	num   bool        // text is a JSON number
}

const maxJSONDepth = 64

func parseJSONNode(dec *json.Decoder, depth int) (*jsonNode, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &jsonNode{kind: byte(t)}
		for dec.More() {
			if n.kind == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := parseJSONNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &jsonNode{text: t}, nil
	case json.Number:
		return &jsonNode{text: t.String(), num: true}, nil
	case bool:
		return &jsonNode{text: yesNo(t)}, nil
	case nil:
		return &jsonNode{text: "-"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// flat reports whether the node prints on one line: a plain value, an
// empty object or list, or a list of plain values.
func (n *jsonNode) flat() bool {
	if n.kind == 0 || len(n.items) == 0 {
		return true
	}
	if n.kind == '{' {
		return false
	}
	for _, it := range n.items {
		if it.kind != 0 {
			return false
		}
	}
	return true
}

// inline returns the node, the value of key, on one line; nested values
// (in table cells) are written compactly.
func (r *renderer) inline(key string, n *jsonNode) string {
	switch {
	case n.kind == 0:
		return r.scalar(key, n)
	case len(n.items) == 0:
		return "-"
	case n.kind == '[':
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = r.inline(key, it)
			if it.kind != 0 {
				parts[i] = "(" + parts[i] + ")"
			}
		}
		return strings.Join(parts, ", ")
	}
	parts := make([]string, len(n.items))
	for i, it := range n.items {
		v := r.inline(n.keys[i], it)
		if it.kind != 0 {
			v = "(" + v + ")"
		}
		parts[i] = label(n.keys[i]) + "=" + v
	}
	return strings.Join(parts, " ")
}

// label is how a key is shown: a duration's without its _seconds.
func label(key string) string {
	if k, ok := strings.CutSuffix(key, "_seconds"); ok && k != "" {
		return k
	}
	return key
}

// scalar formats a plain value with the unit its key names.
func (r *renderer) scalar(key string, n *jsonNode) string {
	if n.num {
		v, err := strconv.ParseFloat(n.text, 64)
		if err != nil {
			return n.text
		}
		switch {
		case key == "seconds" || strings.HasSuffix(key, "_seconds"):
			return formatSeconds(v)
		case strings.HasSuffix(key, "_bytes"):
			return formatBytes(v)
		case strings.ContainsAny(n.text, ".eE"):
			return strconv.FormatFloat(v, 'g', 3, 64)
		}
		return n.text
	}
	if key == "at" || strings.HasSuffix(key, "_at") {
		if t, err := time.Parse(time.RFC3339Nano, n.text); err == nil {
			return formatTime(t, r.now)
		}
	}
	return n.text
}

// formatSeconds rounds a duration to what a person reads: 3 significant
// digits below a minute, whole seconds above.
func formatSeconds(v float64) string {
	switch {
	case v < 0:
		return strconv.FormatFloat(v, 'g', 3, 64) + "s"
	case v == 0:
		return "0s"
	case v < 0.001:
		return strconv.FormatFloat(v*1e6, 'g', 3, 64) + "µs"
	case v < 1:
		return strconv.FormatFloat(v*1e3, 'g', 3, 64) + "ms"
	case v < 60:
		return strconv.FormatFloat(v, 'g', 3, 64) + "s"
	}
	return time.Duration(math.Round(v) * float64(time.Second)).String()
}

// formatBytes shows a byte count in binary units, 3 significant digits.
func formatBytes(v float64) string {
	const units = "KMGTPE"
	if v < 1024 {
		return strconv.FormatFloat(v, 'f', -1, 64) + " B"
	}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + " " + units[i:i+1] + "iB"
}

// formatTime shows a point in time in the local zone, with its distance
// from now.
func formatTime(t, now time.Time) string {
	d := now.Sub(t)
	rel := " ago"
	if d < 0 {
		d, rel = -d, " from now"
	}
	return t.Local().Format("2006-01-02 15:04:05") + " (" + formatSeconds(d.Seconds()) + rel + ")"
}

type renderer struct {
	b   *bytes.Buffer
	now time.Time
}

// object prints an object's keys at the indentation; top separates
// sections with blank lines.
func (r *renderer) object(n *jsonNode, indent int, top bool) {
	pad := strings.Repeat(" ", indent)
	width := 0 // of the "key:" column of a run of flat values
	afterSection := false
	for i, k := range n.keys {
		v := n.items[i]
		if v.flat() {
			if top && afterSection {
				r.b.WriteByte('\n')
			}
			afterSection = false
			if i == 0 || !n.items[i-1].flat() {
				width = 0
				for j := i; j < len(n.items) && n.items[j].flat(); j++ {
					width = max(width, len(label(n.keys[j]))+1)
				}
			}
			r.line(fmt.Sprintf("%s%-*s ", pad, width, label(k)+":"), r.inline(k, v))
			continue
		}
		if top && r.b.Len() > 0 {
			r.b.WriteByte('\n')
		}
		afterSection = true
		fmt.Fprintf(r.b, "%s%s:\n", pad, label(k))
		if v.kind == '{' {
			r.object(v, indent+2, false)
		} else {
			r.list(v, indent+2)
		}
	}
}

// list prints a list that does not fit on one line: a table when its
// elements are objects of plain values, else one element after another.
func (r *renderer) list(n *jsonNode, indent int) {
	if n.flat() {
		r.line(strings.Repeat(" ", indent), r.inline("", n))
		return
	}
	table := true
	for _, it := range n.items {
		table = table && it.kind == '{'
	}
	if table {
		r.table(n, indent)
		return
	}
	pad := strings.Repeat(" ", indent)
	for _, it := range n.items {
		switch {
		case it.flat():
			r.line(pad+"- ", r.inline("", it))
		case it.kind == '{':
			fmt.Fprintf(r.b, "%s-\n", pad)
			r.object(it, indent+2, false)
		default:
			fmt.Fprintf(r.b, "%s-\n", pad)
			r.list(it, indent+2)
		}
	}
}

// line writes head then value, wrapping the value at spaces so that no
// line is wider than renderWidth; continuation lines are indented to the
// value's column.
func (r *renderer) line(head, value string) {
	indent := strings.Repeat(" ", utf8.RuneCountInString(head))
	cur := head
	curLen := utf8.RuneCountInString(head)
	start := true
	for _, word := range strings.Split(value, " ") {
		wl := utf8.RuneCountInString(word)
		if !start && curLen+1+wl > renderWidth {
			r.b.WriteString(cur + "\n")
			cur, curLen, start = indent, len(indent), true
		}
		if !start {
			cur += " "
			curLen++
		}
		cur += word
		curLen += wl
		start = false
	}
	r.b.WriteString(cur + "\n")
}

// table prints a list of objects with a column per key (in order of first
// appearance), headed by the key in capitals; when that is wider than
// renderWidth, one block per element instead.
func (r *renderer) table(n *jsonNode, indent int) {
	var cols []string
	seen := map[string]bool{}
	for _, it := range n.items {
		for _, k := range it.keys {
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	rows := make([][]string, 0, len(n.items)+1)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = strings.ToUpper(strings.ReplaceAll(label(c), "_", "-"))
	}
	rows = append(rows, head)
	widths := make([]int, len(cols))
	for _, it := range n.items {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = "-"
			for j, k := range it.keys {
				if k == c {
					row[i] = r.inline(k, it.items[j])
				}
			}
		}
		rows = append(rows, row)
	}
	total := indent
	for i := range cols {
		for _, row := range rows {
			widths[i] = max(widths[i], utf8.RuneCountInString(row[i]))
		}
		total += widths[i] + 2
	}
	if total-2 > renderWidth {
		r.blocks(n, indent)
		return
	}
	pad := strings.Repeat(" ", indent)
	tw := tabwriter.NewWriter(r.b, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s%s\n", pad, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// blocks prints a list of objects too wide for a table: each element under
// its first value (a peer's or origin's name), its plain values as
// "key: value" cells in as many aligned columns as renderWidth allows,
// long ones and nested ones on lines of their own.
func (r *renderer) blocks(n *jsonNode, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, it := range n.items {
		keys, items := it.keys, it.items
		if len(keys) > 0 && items[0].kind == 0 {
			name := r.inline(keys[0], items[0])
			if keys[0] != "name" {
				name = label(keys[0]) + " " + name
			}
			fmt.Fprintf(r.b, "%s%s:\n", pad, name)
			keys, items = keys[1:], items[1:]
		} else {
			fmt.Fprintf(r.b, "%s-\n", pad)
		}
		inner := indent + 2
		avail := renderWidth - inner
		var cells []string
		var long []int // indexes of values on lines of their own
		for i, k := range keys {
			if !items[i].flat() {
				long = append(long, i)
				continue
			}
			c := label(k) + ": " + r.inline(k, items[i])
			if utf8.RuneCountInString(c) > avail/2 {
				long = append(long, i)
				continue
			}
			cells = append(cells, c)
		}
		cw := 0
		for _, c := range cells {
			cw = max(cw, utf8.RuneCountInString(c)+3)
		}
		ncol := max(1, (avail+3)/max(cw, 1))
		ipad := strings.Repeat(" ", inner)
		for i := 0; i < len(cells); i += ncol {
			row := cells[i:min(i+ncol, len(cells))]
			var b strings.Builder
			for j, c := range row {
				if j < len(row)-1 {
					fmt.Fprintf(&b, "%-*s", cw, c)
				} else {
					b.WriteString(c)
				}
			}
			r.b.WriteString(ipad + strings.TrimRight(b.String(), " ") + "\n")
		}
		for _, i := range long {
			v := items[i]
			if v.flat() {
				r.line(ipad+label(keys[i])+": ", r.inline(keys[i], v))
				continue
			}
			fmt.Fprintf(r.b, "%s%s:\n", ipad, label(keys[i]))
			if v.kind == '{' {
				r.object(v, inner+2, false)
			} else {
				r.list(v, inner+2)
			}
		}
	}
}
