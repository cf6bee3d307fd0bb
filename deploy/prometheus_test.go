package deploy

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// TestAlertRules parses the rule file with Prometheus' own rule parser
// (expressions and annotation templates included) and checks each alert
// names only metrics scepca exports, has a severity and a summary. When
// promtool is installed it checks the file too.
func TestAlertRules(t *testing.T) {
	const file = "prometheus/scepca-alerts.yml"
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", file, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	known := exportedMetrics(t)
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert", r.Record)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			for _, n := range metricNames(t, r.Expr) {
				if !known[n] {
					t.Errorf("alert %s uses %s, which scepca does not export", r.Alert, n)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a summary or description", r.Alert)
			}
		}
	}
	// The list: error rate by reason, p99 latency, CA expiry, outstanding challenges.
	for _, want := range []string{"ScepcaEnrollmentFailures", "ScepcaPKIOperationSlow", "ScepcaCACertificateExpiring", "ScepcaDynamicChallengesPiling"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.CommandContext(t.Context(), p, "check", "rules", file).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	}
}

// grafanaVariables are the dashboard's template variables, replaced by
// values PromQL accepts before parsing.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m")

// TestGrafanaDashboard: the dashboard is JSON with unique panel IDs and
// targets whose expressions parse as PromQL and name exported metrics.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/scepca-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard title %q, uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}
	known := exportedMetrics(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel ID %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range metricNames(t, grafanaVariables.Replace(tg.Expr)) {
				used[n] = true
				if !known[n] {
					t.Errorf("panel %q uses %s, which scepca does not export", p.Title, n)
				}
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((\w+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil || !known[m[1]] {
			t.Errorf("variable %s: query %q does not read an exported metric", v.Name, v.Definition)
		}
	}
	// The panels the issue asks for are there.
	for _, want := range []string{"scepca_scep_requests_total", "scepca_scep_phase_seconds_bucket", "scepca_store_op_seconds_bucket",
		"scepca_certificates_issued_total", "scepca_certificates_revoked_total", "scepca_certificates_expiring", "scepca_ca_cert_expiry_seconds",
		"scepca_dynamic_challenges_outstanding"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// TestMetricsDocumented: every metric scepca exports is in the metrics
// table of docs/operations.md.
func TestMetricsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := range exportedMetrics(t) {
		if strings.HasPrefix(n, "scepca_") && !strings.HasSuffix(n, "_bucket") && !strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") {
			if !strings.Contains(string(b), "`"+n+"`") {
				t.Errorf("docs/operations.md does not list %s", n)
			}
		}
	}
}
