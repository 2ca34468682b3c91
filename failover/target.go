package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/replication"
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
// promote under the group's RPO policy, judged from the site's last
// replication report. Without one it returns "" and why, site by site.
//
// In a failover the standbys' primary is dark, so a standby that reports
// itself unhealthy (not streaming) is judged on the lag it last reported; a
// member whose role its site cannot tell (its server is down) is not
// eligible. Under require_sync, or in a synchronous group, a standby the
// old primary last reported among the ones it waited for counts as
// synchronous.
//
// A drained site (zdt evacuate) is chosen only when no other site can be.
func ChooseTarget(cfg *config.Cluster, svc config.Service, snap *site.Snapshot, from string) (to string, why string) {
	if to, why = chooseTarget(cfg, svc, snap, from, true); to != "" {
		return to, ""
	}
	if to, _ := chooseTarget(cfg, svc, snap, from, false); to != "" {
		return to, ""
	}
	return "", why
}

func chooseTarget(cfg *config.Cluster, svc config.Service, snap *site.Snapshot, from string, avoidDrained bool) (to string, why string) {
	var states []string
	var policy replication.RPOPolicy
	if svc.ReplicationGroup != "" {
		policy = replrec.GroupPolicy(cfg, svc.ReplicationGroup)
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
			return s, ""
		}
		ok, reason := memberEligible(snap, svc.ReplicationGroup, s, from, policy)
		if ok {
			return s, ""
		}
		states = append(states, fmt.Sprintf("%s: its member of group %s may not be promoted: %s", s, svc.ReplicationGroup, reason))
	}
	return "", fmt.Sprintf("no site can take service %s: %s", svc.Name, strings.Join(states, "; "))
}

// memberEligible judges the group's member at the site from its last
// report.
func memberEligible(snap *site.Snapshot, group, at, from string, p replication.RPOPolicy) (bool, string) {
	m, ok := memberReport(snap, at, group)
	if !ok {
		return false, "its site has not reported it"
	}
	st := replication.Status{
		Role: replication.Role(m.Role), Healthy: m.Healthy, Sync: m.Sync || heldSync(snap, group, from, at),
		LagBytes: m.LagBytes, LagSeconds: m.LagSeconds, Writable: m.Writable, Detail: m.Detail,
	}
	if st.Role == replication.RoleStandby && from != "" && !snap.Up(from) {
		st.Healthy = true // its primary is gone: judge it on its last lag
	}
	return replication.Eligible(p, st)
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
