package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// KindFailback is the op that lifts a returned site's fence.
const KindFailback = "failback"

const (
	// StepCheckFailback checks, at the coordinator, that the fenced site
	// has come back clean (FailbackBlockers finds nothing).
	StepCheckFailback = "check-failback"
	// StepUnfence lifts the site's fence.
	StepUnfence = "unfence"
)

// FailbackBlockers says everything that keeps a fenced site from being
// failed back now, each in a sentence that says what to do; none means it
// may be. A site may be failed back when it is fenced, holds its lease (its
// controller runs and reaches etcd), reports itself fenced, every member it
// has follows its group's current primary (a healthy standby that acted on
// the current assignment: rewound where that was needed), no guest runs at
// its hosts (a fenced site runs none; a copy there would run twice once the
// fence is lifted), and no unfinished op names it.
func FailbackBlockers(cfg *config.Cluster, snap *site.Snapshot, name string) []string {
	if _, ok := cfg.Site(name); !ok {
		return []string{fmt.Sprintf("site %q is not in the config (sites: %s)", name, strings.Join(cfg.SiteNames(), ", "))}
	}
	if _, fenced := snap.Fences[name]; !fenced {
		return []string{fmt.Sprintf("site %s is not fenced: there is nothing to fail back", name)}
	}
	var why []string
	for _, op := range snap.UnfinishedOps() {
		if op.Params["site"] == name {
			why = append(why, fmt.Sprintf("op %s (%s, by %s) is still running for site %s: wait for it (zdt ops watch %s)", op.ID, op.Kind, op.Who, name, op.ID))
		}
	}
	if _, alive := snap.Alive[name]; !alive {
		return append(why, fmt.Sprintf("site %s is dark (no live lease): start its controller, then fail it back", name))
	}
	if r, ok := snap.Reports[name]; !ok || r.State != site.ControllerFenced {
		why = append(why, fmt.Sprintf("site %s's controller does not report itself fenced yet (%s): wait until it has seen its fence", name, reportState(r, ok)))
	}
	why = append(why, memberBlockers(cfg, snap, name)...)
	return append(why, guestBlockers(snap, name)...)
}

func reportState(r site.Report, ok bool) string {
	if !ok {
		return "no report"
	}
	if r.Reason != "" {
		return fmt.Sprintf("it reports %s: %s", r.State, r.Reason)
	}
	return "it reports " + string(r.State)
}

// memberBlockers: every member at the site must be a healthy standby that
// acted on its group's current assignment.
func memberBlockers(cfg *config.Cluster, snap *site.Snapshot, name string) []string {
	var why []string
	for _, g := range cfg.Replication {
		if _, ok := g.Member(name); !ok {
			continue
		}
		active, epoch := groupAssignment(cfg, snap, g.Name)
		m, ok := memberReport(snap, name, g.Name)
		if !ok {
			why = append(why, fmt.Sprintf("site %s does not report its member of group %s yet", name, g.Name))
			continue
		}
		switch {
		case m.Writable || m.Role == "primary":
			why = append(why, fmt.Sprintf("site %s's member of group %s is a primary (writable %t); it must be rewound and follow %s first (its controller does this once fenced)", name, g.Name, m.Writable, orNone(active)))
		case !m.Healthy:
			why = append(why, fmt.Sprintf("site %s's member of group %s is not a healthy standby: %s", name, g.Name, orNone(m.Detail)))
		case epoch != 0 && m.Epoch < epoch:
			why = append(why, fmt.Sprintf("site %s's member of group %s has not followed the current primary at %s yet (it acted on epoch %d, the assignment is at %d)", name, g.Name, orNone(active), m.Epoch, epoch))
		case active != "" && active != name:
			if w := notStreaming(g, snap, name, active); w != "" {
				why = append(why, w+"; wait until it does")
			}
		}
	}
	return why
}

// groupAssignment is where the group's services are active, and the
// largest of their epochs.
func groupAssignment(cfg *config.Cluster, snap *site.Snapshot, group string) (active string, epoch int64) {
	for _, svc := range cfg.Services {
		if svc.ReplicationGroup != group {
			continue
		}
		if a, ok := snap.Assignments[svc.Name]; ok && a.Epoch > epoch {
			active, epoch = a.Site, a.Epoch
		}
	}
	return active, epoch
}

// guestBlockers: no guest may run at the site's hosts.
func guestBlockers(snap *site.Snapshot, name string) []string {
	var why []string
	for _, h := range snap.Hosts[name].Hosts {
		for _, g := range h.Running {
			why = append(why, fmt.Sprintf("guest %s still runs at site %s (host %s): its controller destroys it once fenced; wait, or destroy it", g.Name, name, h.Name))
		}
	}
	return why
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// PlanFailback is the failback op of a site, or, when the site may not be
// failed back now, every reason why.
func PlanFailback(cfg *config.Cluster, snap *site.Snapshot, name, who string, now time.Time) (*site.Op, []string) {
	if why := FailbackBlockers(cfg, snap, name); len(why) > 0 {
		return nil, why
	}
	params := map[string]string{"site": name, "fenced_by": snap.Fences[name].Op}
	return &site.Op{
		ID:      site.NewOpID(now, KindFailback),
		Kind:    KindFailback,
		Params:  params,
		Who:     who,
		Created: now,
		Outcome: site.OpRunning,
		Steps: []site.Step{
			{Name: StepCheckFailback, Params: map[string]string{"site": name}, Status: site.StepPending},
			{Name: StepUnfence, Params: map[string]string{"site": name, "fenced_by": params["fenced_by"]}, Status: site.StepPending},
		},
	}, nil
}

// checkFailbackStep checks the blockers again at the coordinator, from the
// state as it is now: what was true when the person asked may not be. A
// site that is no longer fenced fails the step at once; anything else that
// blocks is waited out, up to the await limit: a site's readiness can flip
// between the plan and this check (a standby's stream restarting, a report
// a pass behind), and a failback that fails on that would have to be asked
// for again.
func checkFailbackStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	fail, pending := failbackCheck(r.c.cfg.Cluster, snap, name, r.op.ID)
	if fail != "" {
		return stepResult{kind: stepFailed, detail: fail}
	}
	return r.awaited(st, fmt.Sprintf("site %s to be back clean", name), pending,
		fmt.Sprintf("site %s is back clean: it reports itself fenced, its members follow the current primaries, it runs no guest", name))
}

// failbackCheck is what the check-failback step of op opID finds: why it
// fails at once (the site is no longer fenced), or what it waits for ("":
// nothing, the site may be failed back).
func failbackCheck(cfg *config.Cluster, snap *site.Snapshot, name, opID string) (fail, pending string) {
	if _, fenced := snap.Fences[name]; !fenced {
		return fmt.Sprintf("site %s is no longer fenced: there is nothing to fail back", name), ""
	}
	// This op itself runs and names the site: it is no blocker.
	snap.Ops = slices.DeleteFunc(slices.Clone(snap.Ops), func(op *site.Op) bool { return op.ID == opID })
	return "", strings.Join(FailbackBlockers(cfg, snap, name), "; ")
}

// unfenceStep lifts the site's fence, if it is still the fence the op was
// planned for.
func unfenceStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	err := r.c.cfg.Store.LiftFence(ctx, r.g, name, st.Params["fenced_by"])
	switch {
	case errors.Is(err, site.ErrFencedAgain):
		return stepResult{kind: stepFailed, detail: err.Error()}
	case err != nil:
		return stepResult{kind: stepRetry, err: err}
	}
	return done("the fence of site %s is lifted: it may serve again", name)
}
