package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/monitoring"
)

// prometheusBinary finds Debian's prometheus; without it the test skips,
// unless CI=true, where it fails (make deps installs it).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prometheus is missing (Debian package prometheus; make deps installs it): %v", err)
	}
	t.Skipf("needs prometheus (Debian package prometheus, installed by make test): %v", err)
	return ""
}

// scrapeConfig is a Prometheus config that scrapes the controllers' /metrics
// at targets (host:port) every second, by scheme ("http" or "https", then
// trusting the CA in caFile), and evaluates the rules of rulesFile every
// second.
func scrapeConfig(targets []string, scheme, caFile, rulesFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	fmt.Fprintf(&b, "rule_files:\n  - %q\n", rulesFile)
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: zdt\n    scheme: %s\n", scheme)
	if caFile != "" {
		fmt.Fprintf(&b, "    tls_config:\n      ca_file: %q\n", caFile)
	}
	fmt.Fprintf(&b, "    static_configs:\n      - targets: [%s]\n", quoteAll(targets))
	return b.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// promServer is a Prometheus server the test runs.
type promServer struct {
	url  string
	log  string
	http *http.Client
}

// startPrometheus runs bin with config in a temporary directory, listening
// on listen (host:port), until the test ends, and waits until it is ready.
func startPrometheus(ctx context.Context, t *testing.T, bin, config, listen string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &promServer{url: "http://" + listen, log: logPath, http: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(func() { // before dir is removed
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus's log:\n%s", readFile(logPath))
		}
	})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.url+"/-/ready", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := p.http.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, readFile(logPath))
		case <-rctx.Done():
			t.Fatalf("prometheus is not ready after 30s\n%s", readFile(logPath))
		case <-tick.C:
		}
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) String() string {
	var labels []string
	for k, v := range s.Metric {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	return fmt.Sprintf("{%s} %v", strings.Join(labels, ","), s.Value[1])
}

// query evaluates expr now (/api/v1/query).
func (p *promServer) query(ctx context.Context, expr string) ([]sample, error) {
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &out); err != nil {
		return nil, err
	}
	if out.Status != "success" || out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: %s %s (result %s)", expr, out.Status, out.Error, out.Data.ResultType)
	}
	return out.Data.Result, nil
}

// promAlert is one alert of /api/v1/alerts.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// alerts lists the alerts pending or firing now.
func (p *promServer) alerts(ctx context.Context) ([]promAlert, error) {
	var out struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/alerts", &out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, errors.New("/api/v1/alerts: " + out.Status)
	}
	return out.Data.Alerts, nil
}

func (p *promServer) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("prometheus %s: %s: %w", path, resp.Status, err)
	}
	return nil
}

// waitQuery polls expr every 250ms until done accepts its answer, within
// ctx, and returns that answer.
func (p *promServer) waitQuery(ctx context.Context, t *testing.T, what, expr string, done func([]sample) bool) []sample {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last []sample
	var lastErr error
	for {
		if got, err := p.query(ctx, expr); err != nil {
			lastErr = err
		} else if last, lastErr = got, nil; done(got) {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not so before %v; %s last gave %v (error %v)", what, ctx.Err(), expr, last, lastErr)
			return nil
		case <-tick.C:
		}
	}
}

// waitAlert polls /api/v1/alerts every 250ms until an alert of that name,
// carrying labels, is in one of states, within ctx.
func (p *promServer) waitAlert(ctx context.Context, t *testing.T, name string, labels map[string]string, states ...string) {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last []promAlert
	for {
		alerts, err := p.alerts(ctx)
		if err == nil {
			last = alerts
			if slices.ContainsFunc(alerts, func(a promAlert) bool {
				return a.Labels["alertname"] == name && slices.Contains(states, a.State) && hasLabels(a.Labels, labels)
			}) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no alert %s %v %v before %v: %+v", name, labels, states, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// startLabPrometheus runs Prometheus on listen, scraping every site of the
// lab over TLS and evaluating monitoring/alerts.yaml, until the test ends;
// it returns the server and the rules' expressions. bin is the prometheus
// binary (prometheusBinary: find it before starting the lab).
func startLabPrometheus(ctx context.Context, t *testing.T, l *lab.Lab, bin, listen string) (*promServer, alertExprs) {
	t.Helper()
	rulesPath, err := filepath.Abs(filepath.Join("..", "monitoring", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := monitoring.LoadRules(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, name := range l.SiteNames() {
		sa, err := l.Site(name)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, sa.API)
	}
	prom := startPrometheus(ctx, t, bin, scrapeConfig(targets, "https", l.CAPath(), rulesPath), listen)
	return prom, alertExprs{t: t, rules: rules}
}
