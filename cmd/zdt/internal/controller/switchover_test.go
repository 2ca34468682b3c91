package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// TestCoordinatorDiesMidSwitchover kills the coordinator (c, which serves
// nothing) as it is about to run each step of a switchover of web from a to
// b; its successor finishes the op from the journal, and web's assignment
// is written once, by the op.
func TestCoordinatorDiesMidSwitchover(t *testing.T) {
	for step := range 2 { // check-switchover, assign
		t.Run(fmt.Sprintf("before step %d", step), func(t *testing.T) { testCoordinatorDiesMidSwitchover(t, step) })
	}
}

func testCoordinatorDiesMidSwitchover(t *testing.T, at int) {
	tc := newTestCluster(t)
	ctx := ctxFor(t, 90*time.Second)
	paused := make(chan struct{}, 1)
	pauseC := func(ctx context.Context, op *site.Op, step int) error {
		if op.Kind != failover.KindSwitchover || step != at {
			return nil
		}
		select {
		case paused <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	tc.start("c", startOptions{beforeStep: pauseC})
	if got := tc.coordinator(ctx); got != "c" {
		t.Fatalf("coordinator is %s, want c (started first)", got)
	}
	tc.start("a", startOptions{})
	tc.start("b", startOptions{})
	before := tc.bootstrapped(ctx)

	// Plan as zdt switchover does, once b reports itself up.
	var op *site.Op
	for op == nil {
		snap, err := tc.store.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var why []string
		if op, why = failover.PlanSwitchover(tc.etcd.Config, snap, failover.SwitchoverRequest{Service: "web", To: "b"}, "operator:test", time.Now()); op == nil {
			waitKey(t, ctx, tc.obs, tc.store.Keys().Report("b"), "a report of b", present)
			if ctx.Err() != nil {
				t.Fatalf("the switchover never became possible: %q", why)
			}
		}
	}
	if err := tc.store.RequestOp(ctx, op, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-paused:
	case <-ctx.Done():
		t.Fatalf("the coordinator never reached step %d", at)
	}
	tc.kill("c")

	done := tc.finishedOp(ctx, op.ID)
	if done.Outcome != site.OpSucceeded || len(done.Coordinators) != 2 || done.Coordinators[0] != "c" {
		t.Fatalf("op %s: %s (%s), coordinators %v; want succeeded, by c then its successor", done.ID, done.Outcome, done.Error, done.Coordinators)
	}
	// web's assignment since the bootstrap, from etcd's history.
	var writes []site.Assignment
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cur, err := tc.obs.Get(ctx, tc.store.Keys().Assignment("web"))
	if err != nil || len(cur.Kvs) != 1 {
		t.Fatalf("web's assignment: %v", err)
	}
	last := cur.Kvs[0].ModRevision
	if last <= before["web"].Epoch {
		t.Fatalf("web's assignment was not written since the bootstrap (revision %d)", last)
	}
	for resp := range tc.obs.Watch(wctx, tc.store.Keys().Assignment("web"), clientv3.WithRev(before["web"].Epoch+1)) {
		for _, ev := range resp.Events {
			var a site.Assignment
			if err := json.Unmarshal(ev.Kv.Value, &a); err != nil {
				t.Fatal(err)
			}
			writes = append(writes, a)
		}
		if len(resp.Events) > 0 && resp.Events[len(resp.Events)-1].Kv.ModRevision >= last {
			break
		}
	}
	if len(writes) != 1 || writes[0].Site != "b" || writes[0].Op != op.ID || writes[0].Kind != failover.KindSwitchover {
		t.Errorf("web's assignment was written %d times since the bootstrap: %+v; want once, to b, by op %s", len(writes), writes, op.ID)
	}
}
