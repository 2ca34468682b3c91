package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// TestFailback: a site that was failed over comes back and stays fenced;
// a failback is refused while it is dark, and once it is back it lifts the
// fence through the coordinator, and the site serves again (up).
func TestFailback(t *testing.T) {
	tc := newTestCluster(t)
	tc.startAll()
	ctx := ctxFor(t, 60*time.Second)
	before := tc.bootstrapped(ctx)
	victim := siteServing(before, tc.coordinator(ctx))

	tc.kill(victim)
	tc.checkFailover(ctx, victim, before)
	snap, err := tc.store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if op, why := failover.PlanFailback(tc.etcd.Config, snap, victim, "operator:test", time.Now()); op != nil || len(why) == 0 || !strings.Contains(why[0], "is dark") {
		t.Fatalf("failback of a dark site: op %v, reasons %q; want it refused as dark", op, why)
	}

	back := tc.start(victim, startOptions{})
	back.waitChange(t, ctx, site.ControllerFenced)
	var op *site.Op
	for op == nil { // until its report says fenced
		snap, err := tc.store.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var why []string
		if op, why = failover.PlanFailback(tc.etcd.Config, snap, victim, "operator:test", time.Now()); op == nil {
			t.Logf("not yet: %q", why)
			waitKey(t, ctx, tc.obs, tc.store.Keys().Report(victim), "a report of "+victim, present)
			if ctx.Err() != nil {
				t.Fatalf("site %s never became ready for a failback: %q", victim, why)
			}
		}
	}
	if err := tc.store.RequestOp(ctx, op, 0); err != nil {
		t.Fatal(err)
	}
	done := tc.finishedOp(ctx, op.ID)
	if done.Outcome != site.OpSucceeded {
		t.Fatalf("failback op %s: %s (%s); steps %+v", done.ID, done.Outcome, done.Error, done.Steps)
	}
	ch := back.waitChange(t, ctx, site.ControllerUp)
	if ch.Reason != "fence lifted" {
		t.Errorf("site %s came up with reason %q; want %q", victim, ch.Reason, "fence lifted")
	}
	waitKey(t, ctx, tc.obs, tc.store.Keys().Fence(victim), "the fence of "+victim+" is gone", absent)
	// Failing back moves no service.
	for _, name := range []string{"web", "db"} {
		if a, err := tc.store.Assignment(ctx, name); err != nil || a.Site == victim {
			t.Errorf("after the failback, %s is at %q (%v); a failback moves nothing", name, a.Site, err)
		}
	}
}
