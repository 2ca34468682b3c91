package controller

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/monitoring"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/etcdmaint"
	"github.com/zdt-project/zdt/site/sitetest"
)

// monitoringDir is the module's monitoring/, from this package's directory.
var monitoringDir = filepath.Join("..", "..", "..", "..", "monitoring")

// TestAlertMetricsExist: every zdt_ metric that monitoring/alerts.yaml and
// the Grafana dashboard read is registered by a real controller: one with a
// replication member and a BGP speaker, so that every part of it registers
// its metrics in its registry (the one /metrics serves).
func TestAlertMetricsExist(t *testing.T) {
	reg := fullRegistry(t)
	if !registered(t, reg, "zdt_site_state") || registered(t, reg, "zdt_no_such_metric") {
		t.Fatal("registered cannot tell a registered metric from one that is not")
	}
	used := map[string][]string{} // metric -> where
	rules, err := monitoring.LoadRules(filepath.Join(monitoringDir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		for _, n := range monitoring.MetricNames(r.Expr) {
			used[n] = append(used[n], "alert "+r.Alert)
		}
	}
	qs, err := monitoring.LoadDashboard(filepath.Join(monitoringDir, "grafana", "zdt.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		for _, n := range monitoring.MetricNames(q.Expr) {
			used[n] = append(used[n], "panel "+q.Panel)
		}
	}
	if len(rules) == 0 || len(qs) == 0 || len(used) < 10 {
		t.Fatalf("%d alerts, %d dashboard queries, %d metrics: the files were not read", len(rules), len(qs), len(used))
	}
	for name, where := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && registered(t, reg, b) {
				base = b
			}
		}
		if !registered(t, reg, base) {
			t.Errorf("%s, read by %s, is not a metric the controller registers", name, strings.Join(slices.Compact(where), ", "))
		}
	}
}

// registered reports whether reg holds a metric of that name: registering
// another one by that name, with other help, is then refused.
func registered(t *testing.T, reg *prometheus.Registry, name string) bool {
	t.Helper()
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "a probe: is this name taken?"})
	err := reg.Register(probe)
	if err == nil {
		reg.Unregister(probe)
		return false
	}
	if !strings.Contains(err.Error(), "same fully-qualified name") {
		t.Fatalf("probe %s: %v", name, err)
	}
	return true
}

// fullRegistry builds site a's controller, with a PostgreSQL member, a
// BGP speaker and the maintenance of its etcd member, against a real
// etcd, starts its speaker (the announcer registers then), and returns its
// registry.
func fullRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	services := testServices()
	for i := range services {
		if services[i].Name == "db" {
			services[i].ReplicationGroup = "pg"
			services[i].RPO = config.RPO{MaxLagBytes: config.DefaultMaxLagBytes, MaxLagSeconds: config.DefaultMaxLagSeconds}
		}
	}
	etcd := sitetest.New(t, sitetest.Options{Services: services})
	cfg := *etcd.Config
	cfg.Sites = slices.Clone(cfg.Sites)
	for i := range cfg.Sites {
		cfg.Sites[i].BGP = &config.SiteBGP{
			ASN: 64601 + uint32(i), RouterID: netip.AddrFrom4([4]byte{192, 0, 2, byte(11 + i)}),
			Peers: []config.BGPPeer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: 64500, Port: 1, Passive: true}},
		}
	}
	cfg.Replication = []config.ReplicationGroup{{Name: "pg", Driver: config.DriverPostgres, Members: []config.ReplicationMember{
		{Site: "a", Conn: "host=127.0.0.1 port=1 user=zdt dbname=postgres"},
		{Site: "b", Conn: "host=127.0.0.1 port=2 user=zdt dbname=postgres"},
	}}}
	client, err := site.NewClient(etcd.Config, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	reg := prometheus.NewRegistry()
	maint := &etcdmaint.Config{Member: etcd.Client(etcd.Endpoint("a")), Cluster: client}
	c, err := New(Config{Cluster: &cfg, Site: "a", Client: client, Registry: reg, EtcdMaint: maint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.closeMembers)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sp, err := c.startSpeaker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather the controller's metrics: %v", err)
	}
	return reg
}

// TestFootprintMetrics: a controller's own registry carries the Go
// runtime's and the process's metrics, its footprint.
func TestFootprintMetrics(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{Services: testServices()})
	client, err := site.NewClient(etcd.Config, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	c, err := New(Config{Cluster: etcd.Config, Site: "a", Client: client})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_memstats_heap_inuse_bytes", "go_goroutines"} {
		if !registered(t, c.cfg.Registry, name) {
			t.Errorf("%s is not registered", name)
		}
	}
}
