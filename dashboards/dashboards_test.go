package dashboards_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leadthrough/leadthrough/dashboards"
	"github.com/leadthrough/leadthrough/internal/exported"
)

// exportedMetrics are the metric families leadthrough's collectors describe: a dashboard query naming anything else
// would show "No data" forever.
var exportedMetrics = func() []exported.Metric {
	ms, err := exported.Metrics()
	if err != nil {
		panic(err)
	}
	return ms
}()

func TestCommittedJSONIsUpToDate(t *testing.T) {
	for _, f := range dashboards.Files {
		t.Run(f.Name, func(t *testing.T) {
			want, err := dashboards.Render(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(f.Name)
			if err != nil {
				t.Fatalf("%v (run `go generate ./dashboards` and commit the result)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("dashboards/%s is stale: run `go generate ./dashboards` (or `make dashboards`) and commit it\n%s",
					f.Name, firstDifference(got, want))
			}
		})
	}
}

func TestDashboardQueriesUseOnlyExportedMetrics(t *testing.T) {
	for _, f := range dashboards.Files {
		t.Run(f.Name, func(t *testing.T) {
			qs := promQueries(t, render(t, f))
			if len(qs) == 0 {
				t.Fatal("found no PromQL queries: the test no longer understands the dashboard JSON")
			}
			for _, q := range qs {
				names, err := metricNames(q.expr)
				if err != nil {
					t.Errorf("%s: %v", q.where, err)
					continue
				}
				if len(names) == 0 {
					t.Errorf("%s: %q names no metric", q.where, q.expr)
				}
				for _, n := range names {
					if !isExported(n) {
						t.Errorf("%s: %q uses %s, which leadthrough does not export", q.where, q.expr, n)
					}
				}
			}
		})
	}
}

func TestDashboardUsesItsDataSourceVariables(t *testing.T) {
	for _, f := range dashboards.Files {
		t.Run(f.Name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(render(t, f), &d); err != nil {
				t.Fatal(err)
			}
			walkPanels(d, func(where string, p map[string]any) {
				if p["type"] == "row" {
					return
				}
				uid, _ := dig(p, "datasource", "uid").(string)
				if uid != "${datasource}" && uid != "${clickhouse}" {
					t.Errorf("%s: data source uid %q, want a data source variable", where, uid)
				}
				targets, _ := p["targets"].([]any)
				for _, tg := range targets {
					if tuid := dig(tg, "datasource", "uid"); tuid != uid {
						t.Errorf("%s: query data source %v differs from the panel's %q", where, tuid, uid)
					}
				}
			})
		})
	}
}

