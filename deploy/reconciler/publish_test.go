package reconciler

import (
	"context"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestPublishAfterAFailedWrite: a report write that failed may have landed
// all the same (cancelled after etcd took it, as when a self-fence that
// ends at once cancels the pass that paused the guests). The next pass
// must write its report even if it is the one written before the failure:
// otherwise etcd keeps "not running" for guests that run again.
func TestPublishAfterAFailedWrite(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	r := &Reconciler{cfg: Config{Site: "a", Store: store}}
	ctx := t.Context()
	running := site.HostsReport{Site: "a", Hosts: []site.HostReport{{Name: "a1", Running: []site.RunningGuest{{Name: "g"}}}}}
	paused := site.HostsReport{Site: "a", Hosts: []site.HostReport{{Name: "a1"}}}
	sitetest.FailedWriteLanded(t,
		func(ctx context.Context) error { return r.publish(ctx, running) },
		func(ctx context.Context) error { return store.PutHostsReport(ctx, paused, paused.Hosts, nil) },
		func(ctx context.Context) error { return r.publish(ctx, paused) })
	got, ok, err := store.HostsReport(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("read a's hosts report: %v (found %t)", err, ok)
	}
	if len(got.Hosts) != 1 || len(got.Hosts[0].Running) != 1 {
		t.Errorf("a's hosts report in etcd: %+v; want guest g running on a1", got.Hosts)
	}
}

// TestPublishWritesWhatChanged: each host has its own record, written
// only when what the site sees of that host changed; a controller that
// starts deletes the records of hosts it no longer has.
func TestPublishWritesWhatChanged(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	ctx := t.Context()
	k := store.Keys()
	// An earlier run had host a0, since removed from the config.
	earlier := site.HostsReport{Site: "a"}
	if err := store.PutHostsReport(ctx, earlier, []site.HostReport{{Name: "a0"}}, nil); err != nil {
		t.Fatal(err)
	}
	modRev := func(key string) int64 {
		t.Helper()
		resp, err := store.Client().Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return 0
		}
		return resp.Kvs[0].ModRevision
	}
	hosts := func(running ...string) site.HostsReport {
		r := site.HostsReport{Site: "a", Hosts: []site.HostReport{{Name: "a1", VCPUs: 8}, {Name: "a2", VCPUs: 8}}}
		for _, g := range running {
			r.Hosts[1].Running = append(r.Hosts[1].Running, site.RunningGuest{Name: g})
		}
		return r
	}

	r := &Reconciler{cfg: Config{Site: "a", Store: store}}
	if err := r.publish(ctx, hosts()); err != nil {
		t.Fatal(err)
	}
	names, err := store.HostNames(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"a1", "a2"}) {
		t.Fatalf("host records after the first publish: %v; want a1 and a2 (a0's deleted)", names)
	}
	a1, a2, header := modRev(k.SiteHost("a", "a1")), modRev(k.SiteHost("a", "a2")), modRev(k.Hosts("a"))

	// Nothing changed: nothing is written.
	if err := r.publish(ctx, hosts()); err != nil {
		t.Fatal(err)
	}
	if got := modRev(k.Hosts("a")); got != header {
		t.Errorf("the header was written again (revision %d, was %d) though nothing changed", got, header)
	}

	// A guest starts on a2: a2's record and the header, not a1's.
	if err := r.publish(ctx, hosts("g")); err != nil {
		t.Fatal(err)
	}
	if got := modRev(k.SiteHost("a", "a1")); got != a1 {
		t.Errorf("a1's record was written again (revision %d, was %d); only a2 changed", got, a1)
	}
	if got := modRev(k.SiteHost("a", "a2")); got == a2 {
		t.Error("a2's record was not written: guest g started there")
	}
	if got := modRev(k.Hosts("a")); got <= header {
		t.Error("the header was not written after a2's record")
	}
	got, ok, err := store.HostsReport(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("read a's hosts report: %v (found %t)", err, ok)
	}
	if len(got.Hosts) != 2 || got.Hosts[0].Name != "a1" || got.Hosts[1].Name != "a2" ||
		len(got.Hosts[1].Running) != 1 || got.Hosts[1].Running[0].Name != "g" || got.Updated.IsZero() {
		t.Errorf("a's hosts report: %+v; want a1, then a2 running g, and a time", got)
	}

	// Host a2 leaves the config: its record goes.
	one := hosts()
	one.Hosts = one.Hosts[:1]
	if err := r.publish(ctx, one); err != nil {
		t.Fatal(err)
	}
	resp, err := store.Client().Get(ctx, k.SiteHostPrefix("a"), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 1 {
		t.Errorf("%d host records after a2 left; want a1's alone", resp.Count)
	}
}
