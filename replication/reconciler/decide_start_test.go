package reconciler

import (
	"fmt"
	"testing"
	"time"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
)

// TestDecideStartsOnlyWhatCannotWrite runs Decide over every combination of
// the inputs that bear on starting, following and promoting a member, at
// site b, and checks the rules of Decide's doc comment: a member's server
// is started as it was (ActStart) only at the active site, by a site that
// is up and acts on the current assignment; away from it a member that
// does not answer comes back only by a follow of a writable primary or as
// a standby (ActStartStandby, while there is no writable primary to
// follow); nothing is followed that is not a writable primary; nothing is
// promoted away from the active site or unobserved.
func TestDecideStartsOnlyWhatCannotWrite(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	statuses := map[string]replication.Status{
		"writable primary": {Role: replication.RolePrimary, Healthy: true, Writable: true},
		"fenced primary":   {Role: replication.RolePrimary, Detail: "fenced: read-only"},
		"standby":          {Role: replication.RoleStandby, Healthy: true},
		"broken standby":   {Role: replication.RoleStandby, Detail: "no WAL receiver"},
		"unknown role":     {Role: replication.RoleUnknown},
	}
	states := []site.ControllerState{site.ControllerJoining, site.ControllerUp, site.ControllerFenced, site.ControllerSelfFenced, site.ControllerStopped}
	n := 0
	for _, state := range states {
		for _, fenced := range []bool{false, true} {
			for _, active := range []string{"", "a", "b"} {
				for _, obs := range []string{"", "writable primary", "fenced primary", "standby", "broken standby", "unknown role"} {
					for bits := range 1 << 8 {
						in := Input{
							State: state, Site: "b", Fenced: fenced, Active: active, Epoch: 10, Seen: 10,
							Observed: obs != "", Status: statuses[obs], Policy: replication.RPOPolicy{MaxLagBytes: 1 << 20, MaxLagSeconds: 30},
							Now: now,
						}
						if active == "" {
							in.Epoch, in.Seen = 0, 0
						}
						flag := func(i int) bool { return bits&(1<<i) != 0 }
						in.CanStart = flag(0)
						in.ActiveReady = flag(1) && active != "" && active != "b"
						if flag(2) {
							in.OtherWritable = "c"
						}
						if flag(3) {
							in.Seen = in.Epoch + 1 // a stale assignment
						}
						if flag(4) {
							in.StartFailed = now.Add(-time.Second)
						}
						if flag(5) {
							in.FollowFailed = now.Add(-time.Second)
						}
						in.Failover, in.Force = flag(6), flag(7)
						if flag(7) && active == "" {
							in.Conflict = "conflicting assignments"
						}
						checkStartRules(t, in, Decide(in), fmt.Sprintf("%s fenced=%t active=%q observed=%q bits=%08b", state, fenced, active, obs, bits))
						n++
					}
				}
			}
		}
	}
	t.Logf("%d inputs", n)
}

func checkStartRules(t *testing.T, in Input, d Decision, name string) {
	t.Helper()
	upHere := in.State == site.ControllerUp && !in.Fenced && in.Conflict == "" && in.Epoch >= in.Seen && in.Active != ""
	wrong := ""
	switch d.Action {
	case ActStart:
		if !upHere || in.Active != in.Site || in.Observed || !in.CanStart {
			wrong = "started as it was away from the active site, or not for an up site's unobserved member it controls"
		}
		if !in.StartFailed.IsZero() {
			wrong = "started again right after a start failed"
		}
	case ActStartStandby:
		if !upHere || in.Active == in.Site || in.Observed || !in.CanStart || in.ActiveReady {
			wrong = "start-standby other than away from the active site, for an unobserved member it controls, with nothing to follow"
		}
		if !in.StartFailed.IsZero() || !in.FollowFailed.IsZero() {
			wrong = "started again right after a start or a follow failed"
		}
	case ActFollow, ActFenceFollow:
		if !in.ActiveReady || in.Active == in.Site {
			wrong = "follows a site whose member is not a writable primary"
		}
		if !in.FollowFailed.IsZero() {
			wrong = "follows again right after a follow failed"
		}
		if !in.Observed && d.Action == ActFollow && !in.CanStart {
			wrong = "follows an unobserved member it has no local control of"
		}
	case ActPromote:
		if !upHere || in.Active != in.Site || !in.Observed {
			wrong = "promotes away from the active site, or unobserved"
		}
	}
	if !in.Observed && d.Action == ActNone && upHere && in.CanStart && in.StartFailed.IsZero() &&
		(in.Active == in.Site || in.FollowFailed.IsZero()) {
		wrong = "leaves an unobserved member it could start alone"
	}
	if wrong != "" {
		t.Errorf("%s: Decide = %s (%q): %s", name, d.Action, d.Reason, wrong)
	}
}
