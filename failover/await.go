package failover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// The steps that wait until the sites report what an op asked of them. Each
// ends done once the reports show it, waits (the coordinator goes on with
// other ops meanwhile) while they do not, and fails with what is missing
// once its time runs out.
const (
	// StepAwaitFollowers waits until the members of a group at every other
	// site that is up follow the primary the op made: healthy standbys
	// that acted on its assignment.
	StepAwaitFollowers = "await-followers"
	// StepAwaitGuests waits until every guest the op placed to run runs
	// where it was placed, as its site reports its hosts.
	StepAwaitGuests = "await-guests"
	// StepAwaitPrefixes waits until the prefixes of the services the op
	// moved lead to their new site: the route observer's best path, or,
	// for a prefix it does not see (or without an observer), the new
	// site's report that it announces it to carry the traffic.
	StepAwaitPrefixes = "await-prefixes"
)

// guestStartAllowance is how much longer than awaitLimit an op waits for
// its guests to run, for each guest it placed to run (unless the step has
// its own "within"): 3,200 guests placed in a failover add 32 s.
const guestStartAllowance = 10 * time.Millisecond

// guestsLimit is how long an await-guests step waits for n guests: the
// step's limit, which its "within" (when given) sets for all of them, and
// otherwise guestStartAllowance more for each guest, since the sites start
// guests a few at a time and a failover of a large site has thousands.
func guestsLimit(limit time.Duration, within bool, n int) time.Duration {
	if within {
		return limit
	}
	return limit + time.Duration(n)*guestStartAllowance
}

// listedPending is how many of the things a step waits for its detail
// names; it counts the rest. A step that waits for thousands of guests
// must not journal a detail of hundreds of kilobytes at every change.
const listedPending = 10

// someOf lists the first listedPending of what is pending and counts the
// rest.
func someOf(pending []string) string {
	if len(pending) <= listedPending {
		return strings.Join(pending, "; ")
	}
	return strings.Join(pending[:listedPending], "; ") + fmt.Sprintf("; and %d more", len(pending)-listedPending)
}

// MinAwait is the least time a step waits for the sites before it fails (a
// switchover's await-primary then rolls back).
const MinAwait = 30 * time.Second

// awaitLimit is how long a step waits for the sites by default: a
// promotion, a rewind, a guest's start, the upstream's convergence, each
// seen through a site's report.
func awaitLimit(cfg *config.Cluster) time.Duration {
	return max(MinAwait, 10*cfg.Timings.LeaseTTL)
}

// awaited ends a waiting step: done with doneDetail when nothing is pending,
// failed once the step has waited its limit (its "within" parameter, or
// awaitLimit), and otherwise a wait that says what it waits for.
func (r *run) awaited(st *site.Step, what, pending, doneDetail string) stepResult {
	return r.awaitedFor(st, r.stepLimit(st), what, pending, doneDetail)
}

// awaitedFor is awaited with the step's limit given.
func (r *run) awaitedFor(st *site.Step, limit time.Duration, what, pending, doneDetail string) stepResult {
	waited := r.c.now().Sub(st.Started)
	if pending == "" {
		return done("%s after %s", doneDetail, waited.Round(time.Millisecond))
	}
	if waited >= limit {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("%s: not after %s: %s", what, limit, pending)}
	}
	return stepResult{kind: stepWait, detail: fmt.Sprintf("waiting up to %s for %s: %s", limit, what, pending)}
}

// opLimit is the longest any step of the op may wait.
func (r *run) opLimit() time.Duration {
	limit := awaitLimit(r.c.cfg.Cluster)
	for i := range r.op.Steps {
		limit = max(limit, r.stepLimit(&r.op.Steps[i]))
	}
	return limit
}

// stepLimit is how long the step may wait.
func (r *run) stepLimit(st *site.Step) time.Duration {
	if limit, err := time.ParseDuration(st.Params["within"]); err == nil && limit > 0 {
		return limit
	}
	return awaitLimit(r.c.cfg.Cluster)
}

