package dashboards

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// promtool runs promtool with args in this folder and returns its output,
// failing the test if it fails. Without promtool the test skips, or fails
// where netnstest.RequireEnv is set, as on CI.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		netnstest.Skip(t, "needs promtool (Debian package prometheus): %v", err)
	}
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesPromtoolCheck(t *testing.T) {
	promtool(t, "check", "rules", "rules.yml")
}

// TestRulesPromtoolTest runs the unit tests of rules_test.yml: each
// recording rule's value, and each alert firing and not firing.
func TestRulesPromtoolTest(t *testing.T) {
	promtool(t, "test", "rules", "rules_test.yml")
}

// unitTests is rules_test.yml, as far as the test looks into it.
type unitTests struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	Tests              []struct {
		Name        string `yaml:"name"`
		Interval    string `yaml:"interval"`
		InputSeries []struct {
			Series string `yaml:"series"`
			Values string `yaml:"values"`
		} `yaml:"input_series"`
		AlertRuleTests []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromqlExprTests []struct {
			Expr       string `yaml:"expr"`
			EvalTime   string `yaml:"eval_time"`
			ExpSamples []struct {
				Labels string  `yaml:"labels"`
				Value  float64 `yaml:"value"`
			} `yaml:"exp_samples"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestRulesDocumentedAndTested checks what promtool does not: every alert
// has a severity and a summary and description, every alert has a unit
// test where it fires and one where it does not, and every recording rule
// has a test of its value.
func TestRulesDocumentedAndTested(t *testing.T) {
	rules := loadRules(t)
	b, err := os.ReadFile("rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var ut unitTests
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&ut); err != nil {
		t.Fatalf("rules_test.yml: %v", err)
	}
	if !slices.Equal(ut.RuleFiles, []string{"rules.yml"}) {
		t.Errorf("rules_test.yml tests %v, want [rules.yml]", ut.RuleFiles)
	}
	fires, quiet := map[string]int{}, map[string]int{}
	var exprs []string
	for _, tc := range ut.Tests {
		for _, a := range tc.AlertRuleTests {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname]++
			} else {
				quiet[a.Alertname]++
			}
			for _, e := range a.ExpAlerts {
				if e.ExpAnnotations["summary"] == "" || e.ExpAnnotations["description"] == "" {
					t.Errorf("test %q: an expected %s has no summary or description: promtool then only checks that there is none", tc.Name, a.Alertname)
				}
			}
		}
		for _, p := range tc.PromqlExprTests {
			exprs = append(exprs, p.Expr)
		}
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Alert != "":
				alerts[r.Alert] = true
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: needs a summary and a description annotation", r.Alert)
				}
				if fires[r.Alert] == 0 || quiet[r.Alert] == 0 {
					t.Errorf("%s: rules_test.yml has %d tests where it fires and %d where it does not; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
				}
			case r.Record != "":
				if !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, r.Record) }) {
					t.Errorf("%s: no promql_expr_test checks its value", r.Record)
				}
			}
		}
	}
	for name := range fires {
		if !alerts[name] {
			t.Errorf("rules_test.yml tests alert %s, which rules.yml does not have", name)
		}
	}
	for name := range quiet {
		if !alerts[name] {
			t.Errorf("rules_test.yml tests alert %s, which rules.yml does not have", name)
		}
	}
	if len(alerts) < 9 {
		t.Errorf("%d alerts in rules.yml, want the 9 the README lists", len(alerts))
	}
}
