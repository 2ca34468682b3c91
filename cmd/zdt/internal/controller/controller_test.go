package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// nextInOrder is the site a service moves to when dark goes dark and every
// other site is up: the first other site in its order.
func nextInOrder(order []string, dark string) string {
	for _, s := range order {
		if s != dark {
			return s
		}
	}
	return ""
}

// checkFailover waits for the failover of a dark site and checks it: the
// fence is committed before the new assignment, each of the site's services
// moved to the next site in its order with a larger epoch, and the op is
// journaled as succeeded with every step done.
func (tc *testCluster) checkFailover(ctx context.Context, dark string, before map[string]site.Assignment) *site.Op {
	t := tc.t
	t.Helper()
	resp, _ := waitKey(t, ctx, tc.obs, tc.store.Keys().Fence(dark), "fence of "+dark, present)
	fence := decodeKV[site.Fence](t, resp)
	fenceRev := resp.Kvs[0].ModRevision
	op := tc.finishedOp(ctx, fence.Op)
	if op.Outcome != site.OpSucceeded || op.Kind != "failover" || op.Params["site"] != dark {
		t.Fatalf("op %s: kind %s site %s outcome %s (%s); want a succeeded failover of %s", op.ID, op.Kind, op.Params["site"], op.Outcome, op.Error, dark)
	}
	moved := 0
	for _, svc := range testServices() {
		prev := before[svc.Name]
		if prev.Site != dark {
			continue
		}
		moved++
		want := nextInOrder(svc.Sites, dark)
		a, err := tc.store.Assignment(ctx, svc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Site != want || a.Op != op.ID {
			t.Errorf("service %s: assigned to %s by op %s; want %s by op %s", svc.Name, a.Site, a.Op, want, op.ID)
		}
		if a.Epoch <= prev.Epoch || a.Epoch <= fenceRev {
			t.Errorf("service %s: epoch %d; want above the old epoch %d and the fence's revision %d", svc.Name, a.Epoch, prev.Epoch, fenceRev)
		}
	}
	if moved == 0 {
		t.Fatalf("site %s served no service; the test proves nothing", dark)
	}
	want := 2 + moved + 1 // fence, fence-resources, assignments, await-prefixes
	if len(tc.etcd.Config.Guests()) > 0 {
		want += 2 // place, await-guests
	}
	if len(op.Steps) != want {
		t.Errorf("op has %d steps, want fence, fence-resources, %d assignments, a place and an await-guests step if there are guests, and an await-prefixes step: %+v", len(op.Steps), moved, op.Steps)
	}
	for _, st := range op.Steps {
		// These sites have no BGP speaker: there is no prefix to wait for.
		skippable := st.Name == failover.StepAwaitPrefixes
		if (st.Status != site.StepDone && !(skippable && st.Status == site.StepSkipped)) || st.Started.IsZero() || st.Ended.Before(st.Started) {
			t.Errorf("step %s %v: status %s, started %s, ended %s", st.Name, st.Params, st.Status, st.Started, st.Ended)
		}
	}
	return op
}

func (tc *testCluster) bootstrapped(ctx context.Context) map[string]site.Assignment {
	return map[string]site.Assignment{
		"web": tc.waitAssigned(ctx, "web", "a"),
		"db":  tc.waitAssigned(ctx, "db", "b"),
	}
}

// siteServing returns a site other than not that serves a service.
func siteServing(as map[string]site.Assignment, not string) string {
	for _, name := range []string{"web", "db"} {
		if s := as[name].Site; s != not {
			return s
		}
	}
	return ""
}

func TestSiteLossFencesAndReassigns(t *testing.T) {
	tc := newTestCluster(t)
	tc.startAll()
	ctx := ctxFor(t, 60*time.Second)
	before := tc.bootstrapped(ctx)
	victim := siteServing(before, tc.coordinator(ctx))

	tc.kill(victim)
	tc.etcd.KillMember(victim)
	op := tc.checkFailover(ctx, victim, before)
	t.Logf("op %s: %+v", op.ID, op.Steps)

	// The site comes back, member and controller: it stays fenced.
	tc.etcd.StartMember(victim)
	back := tc.start(victim, startOptions{})
	ch := back.waitChange(t, ctx, site.ControllerFenced)
	t.Logf("returned site %s: %s", victim, ch.Reason)
	snap, err := tc.store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.StateOf(victim); got != site.SiteFenced {
		t.Errorf("returned site %s: state %s, want fenced", victim, got)
	}
	if _, ok := snap.Alive[victim]; !ok {
		t.Errorf("returned site %s holds no lease; it should be reachable and fenced", victim)
	}
	if n := len(snap.Ops); n != 2 { // bootstrap + failover: no new op
		t.Errorf("journal holds %d ops after the site returned, want 2", n)
	}
	assertHealth(t, tc.etcd.Config, victim, http.StatusServiceUnavailable, site.ControllerFenced)

	coord := tc.coordinator(ctx)
	assertMetrics(t, tc.etcd.Config, coord, []string{
		`zdt_coordinator{site="` + coord + `"} 1`,
		`zdt_sites{reporter="` + coord + `",state="fenced"} 1`,
		`zdt_sites{reporter="` + coord + `",state="up"} 2`,
		`zdt_site_state{reporter="` + coord + `",site="` + victim + `",state="fenced"} 1`,
		`zdt_site_state{reporter="` + coord + `",site="` + victim + `",state="up"} 0`,
		`zdt_site_state{reporter="` + coord + `",site="` + coord + `",state="up"} 1`,
		`zdt_service_active_sites{reporter="` + coord + `",service="web"} 1`,
		`zdt_service_active_sites{reporter="` + coord + `",service="db"} 1`,
		`zdt_ops{kind="failover",outcome="succeeded",reporter="` + coord + `"} 1`,
		`zdt_controller_state{site="` + coord + `",state="up"} 1`,
	})
	assertMetrics(t, tc.etcd.Config, victim, []string{
		`zdt_coordinator{site="` + victim + `"} 0`,
		`zdt_controller_state{site="` + victim + `",state="fenced"} 1`,
	})
}

// assertMetrics checks that a controller's /metrics has each line.
func assertMetrics(t *testing.T, cfg *config.Cluster, name string, lines []string) {
	t.Helper()
	s, _ := cfg.Site(name)
	resp, err := http.Get("http://" + s.API + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if !strings.Contains(string(body), "\n"+l+"\n") {
			t.Errorf("metrics of %s lack %q", name, l)
		}
	}
}

func TestCoordinatorSiteLoss(t *testing.T) {
	tc := newTestCluster(t)
	ctx := ctxFor(t, 60*time.Second)
	// Site a starts first so that it coordinates, and it serves web.
	tc.start("a", startOptions{})
	old := tc.coordinator(ctx)
	tc.start("b", startOptions{})
	tc.start("c", startOptions{})
	before := tc.bootstrapped(ctx)
	if old != "a" {
		t.Fatalf("coordinator is %s, want a (started first)", old)
	}

	tc.kill(old)
	tc.etcd.KillMember(old)
	op := tc.checkFailover(ctx, old, before)
	if slices.Contains(op.Coordinators, old) || len(op.Coordinators) != 1 {
		t.Errorf("op run by %v; want one new coordinator, not %s", op.Coordinators, old)
	}
	if now := tc.coordinator(ctx); now == old {
		t.Errorf("coordinator is still %s", old)
	}
}

// TestCoordinatorDiesMidOp stops the coordinator between the fence and the
// reassignment; the next coordinator finishes the op from the journal.
func TestCoordinatorDiesMidOp(t *testing.T) {
	tc := newTestCluster(t)
	ctx := ctxFor(t, 90*time.Second)
	paused := make(chan string, 1)
	var pausedSite atomic.Pointer[string]
	// The first controller to reach an assign step of a failover pauses
	// there, and at every later step, until it is killed; every other
	// controller goes on.
	pause := func(name string) func(context.Context, *site.Op, int) error {
		return func(ctx context.Context, op *site.Op, step int) error {
			first := op.Kind == "failover" && op.Steps[step].Name == "assign" && pausedSite.CompareAndSwap(nil, &name)
			if p := pausedSite.Load(); !first && (p == nil || *p != name) {
				return nil
			}
			if first {
				paused <- name
			}
			<-ctx.Done()
			return ctx.Err()
		}
	}
	// Site c starts first so that it coordinates; it serves nothing, so
	// the service of the victim, a, moves to b whichever of b and c is up.
	const first, victim = "c", "a"
	tc.start(first, startOptions{beforeStep: pause(first)})
	if got := tc.coordinator(ctx); got != first {
		t.Fatalf("coordinator is %s, want %s (started first)", got, first)
	}
	tc.start("a", startOptions{beforeStep: pause("a")})
	tc.start("b", startOptions{beforeStep: pause("b")})
	before := tc.bootstrapped(ctx)

	tc.kill(victim) // its controller only: the etcd member stays, so does the quorum
	var who string
	select {
	case who = <-paused:
	case <-ctx.Done():
		t.Fatal("the coordinator never reached the assign step")
	}
	if who != first {
		t.Fatalf("site %s ran the op, want the coordinator %s", who, first)
	}
	// The fences are journaled as done; the assignment has not moved.
	if op := tc.openOp(ctx); op.Steps[0].Status != site.StepDone || op.Steps[1].Status != site.StepDone || op.Steps[2].Status != site.StepRunning {
		t.Fatalf("mid-op journal: %+v", op.Steps)
	}
	tc.kill(first)

	op := tc.checkFailover(ctx, victim, before)
	if len(op.Coordinators) != 2 || op.Coordinators[0] != first {
		t.Fatalf("op coordinators %v; want %s then its successor", op.Coordinators, first)
	}
	successor := op.Coordinators[1]
	if op.Steps[0].By != first || op.Steps[2].By != successor {
		t.Errorf("fence by %s, assign by %s; want %s then %s", op.Steps[0].By, op.Steps[2].By, first, successor)
	}
	// The successor also fails over the dead coordinator's site.
	resp, _ := waitKey(t, ctx, tc.obs, tc.store.Keys().Fence(first), "fence of "+first, present)
	if f := decodeKV[site.Fence](t, resp); f.By != successor {
		t.Errorf("site %s fenced by %s, want %s", first, f.By, successor)
	}
}

func (tc *testCluster) openOp(ctx context.Context) *site.Op {
	tc.t.Helper()
	ops, err := tc.store.UnfinishedOps(ctx)
	if err != nil || len(ops) != 1 {
		tc.t.Fatalf("unfinished ops: %v %v", ops, err)
	}
	return ops[0]
}

// TestSelfFenceBeforeLeaseExpiry cuts a controller off from etcd and shows,
// with timestamps, that it fenced itself well before the majority saw its
// lease expire; when it reconnects it finds itself fenced and stays so.
// With the fail-static checks on, the cut-off site still reaches the other
// sites' controllers, and they tell it of the working majority: it
// fences itself all the same.
func TestSelfFenceBeforeLeaseExpiry(t *testing.T) {
	for _, failStatic := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail_static=%t", failStatic), func(t *testing.T) { testSelfFenceBeforeLeaseExpiry(t, failStatic) })
	}
}

