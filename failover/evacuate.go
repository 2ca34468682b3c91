package failover

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// KindEvacuate is the op that empties a live site for maintenance: its
// services switch over elsewhere, its guests move, and it stays drained.
const KindEvacuate = "evacuate"

// KindUndrain is the op that makes a drained site a candidate again.
const KindUndrain = "undrain"

const (
	// StepDrain marks the site drained: from then on no failover,
	// switchover target choice or guest placement picks it while another
	// site will do.
	StepDrain = "drain"
	// StepUndrain removes the site's drain record.
	StepUndrain = "undrain"
)

// PlanEvacuate is the evacuate op of a site, or, when it may not run now,
// every reason why. Each service the site holds goes to the first site in
// its order that is up, not drained, and whose member may take over
// (ChooseTarget), with the services of its replication group, by the steps
// of a switchover (check, assign, wait for the promotion, roll back if it
// does not come); then the guests are placed again, off the drained site.
// The site is drained first, so that nothing is placed or failed over to
// it meanwhile.
func PlanEvacuate(cfg *config.Cluster, snap *site.Snapshot, name, who, reason string, within time.Duration, now time.Time) (*site.Op, []string) {
	if _, ok := cfg.Site(name); !ok {
		return nil, []string{fmt.Sprintf("site %q is not in the config (sites: %s)", name, strings.Join(cfg.SiteNames(), ", "))}
	}
	if !snap.Up(name) {
		return nil, []string{fmt.Sprintf("site %s is %s: only a site that is up is evacuated (a dark site is failed over)", name, snap.StateOf(name))}
	}
	var why []string
	for _, op := range snap.UnfinishedOps() {
		if op.Params["site"] == name || op.Params["from"] == name || op.Params["to"] == name {
			why = append(why, fmt.Sprintf("op %s (%s, by %s) is still running for site %s: one op at a time; wait for it (zdt ops watch %s) or abort it", op.ID, op.Kind, op.Who, name, op.ID))
		}
	}
	if within <= 0 {
		within = awaitLimit(cfg)
	}
	// The targets are chosen as if the site were drained already.
	drained := *snap
	drained.Drains = maps.Clone(snap.Drains)
	if drained.Drains == nil {
		drained.Drains = map[string]site.Drain{}
	}
	drained.Drains[name] = site.Drain{Site: name}
	steps := []site.Step{{Name: StepDrain, Params: map[string]string{"site": name, "reason": reason}, Status: site.StepPending}}
	var moved []string
	var movedSvcs []config.Service
	done := map[string]bool{}
	for _, svc := range cfg.Services {
		if a, ok := snap.Assignments[svc.Name]; !ok || a.Site != name || done[svc.Name] {
			continue
		}
		unit := movesWith(cfg, svc)
		for _, u := range unit {
			done[u.Name] = true
		}
		// A site every service of the unit may run at.
		common := svc
		common.Sites = slices.DeleteFunc(slices.Clone(svc.Sites), func(s string) bool {
			return slices.ContainsFunc(unit, func(u config.Service) bool { return !slices.Contains(u.Sites, s) })
		})
		to, whyNot := ChooseTarget(cfg, common, &drained, name)
		if to == "" {
			why = append(why, whyNot)
			continue
		}
		if b := SwitchoverBlockers(cfg, snap, unit, name, to, ""); len(b) > 0 {
			why = append(why, b...)
			continue
		}
		names := serviceNames(unit)
		moved = append(moved, names...)
		movedSvcs = append(movedSvcs, unit...)
		steps = append(steps, site.Step{Name: StepCheckSwitchover, Params: map[string]string{"services": strings.Join(names, ","), "from": name, "to": to}, Status: site.StepPending})
		for _, u := range unit {
			steps = append(steps, site.Step{Name: StepAssign, Params: map[string]string{"service": u.Name, "from": name, "to": to}, Status: site.StepPending})
		}
		for _, g := range groupsOf(unit) {
			steps = append(steps, site.Step{Name: StepAwaitPrimary, Params: map[string]string{
				"group": g, "services": strings.Join(names, ","), "from": name, "to": to, "within": within.String(),
			}, Status: site.StepPending})
		}
	}
	if len(why) > 0 {
		return nil, why
	}
	steps = append(steps, site.Step{Name: StepPlace, Params: map[string]string{"site": name}, Status: site.StepPending})
	steps = append(steps, awaitSteps(movedSvcs, false, len(cfg.Guests()) > 0, true, within)...)
	return &site.Op{
		ID:      site.NewOpID(now, KindEvacuate),
		Kind:    KindEvacuate,
		Params:  map[string]string{"site": name, "services": strings.Join(moved, ","), "reason": reason},
		Who:     who,
		Created: now,
		Outcome: site.OpRunning,
		Steps:   steps,
	}, nil
}

// PlanUndrain is the undrain op of a site, or every reason why it may not
// run now. Undraining moves nothing: the site is a candidate again for
// failovers, switchovers and guest placement.
func PlanUndrain(cfg *config.Cluster, snap *site.Snapshot, name, who string, now time.Time) (*site.Op, []string) {
	if _, ok := cfg.Site(name); !ok {
		return nil, []string{fmt.Sprintf("site %q is not in the config (sites: %s)", name, strings.Join(cfg.SiteNames(), ", "))}
	}
	var why []string
	if !snap.Drained(name) {
		why = append(why, fmt.Sprintf("site %s is not drained: there is nothing to undrain", name))
	}
	for _, op := range snap.UnfinishedOps() {
		if op.Params["site"] == name {
			why = append(why, fmt.Sprintf("op %s (%s, by %s) is still running for site %s: wait for it (zdt ops watch %s)", op.ID, op.Kind, op.Who, name, op.ID))
		}
	}
	if len(why) > 0 {
		return nil, why
	}
	return &site.Op{
		ID:      site.NewOpID(now, KindUndrain),
		Kind:    KindUndrain,
		Params:  map[string]string{"site": name},
		Who:     who,
		Created: now,
		Outcome: site.OpRunning,
		Steps:   []site.Step{{Name: StepUndrain, Params: map[string]string{"site": name}, Status: site.StepPending}},
	}, nil
}

// drainStep marks the site drained.
func drainStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	if d, ok := snap.Drains[name]; ok && d.Op == r.op.ID {
		return done("site %s drained", name)
	}
	if !snap.Up(name) {
		return stepResult{kind: stepAbort, detail: fmt.Sprintf("site %s is %s: it is failed over, not evacuated", name, snap.StateOf(name))}
	}
	if err := r.c.cfg.Store.PutDrain(ctx, r.g, site.Drain{Site: name, Op: r.op.ID, By: r.op.Who, At: r.c.now(), Reason: st.Params["reason"]}); err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	return done("site %s drained: no failover, switchover or guest placement picks it while another site will do", name)
}

// undrainStep removes the site's drain record.
func undrainStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	if err := r.c.cfg.Store.DeleteDrain(ctx, r.g, name); err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	return done("site %s is no longer drained", name)
}
