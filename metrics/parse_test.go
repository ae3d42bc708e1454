package metrics

import (
	"fmt"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parsedFamily is one family of a text exposition as the reference
// parser reads it.
type parsedFamily struct {
	name, help, typ string // typ: counter, gauge, histogram, summary, untyped
	fam             *dto.MetricFamily
}

// parseExposition reads the text format with the Prometheus reference
// parser (which refuses a family's HELP or TYPE given twice, bad names,
// escapes and values), and checks what this package promises on top: a
// HELP and a TYPE for every family, counters ending in _total and gauges
// not, no negative counter, no duplicate series. Families come sorted by
// name.
func parseExposition(text string) ([]parsedFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	var out []parsedFamily
	for name, f := range fams {
		pf := parsedFamily{name: name, help: f.GetHelp(), typ: strings.ToLower(f.GetType().String()), fam: f}
		if f.Help == nil || f.Type == nil || !strings.Contains(text, "# TYPE "+name+" ") {
			return nil, fmt.Errorf("%s: no HELP or TYPE line", name)
		}
		switch {
		case pf.typ == "counter" && !strings.HasSuffix(name, "_total"):
			return nil, fmt.Errorf("counter %s does not end in _total", name)
		case pf.typ == "gauge" && strings.HasSuffix(name, "_total"):
			return nil, fmt.Errorf("gauge %s ends in _total", name)
		}
		seen := map[string]bool{}
		for _, m := range f.Metric {
			var key strings.Builder
			for _, l := range m.Label {
				fmt.Fprintf(&key, "%s\x00%s\x00", l.GetName(), l.GetValue())
			}
			if seen[key.String()] {
				return nil, fmt.Errorf("%s: duplicate series %q", name, key.String())
			}
			seen[key.String()] = true
			if m.Counter != nil && m.Counter.GetValue() < 0 {
				return nil, fmt.Errorf("%s: negative counter", name)
			}
		}
		out = append(out, pf)
	}
	slices.SortFunc(out, func(a, b parsedFamily) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// sample returns the value of the series of family name with exactly the
// labels given (name, value pairs): a counter's, gauge's or untyped
// value, or a histogram's or summary's count.
func sample(fams []parsedFamily, name string, labels ...string) (float64, bool) {
	for _, f := range fams {
		if f.name != name {
			continue
		}
	next:
		for _, m := range f.fam.Metric {
			if len(m.Label)*2 != len(labels) {
				continue
			}
			for i, l := range m.Label {
				if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			case m.Summary != nil:
				return float64(m.Summary.GetSampleCount()), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
	}
	return 0, false
}
