package metrics

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric types.
const (
	counter = "counter"
	gauge   = "gauge"
)

// family is one metric: its HELP, TYPE and series.
type family struct {
	name, help, typ string
	series          []series
}

// series is one sample: its rendered label set ("" or `{k="v",...}`) and
// its rendered value.
type series struct {
	labels, value string
}

// builder collects families; the first mistake (a bad name, a family
// declared twice with another type or help, a duplicate series) is kept in
// err and makes render fail: output that a scraper would reject is never
// served.
type builder struct {
	fams map[string]*family
	err  error
}

func newBuilder() *builder { return &builder{fams: make(map[string]*family)} }

func (b *builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}

// add records one series of the family name; labels are name, value pairs.
func (b *builder) add(typ, name, help, value string, labels ...string) {
	if !validMetricName(name) {
		b.fail("invalid metric name %q", name)
		return
	}
	if typ == counter && !strings.HasSuffix(name, "_total") {
		b.fail("counter %s: name must end in _total", name)
		return
	}
	f := b.fams[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ}
		b.fams[name] = f
	} else if f.typ != typ || f.help != help {
		b.fail("metric %s declared twice with a different type or help", name)
		return
	}
	ls, err := renderLabels(labels)
	if err != nil {
		b.fail("metric %s: %v", name, err)
		return
	}
	for _, s := range f.series {
		if s.labels == ls {
			b.fail("duplicate series %s%s", name, ls)
			return
		}
	}
	f.series = append(f.series, series{labels: ls, value: value})
}

func (b *builder) counter(name, help string, v uint64, labels ...string) {
	b.add(counter, name, help, strconv.FormatUint(v, 10), labels...)
}

func (b *builder) gauge(name, help string, v float64, labels ...string) {
	b.add(gauge, name, help, formatFloat(v), labels...)
}

func (b *builder) gaugeUint(name, help string, v uint64, labels ...string) {
	b.add(gauge, name, help, strconv.FormatUint(v, 10), labels...)
}

func (b *builder) gaugeInt(name, help string, v int64, labels ...string) {
	b.add(gauge, name, help, strconv.FormatInt(v, 10), labels...)
}

func (b *builder) gaugeBool(name, help string, v bool, labels ...string) {
	b.add(gauge, name, help, boolValue(v), labels...)
}

// render writes the families, sorted by name, their series sorted by
// labels.
func (b *builder) render() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	names := make([]string, 0, len(b.fams))
	for n := range b.fams {
		names = append(names, n)
	}
	slices.Sort(names)
	var out bytes.Buffer
	for _, n := range names {
		f := b.fams[n]
		out.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		out.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		slices.SortFunc(f.series, func(a, b series) int { return strings.Compare(a.labels, b.labels) })
		for _, s := range f.series {
			out.WriteString(f.name + s.labels + " " + s.value + "\n")
		}
	}
	return out.Bytes(), nil
}

func renderLabels(pairs []string) (string, error) {
	if len(pairs) == 0 {
		return "", nil
	}
	if len(pairs)%2 != 0 {
		return "", fmt.Errorf("odd label list %q", pairs)
	}
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 0; i < len(pairs); i += 2 {
		name := pairs[i]
		if !validLabelName(name) {
			return "", fmt.Errorf("invalid label name %q", name)
		}
		for j := 0; j < i; j += 2 {
			if pairs[j] == name {
				return "", fmt.Errorf("label %q given twice", name)
			}
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(name + `="` + escapeLabelValue(pairs[i+1]) + `"`)
	}
	sb.WriteByte('}')
	return sb.String(), nil
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string { return helpEscaper.Replace(s) }

// escapeLabelValue escapes a label value: backslash, double quote and line
// feed.
func escapeLabelValue(s string) string { return labelEscaper.Replace(s) }

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool { return validName(s, true) }

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does
// not start with the reserved "__".
func validLabelName(s string) bool { return validName(s, false) && !strings.HasPrefix(s, "__") }

func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (colon && c == ':') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func boolValue(v bool) string {
	if v {
		return "1"
	}
	return "0"
}
