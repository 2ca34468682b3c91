package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// TestDeclaredFailover: an operator declares site b dark while it is up.
// Its controller sees the fence and fences itself before anything of it is
// taken over: the failover moves db to c only after b said so, and b stays
// fenced with its lease.
func TestDeclaredFailover(t *testing.T) {
	tc := newTestCluster(t)
	tc.startAll()
	ctx := ctxFor(t, 60*time.Second)
	before := tc.bootstrapped(ctx)
	if before["db"].Site != "b" {
		t.Fatalf("db is at %s; the test needs it at b", before["db"].Site)
	}
	b := tc.ctrls["b"]
	snap, err := tc.store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op, why := failover.PlanDeclaredFailover(tc.etcd.Config, snap, "b", "operator:test", "storage lost", time.Now())
	if op == nil {
		t.Fatalf("declaring b dark refused: %q", why)
	}
	if err := tc.store.RequestOp(ctx, op, 0); err != nil {
		t.Fatal(err)
	}
	fenced := b.waitChange(t, ctx, site.ControllerFenced)
	done := tc.finishedOp(ctx, op.ID)
	if done.Outcome != site.OpSucceeded {
		t.Fatalf("op %s: %s (%s); steps %+v", done.ID, done.Outcome, done.Error, done.Steps)
	}
	await := done.Steps[1]
	if await.Name != failover.StepAwaitSelfFence || !strings.Contains(await.Detail, "site b fenced itself") {
		t.Errorf("step 2: %s: %q; want b to have fenced itself", await.Name, await.Detail)
	}
	for _, st := range done.Steps {
		if st.Name == failover.StepAssign && !st.Started.After(fenced.At) {
			t.Errorf("assign step started at %s, before b fenced itself at %s", st.Started.Format(time.RFC3339Nano), fenced.At.Format(time.RFC3339Nano))
		}
	}
	tc.waitAssigned(ctx, "db", "c")
	if !strings.Contains(fenced.Reason, "declared dark by operator:test: storage lost") {
		t.Errorf("b's fence reason %q does not say who declared it and why", fenced.Reason)
	}
	snap, err = tc.store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.StateOf("b"); got != site.SiteFenced {
		t.Errorf("b is %s; want fenced", got)
	}
	// Declaring it again is refused: it is fenced already.
	if op, why := failover.PlanDeclaredFailover(tc.etcd.Config, snap, "b", "operator:test", "", time.Now()); op != nil || len(why) != 1 || !strings.Contains(why[0], "fenced already") {
		t.Errorf("declaring a fenced site dark: %v, %q; want it refused", op, why)
	}
}
