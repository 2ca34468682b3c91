package failover

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// Op kinds and step names.
const (
	KindFailover  = "failover"
	KindBootstrap = "bootstrap"

	StepFence  = "fence"
	StepAssign = "assign"
	// StepFenceResources fences the dark site's members and guests from
	// outside (package outside) before anything of it is taken over.
	StepFenceResources = "fence-resources"
)

// Decision is the coordinator's next action: resume an unfinished op, or
// start a new one. Both nil: nothing to do.
type Decision struct {
	Resume *site.Op
	Start  *site.Op
}

// Decide returns what the coordinator should do next, given the cluster's
// state. leadingSince is when this coordinator was elected; a new coordinator
// gives a service's preferred site (and every site, for guests) the config's
// bootstrap grace to appear before it assigns or places elsewhere.
//
// Unfinished ops are resumed oldest first, one at a time, with one
// exception: the failover of a dark site goes before a planned op (a
// switchover, an evacuation, a failback, an undrain), which may wait a long
// while for something (a target's promotion) that the dark site may have
// made impossible. The planned op's later steps check again what they act
// on and give way to what the failover moved.
func Decide(cfg *config.Cluster, snap *site.Snapshot, self string, now, leadingSince time.Time) (Decision, error) {
	return decide(cfg, snap, self, now, leadingSince, nil, nil)
}

// decide is Decide for a coordinator that found the ops named in waiting
// waiting for the sites in this pass: it passes them over, so that an op
// waiting for a promotion, guests or prefixes holds up neither the other
// unfinished ops nor the failover of a site that went dark meanwhile. While
// any op is unfinished, no op but a failover starts.
//
// memo, when not nil, spares the solve of the guests' placement while
// nothing it reads changed.
func decide(cfg *config.Cluster, snap *site.Snapshot, self string, now, leadingSince time.Time, waiting map[string]bool, memo *placementMemo) (Decision, error) {
	if all := snap.UnfinishedOps(); len(all) > 0 {
		var open []*site.Op
		for _, op := range all {
			if !waiting[op.ID] {
				open = append(open, op)
			}
		}
		for _, op := range open {
			if op.Kind == KindFailover {
				return Decision{Resume: op}, nil
			}
		}
		if len(open) == 0 || planned(open[0]) {
			for _, s := range DarkSites(cfg, snap) {
				if !failingOver(all, s) {
					return Decision{Start: PlanFailover(cfg, snap, s, self, now)}, nil
				}
			}
		}
		if len(open) == 0 {
			return Decision{}, nil
		}
		return Decision{Resume: open[0]}, nil
	}
	for _, s := range DarkSites(cfg, snap) {
		return Decision{Start: PlanFailover(cfg, snap, s, self, now)}, nil
	}
	if reassignDue(cfg, snap, now) {
		if op := PlanReassign(cfg, snap, self, now); op != nil {
			return Decision{Start: op}, nil
		}
	}
	grace := now.Sub(leadingSince) >= cfg.Timings.BootstrapGrace
	if op := PlanBootstrap(cfg, snap, self, now, grace); op != nil {
		return Decision{Start: op}, nil
	}
	if !grace && !allUp(cfg, snap) {
		return Decision{}, nil
	}
	changes, err := memo.plan(cfg, snap)
	if err != nil || len(changes) == 0 {
		return Decision{}, err
	}
	return Decision{Start: &site.Op{
		ID:      site.NewOpID(now, KindPlacement),
		Kind:    KindPlacement,
		Who:     "coordinator@" + self,
		Created: now,
		Outcome: site.OpRunning,
		Steps:   []site.Step{{Name: StepPlace, Status: site.StepPending}},
	}}, nil
}

// isQuiet says whether only a change of the cluster's state can give the
// coordinator something to do: no op is unfinished (its steps wait for
// time as well as for the sites), no site is dark, no service stranded
// (reassigning waits a few renew intervals between ops), and the bootstrap
// grace is over. decide's answer then depends on the snapshot alone.
func isQuiet(cfg *config.Cluster, snap *site.Snapshot, now, leadingSince time.Time) bool {
	return now.Sub(leadingSince) >= cfg.Timings.BootstrapGrace && len(snap.UnfinishedOps()) == 0 &&
		len(DarkSites(cfg, snap)) == 0 && len(Stranded(cfg, snap)) == 0
}

// failingOver says whether one of the ops is a failover of the site.
func failingOver(ops []*site.Op, name string) bool {
	for _, op := range ops {
		if op.Kind == KindFailover && op.Params["site"] == name {
			return true
		}
		// A runbook's failover of the site (a macro step, planned).
		for _, st := range op.Steps {
			if !op.Finished() && st.Params["kind"] == KindFailover && st.Params["site"] == name {
				return true
			}
		}
	}
	return false
}

// planned says whether an op was asked for by a person for a planned
// change, one that a failover goes before.
func planned(op *site.Op) bool {
	switch op.Kind {
	case KindSwitchover, KindEvacuate, KindFailback, KindUndrain, KindRunbook:
		return true
	}
	return false
}

