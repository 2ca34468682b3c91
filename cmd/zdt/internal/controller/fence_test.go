package controller

import (
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestFailoverWaitsForConfirmation: with fencing.require_confirmation, a
// failover whose outside fence could not reach the dark site's hypervisor
// moves nothing until an operator confirms the site is dark; then it goes on
// and the op records the confirmation and the unreachable host.
func TestFailoverWaitsForConfirmation(t *testing.T) {
	hole := sitetest.Blackhole(t)
	tc := newTestClusterWith(t, sitetest.Options{
		Services: testServices(),
		Hosts:    map[string][]config.Host{"b": {{Name: "b1", Site: "b", URI: "test+tcp://" + hole + "/default"}}},
	})
	tc.etcd.Config.Fencing = config.Fencing{Timeout: 300 * time.Millisecond, RequireConfirmation: true}
	tc.startAll()
	ctx := ctxFor(t, 60*time.Second)
	before := tc.bootstrapped(ctx)
	if before["db"].Site != "b" {
		t.Fatalf("db is at %s; the test needs it at b", before["db"].Site)
	}

	tc.kill("b")
	resp, _ := waitKey(t, ctx, tc.obs, tc.store.Keys().Fence("b"), "fence of b", present)
	opID := decodeKV[site.Fence](t, resp).Op
	resp, _ = waitKey(t, ctx, tc.obs, tc.store.Keys().Op(opID), "the failover waits for a confirmation", func(r *clientv3.GetResponse) bool {
		if len(r.Kvs) == 0 {
			return false
		}
		op := decodeKV[site.Op](t, r)
		st := op.Steps[1]
		return st.Name == "fence-resources" && strings.Contains(st.Detail, "waiting for an operator")
	})
	op := decodeKV[site.Op](t, resp)
	if got := op.Steps[1].Resources; len(got) != 1 || got[0].Resource != "host b1" || got[0].Outcome != site.FenceUnreachable {
		t.Errorf("the waiting step's resources: %+v; want host b1 unreachable", got)
	}
	if a, err := tc.store.Assignment(ctx, "db"); err != nil || a.Site != "b" {
		t.Errorf("while the failover waits, db is at %q (%v); want it still at b", a.Site, err)
	}

	if _, err := tc.store.ConfirmFence(ctx, "b", "operator:test"); err != nil {
		t.Fatal(err)
	}
	done := tc.finishedOp(ctx, opID)
	if done.Outcome != site.OpSucceeded {
		t.Fatalf("op %s: %s (%s); want succeeded after the confirmation", done.ID, done.Outcome, done.Error)
	}
	if d := done.Steps[1].Detail; !strings.Contains(d, "operator:test confirmed the site dark") {
		t.Errorf("fence-resources detail %q does not name the confirmation", d)
	}
	tc.waitAssigned(ctx, "db", "c")
}
