// Package dashboards reads the Grafana dashboards of this directory and the
// queries in them, so tests can check them: that every PromQL and LogQL query
// parses, uses only the labels the dynoscope agent emits, and returns data
// from a Prometheus the agent filled.
//
// The dashboards themselves are the JSON files next to this file; they pick
// their datasources through the ${datasource} (Prometheus) and
// ${loki_datasource} (Loki) template variables and hard-code no datasource
// UID, so they import unchanged into Grafana Cloud and the local Grafana.
package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// Datasource kinds of a Query.
const (
	KindPrometheus = "prometheus"
	KindLoki       = "loki"
)

// Files are the dashboards of this directory, by file name, with their
// stable UIDs (links and alert annotations use them).
var Files = map[string]string{
	"app-overview.json": "dynoscope-app",
	"agent-health.json": "dynoscope-agent",
	"budget.json":       "dynoscope-budget",
}

// StreamLabels are the labels of every log stream the agent pushes to Loki.
var StreamLabels = []string{"app", "service_name", "environment", "platform", "instance", "dyno_type", "stream", "level"}

// SeriesLabels are the label names a PromQL query may use: the agent's
// identity labels and job on every sample, plus the labels of the metrics
// themselves (the app's http_request_duration_seconds, the agent's drop
// reasons, log streams, dyno_info and build info).
var SeriesLabels = []string{
	"app", "environment", "platform", "instance", "dyno_type", "job",
	"method", "path", "status_code", "le",
	"reason", "stream", "release", "commit", "version",
}

// TestValues are the values the tests give the template variables: both
// environments of the native stack, the demo app, every instance, and fixed
// intervals.
var TestValues = map[string]string{
	"environment":     "staging|production",
	"app":             "demo",
	"instance":        ".+",
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "5m",
}

// DatasourceRef points a panel, target, annotation or variable at a
// datasource.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Datasource   *DatasourceRef `json:"datasource"`
}

