package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/replication"
	replrec "github.com/zdt-project/zdt/replication/reconciler"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// KindSwitchover is the planned move of services from one live site to
// another, with no data lost.
const KindSwitchover = "switchover"

const (
	// StepCheckSwitchover checks, at the coordinator, that the move may
	// go ahead (SwitchoverBlockers finds nothing).
	StepCheckSwitchover = "check-switchover"
	// StepAwaitPrimary waits until the target site reports its member of
	// the group a writable primary for the op's assignment, and rolls the
	// move back when it does not come.
	StepAwaitPrimary = "await-primary"
)

// SwitchoverRequest is what a person asks to move: one service (with every
// service that shares its replication group, which moves with it), or every
// service a site holds; and where to.
type SwitchoverRequest struct {
	Service string // the service, or "" for every service at Site
	Site    string // the site to empty, or "" with Service
	To      string
	// PromoteWithin is how long the op waits for the target's promotion
	// before it rolls back; 0: at least MinAwait, ten lease TTLs.
	PromoteWithin time.Duration
	// Force takes the services over from a fenced site whatever the
	// target's lag: for services stranded there (no site was within their
	// RPO) or left without a primary after a total outage. The op records
	// how far behind the target was: what may be lost.
	Force bool
}

// PlanSwitchover is the switchover op of the request, or, when it may not
// run now, every reason why. The op checks again at the coordinator, then
// assigns every service to the target, a group's services one after the
// other, and then waits, group by group, for the target's promotion: the
// sites do the rest (the old primary's site fences it at once, the
// target's standby replays up to the old primary's last position and is
// promoted, the others follow it; the prefixes follow the assignment).
func PlanSwitchover(cfg *config.Cluster, snap *site.Snapshot, req SwitchoverRequest, who string, now time.Time) (*site.Op, []string) {
	svcs, from, why := switchoverServices(cfg, snap, req)
	if len(why) > 0 {
		return nil, why
	}
	blockers := SwitchoverBlockers
	if req.Force {
		blockers = ForcedTakeoverBlockers
	}
	if why := blockers(cfg, snap, svcs, from, req.To, ""); len(why) > 0 {
		return nil, why
	}
	names := serviceNames(svcs)
	params := map[string]string{"services": strings.Join(names, ","), "from": from, "to": req.To}
	if req.Force {
		params["force"] = "true"
		params["possible_loss"] = possibleLoss(snap, svcs, req.To)
	}
	if req.Site != "" {
		params["site"] = req.Site
	} else {
		params["service"] = req.Service
	}
	steps := []site.Step{{Name: StepCheckSwitchover, Params: map[string]string{"services": params["services"], "from": from, "to": req.To, "force": params["force"]}, Status: site.StepPending}}
	for _, svc := range svcs {
		steps = append(steps, site.Step{Name: StepAssign, Params: map[string]string{"service": svc.Name, "from": from, "to": req.To, "force": params["force"]}, Status: site.StepPending})
	}
	within := req.PromoteWithin
	if within <= 0 {
		within = awaitLimit(cfg)
	}
	for _, g := range groupsOf(svcs) {
		steps = append(steps, site.Step{Name: StepAwaitPrimary, Params: map[string]string{
			"group": g, "services": params["services"], "from": from, "to": req.To, "within": within.String(), "force": params["force"],
		}, Status: site.StepPending})
	}
	steps = append(steps, awaitSteps(svcs, false, false, !req.Force, within)...)
	return &site.Op{
		ID:      site.NewOpID(now, KindSwitchover),
		Kind:    KindSwitchover,
		Params:  params,
		Who:     who,
		Created: now,
		Outcome: site.OpRunning,
		Steps:   steps,
	}, nil
}

// movesWith is the service with every service that shares its
// replication group: they share its primary, so they move together, or the
// sites see conflicting assignments.
func movesWith(cfg *config.Cluster, svc config.Service) []config.Service {
	if svc.ReplicationGroup == "" {
		return []config.Service{svc}
	}
	var unit []config.Service
	for _, other := range cfg.Services {
		if other.ReplicationGroup == svc.ReplicationGroup {
			unit = append(unit, other)
		}
	}
	return unit
}

