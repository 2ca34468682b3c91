package failover

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// KindRunbook is the op of a runbook a person runs (zdt runbook run). The
// built-in switchover, evacuate and failback commands run shipped runbooks
// too, but keep their own kinds.
const KindRunbook = "runbook"

// The steps that runbooks add to the op engine.
const (
	// StepConfirm waits until a person approves (zdt runbook approve).
	StepConfirm = "confirm"
	// StepWait waits for a duration ("for") or until a condition holds.
	StepWait = "wait"
	// StepNotify posts to an HTTP webhook.
	StepNotify = "notify"
	// StepShell runs a command at the coordinator, when the config allows.
	StepShell = "shell"
	// StepCheckSite checks that a site is healthy: up, unfenced, its
	// controller and members reporting well.
	StepCheckSite = "check-site"
	// StepDrainHost drains a hypervisor host: placement gives it no room.
	StepDrainHost = "drain-host"
	// StepUndrainHost removes a host's drain record.
	StepUndrainHost = "undrain-host"
	// StepAwaitSync waits until a replication group is in sync: a writable
	// primary where its services are, every other member at a site that is
	// up streaming from it.
	StepAwaitSync = "await-sync"
)

// The macro steps: each stands for a whole built-in op, planned from the
// cluster's state when the step is reached and put in its place. So a
// runbook's switchover is the switchover command's, step for step.
const (
	MacroSwitchover = "switchover"
	MacroPromote    = "promote"
	MacroEvacuate   = "evacuate"
	MacroUndrain    = "undrain"
	MacroFailback   = "failback"
	MacroFailover   = "failover"
)

// IsMacro says whether the step name is a macro step.
func IsMacro(name string) bool {
	switch name {
	case MacroSwitchover, MacroPromote, MacroEvacuate, MacroUndrain, MacroFailback, MacroFailover:
		return true
	}
	return false
}

// isMacroStep says whether the step is a macro step still to be planned:
// the steps it becomes carry the kind of their op, and some share a macro's
// name (undrain).
func isMacroStep(st *site.Step) bool {
	return IsMacro(st.Name) && st.Params["kind"] == ""
}

// Expand plans the built-in op that the macro step st stands for, from
// snap, as seen by op self (its own op, "" at plan time: it is left out of
// the running ops, which the planners count as blockers). It returns that
// op, whose steps are to be put in st's place, each carrying st's runbook
// fields and, in param "kind", the kind of op they come from; or every
// reason why the op may not run now. Its params:
//
//	switchover  service or site, to, promote_within, force
//	promote     group, to
//	evacuate    site, reason, within
//	undrain     site
//	failback    site
//	failover    site, reason (a declared failover: the site may be alive)
func Expand(cfg *config.Cluster, snap *site.Snapshot, st site.Step, self, who string, now time.Time) (*site.Op, []string) {
	snap = without(snap, self)
	p := st.Params
	var op *site.Op
	var why []string
	switch st.Name {
	case MacroSwitchover, MacroPromote:
		req := SwitchoverRequest{Service: p["service"], Site: p["site"], To: p["to"], Force: p["force"] == "true"}
		if st.Name == MacroPromote {
			i := slices.IndexFunc(cfg.Services, func(s config.Service) bool { return s.ReplicationGroup == p["group"] })
			if i < 0 {
				return nil, []string{fmt.Sprintf("no service uses replication group %q", p["group"])}
			}
			req.Service = cfg.Services[i].Name
		}
		if d := p["promote_within"]; d != "" {
			within, err := time.ParseDuration(d)
			if err != nil {
				return nil, []string{fmt.Sprintf("promote_within %q: %v", d, err)}
			}
			req.PromoteWithin = within
		}
		op, why = PlanSwitchover(cfg, snap, req, who, now)
	case MacroEvacuate:
		var within time.Duration
		if d := p["within"]; d != "" {
			var err error
			if within, err = time.ParseDuration(d); err != nil {
				return nil, []string{fmt.Sprintf("within %q: %v", d, err)}
			}
		}
		op, why = PlanEvacuate(cfg, snap, p["site"], who, p["reason"], within, now)
	case MacroUndrain:
		op, why = PlanUndrain(cfg, snap, p["site"], who, now)
	case MacroFailback:
		op, why = PlanFailback(cfg, snap, p["site"], who, now)
	case MacroFailover:
		op, why = PlanDeclaredFailover(cfg, snap, p["site"], who, p["reason"], now)
	default:
		return nil, []string{fmt.Sprintf("step %q is not a macro step", st.Name)}
	}
	if len(why) > 0 {
		return nil, why
	}
	steps := make([]site.Step, len(op.Steps))
	for i, in := range op.Steps {
		in.Params = cloneParams(in.Params)
		in.Params["kind"] = op.Kind
		for _, k := range []string{"reason", "force"} {
			if v := op.Params[k]; v != "" && in.Params[k] == "" {
				in.Params[k] = v
			}
		}
		in.ID, in.Group, in.Timeout, in.OnFailure, in.Rollback = st.ID, st.Group, st.Timeout, st.OnFailure, st.Rollback
		steps[i] = in
	}
	op.Steps = steps
	return op, nil
}

