package failover

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	replrec "github.com/zdt-project/zdt/replication/reconciler"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// KindReassign is the op that moves services left at a fenced site (no
// site could take them when it was failed over) once a site can.
const KindReassign = "reassign"

// ChooseTarget picks the site a service moves to when it leaves from: the
// first site in the service's order, other than from, that is up and, for a
// service with a replication group, whose member the reconciler there will
// promote under the group's RPO policy, judged from the sites' last
// replication reports (memberEligible). With one, why says what its member
// was judged by (its lag, and against what), for the op's journal; without
// one it returns "" and why, site by site.
//
// When from is not up (a failover) the standbys' primary is gone: see
// memberEligible. A member whose role its site cannot tell (its server is
// down) is not eligible. Under require_sync, or in a synchronous group, a
// standby the old primary last reported among the ones it waited for
// counts as synchronous.
//
// A drained site (zdt evacuate) is chosen only when no other site can be.
func ChooseTarget(cfg *config.Cluster, svc config.Service, snap *site.Snapshot, from string) (to string, why string) {
	to, why = chooseTarget(cfg, svc, snap, from, true)
	if to != "" {
		return to, why
	}
	if to, chosen := chooseTarget(cfg, svc, snap, from, false); to != "" {
		return to, chosen
	}
	return "", why
}

func chooseTarget(cfg *config.Cluster, svc config.Service, snap *site.Snapshot, from string, avoidDrained bool) (to string, why string) {
	var states []string
	var policy replication.RPOPolicy
	byPosition := true
	if svc.ReplicationGroup != "" {
		policy = replrec.GroupPolicy(cfg, svc.ReplicationGroup)
		i := slices.IndexFunc(cfg.Replication, func(g config.ReplicationGroup) bool { return g.Name == svc.ReplicationGroup })
		byPosition = i < 0 || cfg.Replication[i].Driver != config.DriverDRBD
	}
	for _, s := range svc.Sites {
		switch {
		case s == from:
			states = append(states, s+" is being left")
			continue
		case !snap.Up(s):
			states = append(states, fmt.Sprintf("%s is %s", s, snap.StateOf(s)))
			continue
		case avoidDrained && snap.Drained(s):
			states = append(states, s+" is drained")
			continue
		case svc.ReplicationGroup == "":
			return s, fmt.Sprintf("site %s is up (service %s has no replication group)", s, svc.Name)
		}
		_, epoch := groupAssignment(cfg, snap, svc.ReplicationGroup)
		ok, reason := memberEligible(snap, svc.ReplicationGroup, s, from, epoch, policy, byPosition)
		if ok {
			return s, fmt.Sprintf("site %s: its member of group %s may be promoted: %s", s, svc.ReplicationGroup, reason)
		}
		states = append(states, fmt.Sprintf("%s: its member of group %s may not be promoted: %s", s, svc.ReplicationGroup, reason))
	}
	return "", fmt.Sprintf("no site can take service %s: %s", svc.Name, strings.Join(states, "; "))
}

// memberEligible judges the group's member at the site from its last
// report, and says what it judged it by.
//
// When the old primary's site (from) is not up, its standbys no longer
// stream, so a standby is not refused for being unhealthy. With byPosition
// (a PostgreSQL group), the lag a standby reports is measured against what
// it received, which says nothing of what it never received: it is judged
// on how far its reported WAL position is behind the old primary's last
// reported one (behindOldPrimary), or on its own lag when that is larger.
// That is a floor (the old primary may have written more after its last
// report), and when either position is missing or unreadable the lag is
// unknown: then the member is not eligible under a limit in bytes. (A DRBD
// standby's out-of-sync data already counts what the lost primary wrote
// that it did not get.) A synchronous standby (its report, or heldSync)
// loses nothing whatever its lag; when the old primary is gone and it waited
// for any one of several standbys ('ANY 1 (...)'), only the one that holds
// the most WAL is sure to hold every acknowledged commit
// (replrec.SyncHolder, as the reconciler there judges it; epoch is the
// group's assignment), and only it counts as synchronous.
func memberEligible(snap *site.Snapshot, group, at, from string, epoch int64, p replication.RPOPolicy, byPosition bool) (bool, string) {
	m, ok := memberReport(snap, at, group)
	if !ok {
		return false, "its site has not reported it"
	}
	st := replication.Status{
		Role: replication.Role(m.Role), Healthy: m.Healthy, Sync: m.Sync || heldSync(snap, group, from, at),
		LagBytes: m.LagBytes, LagSeconds: m.LagSeconds, Writable: m.Writable, Detail: m.Detail,
	}
	if st.Role != replication.RoleStandby || from == "" || snap.Up(from) {
		return replication.Eligible(p, st)
	}
	var syncWhy string
	if old, _ := memberReport(snap, from, group); st.Sync && !m.Sync && len(old.SyncStandbys) > 1 {
		st.Sync, syncWhy = replrec.SyncHolder(group, at, from, epoch, snap.Replication)
	}
	if !st.Sync && p.RequireSync {
		ok, why := replication.Eligible(p, st)
		if syncWhy != "" {
			why += " (" + syncWhy + ")"
		}
		return ok, why
	}
	st.Healthy = true // its primary is gone: judge it on what it holds
	if !byPosition {
		return replication.Eligible(p, st)
	}
	behind, last, err := behindOldPrimary(snap, group, from, m)
	if err == nil {
		st.LagBytes = max(st.LagBytes, behind)
	}
	ok, why := replication.Eligible(p, st)
	switch {
	case st.Sync:
		return ok, why
	case err != nil && ok && p.MaxLagBytes >= 0:
		return false, fmt.Sprintf("how far it is behind site %s's primary is unknown (%v), and the service allows at most %s lost",
			from, err, replication.FormatBytes(p.MaxLagBytes))
	case err != nil:
		return ok, fmt.Sprintf("%s (how far it is behind site %s's primary is unknown: %v)", why, from, err)
	}
	return ok, fmt.Sprintf("%s (by site %s's primary's last reported WAL position %s; this member reported %s, %s behind what it received)",
		why, from, last, m.Position, replication.FormatBytes(m.LagBytes))
}