// awaitSteps are the waits that end an op that moves the services: for
// each group's promotion (a takeover's; a switchover has its own, which
// rolls back), for the guests when the op placed them, for the prefixes
// (a planned move moves them make-before-break, phase by phase), and for
// the groups' other members to follow.
func awaitSteps(svcs []config.Service, promotion, guests, planned bool, within time.Duration) []site.Step {
	names := strings.Join(serviceNames(svcs), ",")
	params := func(kv ...string) map[string]string {
		p := map[string]string{"services": names}
		if within > 0 {
			p["within"] = within.String()
		}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i]] = kv[i+1]
		}
		return p
	}
	var steps []site.Step
	if promotion {
		for _, g := range groupsOf(svcs) {
			steps = append(steps, site.Step{Name: StepAwaitPrimary, Params: params("group", g), Status: site.StepPending})
		}
	}
	if guests {
		steps = append(steps, site.Step{Name: StepAwaitGuests, Status: site.StepPending})
	}
	switch {
	case len(svcs) > 0 && planned:
		steps = append(steps, site.Step{Name: StepMovePrefixes, Params: params(), Status: site.StepPending})
	case len(svcs) > 0:
		steps = append(steps, site.Step{Name: StepAwaitPrefixes, Params: params(), Status: site.StepPending})
	}
	// Last: the others following matters for the next failure, not for
	// the service's recovery (its RTO).
	for _, g := range groupsOf(svcs) {
		steps = append(steps, site.Step{Name: StepAwaitFollowers, Params: params("group", g), Status: site.StepPending})
	}
	return steps
}

// opMoves is where op moved the services (those of the group, when group
// is not ""): their site and largest epoch, or, when the op moved none of
// them (a failover that found no target leaves a service where it is; a
// later op may have moved it on), why there is nothing to wait for.
func opMoves(cfg *config.Cluster, snap *site.Snapshot, op string, services []string, group string) (to string, epoch int64, none string) {
	var elsewhere []string
	moved := false
	for _, name := range services {
		svc, ok := cfg.Service(name)
		if !ok || (group != "" && svc.ReplicationGroup != group) {
			continue
		}
		a, ok := snap.Assignments[name]
		switch {
		case !ok:
			elsewhere = append(elsewhere, fmt.Sprintf("service %s has no assignment", name))
		case a.Op != op:
			elsewhere = append(elsewhere, fmt.Sprintf("service %s is at site %s by op %s", name, a.Site, a.Op))
		default:
			to, epoch, moved = a.Site, max(epoch, a.Epoch), true
		}
	}
	if !moved {
		return "", 0, "this op moved none of them: " + strings.Join(elsewhere, "; ")
	}
	return to, epoch, ""
}

// groupMove reads the cluster's state and where the op moved the services
// and group the step names (opMoves). end, when not nil, ends the step: a
// retry when etcd could not be read, skipped (nothing, then why) when the
// op moved none of them.
func (r *run) groupMove(ctx context.Context, st *site.Step, nothing string) (snap *site.Snapshot, to string, epoch int64, end *stepResult) {
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return nil, "", 0, &stepResult{kind: stepRetry, err: err}
	}
	to, epoch, none := opMoves(r.c.cfg.Cluster, snap, r.op.ID, strings.Split(st.Params["services"], ","), st.Params["group"])
	if none != "" {
		return nil, "", 0, &stepResult{kind: stepSkipped, detail: nothing + ": " + none}
	}
	return snap, to, epoch, nil
}

// awaitTakeoverPrimary is await-primary in a failover: it waits until the
// site the op assigned the group's services to reports its member a
// writable primary for that assignment. There is nothing to roll back to.
func awaitTakeoverPrimary(ctx context.Context, r *run, st *site.Step) stepResult {
	group := st.Params["group"]
	snap, to, epoch, end := r.groupMove(ctx, st, "no promotion of group "+group+" to wait for")
	if end != nil {
		return *end
	}
	if !snap.Up(to) {
		return stepResult{kind: stepFailed, detail: fmt.Sprintf("site %s is %s before its member of group %s was promoted: its own failover moves the services on", to, snap.StateOf(to), group)}
	}
	pending := primaryPending(snap, to, group, epoch)
	return r.awaited(st, fmt.Sprintf("site %s's member of group %s to be a writable primary", to, group), pending,
		fmt.Sprintf("site %s's member of group %s is a writable primary (epoch %d)", to, group, epoch))
}

