// Package alerts holds the Prometheus rule files and the Alertmanager
// configuration of dynoscope; its tests check them with promtool and amtool.
package alerts

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/brainbytesai/dynoscope/dashboards"
)

const (
	rulesFile     = "dynoscope.rules.yml"
	rulesTestFile = "dynoscope.test.yml"
	amFile        = "alertmanager.yml"
	localAMFile   = "../local/alertmanager.yml"
)

// tool returns the path of a command the tests need, failing with an
// install hint when it is missing.
func tool(t testing.TB, name, hint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	require.NoError(t, err, "%s is not installed: %s", name, hint)
	return path
}

func promtool(t testing.TB) string {
	return tool(t, "promtool", "apt-get install prometheus (Prometheus 2.42, promtool)")
}

func amtool(t testing.TB) string {
	return tool(t, "amtool", "apt-get install prometheus-alertmanager (Alertmanager 0.25, amtool)")
}

// run runs a command and returns its stdout, failing the test with its
// output when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %s:\n%s%s", name, strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

func TestPromtoolCheckRules(t *testing.T) {
	out := run(t, promtool(t), "check", "rules", rulesFile)
	require.Contains(t, out, "SUCCESS")
}

// TestPromtoolTestRules runs the unit tests: one case where every alert fires
// (production critical, staging warning) and one where none does.
func TestPromtoolTestRules(t *testing.T) {
	out := run(t, promtool(t), "test", "rules", rulesTestFile)
	require.Contains(t, out, "SUCCESS")
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t testing.TB) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var f ruleFile
	require.NoError(t, yaml.Unmarshal(b, &f))
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules)
	return rules
}

// templateRE matches Go template actions in a dashboard link.
var templateRE = regexp.MustCompile(`\{\{[^}]*\}\}`)

// TestRulesContract checks what promtool does not: each alert's for,
// severity, summary, description and a dashboard link to a panel that
// exists, and only labels and metrics the agent emits.
func TestRulesContract(t *testing.T) {
	boards, err := dashboards.LoadDir("../dashboards")
	require.NoError(t, err)
	byUID := map[string]*dashboards.Dashboard{}
	for _, d := range boards {
		byUID[d.UID] = d
	}
	for i, r := range loadRules(t) {
		t.Run(fmt.Sprintf("%d %s", i, r.Alert), func(t *testing.T) {
			require.NotEmpty(t, r.Alert, "only alerting rules here")
			require.NotEmpty(t, r.For, "for")
			require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"])
			require.NotEmpty(t, r.Annotations["summary"])
			require.NotEmpty(t, r.Annotations["description"])

			link, err := url.Parse(templateRE.ReplaceAllString(r.Annotations["dashboard"], "x"))
			require.NoError(t, err)
			parts := strings.Split(strings.Trim(link.Path, "/"), "/")
			require.GreaterOrEqual(t, len(parts), 2, "dashboard link %q", r.Annotations["dashboard"])
			require.Equal(t, "d", parts[0])
			d := byUID[parts[1]]
			require.NotNil(t, d, "dashboard uid %q does not exist", parts[1])
			panel, err := strconv.Atoi(link.Query().Get("viewPanel"))
			require.NoError(t, err, "viewPanel of %q", r.Annotations["dashboard"])
			require.NotNil(t, d.Panel(panel), "%s has no panel %d", d.File, panel)

			metrics, labels, err := dashboards.PromQLNames(r.Expr)
			require.NoError(t, err)
			for _, l := range labels {
				require.Contains(t, dashboards.SeriesLabels, l, "label %q is not one the agent emits", l)
			}
			for _, m := range metrics {
				require.Regexp(t, `^(up|dyno_.+|dynoscope_.+|http_request_duration_seconds_.+)$`, m)
			}
		})
	}
}

// TestSeverityByEnvironment: the app and dyno alerts page in production and
// only warn elsewhere.
func TestSeverityByEnvironment(t *testing.T) {
	rules := loadRules(t)
	for _, name := range []string{"AppDown", "AppHighErrorRatio", "AppHighLatencyP95", "DynoMemoryHigh"} {
		t.Run(name, func(t *testing.T) {
			var severities []string
			for _, r := range rules {
				if r.Alert != name {
					continue
				}
				switch {
				case strings.Contains(r.Expr, `environment="production"`):
					require.Equal(t, "critical", r.Labels["severity"])
				case strings.Contains(r.Expr, `environment!="production"`):
					require.Equal(t, "warning", r.Labels["severity"])
				default:
					t.Fatalf("%s rule without an environment matcher: %s", name, r.Expr)
				}
				severities = append(severities, r.Labels["severity"])
			}
			slices.Sort(severities)
			require.Equal(t, []string{"critical", "warning"}, severities)
		})
	}
}

