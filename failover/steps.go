package failover

import (
	"context"
	"errors"
	"fmt"

	"github.com/zdt-project/zdt/site"
)

// resultKind says how a step ended.
type resultKind int

const (
	// stepDone: the step's effect is in place.
	stepDone resultKind = iota
	// stepSkipped: the step had nothing to do (its premise changed).
	stepSkipped
	// stepRetry: a passing failure; run the step again later.
	stepRetry
	// stepFailed: the step cannot be done; the op fails, what is done stays.
	stepFailed
	// stepAbort: the op's premise no longer holds; stop, nothing harmful done.
	stepAbort
	// stepWait: the step waits for something outside the coordinator (an
	// operator's confirmation); its detail is journaled, and it runs again
	// on the next pass.
	stepWait
	// stepExpanded: a macro step was replaced by the steps of its op; the
	// engine runs them next.
	stepExpanded
)

type stepResult struct {
	kind   resultKind
	detail string
	err    error // for stepRetry
	// resources, when set, is journaled as the step's Resources.
	resources []site.ResourceOutcome
}

func done(format string, a ...any) stepResult {
	return stepResult{kind: stepDone, detail: fmt.Sprintf(format, a...)}
}

// stepFunc carries out one step. It must be idempotent: a coordinator that
// finds the step running in the journal (its predecessor died in it) runs it
// again.
type stepFunc func(ctx context.Context, r *run, st *site.Step) stepResult

// stepFor returns what carries out the named step. Later ops add their
// steps here.
func stepFor(name string) (stepFunc, bool) {
	switch name {
	case StepFence:
		return fenceStep, true
	case StepFenceResources:
		return fenceResourcesStep, true
	case StepDeclare:
		return declareStep, true
	case StepAwaitSelfFence:
		return awaitSelfFenceStep, true
	case StepCheckFailback:
		return checkFailbackStep, true
	case StepUnfence:
		return unfenceStep, true
	case StepAssign:
		return assignStep, true
	case StepPlace:
		return placeStep, true
	case StepCheckSwitchover:
		return checkSwitchoverStep, true
	case StepAwaitPrimary:
		return awaitPrimaryStep, true
	case StepAwaitFollowers:
		return awaitFollowersStep, true
	case StepAwaitGuests:
		return awaitGuestsStep, true
	case StepAwaitPrefixes:
		return awaitPrefixesStep, true
	case StepMovePrefixes:
		return movePrefixesStep, true
	case StepDrain:
		return drainStep, true
	case StepUndrain:
		return undrainStep, true
	case StepConfirm:
		return confirmStep, true
	case StepWait:
		return waitStep, true
	case StepNotify, StepShell:
		return outsideStep, true
	case StepCheckSite:
		return checkSiteStep, true
	case StepAwaitSync:
		return awaitSyncStep, true
	case StepDrainHost:
		return drainHostStep, true
	case StepUndrainHost:
		return undrainHostStep, true
	}
	return nil, false
}

// run is one op being carried out by one coordinator.
type run struct {
	c  *Coordinator
	g  site.Guard
	op *site.Op
	// dog hears of the run's progress (nil: none listens).
	dog *watchdog
}

// fenceStep fences the dark site, but only while it holds no lease: a site
// that came back before it was fenced aborts the op.
func fenceStep(ctx context.Context, r *run, st *site.Step) stepResult {
	s := st.Params["site"]
	f, err := r.c.cfg.Store.FenceSite(ctx, r.g, site.Fence{
		Site:   s,
		Op:     r.op.ID,
		By:     r.c.cfg.Site,
		At:     r.c.now(),
		Reason: "membership ended (lease expired or no beat for a lease TTL): site dark",
	})
	switch {
	case errors.Is(err, site.ErrSiteAlive):
		return stepResult{kind: stepAbort, detail: fmt.Sprintf("site %s holds a live lease again: it came back before it was fenced, nothing moved", s)}
	case err != nil:
		return stepResult{kind: stepRetry, err: err}
	case f.Op != r.op.ID:
		return done("site %s was already fenced by op %s", s, f.Op)
	default:
		return done("site %s fenced", s)
	}
}

// assignStep moves a service from one site to another: to the step's "to"
// when that site is up, otherwise to the first site in the service's order
// that is up. If the service no longer sits where the step expects, someone
// moved it meanwhile and the step is skipped. The engine runs a row of
// assign steps together (executeAssigns); this is one on its own.
func assignStep(ctx context.Context, r *run, st *site.Step) stepResult {
	const attempts = 3
	for range attempts {
		snap, err := r.c.snapshot(ctx)
		if err != nil {
			return stepResult{kind: stepRetry, err: err}
		}
		p := planAssign(ctx, r, st, snap)
		if p.write == nil {
			return p.res
		}
		w := p.write
		var next site.Assignment
		if w.Until.IsZero() {
			next, err = r.c.cfg.Store.Assign(ctx, r.g, w.Prev, w.Next)
		} else {
			next, err = r.c.cfg.Store.AssignMoving(ctx, r.g, w.Prev, w.Next, w.Until)
		}
		switch {
		case errors.Is(err, site.ErrConflict):
			continue // the assignment changed under us: read it again
		case err != nil:
			return stepResult{kind: stepRetry, err: err}
		}
		return done("%s (epoch %d)%s", p.what, next.Epoch, p.why)
	}
	return stepResult{kind: stepRetry, err: fmt.Errorf("assign service %s: %w %d times", st.Params["service"], site.ErrConflict, attempts)}
}

