package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// newFailStaticCluster runs three controllers with the fail-static checks
// on, and waits until the cluster has settled: both services assigned
// and no op under way.
func newFailStaticCluster(t *testing.T, opts map[string]startOptions) (*testCluster, map[string]*runningController, map[string]site.Assignment) {
	t.Helper()
	tc := newTestClusterWith(t, sitetest.Options{Services: testServices(), FailStatic: true})
	ctx := ctxFor(t, 30*time.Second)
	running := map[string]*runningController{}
	for _, s := range []string{"a", "b", "c"} {
		running[s] = tc.start(s, opts[s])
	}
	before := tc.bootstrapped(ctx)
	tc.waitOpsFinished(ctx)
	for _, r := range running {
		waitMember(t, ctx, r, "up", func(i infoView) bool { return i.State == site.ControllerUp })
		for len(r.changes) > 0 { // the joins: the tests look at changes after
			<-r.changes
		}
	}
	return tc, running, before
}

// infoView is what waitMember tests.
type infoView struct {
	State      site.ControllerState
	FailStatic string
}

// waitMember waits until the controller's membership satisfies cond.
func waitMember(t *testing.T, ctx context.Context, r *runningController, what string, cond func(infoView) bool) {
	t.Helper()
	for {
		changed := r.ctrl.Member().Changed()
		i := r.ctrl.Member().Info()
		if cond(infoView{State: i.State, FailStatic: i.FailStatic}) {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("site %s never %s (now %s: %s; fail static %q)", r.site, what, i.State, i.Reason, i.FailStatic)
		}
	}
}

func failingStatic(i infoView) bool { return i.State == site.ControllerUp && i.FailStatic != "" }
func renewing(i infoView) bool      { return i.State == site.ControllerUp && i.FailStatic == "" }

// waitOpsFinished waits until every op in the journal has finished.
func (tc *testCluster) waitOpsFinished(ctx context.Context) {
	tc.t.Helper()
	tc.waitPrefix(ctx, tc.store.Keys().Ops(), "every op finished", func(r *clientv3.GetResponse) bool {
		for _, kv := range r.Kvs {
			var op site.Op
			if json.Unmarshal(kv.Value, &op) != nil || !op.Finished() {
				return false
			}
		}
		return true
	})
}

// waitPrefix waits, on a watch, until every key under prefix, read
// together, satisfies cond.
func (tc *testCluster) waitPrefix(ctx context.Context, prefix, what string, cond func(*clientv3.GetResponse) bool) {
	tc.t.Helper()
	for ctx.Err() == nil {
		resp, err := tc.obs.Get(ctx, prefix, clientv3.WithPrefix())
		if err == nil && cond(resp) {
			return
		}
		if err != nil {
			continue // the Get fails only while etcd has no quorum, and ctx bounds it
		}
		wctx, cancel := context.WithCancel(ctx)
		for wr := range tc.obs.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil || len(wr.Events) > 0 {
				break
			}
		}
		cancel()
	}
	tc.t.Fatalf("waiting for %s under %s: %v", what, prefix, ctx.Err())
}

// noStateChange fails the test if any controller changes state (a
// self-fence above all) for d.
func noStateChange(t *testing.T, running map[string]*runningController, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return
		case ch := <-running["a"].changes:
			t.Errorf("site a: %s -> %s (%s)", ch.From, ch.To, ch.Reason)
		case ch := <-running["b"].changes:
			t.Errorf("site b: %s -> %s (%s)", ch.From, ch.To, ch.Reason)
		case ch := <-running["c"].changes:
			t.Errorf("site c: %s -> %s (%s)", ch.From, ch.To, ch.Reason)
		}
	}
}

// unchanged checks that etcd holds what it held before etcd failed: the
// same assignments, no fence, no op but the ones before, and no site
// swept.
func (tc *testCluster) unchanged(ctx context.Context, before map[string]site.Assignment, opsBefore int) {
	t := tc.t
	t.Helper()
	for name, a := range before {
		got := tc.waitAssigned(ctx, name, a.Site)
		if got.Epoch != a.Epoch {
			t.Errorf("service %s: epoch %d, was %d: it moved", name, got.Epoch, a.Epoch)
		}
	}
	resp, err := tc.obs.Get(ctx, tc.store.Keys().Fences(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("%d fences after etcd came back; want none", resp.Count)
	}
	ops, err := tc.store.Ops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != opsBefore {
		for _, op := range ops {
			t.Logf("op %s %s %v", op.ID, op.Kind, op.Params)
		}
		t.Errorf("%d ops after etcd came back, %d before: something moved", len(ops), opsBefore)
	}
	events, err := tc.store.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Kind == "site-silent" {
			t.Errorf("a site was swept: %s", e.Message)
		}
	}
}

// failStaticEvents waits until every site has recorded that it failed
// static, and returns the events.
func (tc *testCluster) failStaticEvents(ctx context.Context) map[string]site.Event {
	tc.t.Helper()
	got := map[string]site.Event{}
	tc.waitPrefix(ctx, tc.store.Keys().Events(), "a fail-static event from every site", func(r *clientv3.GetResponse) bool {
		for _, kv := range r.Kvs {
			var e site.Event
			if json.Unmarshal(kv.Value, &e) == nil && e.Kind == "fail-static" {
				got[e.Site] = e
			}
		}
		return len(got) == 3
	})
	return got
}