// behindOldPrimary is how many bytes the member's reported WAL position
// (a standby's replay position) is behind last, the last position that the
// group's primary at site from reported: 0 when it is not behind. It
// fails, saying why, when site from's last report of its member is not a
// primary's or either position is missing or unreadable: how far behind is
// then unknown.
func behindOldPrimary(snap *site.Snapshot, group, from string, m site.MemberReport) (behind int64, last string, err error) {
	old, ok := memberReport(snap, from, group)
	switch {
	case !ok:
		return 0, "", fmt.Errorf("site %s has not reported its member", from)
	case old.Role != string(replication.RolePrimary):
		return 0, "", fmt.Errorf("site %s's last report of its member is not a primary's (role %s), so it gives no last WAL position", from, old.Role)
	case old.Position == "":
		return 0, "", fmt.Errorf("site %s's primary reported no WAL position", from)
	case m.Position == "":
		return 0, old.Position, errors.New("the member reported no WAL position")
	}
	theirs, err := postgres.ParseLSN(old.Position)
	if err != nil {
		return 0, old.Position, fmt.Errorf("site %s's primary's last position: %w", from, err)
	}
	mine, err := postgres.ParseLSN(m.Position)
	if err != nil {
		return 0, old.Position, fmt.Errorf("the member's position: %w", err)
	}
	if mine >= theirs {
		return 0, old.Position, nil
	}
	return int64(min(theirs-mine, math.MaxInt64)), old.Position, nil
}

// heldSync says whether the primary at from, in its last report, waited for
// the member at site at before it acknowledged a commit.
func heldSync(snap *site.Snapshot, group, from, at string) bool {
	if from == "" {
		return false
	}
	for _, m := range snap.Replication[from].Members {
		if m.Group == group && m.Role == string(replication.RolePrimary) {
			return slices.Contains(m.SyncStandbys, at)
		}
	}
	return false
}

// Stranded lists the services assigned to a site that is not up and is
// fenced, in config order: a failover of that site found no site to take
// them.
func Stranded(cfg *config.Cluster, snap *site.Snapshot) []config.Service {
	if len(snap.Fences) == 0 {
		return nil // the coordinator asks twice a second: 1,000 lookups for nothing
	}
	var out []config.Service
	for _, svc := range cfg.Services {
		a, ok := snap.Assignments[svc.Name]
		if !ok {
			continue
		}
		if _, fenced := snap.Fences[a.Site]; fenced {
			out = append(out, svc)
		}
	}
	return out
}

// PlanReassign is the op that moves every stranded service that some site
// can take now; nil when none can. It is planned again as the reports
// change, so a service whose standby was too far behind moves once it has
// caught up.
func PlanReassign(cfg *config.Cluster, snap *site.Snapshot, self string, now time.Time) *site.Op {
	var steps []site.Step
	var moved []config.Service
	for _, svc := range Stranded(cfg, snap) {
		from := snap.Assignments[svc.Name].Site
		if to, _ := ChooseTarget(cfg, svc, snap, from); to == "" {
			continue
		}
		moved = append(moved, svc)
		steps = append(steps, site.Step{
			Name:   StepAssign,
			Params: map[string]string{"service": svc.Name, "from": from},
			Status: site.StepPending,
		})
	}
	if len(steps) == 0 {
		return nil
	}
	steps = append(steps, awaitSteps(moved, true, false, false, 0)...)
	return &site.Op{
		ID:      site.NewOpID(now, KindReassign),
		Kind:    KindReassign,
		Who:     "coordinator@" + self,
		Created: now,
		Outcome: site.OpRunning,
		Steps:   steps,
	}
}
