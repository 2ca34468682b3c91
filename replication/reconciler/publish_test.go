package reconciler

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestPublishAfterAFailedWrite: a report write that failed may have landed
// all the same (cancelled after etcd took it). The next pass must write its
// report even if it is the one written before the failure.
func TestPublishAfterAFailedWrite(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	r := &Reconciler{cfg: Config{Site: "a", Store: store, PublishEvery: 1}}
	ctx := t.Context()
	writable := []site.MemberReport{{Group: "pg", Role: "primary", Writable: true}}
	fenced := []site.MemberReport{{Group: "pg", Role: "primary", Writable: false}}
	sitetest.FailedWriteLanded(t,
		func(ctx context.Context) error { return r.publish(ctx, writable) },
		func(ctx context.Context) error {
			return store.PutReplicationReport(ctx, site.ReplicationReport{Site: "a", Members: fenced})
		},
		func(ctx context.Context) error { return r.publish(ctx, fenced) })
	resp, err := store.Client().Get(ctx, store.Keys().SiteReplication("a"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read a's replication report: %v", err)
	}
	var got site.ReplicationReport
	if err := json.Unmarshal(resp.Kvs[0].Value, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Members) != 1 || !got.Members[0].Writable {
		t.Errorf("a's replication report in etcd: %+v; want its member writable", got.Members)
	}
}