// switchoverServices resolves the request to the services that move and
// the site they leave.
func switchoverServices(cfg *config.Cluster, snap *site.Snapshot, req SwitchoverRequest) ([]config.Service, string, []string) {
	if _, ok := cfg.Site(req.To); !ok {
		return nil, "", []string{fmt.Sprintf("site %q is not in the config (sites: %s)", req.To, strings.Join(cfg.SiteNames(), ", "))}
	}
	if req.Service != "" {
		svc, ok := cfg.Service(req.Service)
		if !ok {
			return nil, "", []string{fmt.Sprintf("service %q is not in the config (services: %s)", req.Service, strings.Join(serviceNames(cfg.Services), ", "))}
		}
		a, ok := snap.Assignments[svc.Name]
		if !ok {
			return nil, "", []string{fmt.Sprintf("service %s is not assigned to any site yet: there is nothing to move", svc.Name)}
		}
		return movesWith(cfg, svc), a.Site, nil
	}
	if _, ok := cfg.Site(req.Site); !ok {
		return nil, "", []string{fmt.Sprintf("site %q is not in the config (sites: %s)", req.Site, strings.Join(cfg.SiteNames(), ", "))}
	}
	var svcs []config.Service
	for _, svc := range cfg.Services {
		if a, ok := snap.Assignments[svc.Name]; ok && a.Site == req.Site {
			svcs = append(svcs, svc)
		}
	}
	if len(svcs) == 0 {
		return nil, "", []string{fmt.Sprintf("site %s holds no service: there is nothing to move", req.Site)}
	}
	return svcs, req.Site, nil
}

// SwitchoverBlockers says everything that keeps the services from moving
// from site from to site to now, each in a sentence that says what to do;
// none means they may. self is the op that asks, which is no blocker
// itself ("" before it exists).
//
// Both sites must be up (a site that is not is failed over, not switched
// over), the target not drained, and the target's controller must report
// itself up; every service
// must be held by from, may run at to, and no other unfinished op may
// touch it or either site; for each replication group, the old primary
// must be a writable primary and the target's member a healthy standby
// that follows it (it acted on the current assignment) within the
// services' RPO.
func SwitchoverBlockers(cfg *config.Cluster, snap *site.Snapshot, svcs []config.Service, from, to, self string) []string {
	var why []string
	if from == to {
		return []string{fmt.Sprintf("the services are at site %s already: there is nothing to move", to)}
	}
	for _, s := range []string{from, to} {
		if !snap.Up(s) {
			why = append(why, fmt.Sprintf("site %s is %s: a switchover needs both sites up (a dark site is failed over: zdt failover)", s, snap.StateOf(s)))
		}
	}
	why = append(why, moveBlockers(snap, svcs, from, to, self)...)
	for _, g := range groupsOf(svcs) {
		why = append(why, groupSwitchoverBlockers(cfg, snap, g, from, to)...)
	}
	return why
}

// moveBlockers is what any move of the services from site from to site to
// needs: the target not drained and reporting itself up, no other
// unfinished op touching the services or the sites (self is the op that
// asks), every service at from and allowed at to.
func moveBlockers(snap *site.Snapshot, svcs []config.Service, from, to, self string) []string {
	var why []string
	if snap.Drained(to) {
		why = append(why, fmt.Sprintf("site %s is drained for maintenance: undrain it first (zdt undrain --site %s)", to, to))
	}
	if r, ok := snap.Reports[to]; snap.Up(to) && (!ok || r.State != site.ControllerUp) {
		why = append(why, fmt.Sprintf("site %s's controller does not report itself up (%s)", to, reportState(r, ok)))
	}
	names := serviceNames(svcs)
	for _, op := range snap.UnfinishedOps() {
		if op.ID == self {
			continue
		}
		if touched := opTouches(op, names, from, to); touched != "" {
			why = append(why, fmt.Sprintf("op %s (%s, by %s) is still running for %s: one op at a time; wait for it (zdt ops watch %s) or abort it", op.ID, op.Kind, op.Who, touched, op.ID))
		}
	}
	for _, svc := range svcs {
		if a := snap.Assignments[svc.Name]; a.Site != from {
			why = append(why, fmt.Sprintf("service %s is at site %q, not %s: it moved meanwhile; plan again", svc.Name, a.Site, from))
		}
		if !slices.Contains(svc.Sites, to) {
			why = append(why, fmt.Sprintf("service %s may not run at site %s (its sites: %s)", svc.Name, to, strings.Join(svc.Sites, ", ")))
		}
	}
	return why
}

