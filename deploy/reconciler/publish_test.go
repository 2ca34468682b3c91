package reconciler

import (
	"context"
	"encoding/json"
	"testing"

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
		func(ctx context.Context) error { return store.PutHostsReport(ctx, paused) },
		func(ctx context.Context) error { return r.publish(ctx, paused) })
	resp, err := store.Client().Get(ctx, store.Keys().Hosts("a"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read a's hosts report: %v", err)
	}
	var got site.HostsReport
	if err := json.Unmarshal(resp.Kvs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Hosts) != 1 || len(got.Hosts[0].Running) != 1 {
		t.Errorf("a's hosts report in etcd: %+v; want guest g running on a1", got.Hosts)
	}
}