func testSelfFenceBeforeLeaseExpiry(t *testing.T, failStatic bool) {
	tc := newTestClusterWith(t, sitetest.Options{Services: testServices(), FailStatic: failStatic})
	ctx := ctxFor(t, 60*time.Second)
	var proxies []interface {
		Cut()
		Heal()
	}
	var endpoints []string
	for _, s := range tc.etcd.Config.Sites {
		p := tc.etcd.NewProxy(s.Name)
		proxies = append(proxies, p)
		endpoints = append(endpoints, p.URL)
	}
	const victim = "c"
	cut := tc.start(victim, startOptions{endpoints: endpoints})
	tc.start("a", startOptions{})
	tc.start("b", startOptions{})
	tc.bootstrapped(ctx)
	aliveKey := tc.store.Keys().Alive(victim)
	waitKey(t, ctx, tc.obs, aliveKey, "site c alive", present)
	cut.waitChange(t, ctx, site.ControllerUp)

	expired := make(chan time.Time, 1)
	go func() {
		_, at := waitKey(t, ctx, tc.obs, aliveKey, "lease of c expired", absent)
		expired <- at
	}()
	cutAt := time.Now()
	for _, p := range proxies {
		p.Cut()
	}
	fenced := cut.waitChange(t, ctx, site.ControllerSelfFenced)
	var expiredAt time.Time
	select {
	case expiredAt = <-expired:
	case <-ctx.Done():
		t.Fatal("the majority never saw the lease expire")
	}
	margin := expiredAt.Sub(fenced.At)
	t.Logf("cut at %s; self-fenced at +%s; majority saw the lease expire at +%s; margin %s",
		cutAt.Format(time.RFC3339Nano), fenced.At.Sub(cutAt), expiredAt.Sub(cutAt), margin)
	if margin < 200*time.Millisecond {
		t.Fatalf("self-fenced only %s before the lease expired at the majority; want at least 200ms", margin)
	}
	if failStatic && !strings.Contains(fenced.Reason, "a working etcd majority may fence this site") {
		t.Errorf("self-fence reason %q does not say the other sites saw a working majority", fenced.Reason)
	}

	// The coordinator fences the dark site; the site reconnects and stays
	// fenced.
	waitKey(t, ctx, tc.obs, tc.store.Keys().Fence(victim), "fence of c", present)
	for _, p := range proxies {
		p.Heal()
	}
	ch := cut.waitChange(t, ctx, site.ControllerFenced)
	t.Logf("reconnected: %s", ch.Reason)
	waitKey(t, ctx, tc.obs, aliveKey, "site c alive again", present)
	if st := cut.ctrl.Member().Info().State; st != site.ControllerFenced {
		t.Errorf("reconnected site c is %s, want fenced", st)
	}
	assertHealth(t, tc.etcd.Config, victim, http.StatusServiceUnavailable, site.ControllerFenced)
}

// assertHealth checks a controller's /healthz.
func assertHealth(t *testing.T, cfg *config.Cluster, name string, code int, state site.ControllerState) {
	t.Helper()
	got, h := getHealth(t, cfg, name)
	if got != code || h.State != state || h.Site != name {
		t.Errorf("healthz of %s: %d %+v; want %d with state %s", name, got, h, code, state)
	}
}

// getHealth reads a controller's /healthz: its status code and body.
func getHealth(t *testing.T, cfg *config.Cluster, name string) (int, Health) {
	t.Helper()
	s, _ := cfg.Site(name)
	resp, err := http.Get("http://" + s.API + "/healthz")
	if err != nil {
		t.Fatalf("healthz of %s: %v", name, err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("healthz of %s: %v", name, err)
	}
	return resp.StatusCode, h
}