// groupSwitchoverBlockers: the old primary is writable, the target's member
// a healthy standby of it within the group's RPO.
func groupSwitchoverBlockers(cfg *config.Cluster, snap *site.Snapshot, group, from, to string) []string {
	var why []string
	old, ok := memberReport(snap, from, group)
	switch {
	case !ok:
		why = append(why, fmt.Sprintf("site %s does not report its member of group %s", from, group))
	case old.Role != string(replication.RolePrimary) || !old.Writable:
		why = append(why, fmt.Sprintf("site %s's member of group %s is not a writable primary (%s, %s): a switchover moves a working primary", from, group, old.Role, orNone(old.Detail)))
	}
	_, epoch := groupAssignment(cfg, snap, group)
	m, ok := memberReport(snap, to, group)
	switch {
	case !ok:
		why = append(why, fmt.Sprintf("site %s does not report its member of group %s", to, group))
	case m.Role != string(replication.RoleStandby) || !m.Healthy:
		why = append(why, fmt.Sprintf("site %s's member of group %s is not a healthy standby (%s, %s)", to, group, m.Role, orNone(m.Detail)))
	case m.Epoch < epoch:
		why = append(why, fmt.Sprintf("site %s's member of group %s has not followed the current primary yet (it acted on epoch %d, the assignment is at %d)", to, group, m.Epoch, epoch))
	default:
		st := replication.Status{Role: replication.RoleStandby, Healthy: true, LagBytes: m.LagBytes, LagSeconds: m.LagSeconds}
		p := replrec.GroupPolicy(cfg, group)
		p.RequireSync = false // it replays up to the fenced primary's last position before its promotion
		if ok, reason := replication.Eligible(p, st); !ok {
			why = append(why, fmt.Sprintf("site %s's member of group %s is too far behind to take over now: %s; wait until it catches up", to, group, reason))
		}
	}
	return why
}

// memberReport is the site's last report of its member of the group.
func memberReport(snap *site.Snapshot, at, group string) (site.MemberReport, bool) {
	rep := snap.Replication[at]
	i := slices.IndexFunc(rep.Members, func(m site.MemberReport) bool { return m.Group == group })
	if i < 0 {
		return site.MemberReport{}, false
	}
	return rep.Members[i], true
}

// opTouches says what of the services and sites the op works on ("" when
// nothing): one of the services, or one of the sites when the op is about
// a site.
func opTouches(op *site.Op, services []string, sites ...string) string {
	for _, svc := range append(strings.Split(op.Params["services"], ","), op.Params["service"]) {
		if svc != "" && slices.Contains(services, svc) {
			return "service " + svc
		}
	}
	for _, st := range op.Steps {
		if svc := st.Params["service"]; svc != "" && slices.Contains(services, svc) {
			return "service " + svc
		}
	}
	if s := op.Params["site"]; s != "" && slices.Contains(sites, s) {
		return "site " + s
	}
	return ""
}

func serviceNames(svcs []config.Service) []string {
	names := make([]string, len(svcs))
	for i, s := range svcs {
		names[i] = s.Name
	}
	return names
}

// groupsOf lists the replication groups the services use, in order.
func groupsOf(svcs []config.Service) []string {
	var groups []string
	for _, s := range svcs {
		if s.ReplicationGroup != "" && !slices.Contains(groups, s.ReplicationGroup) {
			groups = append(groups, s.ReplicationGroup)
		}
	}
	return groups
}

