package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site"
)

// TestNetnsCoordinatorKilledMidSwitchover: while two clients write to web
// through the upstream, web is switched over, and the coordinator's
// controller is killed (SIGKILL; its etcd member with it, its PostgreSQL
// and libvirtd live on) as the op moves web's prefixes. Its site is failed
// over (with db's primary, if it held it), the next coordinator finishes
// the switchover from the journal, and the clients end up served by the
// target. The checkers find nothing: no acknowledged write lost, the
// database's ids for both clients' writes linearizable, the killed site
// answering nothing after the kill and the old one nothing after the op
// ended, only the target, and, once the killed
// site is back and failed back, one primary, every guest once, the
// upstream's paths at the active sites.
func TestNetnsCoordinatorKilledMidSwitchover(t *testing.T) {
	s, ctx := startNetnsLab(t)
	serviceAnswers(ctx, t, s.l, "web", "a")
	store := site.NewStore(s.cli, s.l.Cluster())
	snap, err := store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from, coord := snap.Assignments["web"].Site, snap.Coordinator
	if coord == from {
		// Killing the coordinator would take web's site down: a site
		// loss, not this test. Move web away first.
		to := otherSite(s.l.SiteNames(), from, "")
		run(t, s.zdt, "switchover", "--service", "web", "--to", to, "--config", s.l.ConfigPath(), "--wait", "--timeout", "60s")
		serviceAnswers(ctx, t, s.l, "web", to)
		from = to
	}
	to := otherSite(s.l.SiteNames(), from, coord)
	probe, stop := startClient(ctx, t, s.l, "netns-"+t.Name())
	other, stopOther := startClient(ctx, t, s.l, "netns-"+t.Name()+"-2")
	waitServedBy(ctx, t, probe, "", 50)

	out := run(t, s.zdt, "switchover", "--service", "web", "--to", to, "--config", s.l.ConfigPath(), "-o", "json")
	var req struct{ Op *site.Op }
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.Op == nil {
		t.Fatalf("zdt switchover -o json: %v\n%s", err, out)
	}
	id := req.Op.ID
	reached := waitStepReached(ctx, t, s.cli, s.keys, id, failover.StepMovePrefixes)
	run(t, s.zdt, "lab", "site", coord, "crash", "--dir", s.l.Dir())
	killed := time.Now()
	t.Logf("switchover %s of web from %s to %s; coordinator %s killed with step %s %s", id, from, to, coord, failover.StepMovePrefixes, reached)

	op := waitOpOutcome(ctx, t, s.cli, s.keys, id)
	if op.Outcome != site.OpSucceeded {
		t.Fatalf("the switchover %s: %s; steps %+v", op.Outcome, op.Error, op.Steps)
	}
	switch {
	case len(op.Coordinators) >= 2 && op.Coordinators[0] == coord:
	case slices.Equal(op.Coordinators, []string{coord}) && op.Ended.Before(killed):
		t.Logf("the op ended %s before the kill landed", killed.Sub(op.Ended).Round(time.Millisecond))
	default:
		t.Errorf("the op was run by %v; want %s, then another", op.Coordinators, coord)
	}
	if taker := waitServedBy(ctx, t, probe, coord, 100); taker != to {
		t.Errorf("the client is served by %s; want %s, the switchover's target", taker, to)
	}
	waitServedBy(ctx, t, other, coord, 20)
	res, otherRes := stop(), stopOther()
	logClient(t, res)
	for _, p := range []*drill.Probe{probe, other} {
		if wrong := drill.CheckTakeover(p.History(), from, op.Ended, time.Time{}); len(wrong) > 0 {
			t.Errorf("a client's history after the switchover ended:\n  %s", strings.Join(wrong, "\n  "))
		}
		for _, r := range p.History() {
			if r.Err == nil && r.Site == coord && !r.Start.Before(killed) {
				t.Errorf("request %d, sent %s after the kill, was answered by the killed coordinator's site %s", r.Seq, r.Start.Sub(killed).Round(time.Millisecond), coord)
			}
		}
	}
	if wrong := drill.CheckSequence(probe.History(), other.History()); len(wrong) > 0 {
		t.Errorf("the clients' writes: %s", strings.Join(wrong, "; "))
	}
	for _, r := range []*drill.ProbeResult{res, otherRes} {
		if r.Missing != 0 || r.Acknowledged == 0 {
			t.Errorf("%d of %d acknowledged writes of %s are missing; want none lost with a synchronous group", r.Missing, r.Acknowledged, r.Target)
		}
	}

	// The killed site: fenced by its failover, back fenced, failed back.
	waitKey(ctx, t, s.cli, s.keys.Fence(coord), func(int64) bool { return true })
	run(t, s.zdt, "lab", "site", coord, "up", "--dir", s.l.Dir())
	waitUntil(ctx, t, s.cli, s.keys, "site "+coord+" fails back", func() ([]string, error) {
		out, err := exec.CommandContext(ctx, s.zdt, "failback", "--site", coord, "--config", s.l.ConfigPath(), "--wait", "--timeout", "30s").CombinedOutput()
		if err != nil {
			return []string{fmt.Sprintf("zdt failback --site %s: %v\n%s", coord, err, out)}, nil
		}
		return nil, nil
	})
	waitStatus(ctx, t, s.cli, s.zdt, s.l, "the cluster settled after the switchover and the failback", func(st labStatus) []string {
		return append(finalStateWrong(s, st), st.activeAt("web", to)...)
	})
}