// plannedAssign is what an assign step is to do, planned from one
// snapshot: write, or, when write is nil, end with res.
type plannedAssign struct {
	res   stepResult
	write *site.AssignWrite
	// what says what the write does ("service web moved from site a to
	// site b"); why, when not empty, why there (": ..."), from
	// ChooseTarget.
	what, why string
}

// planAssign plans an assign step on snap. A service no site can take is
// left where it is, with an event saying so (it is planned again, by a
// reassign op, when a site can take it).
func planAssign(ctx context.Context, r *run, st *site.Step, snap *site.Snapshot) plannedAssign {
	name, from, to := st.Params["service"], st.Params["from"], st.Params["to"]
	svc, ok := r.c.cfg.Cluster.Service(name)
	if !ok {
		return plannedAssign{res: stepResult{kind: stepFailed, detail: fmt.Sprintf("service %s is not in the config", name)}}
	}
	cur := snap.Assignments[name] // zero, epoch 0, when it has none
	switch {
	case cur.Op == r.op.ID && cur.Epoch != 0 && cur.Site != from:
		// This step assigned it already (it runs again after a
		// coordinator loss). A runbook's op may move a service twice:
		// its earlier move left it at from, and this one moves it on.
		return plannedAssign{res: done("service %s assigned to site %s (epoch %d)", name, cur.Site, cur.Epoch)}
	case cur.Site != from:
		return plannedAssign{res: stepResult{kind: stepSkipped, detail: fmt.Sprintf("service %s moved meanwhile to site %q by op %s", name, cur.Site, cur.Op)}}
	}
	target, why := to, ""
	switch {
	case target != "" && snap.Up(target):
	case from == "": // a first assignment: there is no primary to lose
		target, why = ChooseSite(svc, snap, from)
	default:
		target, why = ChooseTarget(r.c.cfg.Cluster, svc, snap, from)
	}
	if target == "" {
		if from == "" {
			return plannedAssign{res: stepResult{kind: stepFailed, detail: why}}
		}
		r.c.event(ctx, "service-stranded", r.op.ID, name, fmt.Sprintf("service %s stays at site %s: %s", name, from, why))
		return plannedAssign{res: stepResult{kind: stepSkipped, detail: fmt.Sprintf("service %s stays at site %s for now: %s", name, from, why)}}
	}
	kind := stepKind(r.op, st)
	if kind == KindReassign {
		kind = KindFailover // a takeover from a fenced site, as far as the sites are concerned
	}
	force := st.Params["force"] == "true"
	if force && !snap.Up(from) {
		kind = KindFailover // a takeover from a site that is not up
	}
	now := r.c.now()
	w := &site.AssignWrite{Prev: cur, Next: site.Assignment{Service: name, Site: target, Op: r.op.ID, At: now, From: from, Kind: kind, Force: force}}
	if rollsBack(r.op, st) {
		// A planned move: its prefixes move make-before-break, in
		// phases the op's move-prefixes step advances.
		w.Until = now.Add(3 * r.opLimit())
	}
	p := plannedAssign{write: w, what: fmt.Sprintf("service %s assigned to site %s", name, target)}
	if from != "" {
		p.what = fmt.Sprintf("service %s moved from site %s to site %s", name, from, target)
		if why != "" {
			p.why = ": " + why
		}
	}
	return p
}

// placeStep solves the guests' placement from the state as it is now and
// writes what changed. Solving again after a crash gives the same answer for
// what was written already, so the step is idempotent.
func placeStep(ctx context.Context, r *run, _ *site.Step) stepResult {
	const attempts = 3
	for range attempts {
		snap, err := r.c.snapshot(ctx)
		if err != nil {
			return stepResult{kind: stepRetry, err: err}
		}
		resume := r.dog.computing()
		changes, err := PlanPlacement(r.c.cfg.Cluster, snap)
		resume()
		if err != nil {
			return stepResult{kind: stepFailed, detail: err.Error()}
		}
		read := map[string]int64{}
		counts := map[site.GuestState]int{}
		for i := range changes {
			changes[i].Op, changes[i].At = r.op.ID, r.c.now()
			read[changes[i].Guest] = snap.Placements[changes[i].Guest].Epoch
			counts[changes[i].State]++
		}
		err = r.c.cfg.Store.PutPlacements(ctx, r.g, changes, read, r.dog.progress)
		switch {
		case errors.Is(err, site.ErrConflict):
			continue
		case err != nil:
			return stepResult{kind: stepRetry, err: err}
		}
		if len(changes) == 0 {
			return done("every guest is where it should be")
		}
		return done("%d guests placed to run, %d preempted, %d unplaced",
			counts[site.GuestRunning], counts[site.GuestPreempted], counts[site.GuestUnplaced])
	}
	return stepResult{kind: stepRetry, err: fmt.Errorf("place guests: %w %d times", site.ErrConflict, attempts)}
}