// TestWindowSecondsVariable checks the hidden variable the ClickHouse panels filter by: its regex must pick the
// value out of what Grafana's Prometheus data source lists for an instant vector ("<name>{<labels>} <value>
// <timestamp in ms>", the timestamp being seconds times 1000 in floating point).
func TestWindowSecondsVariable(t *testing.T) {
	var d map[string]any
	if err := json.Unmarshal(render(t, dashboards.Files[0]), &d); err != nil {
		t.Fatal(err)
	}
	var v any
	vars, _ := dig(d, "templating", "list").([]any)
	for _, x := range vars {
		if dig(x, "name") == "window_seconds" {
			v = x
		}
	}
	if v == nil {
		t.Fatal("no variable window_seconds")
	}
	if q := dig(v, "query"); q != "query_result(max(leadthrough_indicators_window_seconds))" {
		t.Errorf("query %q", q)
	}
	if h := dig(v, "hide"); h != 2.0 {
		t.Errorf("hide %v, want 2 (hidden)", h)
	}
	js, _ := dig(v, "regex").(string)
	if len(js) < 2 || js[0] != '/' || js[len(js)-1] != '/' {
		t.Fatalf("regex %q is not /…/", js)
	}
	re := regexp.MustCompile(js[1 : len(js)-1]) // the same syntax in RE2 and JavaScript for this pattern
	for text, want := range map[string]string{
		"{} 2592000 1767225600000":          "2592000",
		"{} 604800 1767225600123.0002":      "604800",
		"{} 3600 1.7672256e+12":             "3600",
		`{job="leadthrough"} 60 1767225600`: "", // not max(): labels would make it several values
	} {
		got := ""
		if m := re.FindStringSubmatch(text); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("regex %s on %q gives %q, want %q", js, text, got, want)
		}
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`leadthrough_manager_takeover_ratio{manager_name=~"$manager"}`, []string{"leadthrough_manager_takeover_ratio"}},
		{`histogram_quantile(0.95, sum by (le) (rate(x_bucket[$__rate_interval])))`, []string{"x_bucket"}},
		{`sum by (topic, reason) (rate(a_total{topic="by"}[5m] offset 1h))`, []string{"a_total"}},
		{`time() - max(b > 0)`, []string{"b"}},
		{`c / on (manager_id) group_left (manager_name) d * 1e3`, []string{"c", "d"}},
		{`sum without (instance) (e) and ignoring (job) f unless g or h`, []string{"e", "f", "g", "h"}},
		{`{__name__="i"}`, nil},
		{`increase(j[$__range])`, []string{"j"}},
	}
	for _, tt := range tests {
		got, err := metricNames(tt.expr)
		if err != nil {
			t.Errorf("metricNames(%q): %v", tt.expr, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func render(t *testing.T, f dashboards.File) []byte {
	t.Helper()
	b, err := dashboards.Render(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type promQuery struct{ where, expr string }

// promQueries finds every PromQL expression of a dashboard: the targets of panels on the Prometheus data source
// and the label_values() and query_result() queries of variables.
func promQueries(t *testing.T, js []byte) []promQuery {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(js, &d); err != nil {
		t.Fatal(err)
	}
	var qs []promQuery
	walkPanels(d, func(where string, p map[string]any) {
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			if dig(tg, "datasource", "type") != "prometheus" {
				continue
			}
			expr, _ := dig(tg, "expr").(string)
			qs = append(qs, promQuery{fmt.Sprintf("%s, query %v", where, dig(tg, "refId")), expr})
		}
	})
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	queryResult := regexp.MustCompile(`^query_result\((.+)\)$`)
	vars, _ := dig(d, "templating", "list").([]any)
	for _, v := range vars {
		if dig(v, "type") != "query" || dig(v, "datasource", "type") != "prometheus" {
			continue
		}
		q, _ := dig(v, "query").(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			m = queryResult.FindStringSubmatch(q)
		}
		if m == nil {
			t.Errorf("variable %v: query %q is neither label_values(selector, label) nor query_result(expr)", dig(v, "name"), q)
			continue
		}
		qs = append(qs, promQuery{fmt.Sprintf("variable %v", dig(v, "name")), m[1]})
	}
	return qs
}

// walkPanels calls fn for every panel, including those inside collapsed rows.
func walkPanels(d map[string]any, fn func(where string, p map[string]any)) {
	var walk func(ps []any)
	walk = func(ps []any) {
		for _, x := range ps {
			p, _ := x.(map[string]any)
			fn(fmt.Sprintf("panel %q", p["title"]), p)
			if inner, ok := p["panels"].([]any); ok {
				walk(inner)
			}
		}
	}
	ps, _ := d["panels"].([]any)
	walk(ps)
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func isExported(name string) bool {
	for _, m := range exportedMetrics {
		if name == m.Name {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if m.Histogram && name == m.Name+suffix {
				return true
			}
		}
	}
	return false
}

// promqlWords are PromQL's keywords and aggregation operators: identifiers that are never metric names.
var promqlWords = []string{"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
	"offset", "bool", "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk",
	"quantile", "count_values", "inf", "nan"}

// grouping are the keywords followed by a parenthesised list of label names.
var grouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// metricNames returns the metric names an expression selects, in order, without duplicates. It is a small lexer,
// not a PromQL parser: it skips strings, label matchers {…}, ranges […], numbers and durations, function and
// aggregation names, and the label lists of by/without/on/ignoring/group_left/group_right. Grafana's $variables
// only appear inside matchers and ranges here.
func metricNames(expr string) ([]string, error) {
	var names []string
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	// skipString returns the index after the string literal starting at i.
	skipString := func(i int) (int, error) {
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && expr[i] != '`':
				j++
			case expr[j] == expr[i]:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string in %q", expr)
	}
	// skipTo returns the index after the closing character matching the opening one at i.
	skipTo := func(i int, closing byte) (int, error) {
		for j := i + 1; j < len(expr); {
			switch expr[j] {
			case '"', '\'', '`':
				end, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = end
			case closing:
				return j + 1, nil
			default:
				j++
			}
		}
		return 0, fmt.Errorf("no closing %q in %q", closing, expr)
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, err := skipTo(i, '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipTo(i, ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++ // a number, with any exponent or duration unit: 0.95, 1e3, 15m
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			switch {
			case slices.Contains(grouping, strings.ToLower(word)):
				if k < len(expr) && expr[k] == '(' {
					end, err := skipTo(k, ')')
					if err != nil {
						return nil, err
					}
					k = end
				}
				j = k
			case slices.Contains(promqlWords, strings.ToLower(word)):
			case k < len(expr) && expr[k] == '(':
				// a function call
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	return names, nil
}

// firstDifference describes the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\ncommitted: %s\ngenerated: %s", i+1, gl, wl)
		}
	}
	return "same lines, different bytes"
}