func allUp(cfg *config.Cluster, snap *site.Snapshot) bool {
	for _, s := range cfg.Sites {
		if !snap.Up(s.Name) {
			return false
		}
	}
	return true
}

// DarkSites lists, in config order, the sites to fail over: they have joined
// the cluster once, hold no live lease now and are not fenced yet.
func DarkSites(cfg *config.Cluster, snap *site.Snapshot) []string {
	var dark []string
	for _, s := range cfg.Sites {
		_, joined := snap.Registered[s.Name]
		if joined && snap.StateOf(s.Name) == site.SiteDark {
			dark = append(dark, s.Name)
		}
	}
	return dark
}

// PlanFailover plans the failover of a dark site: fence it, move every
// service it was serving to the next site in the service's order that is up,
// then place the guests again (the dark site's among them).
func PlanFailover(cfg *config.Cluster, snap *site.Snapshot, dark, self string, now time.Time) *site.Op {
	return &site.Op{
		ID:      site.NewOpID(now, KindFailover),
		Kind:    KindFailover,
		Params:  map[string]string{"site": dark},
		Who:     "coordinator@" + self,
		Created: now,
		Outcome: site.OpRunning,
		Steps: append([]site.Step{{Name: StepFence, Params: map[string]string{"site": dark}, Status: site.StepPending}},
			takeoverSteps(cfg, snap, dark)...),
	}
}

// takeoverSteps are the steps of a failover once the site is fenced: fence
// its resources from outside, move each service it serves, place the guests,
// then wait until the sites report it done: each group's new primary
// writable and followed, the guests running, the prefixes moved.
func takeoverSteps(cfg *config.Cluster, snap *site.Snapshot, dark string) []site.Step {
	steps := []site.Step{{Name: StepFenceResources, Params: map[string]string{"site": dark}, Status: site.StepPending}}
	var moved []config.Service
	for _, svc := range cfg.Services {
		if a, ok := snap.Assignments[svc.Name]; ok && a.Site == dark {
			moved = append(moved, svc)
			steps = append(steps, site.Step{
				Name:   StepAssign,
				Params: map[string]string{"service": svc.Name, "from": dark},
				Status: site.StepPending,
			})
		}
	}
	guests := len(cfg.Guests()) > 0
	if guests {
		steps = append(steps, site.Step{Name: StepPlace, Status: site.StepPending})
	}
	return append(steps, awaitSteps(moved, true, guests, false, 0)...)
}

// PlanBootstrap plans the first assignment of every service that has none:
// to its preferred (first) site when that site is up; after the grace, to the
// first site in its order that is up. Nil when there is nothing to assign.
func PlanBootstrap(cfg *config.Cluster, snap *site.Snapshot, self string, now time.Time, graceOver bool) *site.Op {
	var steps []site.Step
	for _, svc := range cfg.Services {
		if _, ok := snap.Assignments[svc.Name]; ok {
			continue
		}
		to := ""
		if snap.Up(svc.Sites[0]) {
			to = svc.Sites[0]
		} else if graceOver {
			to, _ = ChooseSite(svc, snap, "")
		}
		if to == "" {
			continue
		}
		steps = append(steps, site.Step{
			Name:   StepAssign,
			Params: map[string]string{"service": svc.Name, "from": "", "to": to},
			Status: site.StepPending,
		})
	}
	if len(steps) == 0 {
		return nil
	}
	return &site.Op{
		ID:      site.NewOpID(now, KindBootstrap),
		Kind:    KindBootstrap,
		Who:     "coordinator@" + self,
		Created: now,
		Outcome: site.OpRunning,
		Steps:   steps,
	}
}

// ChooseSite picks the first site in the service's order that is up, not
// drained and not exclude; a drained site only when no other is up. When
// there is none, to is "" and why says what each site is.
func ChooseSite(svc config.Service, snap *site.Snapshot, exclude string) (to string, why string) {
	var states []string
	drained := ""
	for _, s := range svc.Sites {
		switch {
		case s == exclude:
			states = append(states, s+" is being failed over")
		case snap.Up(s) && snap.Drained(s):
			drained = cmp.Or(drained, s) // only if no other site is up
		case snap.Up(s):
			return s, ""
		default:
			states = append(states, fmt.Sprintf("%s is %s", s, snap.StateOf(s)))
		}
	}
	if drained != "" {
		return drained, ""
	}
	return "", fmt.Sprintf("no site can serve service %s: %s", svc.Name, strings.Join(states, ", "))
}

// reassignDue: no reassign op started within the last few renew
// intervals. A standby whose lag hovers at its limit would otherwise start
// an op on every pass.
func reassignDue(cfg *config.Cluster, snap *site.Snapshot, now time.Time) bool {
	const spacing = 5 // renew intervals
	for i := len(snap.Ops) - 1; i >= 0; i-- {
		if op := snap.Ops[i]; op.Kind == KindReassign {
			return now.Sub(op.Created) >= spacing*cfg.Timings.RenewInterval
		}
	}
	return true
}
