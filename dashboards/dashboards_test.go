package dashboards

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func loadAll(t testing.TB) []*Dashboard {
	t.Helper()
	ds, err := LoadDir(".")
	require.NoError(t, err)
	require.Len(t, ds, len(Files))
	return ds
}

func TestDashboardsModel(t *testing.T) {
	for _, d := range loadAll(t) {
		t.Run(d.File, func(t *testing.T) {
			require.Equal(t, Files[d.File], d.UID, "stable uid")
			require.Nil(t, d.ID, "id must be null so the import creates or replaces by uid")
			require.NotEmpty(t, d.Title)
			require.Contains(t, d.Raw["tags"], "dynoscope")
			require.Positive(t, d.Raw["schemaVersion"])

			ids := map[int]bool{}
			for _, p := range d.Panels {
				require.False(t, ids[p.ID], "panel id %d used twice", p.ID)
				ids[p.ID] = true
				require.Contains(t, []string{"row", "timeseries", "stat", "gauge", "logs", "table"}, p.Type, "panel %d", p.ID)
				require.NotEmpty(t, p.Title, "panel %d", p.ID)
				require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %d wider than the grid", p.ID)
				require.Positive(t, p.GridPos.W, "panel %d", p.ID)
				require.Positive(t, p.GridPos.H, "panel %d", p.ID)
				if p.Type == "row" {
					continue
				}
				require.NotEmpty(t, p.Targets, "panel %d %s has no query", p.ID, p.Title)
				require.NotNil(t, p.Datasource, "panel %d", p.ID)
				for _, tg := range p.Targets {
					require.NotNil(t, tg.Datasource, "panel %d target %s", p.ID, tg.RefID)
					require.Equal(t, *p.Datasource, *tg.Datasource, "panel %d target %s", p.ID, tg.RefID)
				}
			}

			env := d.Variable("environment")
			require.NotNil(t, env, "environment variable")
			require.True(t, env.Multi, "environment is multi-select")
			require.NotNil(t, d.Variable("app"), "app variable")
			require.NotNil(t, d.Variable("instance"), "instance variable")
			for _, v := range d.Templating.List {
				if v.Type == "query" {
					// ".+": Loki refuses selectors that all match the empty string.
					require.Equal(t, ".+", v.AllValue, "variable %s", v.Name)
					require.Equal(t, DatasourceRef{Type: KindPrometheus, UID: "${datasource}"}, *v.Datasource, "variable %s", v.Name)
				}
			}
			ds := d.Variable("datasource")
			require.NotNil(t, ds)
			require.Equal(t, "datasource", ds.Type)
			require.Equal(t, "prometheus", ds.Query)
		})
	}
}

// TestNoHardcodedDatasource walks the whole JSON: every datasource reference
// is a template variable (or Grafana's built-in annotations), so the
// dashboards import into any Grafana.
func TestNoHardcodedDatasource(t *testing.T) {
	allowed := map[DatasourceRef]bool{
		{Type: KindPrometheus, UID: "${datasource}"}: true,
		{Type: KindLoki, UID: "${loki_datasource}"}:  true,
		{Type: "grafana", UID: "-- Grafana --"}:      true,
	}
	for _, d := range loadAll(t) {
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, child := range v {
					if k == "datasource" {
						m, ok := child.(map[string]any)
						require.True(t, ok, "%s %s.datasource must be an object {type, uid}, got %v", d.File, path, child)
						ref := DatasourceRef{Type: m["type"].(string), UID: m["uid"].(string)}
						require.True(t, allowed[ref], "%s %s.datasource %+v is not a datasource variable", d.File, path, ref)
						continue
					}
					walk(path+"."+k, child)
				}
			case []any:
				for i, child := range v {
					walk(path+"["+strconv.Itoa(i)+"]", child)
				}
			}
		}
		walk("", d.Raw)
		if slices.ContainsFunc(d.Queries(), func(q Query) bool { return q.Kind == KindLoki }) {
			require.NotNil(t, d.Variable("loki_datasource"), "%s has Loki panels: needs the loki_datasource variable", d.File)
		}
	}
}

// TestPromQLUsesAgentLabels parses every PromQL query (variables
// substituted) and checks the metric and label names against the agent's
// contract.
func TestPromQLUsesAgentLabels(t *testing.T) {
	for _, d := range loadAll(t) {
		for _, q := range d.Queries() {
			if q.Kind != KindPrometheus {
				continue
			}
			t.Run(q.Where, func(t *testing.T) {
				expr, label := PromQL(q.Expr)
				metrics, labels, err := PromQLNames(Substitute(expr, TestValues))
				require.NoError(t, err)
				if label != "" {
					labels = append(labels, label)
				}
				for _, l := range labels {
					require.Contains(t, SeriesLabels, l, "label %q is not one the agent emits", l)
				}
				for _, m := range metrics {
					require.True(t, knownMetric(m), "metric %q is not in the agent's contract", m)
				}
			})
		}
	}
}

// knownMetric reports whether name is a metric the agent forwards: its own,
// the dyno's, the synthetic per-target ones, or the app's request histogram.
func knownMetric(name string) bool {
	switch name {
	case "up", "scrape_duration_seconds", "scrape_samples_scraped":
		return true
	}
	for _, prefix := range []string{"dyno_", "dynoscope_", "http_request_duration_seconds_"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// TestLogQLParses parses every Loki query with Grafana's LogQL grammar
// (@grafana/lezer-logql, run by node) and checks it selects only labels of
// the agent's log streams.
func TestLogQLParses(t *testing.T) {
	var queries []Query
	for _, d := range loadAll(t) {
		for _, q := range d.Queries() {
			if q.Kind == KindLoki {
				queries = append(queries, q)
			}
		}
	}
	require.NotEmpty(t, queries)
	exprs := make([]string, len(queries))
	for i, q := range queries {
		exprs[i] = Substitute(q.Expr, TestValues)
	}
	results, err := CheckLogQL(exprs)
	require.NoError(t, err)
	for i, r := range results {
		require.Empty(t, r.Errors, "%s: %s", queries[i].Where, r.Query)
		for _, l := range r.Labels {
			require.Contains(t, StreamLabels, l, "%s: label %q is not on the agent's log streams", queries[i].Where, l)
		}
	}
	// The checker does reject broken LogQL.
	bad, err := CheckLogQL([]string{`sum by (level (count_over_time({app="demo"}[1m]))`, `{app="demo" |= }`})
	require.NoError(t, err)
	for _, r := range bad {
		require.NotEmpty(t, r.Errors, r.Query)
	}
}

func TestSubstitute(t *testing.T) {
	tests := []struct {
		name, expr, want string
	}{
		{"plain", `x{app=~"$app"}`, `x{app=~"demo"}`},
		{"braces", `x{app=~"${app}"}`, `x{app=~"demo"}`},
		{"longest first", `rate(x[$__rate_interval]) [$__range]`, `rate(x[1m]) [5m]`},
		{"no variable", `up`, `up`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, Substitute(tt.expr, TestValues))
		})
	}
}

func TestPromQLNames(t *testing.T) {
	metrics, labels, err := PromQLNames(`sum by (app) (rate(a{job="x"}[1m])) / on (instance) group_left (release) b`)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, metrics)
	require.Equal(t, []string{"app", "instance", "job", "release"}, labels)
	_, _, err = PromQLNames(`sum by (app (x)`)
	require.Error(t, err)

	q, l := PromQL(`label_values(dynoscope_build_info{environment=~"$environment"}, app)`)
	require.Equal(t, `dynoscope_build_info{environment=~"$environment"}`, q)
	require.Equal(t, "app", l)
}