// checkSwitchoverStep checks the blockers again at the coordinator, from
// the state as it is now.
func checkSwitchoverStep(ctx context.Context, r *run, st *site.Step) stepResult {
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	var svcs []config.Service
	for _, name := range strings.Split(st.Params["services"], ",") {
		svc, ok := r.c.cfg.Cluster.Service(name)
		if !ok {
			return stepResult{kind: stepFailed, detail: fmt.Sprintf("service %s is not in the config", name)}
		}
		svcs = append(svcs, svc)
	}
	from, to := st.Params["from"], st.Params["to"]
	if st.Params["force"] == "true" {
		if why := ForcedTakeoverBlockers(r.c.cfg.Cluster, snap, svcs, from, to, r.op.ID); len(why) > 0 {
			return stepResult{kind: stepFailed, detail: fmt.Sprintf("the forced takeover by site %s from site %s may not run now: %s", to, from, strings.Join(why, "; "))}
		}
		return done("site %s takes %s over from site %s, forced: %s", to, st.Params["services"], from, possibleLoss(snap, svcs, to))
	}
	if why := SwitchoverBlockers(r.c.cfg.Cluster, snap, svcs, from, to, r.op.ID); len(why) > 0 {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("the switchover from site %s to site %s may not run now: %s", from, to, strings.Join(why, "; "))}
	}
	return done("site %s may take %s from site %s", to, st.Params["services"], from)
}

// awaitPrimaryStep waits until the target site reports its member of the
// group as a writable primary for this op's assignment. If the target
// cannot get there (its site is no longer up, or the wait ran out) and it
// is not writable, the move is rolled back: the services are assigned to
// their old site again, whose member, fenced but holding everything, lifts
// its fence (the target never took a write). A service moved meanwhile by
// another op (the failover of a site that went dark takes precedence) ends
// the wait: that op owns it now. In a takeover (a failover, a forced
// switchover) there is no old layout to go back to: see
// awaitTakeoverPrimary.
func awaitPrimaryStep(ctx context.Context, r *run, st *site.Step) stepResult {
	if !rollsBack(r.op, st) {
		return awaitTakeoverPrimary(ctx, r, st)
	}
	group, from, to := st.Params["group"], st.Params["from"], st.Params["to"]
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	var ours []string
	var epoch int64
	for _, name := range strings.Split(st.Params["services"], ",") {
		svc, ok := r.c.cfg.Cluster.Service(name)
		if !ok || svc.ReplicationGroup != group {
			continue
		}
		a := snap.Assignments[name]
		if a.Op != r.op.ID || a.Site != to {
			return stepResult{kind: stepAbort, detail: fmt.Sprintf("service %s was moved meanwhile to site %q by op %s: that op carries on", name, a.Site, a.Op)}
		}
		ours = append(ours, name)
		epoch = max(epoch, a.Epoch)
	}
	m, reported := memberReport(snap, to, group)
	if reported && m.Epoch >= epoch && m.Role == string(replication.RolePrimary) && m.Writable {
		return done("site %s's member of group %s is a writable primary (epoch %d) after %s", to, group, epoch, r.c.now().Sub(st.Started).Round(time.Millisecond))
	}
	limit := r.stepLimit(st)
	waited := r.c.now().Sub(st.Started)
	state := "no report of it yet"
	if reported {
		state = fmt.Sprintf("%s, epoch %d: %s", m.Role, m.Epoch, orNone(m.Detail))
	}
	var cause string
	acted := reported && m.Epoch >= epoch
	switch {
	case !snap.Up(from) && !(reported && m.Writable):
		// The old site went dark (or was fenced) before the target took
		// over: the services go back to it, so that its failover, which
		// fences it first, moves them; the target, a standby of a dark
		// primary, would not be promoted by a planned move.
		return r.rolledBack(ctx, ours, from,
			fmt.Sprintf("site %s is %s: %s back at it for its failover", from, snap.StateOf(from), strings.Join(ours, ", ")),
			fmt.Sprintf("site %s is %s: %s assigned to it again, for its failover to move them (it fences the site first)", from, snap.StateOf(from), strings.Join(ours, ", ")))
	case !snap.Up(to):
		cause = fmt.Sprintf("site %s is %s", to, snap.StateOf(to))
	case acted && m.Role == string(replication.RoleUnknown):
		cause = fmt.Sprintf("site %s cannot reach its member of group %s (%s)", to, group, orNone(m.Detail))
	case acted && strings.Contains(m.Detail, "promotion refused"):
		cause = fmt.Sprintf("site %s refuses to promote its member of group %s (%s)", to, group, m.Detail)
	case waited >= limit:
		cause = fmt.Sprintf("site %s's member of group %s is not a writable primary after %s (%s)", to, group, limit, state)
	default:
		return stepResult{kind: stepWait, detail: fmt.Sprintf("waiting up to %s for site %s's member of group %s to be promoted (%s)", limit, to, group, state)}
	}
	if reported && m.Writable {
		// Promoted after all: going back now would lose what it took.
		return stepResult{kind: stepFailed, detail: cause + "; its member is writable, so the move stays"}
	}
	return r.rolledBack(ctx, ours, from,
		fmt.Sprintf("%s: %s back at site %s", cause, strings.Join(ours, ", "), from),
		fmt.Sprintf("%s: rolled back, %s assigned to site %s again (its primary lifts its fence)", cause, strings.Join(ours, ", "), from))
}

