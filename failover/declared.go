package failover

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

const (
	// StepDeclare fences a site that may still hold its lease: an operator
	// declared it dark (it is up, but its storage or network is broken).
	StepDeclare = "declare"
	// StepAwaitSelfFence waits until the declared site's controller has
	// fenced itself (it reports so), or its lease is gone, before anything
	// of it is taken over; after a bound it goes on, and the outside fence
	// that follows fences what still answers.
	StepAwaitSelfFence = "await-self-fence"
)

// DeclareBlockers says why the named site may not be declared dark now.
func DeclareBlockers(cfg *config.Cluster, snap *site.Snapshot, name string) []string {
	if _, ok := cfg.Site(name); !ok {
		return []string{fmt.Sprintf("site %q is not in the config (sites: %s)", name, strings.Join(cfg.SiteNames(), ", "))}
	}
	if f, ok := snap.Fences[name]; ok {
		return []string{fmt.Sprintf("site %s is fenced already (by op %s): there is nothing to fail over", name, f.Op)}
	}
	var why []string
	for _, op := range snap.UnfinishedOps() {
		if op.Params["site"] == name {
			why = append(why, fmt.Sprintf("op %s (%s, by %s) is running for site %s: wait for it or abort it (zdt ops abort %s)", op.ID, op.Kind, op.Who, name, op.ID))
		}
	}
	return why
}

// PlanDeclaredFailover is the failover of a site an operator declared dark:
// fence it although it may hold its lease, wait until its controller has
// fenced itself, then take it over as any failover does.
func PlanDeclaredFailover(cfg *config.Cluster, snap *site.Snapshot, name, who, reason string, now time.Time) (*site.Op, []string) {
	if why := DeclareBlockers(cfg, snap, name); len(why) > 0 {
		return nil, why
	}
	params := map[string]string{"site": name, "declared": "true"}
	if reason != "" {
		params["reason"] = reason
	}
	return &site.Op{
		ID:      site.NewOpID(now, KindFailover),
		Kind:    KindFailover,
		Params:  params,
		Who:     who,
		Created: now,
		Outcome: site.OpRunning,
		Steps: append([]site.Step{
			{Name: StepDeclare, Params: map[string]string{"site": name}, Status: site.StepPending},
			{Name: StepAwaitSelfFence, Params: map[string]string{"site": name}, Status: site.StepPending},
		}, takeoverSteps(cfg, snap, name)...),
	}, nil
}

// declareStep writes the fence of a site that may be alive.
func declareStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	reason := "declared dark by " + r.op.Who
	if why := cmp.Or(st.Params["reason"], r.op.Params["reason"]); why != "" {
		reason += ": " + why
	}
	f, err := r.c.cfg.Store.DeclareFence(ctx, r.g, site.Fence{Site: name, Op: r.op.ID, By: r.c.cfg.Site, At: r.c.now(), Reason: reason})
	switch {
	case err != nil:
		return stepResult{kind: stepRetry, err: err}
	case f.Op != r.op.ID:
		return stepResult{kind: stepAbort, detail: fmt.Sprintf("site %s was fenced meanwhile by op %s: that op takes it over", name, f.Op)}
	}
	return done("site %s fenced: %s", name, reason)
}

// awaitSelfFenceStep waits until the declared site reports that it fenced
// itself after the fence was written, or holds no lease. It waits at most
// two lease TTLs from when the step started: a controller that does not
// answer is fenced from outside by the next step.
func awaitSelfFenceStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	f, fenced := snap.Fences[name]
	if !fenced || f.Op != r.op.ID {
		return stepResult{kind: stepAbort, detail: fmt.Sprintf("the fence of site %s is gone or was replaced: nothing is taken over", name)}
	}
	if _, alive := snap.Alive[name]; !alive {
		return done("site %s holds no lease: it serves nothing", name)
	}
	if rep, ok := snap.Reports[name]; ok && rep.State == site.ControllerFenced && !rep.Updated.Before(f.At) {
		return done("site %s fenced itself at %s", name, rep.Updated.UTC().Format("15:04:05.000Z"))
	}
	limit := 2 * r.c.cfg.Cluster.Timings.LeaseTTL
	if waited := r.c.now().Sub(st.Started); waited >= limit {
		return done("site %s did not report itself fenced within %s; its resources are fenced from outside next", name, limit)
	}
	return stepResult{kind: stepWait, detail: fmt.Sprintf("waiting up to %s for site %s to fence itself", limit, name)}
}
