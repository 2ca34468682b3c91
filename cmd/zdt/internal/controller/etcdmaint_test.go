package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/etcdmaint"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestControllerMaintainsEtcd: a controller given the maintenance of its
// etcd member runs it while it runs: its metrics, labelled with the site,
// are on the controller's registry (what /metrics serves), with the
// member's sizes and quota.
func TestControllerMaintainsEtcd(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{Services: testServices()})
	member, cluster := etcd.Client(etcd.Endpoint("a")), etcd.Client()
	passes := make(chan etcdmaint.Outcome, 100)
	reg := prometheus.NewRegistry()
	c, err := New(Config{Cluster: etcd.Config, Site: "a", Client: member, Registry: reg, Log: zap.NewNop(),
		EtcdMaint: &etcdmaint.Config{Member: member, Cluster: cluster, Interval: 20 * time.Millisecond,
			Passed: func(o etcdmaint.Outcome) {
				select {
				case passes <- o:
				default:
				}
			}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var o etcdmaint.Outcome
	select {
	case o = <-passes:
	case <-time.After(10 * time.Second):
		t.Fatal("no pass of the etcd maintenance in 10s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if o.Err != nil || o.Before.DB <= 0 {
		t.Fatalf("pass %+v; want the member's sizes", o)
	}
	want := `
# HELP zdt_etcd_quota_bytes Database quota of this site's etcd member: at it, etcd raises NOSPACE and refuses every write.
# TYPE zdt_etcd_quota_bytes gauge
zdt_etcd_quota_bytes{site="a"} 2.147483648e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "zdt_etcd_quota_bytes"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "zdt_etcd_db_size_bytes", "zdt_etcd_defrags_total", "zdt_etcd_alarm"); err != nil || n != 1+4+2 {
		t.Errorf("%d series of the db size, defrags and alarms (%v); want 7", n, err)
	}
}

// TestEtcdMaxBlock: a routine defragmentation may take half of what a
// renewal has before the site fences itself, and never no limit.
func TestEtcdMaxBlock(t *testing.T) {
	for _, tc := range []struct {
		ttl, margin, renew, want time.Duration
	}{
		{6 * time.Second, 1500 * time.Millisecond, 2 * time.Second, 1250 * time.Millisecond}, // the defaults
		{2 * time.Second, 500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond},
		{time.Second, time.Second, time.Second, time.Nanosecond},
	} {
		got := etcdMaxBlock(config.Timings{LeaseTTL: tc.ttl, SelfFenceMargin: tc.margin, RenewInterval: tc.renew})
		if got != tc.want {
			t.Errorf("lease %s, margin %s, renew %s: %s; want %s", tc.ttl, tc.margin, tc.renew, got, tc.want)
		}
	}
}
