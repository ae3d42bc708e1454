package metrics

import (
	"math"
	"strings"
	"testing"
)

func TestEscapeLabelValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"fw-a", "fw-a"},
		{`a\b`, `a\\b`},
		{`say "hi"`, `say \"hi\"`},
		{"two\nlines", `two\nlines`},
		{"\\\"\n", `\\\"\n`},
		{`\n`, `\\n`}, // a backslash and an n, not a line feed
		{"tab\tand ünïcode", "tab\tand ünïcode"},
	}
	for _, tt := range tests {
		got := escapeLabelValue(tt.in)
		if got != tt.want {
			t.Errorf("escapeLabelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := unescape(got, true)
		if err != nil || back != tt.in {
			t.Errorf("unescape(%q) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
}

func TestEscapeHelp(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`back\slash`, `back\\slash`},
		{"line\nfeed", `line\nfeed`},
		{`"quotes" stay`, `"quotes" stay`},
	}
	for _, tt := range tests {
		if got := escapeHelp(tt.in); got != tt.want {
			t.Errorf("escapeHelp(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"a", "_", ":", "ctsync_up", "a:b_c9", "A1"} {
		if !validMetricName(ok) {
			t.Errorf("validMetricName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "9a", "a-b", "a b", "é", "a.b", "a{"} {
		if validMetricName(bad) {
			t.Errorf("validMetricName(%q) = true", bad)
		}
	}
	for _, ok := range []string{"a", "_a", "peer", "L9"} {
		if !validLabelName(ok) {
			t.Errorf("validLabelName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "a:b", "__name__", "9", "a-b"} {
		if validLabelName(bad) {
			t.Errorf("validLabelName(%q) = true", bad)
		}
	}
}

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {1, "1"}, {-1, "-1"}, {0.25, "0.25"}, {1e-9, "1e-09"}, {123456789, "1.23456789e+08"},
		{math.NaN(), "NaN"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := formatFloat(tt.in); got != tt.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRenderSortedAndEscaped(t *testing.T) {
	b := newBuilder()
	b.gauge("z_last", "Last.", 1)
	b.counter("a_first_total", "First\\second\nline.", 7, "l", "b")
	b.counter("a_first_total", "First\\second\nline.", 18446744073709551615, "l", "a\"q\\\n")
	b.gaugeBool("m_mid", "Mid.", true, "x", "1", "y", "2")
	out, err := b.render()
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_first_total First\\second\nline.
# TYPE a_first_total counter
a_first_total{l="a\"q\\\n"} 18446744073709551615
a_first_total{l="b"} 7
# HELP m_mid Mid.
# TYPE m_mid gauge
m_mid{x="1",y="2"} 1
# HELP z_last Last.
# TYPE z_last gauge
z_last 1
`
	if string(out) != want {
		t.Errorf("render:\n%s\nwant:\n%s", out, want)
	}
	p, err := parseExposition(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.families[0].samples[0].labels[0][1]; got != "a\"q\\\n" {
		t.Errorf("label value round trip: %q", got)
	}
	if got := p.families[0].help; got != "First\\second\nline." {
		t.Errorf("help round trip: %q", got)
	}
}

func TestBuilderRefusesMistakes(t *testing.T) {
	tests := []struct {
		name string
		add  func(b *builder)
		want string
	}{
		{"bad metric name", func(b *builder) { b.gauge("ctsync-up", "h", 1) }, "invalid metric name"},
		{"bad label name", func(b *builder) { b.gauge("g", "h", 1, "a-b", "v") }, "invalid label name"},
		{"reserved label name", func(b *builder) { b.gauge("g", "h", 1, "__name__", "v") }, "invalid label name"},
		{"odd labels", func(b *builder) { b.gauge("g", "h", 1, "a") }, "odd label list"},
		{"label twice", func(b *builder) { b.gauge("g", "h", 1, "a", "1", "a", "2") }, "given twice"},
		{"counter name", func(b *builder) { b.counter("c", "h", 1) }, "must end in _total"},
		{"type clash", func(b *builder) { b.gauge("x_total", "h", 1); b.counter("x_total", "h", 1) }, "declared twice"},
		{"help clash", func(b *builder) { b.gauge("g", "h", 1, "a", "1"); b.gauge("g", "other", 1, "a", "2") }, "declared twice"},
		{"duplicate series", func(b *builder) { b.gauge("g", "h", 1, "a", "1"); b.gauge("g", "h", 2, "a", "1") }, "duplicate series"},
		{"duplicate unlabelled", func(b *builder) { b.gauge("g", "h", 1); b.gauge("g", "h", 2) }, "duplicate series"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			tt.add(b)
			out, err := b.render()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("render = %q, %v; want an error containing %q", out, err, tt.want)
			}
		})
	}
}

// TestParserRejects makes sure the strict parser the other tests rely on
// does reject what it claims to.
func TestParserRejects(t *testing.T) {
	const ok = "# HELP g h\n# TYPE g gauge\ng 1\n"
	if _, err := parseExposition(ok); err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
	bad := map[string]string{
		"no final newline":  strings.TrimSuffix(ok, "\n"),
		"blank line":        ok + "\n",
		"no TYPE":           "# HELP g h\ng 1\n",
		"TYPE first":        "# TYPE g gauge\n# HELP g h\ng 1\n",
		"other comment":     "# hello\n" + ok,
		"no sample":         "# HELP g h\n# TYPE g gauge\n",
		"family twice":      ok + ok,
		"foreign sample":    "# HELP g h\n# TYPE g gauge\nh 1\n",
		"duplicate series":  "# HELP g h\n# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n",
		"timestamp":         "# HELP g h\n# TYPE g gauge\ng 1 1700000000\n",
		"bad value":         "# HELP g h\n# TYPE g gauge\ng one\n",
		"hex value":         "# HELP g h\n# TYPE g gauge\ng 0x10\n",
		"bad escape":        "# HELP g h\n# TYPE g gauge\ng{a=\"\\t\"} 1\n",
		"unterminated":      "# HELP g h\n# TYPE g gauge\ng{a=\"x} 1\n",
		"label twice":       "# HELP g h\n# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n",
		"empty labels":      "# HELP g h\n# TYPE g gauge\ng{} 1\n",
		"counter no _total": "# HELP c h\n# TYPE c counter\nc 1\n",
		"gauge _total":      "# HELP g_total h\n# TYPE g_total gauge\ng_total 1\n",
		"negative counter":  "# HELP c_total h\n# TYPE c_total counter\nc_total -1\n",
		"summary":           "# HELP s h\n# TYPE s summary\ns 1\n",
		"bad name":          "# HELP 1g h\n# TYPE 1g gauge\n1g 1\n",
		"trailing space":    "# HELP g h\n# TYPE g gauge\ng 1 \n",
	}
	for name, in := range bad {
		if _, err := parseExposition(in); err == nil {
			t.Errorf("%s: accepted %q", name, in)
		}
	}
}
