package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestLabFenceConfirmation runs a lab whose failovers wait for a person
// (fencing.require_confirmation) and takes site a down whole (SIGKILL of
// its controller, PostgreSQL server and libvirtd): its failover cannot
// fence a's resources from outside, so it waits with web still at a, and
// Prometheus's ZdtFailoverStuck (its threshold cut from 5 minutes to 2s)
// fires for it. The lab's admin confirms through the API that a is dark;
// the failover then moves web to b and succeeds, and the alert clears.
func TestLabFenceConfirmation(t *testing.T) {
	promBin := prometheusBinary(t) // before the lab: without it, fail fast
	s, ctx := startSettledLabWith(t, "127.0.26.0", 240*time.Second, []string{"--require-confirmation"}, "b", "c")
	zdt, l, keys, cli := s.zdt, s.l, s.keys, s.cli
	if a := assignmentOf(ctx, t, cli, keys, "web"); a.Site != "a" {
		t.Fatalf("web is at %q; the test needs it at a", a.Site)
	}
	prom, x := startLabPrometheus(ctx, t, l, promBin, "127.0.26.9:9090")
	stuck := x.expr("ZdtFailoverStuck", "> 300", "> 2")
	prom.waitQuery(ctx, t, "every controller scraped", `sum(up{job="zdt"})`, valueIs(3))
	if got, err := prom.query(ctx, stuck); err != nil || len(got) > 0 {
		t.Fatalf("before a goes down, %s gives %v (%v); want nothing", stuck, got, err)
	}

	run(t, zdt, "lab", "site", "a", "down", "--dir", l.Dir())
	waitKey(ctx, t, cli, keys.Fence("a"), func(int64) bool { return true })
	opID := etcdValue[site.Fence](ctx, t, cli, keys.Fence("a"), "the fence of a").Op
	waitUntil(ctx, t, cli, keys, "the failover of a waits for a person", func() ([]string, error) {
		op, err := readOp(ctx, cli, keys, opID)
		if err != nil {
			return nil, err
		}
		for _, st := range op.Steps {
			if st.Name == "fence-resources" && st.Status == site.StepRunning && strings.Contains(st.Detail, "waiting for an operator") {
				return nil, nil
			}
		}
		return []string{"not waiting yet"}, nil
	})
	prom.waitQuery(ctx, t, "ZdtFailoverStuck of the waiting failover", stuck,
		has(map[string]string{"op": opID, "kind": "failover", "step": "fence-resources"}))
	if a := assignmentOf(ctx, t, cli, keys, "web"); a.Site != "a" {
		t.Fatalf("while the failover waits, web is at %s; want it still at a", a.Site)
	}

	out, errOut, code := runAs(ctx, t, l, zdt, "admin", "fence", "confirm", "--site", "a", "-o", "json", "--config", l.ConfigPath())
	var res site.FenceConfirmation
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Action != site.FenceConfirmed ||
		res.Fence.Confirmed == nil || res.Fence.Confirmed.By != "api:admin" || !res.RequireConfirmation {
		t.Fatalf("zdt fence confirm --site a as the admin: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if op := waitOpOutcome(ctx, t, cli, keys, opID); op.Outcome != site.OpSucceeded {
		t.Fatalf("the failover of a %s after the confirmation: %s", op.Outcome, op.Error)
	}
	if a := assignmentOf(ctx, t, cli, keys, "web"); a.Site != "b" {
		t.Errorf("after the failover, web is at %s; want b", a.Site)
	}
	prom.waitQuery(ctx, t, "ZdtFailoverStuck ended with the failover", stuck, isEmpty)
}
