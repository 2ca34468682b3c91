package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
)

// planRunbook plans a runbook from its YAML against the cluster's state,
// once the planner does not refuse it (the sites report themselves up),
// and journals it as zdt runbook run does.
func (tc *testCluster) planRunbook(ctx context.Context, yaml string, args map[string]string) *site.Op {
	tc.t.Helper()
	rb, err := runbooks.Parse("test.yaml", []byte(yaml))
	if err != nil {
		tc.t.Fatal(err)
	}
	resolved, err := runbooks.Resolve(rb, tc.etcd.Config, args)
	if err != nil {
		tc.t.Fatal(err)
	}
	for {
		snap, err := tc.store.Snapshot(ctx)
		if err != nil {
			tc.t.Fatal(err)
		}
		plan, err := runbooks.MakePlan(rb, tc.etcd.Config, snap, resolved, runbooks.PlanOptions{Who: "operator:test"})
		if err != nil {
			tc.t.Fatal(err)
		}
		if len(plan.Blockers) == 0 && !strings.Contains(plan.Steps[0].Now, "would fail") {
			if err := tc.store.RequestOp(ctx, plan.Op, snap.Rev); err != nil {
				tc.t.Fatal(err)
			}
			return plan.Op
		}
		// Wait for the next report, then plan again.
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		<-tc.obs.Watch(wctx, tc.store.Keys().Sites(), clientv3.WithPrefix(), clientv3.WithRev(snap.Rev+1))
		cancel()
		if ctx.Err() != nil {
			tc.t.Fatalf("the runbook never became possible: %q %s", plan.Blockers, plan.Steps[0].Now)
		}
	}
}

// waitOp waits until the op satisfies cond, and returns it.
func (tc *testCluster) waitOp(ctx context.Context, id, what string, cond func(*site.Op) bool) *site.Op {
	tc.t.Helper()
	resp, _ := waitKey(tc.t, ctx, tc.obs, tc.store.Keys().Op(id), what, func(r *clientv3.GetResponse) bool {
		var op site.Op
		return present(r) && json.Unmarshal(r.Kvs[0].Value, &op) == nil && cond(&op)
	})
	op := decodeKV[site.Op](tc.t, resp)
	return &op
}

const confirmRunbook = `
name: move-web
params:
  - {name: to, type: site, required: true}
steps:
  - id: target-healthy
    action: check-site
    with: {site: "${to}"}
  - id: go-ahead
    action: confirm
    with: {message: "move web to ${to}?"}
  - id: move
    action: switchover
    with: {service: web, to: "${to}"}
  - id: web-moved
    action: wait
    until: {service_at: {service: web, site: "${to}"}}
    timeout: 30s
`

