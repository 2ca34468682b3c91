package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"
)

// Rule is one alerting rule of a rule file.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// ruleFile is the layout of a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// LoadRules reads the alerting rules of a rule file, in order.
func LoadRules(path string) ([]Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse rules %s: %w", path, err)
	}
	var rules []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				rules = append(rules, r)
			}
		}
	}
	return rules, nil
}

// Query is one query of a dashboard's panel.
type Query struct {
	Panel string
	Expr  string
}

// dashboard is the part of a Grafana dashboard's JSON that holds queries;
// rows may nest panels.
type dashboard struct {
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// LoadDashboard reads the queries of a Grafana dashboard's panels.
func LoadDashboard(path string) ([]Query, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	var qs []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr != "" {
					qs = append(qs, Query{Panel: p.Title, Expr: t.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return qs, nil
}

// metricName matches a zdt metric's name in PromQL (no label or label value
// of ours starts with zdt_).
var metricName = regexp.MustCompile(`\bzdt_[a-zA-Z0-9_]*[a-zA-Z0-9]\b`)

// MetricNames lists the zdt_ metric names an expression reads, sorted and
// without repeats. A histogram's series are named as they are queried
// (zdt_bgp_apply_seconds_bucket).
func MetricNames(expr string) []string {
	names := metricName.FindAllString(expr, -1)
	slices.Sort(names)
	return slices.Compact(names)
}