// TestEveryAlertUnitTested: each alert name has a promtool case where it
// fires and one where it does not.
func TestEveryAlertUnitTested(t *testing.T) {
	b, err := os.ReadFile(rulesTestFile)
	require.NoError(t, err)
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		require.True(t, fires[r.Alert], "%s: no case where it fires", r.Alert)
		require.True(t, silent[r.Alert], "%s: no case where it does not fire", r.Alert)
	}
}

func TestAmtoolCheckConfig(t *testing.T) {
	am := amtool(t)
	for _, file := range []string{amFile, localAMFile} {
		t.Run(file, func(t *testing.T) {
			out := run(t, am, "check-config", file)
			require.Contains(t, out, "SUCCESS")
		})
	}
}

// placeholders are the environment variables alertmanager.yml expects to be
// filled in (envsubst) before mimirtool alertmanager load.
var placeholders = map[string]string{
	"SLACK_WEBHOOK_PATH":    "T000/B000/XXXXXXXX",
	"PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
	"GRAFANA_URL":           "https://example.grafana.net",
}

// placeholderRE matches a ${NAME} placeholder.
var placeholderRE = regexp.MustCompile(`\$\{([A-Z_]+)\}`)

// TestPlaceholdersFilled: the committed file names every placeholder and
// stays valid once they are substituted the way the README says.
func TestPlaceholdersFilled(t *testing.T) {
	b, err := os.ReadFile(amFile)
	require.NoError(t, err)
	found := map[string]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(string(b), -1) {
		found[m[1]] = true
	}
	for name := range placeholders {
		require.True(t, found[name], "placeholder ${%s} missing", name)
	}
	for name := range found {
		require.Contains(t, placeholders, name, "placeholder ${%s} not documented", name)
	}
	// As envsubst with the list of names: only ${NAME} is replaced.
	rendered := placeholderRE.ReplaceAllStringFunc(string(b), func(m string) string {
		return placeholders[placeholderRE.FindStringSubmatch(m)[1]]
	})
	require.NotContains(t, rendered, "${")
	path := filepath.Join(t.TempDir(), "alertmanager.yml")
	require.NoError(t, os.WriteFile(path, []byte(rendered), 0o600))
	require.Contains(t, run(t, amtool(t), "check-config", path), "SUCCESS")
}

// TestRoutes asks amtool where alerts go, in the Grafana Cloud and the local
// configuration alike.
func TestRoutes(t *testing.T) {
	am := amtool(t)
	tests := []struct {
		name   string
		labels []string
		want   string
	}{
		{"production critical pages and chats", []string{"environment=production", "severity=critical"}, "pager,chat"},
		{"production warning chats", []string{"environment=production", "severity=warning"}, "chat"},
		{"staging warning chats only", []string{"environment=staging", "severity=warning"}, "chat-staging"},
		{"staging critical chats only", []string{"environment=staging", "severity=critical"}, "chat-staging"},
		{"review environment chats only", []string{"environment=review", "severity=warning"}, "chat-staging"},
		{"account-wide alert chats", []string{"scope=account", "severity=warning"}, "chat"},
	}
	for _, file := range []string{amFile, localAMFile} {
		for _, tt := range tests {
			t.Run(file+"/"+tt.name, func(t *testing.T) {
				args := append([]string{"config", "routes", "test", "--config.file=" + file}, tt.labels...)
				require.Equal(t, tt.want, strings.TrimSpace(run(t, am, args...)))
			})
		}
	}
}

// TestLocalRoutesSame: the local stack routes exactly like Grafana Cloud;
// only the receivers' integrations differ.
func TestLocalRoutesSame(t *testing.T) {
	load := func(file string) (route any, receivers []string) {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var c struct {
			Route     any `yaml:"route"`
			Receivers []struct {
				Name string `yaml:"name"`
			} `yaml:"receivers"`
		}
		require.NoError(t, yaml.Unmarshal(b, &c))
		for _, r := range c.Receivers {
			receivers = append(receivers, r.Name)
		}
		return c.Route, receivers
	}
	cloudRoute, cloudReceivers := load(amFile)
	localRoute, localReceivers := load(localAMFile)
	require.Equal(t, cloudRoute, localRoute)
	require.Equal(t, cloudReceivers, localReceivers)
}