// TestRunbookConfirmSurvivesCoordinatorLoss runs a runbook that stops at a
// confirm step; its coordinator is killed while it waits there; the
// successor waits on, and after the approval carries out the rest: the
// switchover planned when reached.
func TestRunbookConfirmSurvivesCoordinatorLoss(t *testing.T) {
	tc := newTestCluster(t)
	ctx := ctxFor(t, 90*time.Second)
	tc.start("c", startOptions{})
	if got := tc.coordinator(ctx); got != "c" {
		t.Fatalf("coordinator is %s, want c (started first)", got)
	}
	tc.start("a", startOptions{})
	tc.start("b", startOptions{})
	before := tc.bootstrapped(ctx)
	if before["web"].Site != "a" {
		t.Fatalf("web bootstrapped at %s, want a", before["web"].Site)
	}
	op := tc.planRunbook(ctx, confirmRunbook, map[string]string{"to": "b"})
	if op.Kind != failover.KindRunbook || op.Runbook != "move-web" || len(op.Steps) != 4 {
		t.Fatalf("planned op %s, runbook %q, %d steps; want a runbook op move-web of 4 steps (the switchover is planned when reached)", op.Kind, op.Runbook, len(op.Steps))
	}
	tc.waitOp(ctx, op.ID, "waiting at go-ahead", func(op *site.Op) bool {
		st := op.Steps[1]
		return st.Status == site.StepRunning && strings.Contains(st.Detail, "waiting for a person to approve: move web to b?")
	})
	tc.kill("c")
	// Its session runs out; another controller coordinates, and the op
	// waits on.
	waitKeys(t, ctx, tc.obs, tc.store.Keys().Election(), true, "a coordinator other than c", func(r *clientv3.GetResponse) bool {
		first := -1
		for i, kv := range r.Kvs {
			if first < 0 || kv.CreateRevision < r.Kvs[first].CreateRevision {
				first = i
			}
		}
		return first >= 0 && string(r.Kvs[first].Value) != "c"
	})
	if _, err := tc.store.ApproveStep(ctx, op.ID, site.Request{By: "operator:ann", Reason: "CHG-1"}); err != nil {
		t.Fatal(err)
	}
	done := tc.finishedOp(ctx, op.ID)
	if done.Outcome != site.OpSucceeded {
		t.Fatalf("op %s %s: %s", done.ID, done.Outcome, done.Error)
	}
	if len(done.Coordinators) < 2 || done.Coordinators[0] != "c" {
		t.Errorf("coordinators %v: want c, then its successor", done.Coordinators)
	}
	confirm := done.Steps[1]
	if confirm.Status != site.StepDone || confirm.Approved == nil || confirm.Approved.By != "operator:ann" || !strings.Contains(confirm.Detail, "approved by operator:ann") {
		t.Errorf("confirm step: %s, approved %+v, %q; want done, approved by operator:ann", confirm.Status, confirm.Approved, confirm.Detail)
	}
	var expanded int
	for _, st := range done.Steps {
		if st.ID == "move" {
			expanded++
			if st.Params["kind"] != failover.KindSwitchover || st.Status != site.StepDone {
				t.Errorf("step %s of move: kind %q, %s (%s); want a done switchover step", st.Name, st.Params["kind"], st.Status, st.Detail)
			}
		}
	}
	if expanded < 3 {
		t.Errorf("the switchover became %d steps; want its check, assign and await steps", expanded)
	}
	if a := tc.waitAssigned(ctx, "web", "b"); a.Op != op.ID {
		t.Errorf("web was assigned to b by op %s, want the runbook's %s", a.Op, op.ID)
	}
}

const rollbackRunbook = `
name: fail-and-roll-back
params:
  - {name: hook, type: string, required: true}
groups:
  - name: first
    steps:
      - id: a-healthy
        action: check-site
        with: {site: a}
      - id: a-goes-down
        action: wait
        until: {site_down: a}
        timeout: 1s
        on_failure: [tell, settle]
      - id: never
        action: wait
        with: {for: 1s}
rollback:
  - id: tell
    action: notify
    with: {url: "${hook}", message: "a did not go down"}
  - id: unused
    action: wait
    with: {for: 1h}
  - id: settle
    action: wait
    with: {for: 10ms}
`

// TestRunbookFailureRunsItsRollback runs a runbook whose step times out:
// the rollback steps it names run (one posts to a webhook, from the
// coordinator), the others and the rest of the runbook do not, and the op
// fails, saying both.
func TestRunbookFailureRunsItsRollback(t *testing.T) {
	hooks := make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		hooks <- body
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	tc := newTestCluster(t)
	ctx := ctxFor(t, 60*time.Second)
	tc.startAll()
	tc.bootstrapped(ctx)
	op := tc.planRunbook(ctx, rollbackRunbook, map[string]string{"hook": srv.URL})
	done := tc.finishedOp(ctx, op.ID)
	if done.Outcome != site.OpFailed || done.RollingBack != "a-goes-down" ||
		!strings.Contains(done.Error, "step a-goes-down failed: timed out after 1s") || !strings.HasSuffix(done.Error, "rolled back") {
		t.Fatalf("op %s, rolling back %q, error %q; want failed after a-goes-down timed out, rolled back", done.Outcome, done.RollingBack, done.Error)
	}
	want := map[string]site.StepStatus{
		"a-healthy": site.StepDone, "a-goes-down": site.StepFailed, "never": site.StepSkipped,
		"tell": site.StepDone, "unused": site.StepSkipped, "settle": site.StepDone,
	}
	for _, st := range done.Steps {
		if st.Status != want[st.ID] {
			t.Errorf("step %s: %s (%s), want %s", st.ID, st.Status, st.Detail, want[st.ID])
		}
	}
	select {
	case body := <-hooks:
		if body["op"] != op.ID || body["step"] != "tell" || body["message"] != "a did not go down" {
			t.Errorf("the webhook got %v", body)
		}
	default:
		t.Error("the rollback's notify step ended done, but the webhook got nothing")
	}
}
