package metrics

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardQueries returns every PromQL query of a Grafana dashboard: the
// "expr" of panel targets and annotations, and the "query" of template
// variables (a string, or an object holding one).
func dashboardQueries(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			switch s := e.(type) {
			case string:
				if k == "expr" || (k == "query" && strings.Contains(s, "(")) {
					out = append(out, s)
				}
			default:
				out = append(out, dashboardQueries(e)...)
			}
		}
	case []any:
		for _, e := range v {
			out = append(out, dashboardQueries(e)...)
		}
	}
	return out
}

var (
	promStrings    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers   = regexp.MustCompile(`\{[^}]*\}`)
	promRanges     = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariables  = regexp.MustCompile(`\$\{?\w+\}?`)
	promNumbers    = regexp.MustCompile(`(^|[^a-zA-Z0-9_:])[0-9][0-9.]*(?:[eE][+-]?[0-9]+)?`)
	promLabelVals  = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)[^)]*\)`)
	promIdentifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promKeywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "e"}
)

// metricNames returns the metric names a PromQL query reads: identifiers
// that are not functions (followed by a parenthesis), keywords, label
// names (inside braces or a grouping), strings, ranges or variables.
func metricNames(q string) []string {
	var names []string
	for _, m := range promLabelVals.FindAllStringSubmatch(q, -1) {
		names = append(names, m[1])
	}
	q = promLabelVals.ReplaceAllString(q, " ")
	for _, re := range []*regexp.Regexp{promStrings, promMatchers, promRanges, promGrouping, promVariables} {
		q = re.ReplaceAllString(q, " ")
	}
	q = promNumbers.ReplaceAllString(q, "$1 ")
	for _, id := range promIdentifier.FindAllString(q, -1) {
		id = strings.TrimSpace(id)
		if strings.HasSuffix(id, "(") || slices.Contains(promKeywords, strings.ToLower(id)) {
			continue
		}
		names = append(names, id)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	tests := map[string][]string{
		`ctsync_ready{instance=~"$instance"}`: {"ctsync_ready"},
		`histogram_quantile(0.99, sum by (instance, le) (rate(ctsync_commit_duration_seconds_bucket{a="b"}[$__rate_interval])))`: {"ctsync_commit_duration_seconds_bucket"},
		`time() - ctsync_x_timestamp_seconds{p="q"} > 300 and on (peer) ctsync_y`:                                                {"ctsync_x_timestamp_seconds", "ctsync_y"},
		`label_values(ctsync_node_info{job=~"$job"}, instance)`:                                                                  {"ctsync_node_info"},
		`process_resident_memory_bytes / 1e9`:                                                                                    {"process_resident_memory_bytes"},
	}
	for q, want := range tests {
		if got := metricNames(q); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %q, want %q", q, got, want)
		}
	}
}

// TestDashboardQueriesExist: every metric the Grafana dashboard in
// contrib/ queries is served by /metrics for a full statistics value
// (a ctsync_ family, a histogram's _bucket, _sum or _count, or one of the
// client library's process and Go metrics), and the dashboard covers
// what an operator watches.
func TestDashboardQueriesExist(t *testing.T) {
	data, err := os.ReadFile("../contrib/grafana/ctsync.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("contrib/grafana/ctsync.json: %v", err)
	}
	queries := dashboardQueries(dash)
	if len(queries) < 10 {
		t.Fatalf("only %d queries found in the dashboard", len(queries))
	}

	rec := httptest.NewRecorder()
	Handler(staticSource(fullStats()), nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	served := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, _, _ := strings.Cut(l, "{")
		name, _, _ = strings.Cut(name, " ")
		served[name] = true
	}
	if !served["ctsync_ready"] || !served["process_cpu_seconds_total"] {
		t.Fatalf("the full scrape lacks basic metrics:\n%s", body)
	}

	used := map[string]bool{}
	for _, q := range queries {
		names := metricNames(q)
		if len(names) == 0 {
			t.Errorf("query %q reads no metric", q)
		}
		for _, n := range names {
			used[n] = true
			if !served[n] {
				t.Errorf("the dashboard queries %s (in %q), which /metrics does not serve", n, q)
			}
		}
	}
	for _, want := range []string{
		"ctsync_sync_peer_pending",         // replication lag
		"ctsync_external_flows",            // cache sizes per origin
		"ctsync_commit_flows_failed_total", // commit results
		"ctsync_gate_dropped_packets",      // gate drops
		"ctsync_sync_peer_in_sync",         // peer state
		"ctsync_takeover_duration_seconds_bucket",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}