// primaryPending says how the site's member of the group is not yet a
// writable primary for the assignment of the epoch, "" when it is.
func primaryPending(snap *site.Snapshot, to, group string, epoch int64) string {
	m, ok := memberReport(snap, to, group)
	switch {
	case !ok:
		return "no report of it yet"
	case m.Epoch < epoch || m.Role != string(replication.RolePrimary) || !m.Writable:
		return fmt.Sprintf("%s, writable %t, epoch %d of %d: %s", m.Role, m.Writable, m.Epoch, epoch, orNone(m.Detail))
	}
	return ""
}

// awaitFollowersStep waits until, at every site that is up other than the
// group's new primary's, the member follows it. Sites that are not up are
// left to their failback.
func awaitFollowersStep(ctx context.Context, r *run, st *site.Step) stepResult {
	group := st.Params["group"]
	snap, to, epoch, end := r.groupMove(ctx, st, "no new primary of group "+group+" to follow")
	if end != nil {
		return *end
	}
	pending, following := followersPending(r.c.cfg.Cluster, snap, group, to, epoch)
	who := "no other site that is up has a member"
	if len(following) > 0 {
		who = "the members at " + strings.Join(following, ", ") + " follow it"
	}
	return r.awaited(st, fmt.Sprintf("the members of group %s to follow site %s", group, to), someOf(pending),
		fmt.Sprintf("group %s: %s at site %s", group, who, to))
}

// followersPending lists the group's members, at the sites that are up
// other than to, that do not follow to's primary of the epoch yet, and the
// sites whose members do.
func followersPending(cfg *config.Cluster, snap *site.Snapshot, group, to string, epoch int64) (pending, following []string) {
	i := slices.IndexFunc(cfg.Replication, func(g config.ReplicationGroup) bool { return g.Name == group })
	if i < 0 {
		return []string{fmt.Sprintf("replication group %s is not in the config", group)}, nil
	}
	g := cfg.Replication[i]
	for _, mem := range g.Members {
		s := mem.Site
		if s == to || !snap.Up(s) {
			continue
		}
		m, ok := memberReport(snap, s, group)
		switch {
		case !ok:
			pending = append(pending, fmt.Sprintf("site %s does not report its member", s))
		case m.Role != string(replication.RoleStandby) || !m.Healthy || m.Epoch < epoch:
			pending = append(pending, fmt.Sprintf("site %s's member: %s, healthy %t, epoch %d of %d: %s", s, m.Role, m.Healthy, m.Epoch, epoch, orNone(m.Detail)))
		default:
			if why := notStreaming(g, snap, s, to); why != "" {
				pending = append(pending, why)
				continue
			}
			following = append(following, s)
		}
	}
	return pending, following
}

// notStreaming says why the member at site s is not seen streaming from the
// group's primary at site to, "" when it is, or when the driver's primary
// does not know its standbys (DRBD). A standby's own report says whom it
// follows only in words; the primary's list of the standbys streaming from
// it is what proves it follows the current primary (and not, say, the old
// one it still streamed from, about to need a rewind).
func notStreaming(g config.ReplicationGroup, snap *site.Snapshot, s, to string) string {
	if g.Driver != config.DriverPostgres {
		return ""
	}
	p, ok := memberReport(snap, to, g.Name)
	if ok && slices.Contains(p.Streaming, s) {
		return ""
	}
	return fmt.Sprintf("site %s's member does not stream from the primary at site %s yet (it lists %s)", s, to, orNone(strings.Join(p.Streaming, ", ")))
}