// rollsBack says whether the op is a planned move, which rolls back when
// the target's promotion does not come.
func rollsBack(op *site.Op, st *site.Step) bool {
	force := st.Params["force"] == "true" || (st.Params["kind"] == "" && op.Params["force"] == "true")
	switch stepKind(op, st) {
	case KindSwitchover:
		return !force
	case KindEvacuate:
		return true
	}
	return false
}

// rolledBack rolls the services back to site from, writes the event, and
// ends the step failed with detail; a rollback that could not be written
// is retried.
func (r *run) rolledBack(ctx context.Context, services []string, from, event, detail string) stepResult {
	if err := r.rollBack(ctx, services, from); err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	r.c.event(ctx, "switchover-rolled-back", r.op.ID, strings.Join(services, ","), event)
	return stepResult{kind: stepFailed, detail: detail}
}

// rollBack assigns the services to site from again, each only while it is
// still where this op put it.
func (r *run) rollBack(ctx context.Context, services []string, from string) error {
	for _, name := range services {
		for attempt := 0; ; attempt++ {
			cur, err := r.c.cfg.Store.Assignment(ctx, name)
			if err != nil {
				return err
			}
			if cur.Op != r.op.ID || cur.Site == from {
				break // moved by someone else, or rolled back already
			}
			_, err = r.c.cfg.Store.Assign(ctx, r.g, cur, site.Assignment{Service: name, Site: from, Op: r.op.ID, At: r.c.now(), From: cur.Site, Kind: KindSwitchover})
			if err == nil {
				break
			}
			if !errors.Is(err, site.ErrConflict) || attempt == 2 {
				return fmt.Errorf("roll service %s back to site %s: %w", name, from, err)
			}
		}
	}
	return nil
}

// SwitchBack lists the switchovers that bring back to site name every
// service whose preferred site (the first in its order) it is and that is
// assigned elsewhere, one request per service unit (a service and the
// services of its group), in config order.
func SwitchBack(cfg *config.Cluster, snap *site.Snapshot, name string) []SwitchoverRequest {
	assigned := make(map[string]string, len(snap.Assignments))
	for svc, a := range snap.Assignments {
		assigned[svc] = a.Site
	}
	return SwitchBackOf(cfg, assigned, name)
}

