package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestLabScaleFailover runs a scale lab (zdt lab --services 200 --guests
// 2000 --hosts 60): every service is assigned and every guest runs, with
// no self-fence and one coordinator all along; then a site that is not
// the coordinator is taken dark (SIGKILL), and every service it served is
// reassigned within the lease TTL plus one second of the kill, in a
// handful of transactions; the gold guests run elsewhere after.
func TestLabScaleFailover(t *testing.T) {
	zdt, l := startLab(t, "127.0.28.0", "--services", "200", "--guests", "2000", "--hosts", "60")
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) < 200 || len(cfg.Guests()) < 2000 {
		t.Fatalf("the scale lab has %d services and %d guests; want at least 200 and 2,000", len(cfg.Services), len(cfg.Guests()))
	}
	keys := site.NewKeys(l.Cluster())
	cli := etcdClient(t, l, l.SiteNames()...)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	guests := followGuests(t, zdt, l)

	started := time.Now()
	waitUntil(ctx, t, cli, keys, "every service assigned", func() ([]string, error) {
		resp, err := cli.Get(ctx, keys.Services(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, kv := range resp.Kvs {
			have[string(kv.Key)] = true
		}
		var wrong []string
		for _, svc := range cfg.Services {
			if !have[keys.Assignment(svc.Name)] {
				wrong = append(wrong, svc.Name+" is not assigned")
			}
		}
		return wrong, nil
	})
	guests.waitAllRunning(ctx, t, cli)
	t.Logf("every service assigned and every guest running %s after the lab started", time.Since(started).Round(100*time.Millisecond))
	noSelfFenceOneCoordinator(t, l.SiteNames(), l.LogPath)

	// The victim: a site that serves services and does not coordinate,
	// so that what is measured is the failover, not an election.
	st := status(t, zdt, l)
	victim := ""
	for _, s := range l.SiteNames() {
		if s != st.Coordinator {
			victim = s
			break
		}
	}
	var served []string
	for _, svc := range st.Services {
		if svc.Active == victim {
			served = append(served, svc.Name)
		}
	}
	if len(served) == 0 {
		t.Fatalf("site %s serves no service:\n%s", victim, st.raw)
	}
	rev, err := revision(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	if err := l.KillSite(victim); err != nil {
		t.Fatalf("take site %s dark: %v", victim, err)
	}
	committed, txns := waitReassigned(ctx, t, cli, keys, victim, served, rev)
	took := committed.Sub(killed)
	ttl := cfg.Timings.LeaseTTL
	t.Logf("site %s killed; its %d services reassigned %s later in %d transactions (lease TTL %s)",
		victim, len(served), took.Round(time.Millisecond), txns, ttl)
	if took > ttl+time.Second {
		t.Errorf("the %d services of site %s were reassigned %s after it was killed; want within the lease TTL plus 1s, %s",
			len(served), victim, took.Round(time.Millisecond), ttl+time.Second)
	}
	if want := (len(served) + site.MaxAssignWrites - 1) / site.MaxAssignWrites; txns > want+1 {
		t.Errorf("the %d services were reassigned in %d transactions; want about %d", len(served), txns, want)
	}
	guests.waitGoldElsewhere(ctx, t, cli, victim)
	var survivors []string
	for _, s := range l.SiteNames() {
		if s != victim {
			survivors = append(survivors, s)
		}
	}
	noSelfFenceOneCoordinator(t, survivors, l.LogPath)
}

// waitReassigned waits until each of the services has an assignment, made
// after revision rev, to a site other than from, and returns when the last
// of them was seen and in how many transactions they were written.
func waitReassigned(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, from string, services []string, rev int64) (time.Time, int) {
	t.Helper()
	left := map[string]bool{}
	for _, s := range services {
		left[keys.Assignment(s)] = true
	}
	txns := map[int64]bool{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range cli.Watch(wctx, keys.Services(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch the assignments: %v", err)
		}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			var a site.Assignment
			if !left[key] || json.Unmarshal(ev.Kv.Value, &a) != nil || a.Site == from {
				continue
			}
			delete(left, key)
			txns[ev.Kv.ModRevision] = true
		}
		if len(left) == 0 {
			return time.Now(), len(txns)
		}
	}
	t.Fatalf("%d of the %d services of site %s were not reassigned: %v", len(left), len(services), from, ctx.Err())
	return time.Time{}, 0
}

// noSelfFenceOneCoordinator checks the controllers' logs of the sites: none
// fenced itself, and one coordinator was elected in all (none lost the
// election while nothing failed).
func noSelfFenceOneCoordinator(t *testing.T, sites []string, logPath func(string) string) {
	t.Helper()
	elected := 0
	for _, name := range sites {
		data, err := os.ReadFile(logPath(name))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			switch {
			case strings.Contains(line, `"msg":"self-fenced"`):
				t.Errorf("site %s fenced itself: %s", name, line)
			case strings.Contains(line, `"msg":"elected coordinator"`):
				elected++
			}
		}
	}
	if elected > 1 {
		t.Errorf("%d coordinators elected at sites %v; want one while nothing failed", elected, sites)
	}
}