func cloneParams(p map[string]string) map[string]string {
	out := make(map[string]string, len(p)+1)
	for k, v := range p {
		out[k] = v
	}
	return out
}

// without is the snapshot without op self among its ops ("" leaves them
// all): a runbook's op is no blocker of the ops and conditions in it.
func without(snap *site.Snapshot, self string) *site.Snapshot {
	if self == "" {
		return snap
	}
	clone := *snap
	clone.Ops = slices.DeleteFunc(slices.Clone(snap.Ops), func(op *site.Op) bool { return op.ID == self })
	return &clone
}

// snapshot reads the cluster's state as the op's own steps see it: without
// the op itself.
func (r *run) snapshot(ctx context.Context) (*site.Snapshot, error) {
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return without(snap, r.op.ID), nil
}

// stepKind is the kind of op a step belongs to: its own when it was
// expanded from a macro step, else its op's.
func stepKind(op *site.Op, st *site.Step) string {
	return cmp.Or(st.Params["kind"], op.Kind)
}

// expandStep puts the op a macro step stands for in its place, planned from
// the state as it is now; the step fails when that op may not run.
func expandStep(ctx context.Context, r *run, i int) stepResult {
	st := r.op.Steps[i]
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	planned, why := Expand(r.c.cfg.Cluster, snap, st, r.op.ID, r.op.Who, r.c.now())
	if len(why) > 0 {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("the %s may not run now: %s", st.Name, strings.Join(why, "; "))}
	}
	steps := planned.Steps
	if len(steps) == 0 {
		return done("the %s had nothing to do", st.Name)
	}
	steps[0].Status, steps[0].By, steps[0].Started = site.StepRunning, st.By, st.Started
	r.op.Steps = slices.Concat(r.op.Steps[:i], steps, r.op.Steps[i+1:])
	return stepResult{kind: stepExpanded}
}

// Holds says whether the condition holds in snap, and in words what was
// found.
func Holds(cfg *config.Cluster, snap *site.Snapshot, c site.Condition) (bool, string) {
	switch {
	case c.SiteUp != "":
		return snap.Up(c.SiteUp), fmt.Sprintf("site %s is %s", c.SiteUp, snap.StateOf(c.SiteUp))
	case c.SiteDown != "":
		return !snap.Up(c.SiteDown), fmt.Sprintf("site %s is %s", c.SiteDown, snap.StateOf(c.SiteDown))
	case c.SiteFenced != "":
		f, ok := snap.Fences[c.SiteFenced]
		if ok {
			return true, fmt.Sprintf("site %s is fenced (by op %s)", c.SiteFenced, f.Op)
		}
		return false, fmt.Sprintf("site %s is not fenced", c.SiteFenced)
	case c.SiteUnfenced != "":
		f, ok := snap.Fences[c.SiteUnfenced]
		if ok {
			return false, fmt.Sprintf("site %s is fenced (by op %s)", c.SiteUnfenced, f.Op)
		}
		return true, fmt.Sprintf("site %s is not fenced", c.SiteUnfenced)
	case c.SiteDrained != "":
		if snap.Drained(c.SiteDrained) {
			return true, fmt.Sprintf("site %s is drained", c.SiteDrained)
		}
		return false, fmt.Sprintf("site %s is not drained", c.SiteDrained)
	case c.SiteReadyForFailback != "":
		if why := FailbackBlockers(cfg, snap, c.SiteReadyForFailback); len(why) > 0 {
			return false, fmt.Sprintf("site %s may not be failed back yet: %s", c.SiteReadyForFailback, strings.Join(why, "; "))
		}
		return true, fmt.Sprintf("site %s is back clean and may be failed back", c.SiteReadyForFailback)
	case c.HostEmpty != "":
		h, ok := configHost(cfg, c.HostEmpty)
		if !ok {
			return false, fmt.Sprintf("host %s is not in the config", c.HostEmpty)
		}
		r, reported := hostReport(snap, h)
		switch {
		case !reported:
			return false, fmt.Sprintf("site %s does not report host %s", h.Site, h.Name)
		case len(r.Running) > 0:
			names := make([]string, len(r.Running))
			for i, g := range r.Running {
				names[i] = g.Name
			}
			return false, fmt.Sprintf("host %s runs %s", h.Name, strings.Join(names, ", "))
		}
		return true, fmt.Sprintf("host %s runs no guest", h.Name)
	case c.GroupInSync != "":
		pending := groupOutOfSync(cfg, snap, c.GroupInSync)
		if len(pending) == 0 {
			return true, fmt.Sprintf("group %s is in sync", c.GroupInSync)
		}
		return false, fmt.Sprintf("group %s is not in sync: %s", c.GroupInSync, someOf(pending))
	case c.ServiceAt != nil:
		a, ok := snap.Assignments[c.ServiceAt.Service]
		if ok && a.Site == c.ServiceAt.Site {
			return true, fmt.Sprintf("service %s is at site %s", a.Service, a.Site)
		}
		return false, fmt.Sprintf("service %s is at site %s, not %s", c.ServiceAt.Service, orNone(a.Site), c.ServiceAt.Site)
	case c.Not != nil:
		ok, why := Holds(cfg, snap, *c.Not)
		return !ok, "not: " + why
	case len(c.All) > 0:
		var whys []string
		for _, sub := range c.All {
			ok, why := Holds(cfg, snap, sub)
			if !ok {
				return false, why
			}
			whys = append(whys, why)
		}
		return true, strings.Join(whys, "; ")
	case len(c.Any) > 0:
		var whys []string
		for _, sub := range c.Any {
			ok, why := Holds(cfg, snap, sub)
			if ok {
				return true, why
			}
			whys = append(whys, why)
		}
		return false, strings.Join(whys, "; ")
	}
	return false, "empty condition"
}

