package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// renderJSON prints a JSON document for people, whatever its shape, so that
// `ctsync stats` keeps working as the daemon's statistics grow: objects as
// indented "key: value" lines (top-level objects as sections separated by
// blank lines), lists of objects as tables, lists of plain values on one
// line. Keys keep the daemon's order.
func renderJSON(w io.Writer, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := parseJSONNode(dec, 0)
	if err != nil {
		return fmt.Errorf("bad answer from the daemon: %w", err)
	}
	var b bytes.Buffer
	r := &renderer{b: &b}
	switch {
	case root.kind == '{':
		r.object(root, 0, true)
	case root.kind == '[':
		r.list(root, 0)
	default:
		b.WriteString(root.inline() + "\n")
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
		return &jsonNode{text: t.String()}, nil
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

// inline returns the node on one line; nested values (in table cells) are
// written compactly.
func (n *jsonNode) inline() string {
	switch {
	case n.kind == 0:
		return n.text
	case len(n.items) == 0:
		return "-"
	case n.kind == '[':
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = it.inline()
			if it.kind != 0 {
				parts[i] = "(" + parts[i] + ")"
			}
		}
		return strings.Join(parts, ", ")
	}
	parts := make([]string, len(n.items))
	for i, it := range n.items {
		v := it.inline()
		if it.kind != 0 {
			v = "(" + v + ")"
		}
		parts[i] = n.keys[i] + "=" + v
	}
	return strings.Join(parts, " ")
}

type renderer struct {
	b *bytes.Buffer
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
					width = max(width, len(n.keys[j])+1)
				}
			}
			fmt.Fprintf(r.b, "%s%-*s %s\n", pad, width, k+":", v.inline())
			continue
		}
		if top && r.b.Len() > 0 {
			r.b.WriteByte('\n')
		}
		afterSection = true
		fmt.Fprintf(r.b, "%s%s:\n", pad, k)
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
		fmt.Fprintf(r.b, "%s%s\n", strings.Repeat(" ", indent), n.inline())
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
			fmt.Fprintf(r.b, "%s- %s\n", pad, it.inline())
		case it.kind == '{':
			fmt.Fprintf(r.b, "%s-\n", pad)
			r.object(it, indent+2, false)
		default:
			fmt.Fprintf(r.b, "%s-\n", pad)
			r.list(it, indent+2)
		}
	}
}

// table prints a list of objects with a column per key (in order of first
// appearance), headed by the key in capitals.
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
	pad := strings.Repeat(" ", indent)
	tw := tabwriter.NewWriter(r.b, 0, 0, 2, ' ', 0)
	cells := make([]string, len(cols))
	for i, c := range cols {
		cells[i] = strings.ToUpper(strings.ReplaceAll(c, "_", "-"))
	}
	fmt.Fprintf(tw, "%s%s\n", pad, strings.Join(cells, "\t"))
	for _, it := range n.items {
		for i, c := range cols {
			cells[i] = "-"
			for j, k := range it.keys {
				if k == c {
					cells[i] = it.items[j].inline()
				}
			}
		}
		fmt.Fprintf(tw, "%s%s\n", pad, strings.Join(cells, "\t"))
	}
	tw.Flush()
}