// awaitGuestsStep waits until every guest this op placed to run (and that
// no later op placed anew) runs on its host, by its site's report.
func awaitGuestsStep(ctx context.Context, r *run, st *site.Step) stepResult {
	snap, err := r.c.snapshot(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	n, pending, lost := guestsPending(r.c.cfg.Cluster, snap, r.op.ID)
	switch {
	case lost != "":
		return stepResult{kind: stepFailed, detail: lost}
	case n == 0:
		return stepResult{kind: stepSkipped, detail: "this op placed no guest to run"}
	}
	return r.awaitedFor(st, guestsLimit(r.stepLimit(st), st.Params["within"] != "", n), fmt.Sprintf("%d guests to run where they were placed", n), someOf(pending),
		fmt.Sprintf("the %d guests placed run", n))
}

// guestsPending counts the guests that op placed to run (and no later op
// placed anew) and lists those not seen running on their hosts yet; lost
// says why the wait is pointless: a guest was placed at a site that is no
// longer up.
func guestsPending(cfg *config.Cluster, snap *site.Snapshot, op string) (n int, pending []string, lost string) {
	for _, g := range cfg.Guests() {
		p, ok := snap.Placements[g.Name]
		if !ok || p.Op != op || p.State != site.GuestRunning {
			continue
		}
		n++
		if !snap.Up(p.Site) {
			return n, nil, fmt.Sprintf("guest %s was placed at site %s, which is %s now: the guests are placed again", g.Name, p.Site, snap.StateOf(p.Site))
		}
		if why := guestNotRunning(snap, p); why != "" {
			pending = append(pending, why)
		}
	}
	return n, pending, ""
}

// guestNotRunning says why the placed guest is not seen running on its
// host, "" when it is.
func guestNotRunning(snap *site.Snapshot, p site.Placement) string {
	for _, h := range snap.Hosts[p.Site].Hosts {
		if h.Name != p.Host {
			continue
		}
		if slices.ContainsFunc(h.Running, func(g site.RunningGuest) bool { return g.Name == p.Guest }) {
			return ""
		}
		if h.Error != "" {
			return fmt.Sprintf("%s not on %s yet (%s)", p.Guest, p.Host, h.Error)
		}
		return fmt.Sprintf("%s not on %s yet", p.Guest, p.Host)
	}
	return fmt.Sprintf("%s: site %s does not report host %s", p.Guest, p.Site, p.Host)
}

// awaitPrefixesStep waits until the prefixes of every service this op moved
// lead to the service's new site (see StepAwaitPrefixes). A site without a BGP speaker
// announces nothing; there is nothing to wait for.
func awaitPrefixesStep(ctx context.Context, r *run, st *site.Step) stepResult {
	snap, upstream, err := r.c.state(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	n, pending := prefixesPending(r.c.cfg.Cluster, snap, upstream, r.op.ID, strings.Split(st.Params["services"], ","))
	if n == 0 {
		return stepResult{kind: stepSkipped, detail: "no prefix moved by this op"}
	}
	where := "the new sites announce them"
	if len(upstream) > 0 {
		where = "the observer's best paths lead there (or the new sites announce those it does not see)"
	}
	return r.awaited(st, fmt.Sprintf("%d prefixes to lead to their new sites", n), someOf(pending),
		fmt.Sprintf("%d prefixes moved: %s", n, where))
}

// prefixesPending counts the prefixes of the services that op moved (and
// no later op moved on) to a site with a BGP speaker, and lists those that
// do not lead there yet: by the observer's records (upstream, nil without
// an observer), or, for a prefix it holds no record of, by the new site's
// report.
func prefixesPending(cfg *config.Cluster, snap *site.Snapshot, upstream map[string]site.UpstreamRoute, op string, services []string) (n int, pending []string) {
	for _, name := range services {
		svc, ok := cfg.Service(name)
		a, assigned := snap.Assignments[name]
		if !ok || !assigned || a.Op != op {
			continue
		}
		if s, ok := cfg.Site(a.Site); !ok || s.BGP == nil {
			continue
		}
		for _, p := range svc.Prefixes {
			n++
			if why := prefixNotThere(snap, upstream, cfg.BGP.Headroom, name, p.String(), a.Site); why != "" {
				pending = append(pending, why)
			}
		}
	}
	return n, pending
}

// prefixNotThere says why the prefix does not lead to site to yet, "" when
// it does: by the observer's record of the prefix, if it has one, or else
// by what site to reports it announces.
func prefixNotThere(snap *site.Snapshot, upstream map[string]site.UpstreamRoute, headroom int, service, prefix, to string) string {
	// A prefix the observer holds no record of (its sessions may not
	// carry the prefix's address family) is judged by the site's report.
	if rec, ok := upstream[prefix]; ok {
		if rec.BestSite != to {
			return fmt.Sprintf("%s: the observer's best path leads to %q", prefix, rec.BestSite)
		}
		return ""
	}
	if an, ok := snap.Announcement(to, service, prefix); ok {
		// At the headroom or below: the rungs of the site that carries
		// the best path (active, move-in, takeover).
		if an.Prepends <= headroom {
			return ""
		}
		return fmt.Sprintf("%s: site %s announces it with %d prepends, as a standby", prefix, to, an.Prepends)
	}
	return fmt.Sprintf("%s: site %s does not announce it yet", prefix, to)
}
