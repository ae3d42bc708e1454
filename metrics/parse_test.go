package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parsed is a text exposition as a strict parser reads it.
type parsed struct {
	families []parsedFamily
}

type parsedFamily struct {
	name, help, typ string
	samples         []parsedSample
}

type parsedSample struct {
	labels [][2]string // name, unescaped value, in order
	value  float64
}

// parseExposition reads the text format (0.0.4) strictly, as far as this
// package writes it: every family is "# HELP", then "# TYPE" (counter or
// gauge), then at least one sample of exactly that name, and nothing else.
// It rejects other comments, blank lines, timestamps, bad names and
// escapes, duplicate label names, duplicate series, families seen twice,
// counters not ending in _total (or gauges that do) and negative counters.
func parseExposition(text string) (*parsed, error) {
	if text == "" {
		return &parsed{}, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("output does not end with a line feed")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	p := &parsed{}
	seenFamily := map[string]bool{}
	seenSeries := map[string]bool{}
	var cur *parsedFamily
	for i := 0; i < len(lines); i++ {
		ln := i + 1
		line := lines[i]
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", ln, line, fmt.Sprintf(format, args...))
		}
		if line == "" {
			return nil, fail("blank line")
		}
		if line != strings.TrimSpace(line) {
			return nil, fail("leading or trailing white space")
		}
		if strings.HasPrefix(line, "#") {
			rest, ok := strings.CutPrefix(line, "# HELP ")
			if !ok {
				return nil, fail("a comment other than HELP where a family starts, or TYPE without HELP")
			}
			name, help, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, fail("HELP without text")
			}
			if !validMetricName(name) {
				return nil, fail("bad metric name")
			}
			if seenFamily[name] {
				return nil, fail("family %s seen twice", name)
			}
			seenFamily[name] = true
			h, err := unescape(help, false)
			if err != nil {
				return nil, fail("%v", err)
			}
			if cur != nil && len(cur.samples) == 0 {
				return nil, fail("family %s has no sample", cur.name)
			}
			i++
			if i == len(lines) {
				return nil, fail("HELP without TYPE")
			}
			ln, line = i+1, lines[i]
			typ, ok := strings.CutPrefix(line, "# TYPE "+name+" ")
			if !ok {
				return nil, fail("want the TYPE of %s", name)
			}
			switch typ {
			case counter:
				if !strings.HasSuffix(name, "_total") {
					return nil, fail("counter not ending in _total")
				}
			case gauge:
				if strings.HasSuffix(name, "_total") {
					return nil, fail("gauge ending in _total")
				}
			default:
				return nil, fail("type %q (want counter or gauge)", typ)
			}
			p.families = append(p.families, parsedFamily{name: name, help: h, typ: typ})
			cur = &p.families[len(p.families)-1]
			continue
		}
		if cur == nil {
			return nil, fail("sample before any HELP and TYPE")
		}
		s, name, key, err := parseSample(line)
		if err != nil {
			return nil, fail("%v", err)
		}
		if name != cur.name {
			return nil, fail("sample of %s inside family %s", name, cur.name)
		}
		if seenSeries[key] {
			return nil, fail("duplicate series")
		}
		seenSeries[key] = true
		if cur.typ == counter && (s.value < 0 || math.IsNaN(s.value)) {
			return nil, fail("counter value %v", s.value)
		}
		cur.samples = append(cur.samples, s)
	}
	if cur != nil && len(cur.samples) == 0 {
		return nil, fmt.Errorf("family %s has no sample", cur.name)
	}
	return p, nil
}

// parseSample reads `name{l="v",...} value`; key identifies the series.
func parseSample(line string) (s parsedSample, name, key string, err error) {
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	name = line[:i]
	if !validMetricName(name) {
		return s, "", "", fmt.Errorf("bad metric name %q", name)
	}
	rest := line[i:]
	seenLabel := map[string]bool{}
	var canon strings.Builder
	canon.WriteString(name)
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				if len(s.labels) == 0 {
					return s, "", "", fmt.Errorf("empty label set")
				}
				rest = rest[1:]
				break
			}
			if len(s.labels) > 0 {
				if !strings.HasPrefix(rest, ",") {
					return s, "", "", fmt.Errorf("want , or } between labels")
				}
				rest = rest[1:]
			}
			ln, after, ok := strings.Cut(rest, `="`)
			if !ok || !validLabelName(ln) {
				return s, "", "", fmt.Errorf("bad label name %q", ln)
			}
			if seenLabel[ln] {
				return s, "", "", fmt.Errorf("label %s twice", ln)
			}
			seenLabel[ln] = true
			// The value runs to the first unescaped quote.
			j, esc := 0, false
			for ; j < len(after); j++ {
				if esc {
					esc = false
					continue
				}
				if after[j] == '\\' {
					esc = true
				} else if after[j] == '"' {
					break
				}
			}
			if j == len(after) {
				return s, "", "", fmt.Errorf("unterminated label value")
			}
			v, err := unescape(after[:j], true)
			if err != nil {
				return s, "", "", err
			}
			s.labels = append(s.labels, [2]string{ln, v})
			fmt.Fprintf(&canon, "\x00%s\x00%s", ln, v)
			rest = after[j+1:]
		}
	}
	val, ok := strings.CutPrefix(rest, " ")
	if !ok {
		return s, "", "", fmt.Errorf("want one space before the value")
	}
	if strings.Contains(val, " ") {
		return s, "", "", fmt.Errorf("a timestamp or trailing text after the value")
	}
	switch val {
	case "NaN", "+Inf", "-Inf":
	default:
		// Plain decimal or exponent notation only (Go's ParseFloat would
		// also take hex, underscores and "inf").
		if strings.ContainsAny(val, "xXpP_iInN") {
			return s, "", "", fmt.Errorf("value %q", val)
		}
	}
	s.value, err = strconv.ParseFloat(val, 64)
	if err != nil {
		return s, "", "", fmt.Errorf("value %q: %v", val, err)
	}
	return s, name, canon.String(), nil
}

// unescape undoes the format's escapes: \\ and \n, and \" in label values.
// A lone backslash, another escape, a raw line feed, or (in a label value)
// a raw quote is an error.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			return "", fmt.Errorf("raw line feed")
		case c == '"' && label:
			return "", fmt.Errorf("raw quote in a label value")
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("lone backslash at the end of %q", s)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !label {
				return "", fmt.Errorf(`\" in HELP text`)
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b.String(), nil
}