// groupOutOfSync says why the group is not in sync; empty when it is: its
// member where its services are is a writable primary, and every other
// member at a site that is up streams from it, healthy.
func groupOutOfSync(cfg *config.Cluster, snap *site.Snapshot, group string) []string {
	active, epoch := groupAssignment(cfg, snap, group)
	if active == "" {
		return []string{fmt.Sprintf("no service of group %s is assigned", group)}
	}
	p, ok := memberReport(snap, active, group)
	switch {
	case !ok:
		return []string{fmt.Sprintf("site %s does not report its member", active)}
	case !p.Writable:
		return []string{fmt.Sprintf("site %s's member is not a writable primary (%s)", active, orNone(p.Detail))}
	}
	pending, _ := followersPending(cfg, snap, group, active, epoch)
	return pending
}

// whenStep reports whether the step's condition holds; a step whose
// condition does not hold is skipped.
func whenStep(ctx context.Context, r *run, st *site.Step) (stepResult, bool) {
	snap, err := r.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}, false
	}
	ok, why := Holds(r.c.cfg.Cluster, snap, *st.When)
	if !ok {
		return stepResult{kind: stepSkipped, detail: "not run, its condition does not hold: " + why}, false
	}
	return stepResult{}, true
}

// confirmStep waits until a person approves the step.
func confirmStep(_ context.Context, r *run, st *site.Step) stepResult {
	if a := st.Approved; a != nil {
		d := fmt.Sprintf("approved by %s at %s", a.By, a.At.UTC().Format(time.RFC3339))
		if a.Reason != "" {
			d += ": " + a.Reason
		}
		return done("%s", d)
	}
	msg := cmp.Or(st.Params["message"], "continue?")
	return stepResult{kind: stepWait, detail: fmt.Sprintf("waiting for a person to approve: %s (zdt runbook approve %s)", msg, r.op.ID)}
}

// waitStep waits for its duration ("for"), or until its condition holds.
func waitStep(ctx context.Context, r *run, st *site.Step) stepResult {
	if d := st.Params["for"]; d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil {
			return stepResult{kind: stepFailed, detail: fmt.Sprintf("for %q: %v", d, err)}
		}
		if left := st.Started.Add(dur).Sub(r.c.now()); left > 0 {
			return stepResult{kind: stepWait, detail: fmt.Sprintf("waiting %s (until %s)", dur, st.Started.Add(dur).UTC().Format(time.RFC3339))}
		}
		return done("waited %s", dur)
	}
	if st.Until == nil {
		return stepResult{kind: stepFailed, detail: "a wait step needs a duration (for) or a condition (until)"}
	}
	snap, err := r.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	ok, why := Holds(r.c.cfg.Cluster, snap, *st.Until)
	if ok {
		return done("%s after %s", why, r.c.now().Sub(st.Started).Round(time.Millisecond))
	}
	return stepResult{kind: stepWait, detail: "waiting until the condition holds: " + why}
}

// awaitSyncStep waits until the group is in sync, within its timeout (or
// awaitLimit).
func awaitSyncStep(ctx context.Context, r *run, st *site.Step) stepResult {
	snap, err := r.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	g := st.Params["group"]
	if st.Timeout > 0 && st.Params["within"] == "" {
		st.Params["within"] = st.Timeout.String()
	}
	return r.awaited(st, "group "+g+" to be in sync", someOf(groupOutOfSync(r.c.cfg.Cluster, snap, g)), "group "+g+" in sync")
}

