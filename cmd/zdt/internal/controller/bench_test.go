package controller

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
)

// BenchmarkSiteLoss measures, over b.N fresh three-site clusters (lease TTL
// 2s), the time from killing a site (its controller and its etcd member) to
// its fence and the reassignment of its service being committed. The dark
// site is never the coordinator. Two cases: its etcd member follows, or it
// leads (then a new etcd leader is elected and extends every lease by an
// election timeout, so detection takes longer). Run it with
// -benchtime=20x; it reports p50 and p95.
func BenchmarkSiteLoss(b *testing.B) {
	for _, leads := range []bool{false, true} {
		name := "etcd-follower"
		if leads {
			name = "etcd-leader"
		}
		b.Run(name, func(b *testing.B) {
			var total, coord []time.Duration
			for range b.N {
				t, c := siteLossOnce(b, leads)
				total, coord = append(total, t), append(coord, c)
			}
			reportPercentiles(b, total, "kill-to-reassigned")
			reportPercentiles(b, coord, "expired-to-reassigned")
		})
	}
}

// siteLossOnce returns the time from the kill to the reassignment, and the
// part of it from the lease's expiry (seen by an observer) on.
func siteLossOnce(b *testing.B, victimLeadsEtcd bool) (total, afterExpiry time.Duration) {
	tc := newTestCluster(b)
	defer tc.etcd.Close()
	defer tc.killAll()
	ctx := ctxFor(b, 60*time.Second)
	// c coordinates and serves nothing; a serves web and goes dark. The
	// etcd leadership is placed before any lease exists: moving it later
	// would extend every lease.
	const coordinator, victim, service = "c", "a", "web"
	leader := coordinator
	if victimLeadsEtcd {
		leader = victim
	}
	if err := tc.etcd.MoveLeader(ctx, leader); err != nil {
		b.Fatal(err)
	}
	tc.start(coordinator, startOptions{})
	if got := tc.coordinator(ctx); got != coordinator {
		b.Fatalf("coordinator %s, want %s", got, coordinator)
	}
	tc.start("a", startOptions{})
	tc.start("b", startOptions{})
	tc.bootstrapped(ctx)
	if got := tc.etcd.Leader(); got != leader {
		b.Fatalf("etcd leader is %s, want %s", got, leader)
	}

	// The observer talks to the surviving members only: a stream to the
	// killed member would stall and make the failover look slower.
	obs := tc.etcd.Client(tc.etcd.Endpoint("b"), tc.etcd.Endpoint("c"))
	expired := make(chan time.Time, 1)
	go func() {
		_, at := waitKey(b, ctx, obs, tc.store.Keys().Alive(victim), "lease expired", absent)
		expired <- at
	}()
	killed := time.Now()
	tc.etcd.KillMember(victim)
	tc.kill(victim)
	_, moved := waitKey(b, ctx, obs, tc.store.Keys().Assignment(service), service+" moved", func(r *clientv3.GetResponse) bool {
		var a site.Assignment
		return present(r) && json.Unmarshal(r.Kvs[0].Value, &a) == nil && a.Site != victim
	})
	if _, err := site.NewStore(obs, tc.etcd.Config.Name).Fence(ctx, victim); err != nil {
		b.Fatalf("service moved but site %s is not fenced: %v", victim, err)
	}
	return moved.Sub(killed), moved.Sub(<-expired)
}

// BenchmarkSelfFenceMargin measures, over b.N fresh clusters (lease TTL
// 2s), how long before the majority sees a cut-off site's lease expire the
// site has fenced itself. Run it with -benchtime=20x; it reports min and
// p50.
func BenchmarkSelfFenceMargin(b *testing.B) {
	var margins []time.Duration
	for range b.N {
		margins = append(margins, selfFenceMarginOnce(b))
	}
	slices.Sort(margins)
	b.ReportMetric(float64(margins[0].Milliseconds()), "margin-min-ms")
	b.ReportMetric(float64(percentile(margins, 50).Milliseconds()), "margin-p50-ms")
	b.ReportMetric(0, "ns/op") // wall time per op is the cluster set-up; not meaningful
}

func selfFenceMarginOnce(b *testing.B) time.Duration {
	tc := newTestCluster(b)
	defer tc.etcd.Close()
	defer tc.killAll()
	ctx := ctxFor(b, 60*time.Second)
	var endpoints []string
	var proxies []interface{ Cut() }
	for _, s := range tc.etcd.Config.Sites {
		p := tc.etcd.NewProxy(s.Name)
		proxies = append(proxies, p)
		endpoints = append(endpoints, p.URL)
	}
	cut := tc.start("c", startOptions{endpoints: endpoints})
	cut.waitChange(b, ctx, site.ControllerUp)
	aliveKey := tc.store.Keys().Alive("c")
	expired := make(chan time.Time, 1)
	go func() {
		_, at := waitKey(b, ctx, tc.obs, aliveKey, "lease of c expired", absent)
		expired <- at
	}()
	for _, p := range proxies {
		p.Cut()
	}
	fenced := cut.waitChange(b, ctx, site.ControllerSelfFenced)
	select {
	case at := <-expired:
		return at.Sub(fenced.At)
	case <-ctx.Done():
		b.Fatal("lease never expired")
		return 0
	}
}

func reportPercentiles(b *testing.B, samples []time.Duration, name string) {
	slices.Sort(samples)
	b.ReportMetric(float64(percentile(samples, 50).Milliseconds()), name+"-p50-ms")
	b.ReportMetric(float64(percentile(samples, 95).Milliseconds()), name+"-p95-ms")
	b.ReportMetric(0, "ns/op") // wall time per op is the cluster set-up; not meaningful
}

// percentile of sorted samples, nearest rank.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (p*len(sorted) + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}