// TestFailStaticQuorumLost: two etcd members stop while their controllers
// and the network live. No site self-fences: each asks the others, all
// answer that etcd has no leader, and all serve on in their roles, with
// the alarm up (health, metric). When the members return, the sites renew
// again, nothing has moved, and each records the episode.
func TestFailStaticQuorumLost(t *testing.T) {
	tc, running, before := newFailStaticCluster(t, nil)
	ctx := ctxFor(t, 60*time.Second)
	ops, err := tc.store.Ops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc.etcd.KillMember("b")
	tc.etcd.KillMember("c")
	lost := time.Now()
	for _, r := range running {
		waitMember(t, ctx, r, "failing static", failingStatic)
	}
	t.Logf("every site failing static %s after the quorum was lost", time.Since(lost))
	for _, name := range []string{"a", "b", "c"} {
		code, h := getHealth(t, tc.etcd.Config, name)
		if code != http.StatusOK || h.State != site.ControllerUp || !strings.HasPrefix(h.FailStatic, "FAIL STATIC: etcd has no working majority") || h.FailStaticSince == nil {
			t.Errorf("healthz of %s while failing static: %+v", name, h)
		}
		if v := testutil.ToFloat64(running[name].ctrl.metrics.failStatic); v != 1 {
			t.Errorf("zdt_fail_static of %s = %v, want 1", name, v)
		}
		waitMember(t, ctx, running[name], "no longer coordinating (automation frozen)", func(infoView) bool { return !running[name].ctrl.Leading() })
	}
	// Well past any deadline the leases gave: three lease TTLs.
	noStateChange(t, running, 3*tc.etcd.Config.Timings.LeaseTTL)

	tc.etcd.StartMember("b")
	tc.etcd.StartMember("c")
	for _, r := range running {
		waitMember(t, ctx, r, "renewing again", renewing)
	}
	t.Logf("every site renewing again %s after the quorum was lost", time.Since(lost))
	events := tc.failStaticEvents(ctx)
	for name, e := range events {
		if !strings.Contains(e.Message, "nothing moved") {
			t.Errorf("fail-static event of %s: %q", name, e.Message)
		}
	}
	tc.coordinator(ctx) // automation resumes
	tc.unchanged(ctx, before, len(ops))
	for _, name := range []string{"a", "b", "c"} {
		if v := testutil.ToFloat64(running[name].ctrl.metrics.failStatic); v != 0 {
			t.Errorf("zdt_fail_static of %s = %v after etcd came back, want 0", name, v)
		}
	}
}

// TestFailStaticNotWithASiteCutOff: as above, but with sites also cut off
// from the other sites' controllers: one (c), or every one from every
// other. Nobody can tell whether a silent site is cut off with a working
// majority, so every site fences itself, as without fail static, and says
// which site did not answer.
func TestFailStaticNotWithASiteCutOff(t *testing.T) {
	hole := sitetest.Blackhole(t)
	for _, tt := range []struct {
		name string
		cut  map[string]startOptions
		// silent is the site each site names as not answering.
		silent map[string]string
	}{
		{"one site cut off", map[string]startOptions{
			"a": {peerAddrs: map[string]string{"c": hole}},
			"b": {peerAddrs: map[string]string{"c": hole}},
			"c": {peerAddrs: map[string]string{"a": hole, "b": hole}},
		}, map[string]string{"a": "site c", "b": "site c", "c": "site a"}},
		{"every site cut off from every other", map[string]startOptions{
			"a": {peerAddrs: map[string]string{"b": hole, "c": hole}},
			"b": {peerAddrs: map[string]string{"a": hole, "c": hole}},
			"c": {peerAddrs: map[string]string{"a": hole, "b": hole}},
		}, map[string]string{"a": "site b", "b": "site a", "c": "site a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, running, _ := newFailStaticCluster(t, tt.cut)
			ctx := ctxFor(t, 60*time.Second)
			tc.etcd.KillMember("b")
			tc.etcd.KillMember("c")
			for name, r := range running {
				ch := r.waitChange(t, ctx, site.ControllerSelfFenced)
				if want := tt.silent[name] + " did not answer"; !strings.Contains(ch.Reason, want) {
					t.Errorf("site %s self-fenced with %q; want it to say %q", name, ch.Reason, want)
				}
				if i := r.ctrl.Member().Info(); i.FailStatic != "" {
					t.Errorf("site %s self-fenced and failing static (%s)", name, i.FailStatic)
				}
			}
		})
	}
}

// TestFailStaticAtTheQuota: etcd refuses every write (its NOSPACE alarm),
// so no beat lands while keep-alives still do. The sites fail static
// instead of fencing themselves, no sweeper ends a membership (a sweep is
// a write too), and when the alarm is cleared they beat again and nothing
// has moved.
func TestFailStaticAtTheQuota(t *testing.T) {
	tc, running, before := newFailStaticCluster(t, nil)
	ctx := ctxFor(t, 60*time.Second)
	ops, err := tc.store.Ops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.etcd.SetNoSpace(ctx, true); err != nil {
		t.Fatal(err)
	}
	for _, r := range running {
		waitMember(t, ctx, r, "failing static", failingStatic)
		if why := r.ctrl.Member().Info().FailStatic; !strings.Contains(why, "quota") {
			t.Errorf("site %s fails static because %q; want the quota named", r.site, why)
		}
	}
	noStateChange(t, running, 3*tc.etcd.Config.Timings.LeaseTTL)
	for _, name := range []string{"a", "b", "c"} {
		if resp, err := tc.obs.Get(ctx, tc.store.Keys().Alive(name)); err != nil || len(resp.Kvs) != 1 {
			t.Errorf("site %s's alive key at the quota: %v, %v", name, resp, err)
		}
	}
	if err := tc.etcd.SetNoSpace(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, r := range running {
		waitMember(t, ctx, r, "renewing again", renewing)
	}
	noStateChange(t, running, tc.etcd.Config.Timings.LeaseTTL) // no sweep right after the alarm
	tc.failStaticEvents(ctx)
	tc.unchanged(ctx, before, len(ops))
}