// Panel is a panel or a row; rows' nested panels are flattened into
// Dashboard.Panels.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *DatasourceRef `json:"datasource"`
	Targets     []Target       `json:"targets"`
	Panels      []Panel        `json:"panels"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
}

// Variable is a template variable.
type Variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
	Datasource *DatasourceRef `json:"datasource"`
}

// Annotation is an annotation query, such as the deploy markers.
type Annotation struct {
	Name       string         `json:"name"`
	BuiltIn    int            `json:"builtIn"`
	Expr       string         `json:"expr"`
	Datasource *DatasourceRef `json:"datasource"`
}

// Dashboard is the part of Grafana's JSON model the tests look at; Raw holds
// the whole document.
type Dashboard struct {
	File        string `json:"-"`
	ID          any    `json:"id"`
	UID         string `json:"uid"`
	Title       string `json:"title"`
	Panels      []Panel
	Templating  struct{ List []Variable }   `json:"templating"`
	Annotations struct{ List []Annotation } `json:"annotations"`
	Raw         map[string]any              `json:"-"`
}

// Query is one query of a dashboard: a panel target, a variable or an
// annotation.
type Query struct {
	Where string // e.g. "app-overview.json panel 3 (5xx ratio) A"
	Kind  string // KindPrometheus or KindLoki
	Expr  string // as written, with template variables
}

// Load reads one dashboard file.
func Load(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &d.Raw); err != nil {
		return nil, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	d.File = filepath.Base(path)
	d.Panels = flatten(d.Panels)
	return &d, nil
}

// LoadDir reads every dashboard of Files from dir, in file name order.
func LoadDir(dir string) ([]*Dashboard, error) {
	names := make([]string, 0, len(Files))
	for name := range Files {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]*Dashboard, 0, len(names))
	for _, name := range names {
		d, err := Load(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func flatten(panels []Panel) []Panel {
	var out []Panel
	for _, p := range panels {
		nested := p.Panels
		p.Panels = nil
		out = append(out, p)
		out = append(out, flatten(nested)...)
	}
	return out
}

// Panel returns the panel with the given id, or nil.
func (d *Dashboard) Panel(id int) *Panel {
	for i := range d.Panels {
		if d.Panels[i].ID == id {
			return &d.Panels[i]
		}
	}
	return nil
}

// Variable returns the template variable with the given name, or nil.
func (d *Dashboard) Variable(name string) *Variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// Queries lists every query of the dashboard: panel targets, query
// variables (their label_values selector) and annotation queries.
func (d *Dashboard) Queries() []Query {
	var out []Query
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			ds := t.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			kind := KindPrometheus
			if ds != nil && ds.Type == KindLoki {
				kind = KindLoki
			}
			out = append(out, Query{
				Where: fmt.Sprintf("%s panel %d (%s) %s", d.File, p.ID, p.Title, t.RefID),
				Kind:  kind,
				Expr:  t.Expr,
			})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		out = append(out, Query{Where: fmt.Sprintf("%s variable %s", d.File, v.Name), Kind: KindPrometheus, Expr: q})
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 || a.Expr == "" {
			continue
		}
		out = append(out, Query{Where: fmt.Sprintf("%s annotation %s", d.File, a.Name), Kind: KindPrometheus, Expr: a.Expr})
	}
	return out
}

// labelValuesRE matches a Prometheus variable query label_values(selector, label).
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// PromQL returns the PromQL expression to run for expr, and the label a
// label_values() variable query returns ("" for ordinary expressions).
func PromQL(expr string) (promql, label string) {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		return m[1], m[2]
	}
	return expr, ""
}

// Substitute replaces Grafana template variables ($name, ${name}) in expr
// with the values of vars; longer names first so $__range does not eat
// $__range_s.
func Substitute(expr string, vars map[string]string) string {
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, name := range names {
		expr = strings.ReplaceAll(expr, "${"+name+"}", vars[name])
		expr = strings.ReplaceAll(expr, "$"+name, vars[name])
	}
	return expr
}

// PromQLNames parses a PromQL expression and returns the metric names it
// selects and the label names it matches on, groups by or joins on
// (sorted, without __name__).
func PromQLNames(expr string) (metrics, labels []string, err error) {
	node, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	ms, ls := map[string]bool{}, map[string]bool{}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if n.Name != "" {
				ms[n.Name] = true
			}
			for _, m := range n.LabelMatchers {
				if m.Name == "__name__" {
					ms[m.Value] = true
					continue
				}
				ls[m.Name] = true
			}
		case *parser.AggregateExpr:
			for _, l := range n.Grouping {
				ls[l] = true
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				for _, l := range n.VectorMatching.MatchingLabels {
					ls[l] = true
				}
				for _, l := range n.VectorMatching.Include {
					ls[l] = true
				}
			}
		}
		return nil
	})
	return keys(ms), keys(ls), nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LogQLResult is what logql-check/check.mjs says about one query: parse
// errors (none when it parses) and the label names its selectors, label
// filters and groupings use.
type LogQLResult struct {
	Query  string   `json:"query"`
	Errors []string `json:"errors"`
	Labels []string `json:"labels"`
}

// ErrLogQLChecker means node or the npm packages of logql-check are missing;
// the error says how to install them.
var ErrLogQLChecker = errors.New("LogQL checker not installed")

// CheckLogQL parses queries offline with Grafana's LogQL grammar
// (@grafana/lezer-logql, run by node from the logql-check directory next to
// this file; install it with npm ci --prefix dashboards/logql-check).
func CheckLogQL(queries []string) ([]LogQLResult, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node not found: install Node.js 18+ (apt-get install nodejs npm), then npm ci --prefix dashboards/logql-check", ErrLogQLChecker)
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return nil, errors.New("check logql: no caller information")
	}
	dir := filepath.Join(filepath.Dir(file), "logql-check")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grafana", "lezer-logql")); err != nil {
		return nil, fmt.Errorf("%w: run npm ci --prefix dashboards/logql-check", ErrLogQLChecker)
	}
	in, err := json.Marshal(queries)
	if err != nil {
		return nil, fmt.Errorf("check logql: %w", err)
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(node, filepath.Join(dir, "check.mjs"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("check logql: %w: %s", err, stderr.String())
	}
	var results []LogQLResult
	if err := json.Unmarshal(out.Bytes(), &results); err != nil {
		return nil, fmt.Errorf("check logql: %w", err)
	}
	if len(results) != len(queries) {
		return nil, fmt.Errorf("check logql: %d results for %d queries", len(results), len(queries))
	}
	return results, nil
}