// checkSiteStep checks that a site is healthy: up, not fenced, its
// controller reporting itself up, its members healthy.
func checkSiteStep(ctx context.Context, r *run, st *site.Step) stepResult {
	name := st.Params["site"]
	snap, err := r.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	if why := SiteProblems(r.c.cfg.Cluster, snap, name); len(why) > 0 {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("site %s is not healthy: %s", name, strings.Join(why, "; "))}
	}
	return done("site %s is healthy: up, not fenced, its controller and members report well", name)
}

// SiteProblems lists what is wrong with a site: empty when it is up, not
// fenced, its controller reports itself up and each of its members is
// healthy.
func SiteProblems(cfg *config.Cluster, snap *site.Snapshot, name string) []string {
	var why []string
	if !snap.Up(name) {
		why = append(why, fmt.Sprintf("it is %s", snap.StateOf(name)))
	}
	if f, ok := snap.Fences[name]; ok {
		why = append(why, fmt.Sprintf("it is fenced (by op %s)", f.Op))
	}
	rep, ok := snap.Reports[name]
	if !ok || rep.State != site.ControllerUp {
		why = append(why, "its controller: "+reportState(rep, ok))
	}
	for _, g := range cfg.Replication {
		if _, in := g.Member(name); !in {
			continue
		}
		m, ok := memberReport(snap, name, g.Name)
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("its member of group %s does not report", g.Name))
		case !m.Healthy:
			why = append(why, fmt.Sprintf("its member of group %s is not healthy: %s", g.Name, orNone(m.Detail)))
		}
	}
	return why
}

// Outside runs the steps that reach outside the cluster (notify, shell) in
// the background: their work may outlast a coordinator's action.
type Outside interface {
	// Poll starts the step's work unless it runs or has ended already,
	// and reports its result once it has ended; ended is false while it
	// runs.
	Poll(op *site.Op, st *site.Step) (ended, ok bool, detail string)
}

// outsideStep runs a notify or shell step through the configured Outside.
func outsideStep(_ context.Context, r *run, st *site.Step) stepResult {
	if r.c.cfg.Outside == nil {
		return stepResult{kind: stepFailed, detail: "this controller runs no " + st.Name + " steps"}
	}
	ended, ok, detail := r.c.cfg.Outside.Poll(r.op, st)
	switch {
	case !ended:
		return stepResult{kind: stepWait, detail: "running: " + st.Name + " " + cmp.Or(st.Params["url"], st.Params["command"])}
	case ok:
		return done("%s", detail)
	default:
		return stepResult{kind: stepFailed, detail: detail}
	}
}

// timedOut fails a step that has run longer than its timeout.
func timedOut(r *run, st *site.Step) (stepResult, bool) {
	if st.Timeout <= 0 || st.Name == StepNotify || st.Name == StepShell {
		return stepResult{}, false // those time out themselves, with what they saw
	}
	if waited := r.c.now().Sub(st.Started); waited >= st.Timeout {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("timed out after %s%s", st.Timeout, earlier(st.Detail))}, true
	}
	return stepResult{}, false
}

// configHost finds a host in the config.
func configHost(cfg *config.Cluster, name string) (config.Host, bool) {
	i := slices.IndexFunc(cfg.Hosts(), func(h config.Host) bool { return h.Name == name })
	if i < 0 {
		return config.Host{}, false
	}
	return cfg.Hosts()[i], true
}

// drainHostStep marks a host drained: the next placement moves its guests,
// to other hosts of its site first.
func drainHostStep(ctx context.Context, r *run, st *site.Step) stepResult {
	h, ok := configHost(r.c.cfg.Cluster, st.Params["host"])
	if !ok {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("host %q is not in the config", st.Params["host"])}
	}
	d := site.HostDrain{Site: h.Site, Host: h.Name, Op: r.op.ID, By: r.op.Who, At: r.c.now(), Reason: st.Params["reason"]}
	if err := r.c.cfg.Store.PutHostDrain(ctx, r.g, d); err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	return done("host %s (site %s) drained: placement gives it no room", h.Name, h.Site)
}

// undrainHostStep removes a host's drain record: it has room again.
func undrainHostStep(ctx context.Context, r *run, st *site.Step) stepResult {
	h, ok := configHost(r.c.cfg.Cluster, st.Params["host"])
	if !ok {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("host %q is not in the config", st.Params["host"])}
	}
	if err := r.c.cfg.Store.DeleteHostDrain(ctx, r.g, h.Site, h.Name); err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	return done("host %s (site %s) is no longer drained", h.Name, h.Site)
}
