package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryMetric keeps README.md's "Metrics" table and
// the code in step: every family of a full render has a row with its type,
// and every row is a family.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Metrics\n")
	if !ok {
		t.Fatal(`README.md has no "## Metrics" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{} // name → type
	re := regexp.MustCompile("(?m)^\\| `(ctsync_[a-z_]+)` \\| (counter|gauge|histogram) \\|")
	for _, m := range re.FindAllStringSubmatch(section, -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README.md lists %s twice", m[1])
		}
		rows[m[1]] = m[2]
	}
	out, err := Render(fullStats())
	if err != nil {
		t.Fatal(err)
	}
	fams, err := parseExposition(string(out))
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]bool{}
	for _, f := range fams {
		code[f.name] = true
		typ, ok := rows[f.name]
		switch {
		case !ok:
			t.Errorf("%s is not documented in README.md's Metrics table", f.name)
		case typ != f.typ:
			t.Errorf("README.md says %s is a %s; it is a %s", f.name, typ, f.typ)
		}
	}
	for name := range rows {
		if !code[name] {
			t.Errorf("README.md documents %s, which is not rendered", name)
		}
	}
}