// SwitchBackOf is SwitchBack from the sites the services are assigned to
// (a service not in assigned has none yet).
func SwitchBackOf(cfg *config.Cluster, assigned map[string]string, name string) []SwitchoverRequest {
	var reqs []SwitchoverRequest
	covered := map[string]bool{}
	for _, svc := range cfg.Services {
		at, ok := assigned[svc.Name]
		if covered[svc.Name] || len(svc.Sites) == 0 || svc.Sites[0] != name || !ok || at == name {
			continue
		}
		for _, u := range movesWith(cfg, svc) {
			covered[u.Name] = true
		}
		reqs = append(reqs, SwitchoverRequest{Service: svc.Name, To: name})
	}
	return reqs
}

// ForcedTakeoverBlockers says what keeps site to from taking the services
// over from site from by force (SwitchoverRequest.Force). The old site must
// be fenced: its controller fences itself, so nothing of it takes writes;
// a dark site that is not fenced yet is about to be failed over. The target
// must be up, not drained and reporting itself up, no other op may touch
// the services or the sites, and its member of each group must be one that
// its site reports as a standby: lag and health are what --force accepts.
func ForcedTakeoverBlockers(cfg *config.Cluster, snap *site.Snapshot, svcs []config.Service, from, to, self string) []string {
	var why []string
	if from == to {
		return []string{fmt.Sprintf("the services are at site %s already: there is nothing to move", to)}
	}
	if _, fenced := snap.Fences[from]; !fenced {
		why = append(why, fmt.Sprintf("site %s is %s, not fenced: --force takes services over only from a fenced site (a site that is up: zdt switchover without --force loses nothing; a dark one is fenced by its failover first)", from, snap.StateOf(from)))
	}
	if !snap.Up(to) {
		why = append(why, fmt.Sprintf("site %s is %s: the target must be up", to, snap.StateOf(to)))
	}
	why = append(why, moveBlockers(snap, svcs, from, to, self)...)
	for _, g := range groupsOf(svcs) {
		if m, ok := memberReport(snap, to, g); !ok || m.Role != string(replication.RoleStandby) {
			why = append(why, fmt.Sprintf("site %s does not report its member of group %s as a standby (%s): there is nothing to promote", to, g, memberState(m, ok)))
		}
	}
	return why
}

func memberState(m site.MemberReport, ok bool) string {
	if !ok {
		return "no report"
	}
	return m.Role + ", " + orNone(m.Detail)
}

// possibleLoss says, group by group, how far the target's member was
// behind, by the reports: what a forced takeover may lose. It is judged as
// a failover judges a standby (memberEligible): in bytes, how far its
// reported WAL position is behind the old primary's last reported one (the
// old primary is the group's member at the services' site, the site they
// are taken from), or its own reported lag when that is larger; when
// either position is missing or unreadable, it says that how far behind is
// unknown, and why.
func possibleLoss(snap *site.Snapshot, svcs []config.Service, to string) string {
	from := ""
	if len(svcs) > 0 {
		from = snap.Assignments[svcs[0].Name].Site
	}
	var parts []string
	for _, g := range groupsOf(svcs) {
		m, ok := memberReport(snap, to, g)
		if !ok {
			continue
		}
		at := m.Observed.UTC().Format(time.RFC3339)
		behind, last, err := behindOldPrimary(snap, g, from, m)
		if err != nil {
			parts = append(parts, fmt.Sprintf("group %s: how far site %s's member was behind site %s's primary is unknown (%v); "+
				"at %s it was at WAL position %s, %d bytes and %.1f s behind what it had received; whatever it had not received may be lost",
				g, to, from, err, at, orNone(m.Position), m.LagBytes, m.LagSeconds))
			continue
		}
		parts = append(parts, fmt.Sprintf("group %s: site %s's member was %d bytes and %.1f s behind at %s, by site %s's primary's last reported WAL position %s "+
			"(it was at %s, %d bytes behind what it had received); what it had not received may be lost",
			g, to, max(behind, m.LagBytes), m.LagSeconds, at, from, last, orNone(m.Position), m.LagBytes))
	}
	if len(parts) == 0 {
		return "no replication group: nothing to lose"
	}
	return strings.Join(parts, "; ")
}
