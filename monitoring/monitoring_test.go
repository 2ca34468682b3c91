package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// promtool finds promtool; without it the test skips, unless CI=true,
// where a missing promtool is a failure (make deps installs it).
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("promtool is missing (Debian package prometheus; make deps installs it): %v", err)
	}
	t.Skipf("promtool is missing (Debian package prometheus): %v", err)
	return ""
}

// runPromtool runs promtool in dir and fails the test with its output if
// it fails.
func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestPromtool: promtool accepts the rules, and their unit tests pass.
func TestPromtool(t *testing.T) {
	runPromtool(t, ".", "check", "rules", "alerts.yaml")
	runPromtool(t, ".", "test", "rules", "alerts_test.yaml")
}

// TestDashboardQueriesParse: every query of the dashboard is PromQL that
// promtool accepts (each checked as a recording rule).
func TestDashboardQueriesParse(t *testing.T) {
	qs, err := LoadDashboard(filepath.Join("grafana", "zdt.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	type record struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []record
	for i, q := range qs {
		rules = append(rules, record{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: q.Expr})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboard.yaml")
}

// TestDashboardDatasource: the dashboard asks for its Prometheus as the
// input DS_PROMETHEUS, and every panel and query uses it.
func TestDashboardDatasource(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("grafana", "zdt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		Panels []map[string]any `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("the dashboard's inputs are %+v; want one, DS_PROMETHEUS, a prometheus datasource", d.Inputs)
	}
	uses := regexp.MustCompile(`"uid":\s*"([^"]*)"`).FindAllStringSubmatch(string(data), -1)
	if len(uses) == 0 {
		t.Fatal("no panel names a datasource")
	}
	for _, u := range uses {
		if u[1] != "${DS_PROMETHEUS}" && u[1] != "zdt-noc" {
			t.Errorf("a datasource uid is %q; want ${DS_PROMETHEUS}", u[1])
		}
	}
}

// TestAlertsWellFormed: every alert says how urgent it is (page or
// ticket), has a summary and a description, and its runbook_url leads to
// its own section of docs/alerts.md.
func TestAlertsWellFormed(t *testing.T) {
	rules, err := LoadRules("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := headingAnchors(string(doc))
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Alert] {
			t.Errorf("alert %s is defined twice", r.Alert)
		}
		seen[r.Alert] = true
		if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
			t.Errorf("alert %s: severity %q; want page or ticket", r.Alert, sev)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("alert %s has no %s", r.Alert, a)
			}
		}
		want := "https://github.com/zdt-project/zdt/blob/main/docs/alerts.md#" + strings.ToLower(r.Alert)
		if r.Annotations["runbook_url"] != want {
			t.Errorf("alert %s: runbook_url %q; want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !slices.Contains(anchors, strings.ToLower(r.Alert)) {
			t.Errorf("docs/alerts.md has no section %q for alert %s", "## "+r.Alert, r.Alert)
		}
		if len(MetricNames(r.Expr)) == 0 {
			t.Errorf("alert %s reads no zdt metric: %s", r.Alert, r.Expr)
		}
	}
}

// headingAnchors lists the anchors GitHub gives a Markdown file's headings.
func headingAnchors(doc string) []string {
	var out []string
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		out = append(out, strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-"))
	}
	return out
}

// TestMetricNames: the names an expression reads, not its labels.
func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`max by (site) (zdt_site_state{state!="up"}) == 1`, []string{"zdt_site_state"}},
		{`zdt_a_bytes > zdt_b_bytes or zdt_a_bytes`, []string{"zdt_a_bytes", "zdt_b_bytes"}},
		{`rate(zdt_bgp_apply_seconds_bucket[5m])`, []string{"zdt_bgp_apply_seconds_bucket"}},
		{`up{job="zdt"}`, nil},
	} {
		if got := MetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("MetricNames(%q) = %v; want %v", tc.expr, got, tc.want)
		}
	}
}

// TestDocLinks: every link of docs/alerts.md to a section, of its own or
// of operations.md, leads to a heading that exists.
func TestDocLinks(t *testing.T) {
	docs := filepath.Join("..", "docs")
	anchors := map[string][]string{}
	for _, name := range []string{"alerts.md", "operations.md"} {
		data, err := os.ReadFile(filepath.Join(docs, name))
		if err != nil {
			t.Fatal(err)
		}
		anchors[name] = headingAnchors(string(data))
	}
	data, err := os.ReadFile(filepath.Join(docs, "alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`\]\(((?:operations\.md)?)#([^)]+)\)`).FindAllStringSubmatch(string(data), -1)
	if len(links) == 0 {
		t.Fatal("docs/alerts.md links to no section")
	}
	for _, l := range links {
		file := l[1]
		if file == "" {
			file = "alerts.md"
		}
		if !slices.Contains(anchors[file], l[2]) {
			t.Errorf("docs/alerts.md links to %s#%s, which has no such heading", file, l[2])
		}
	}
}
