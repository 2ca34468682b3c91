package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	primary := replication.Status{Role: replication.RolePrimary, Healthy: true, Writable: true}
	fencedPrimary := replication.Status{Role: replication.RolePrimary, Detail: "fenced: read-only"}
	standby := replication.Status{Role: replication.RoleStandby, Healthy: true}
	lagging := replication.Status{Role: replication.RoleStandby, Healthy: true, LagBytes: 64 << 20}
	broken := replication.Status{Role: replication.RoleStandby, Detail: "no WAL receiver"}
	policy := replication.RPOPolicy{MaxLagBytes: 16 << 20, MaxLagSeconds: 30}
	// base: site b is up, the group is assigned to a (epoch 10), a is ready.
	base := func(mod func(*Input)) Input {
		in := Input{State: site.ControllerUp, Site: "b", Active: "a", Epoch: 10, Seen: 10, ActiveReady: true,
			Observed: true, Status: standby, Policy: policy, Now: now}
		mod(&in)
		return in
	}
	tests := []struct {
		name   string
		in     Input
		want   Action
		reason string // a part of the reason
	}{
		{"joining does nothing", base(func(in *Input) { in.State = site.ControllerJoining; in.Status = primary }), ActNone, "joining"},
		{"self-fenced primary is fenced", base(func(in *Input) { in.State = site.ControllerSelfFenced; in.Status = primary; in.Active = "b" }), ActFence, "self-fenced"},
		{"self-fenced unobservable is fenced", base(func(in *Input) { in.State = site.ControllerSelfFenced; in.Observed = false }), ActFence, "no writes"},
		{"self-fenced standby left alone", base(func(in *Input) { in.State = site.ControllerSelfFenced }), ActNone, "standby"},
		{"stopped primary is fenced", base(func(in *Input) { in.State = site.ControllerStopped; in.Status = primary }), ActFence, "stopped"},
		{"fenced record: fence and follow", base(func(in *Input) { in.Fenced = true; in.Status = primary }), ActFenceFollow, "following site a"},
		{"fenced state, killed member: fence and follow", base(func(in *Input) { in.State = site.ControllerFenced; in.Observed = false }), ActFenceFollow, "following site a"},
		{"fenced, active not ready: fence only", base(func(in *Input) { in.Fenced = true; in.Status = primary; in.ActiveReady = false }), ActFence, "once it is primary"},
		{"fenced, assigned here: fence only", base(func(in *Input) { in.Fenced = true; in.Active = "b"; in.Status = primary }), ActFence, "fenced"},
		{"fenced, stale: fence only", base(func(in *Input) { in.Fenced = true; in.Seen = 11; in.Status = primary }), ActFence, "fenced"},
		{"fenced, already following", base(func(in *Input) { in.Fenced = true; in.Followed = "a"; in.FollowedEpoch = 10 }), ActNone, "following"},
		{"conflict: no action", base(func(in *Input) { in.Active = ""; in.Conflict = "conflicting assignments"; in.Status = primary }), ActNone, "conflicting"},
		{"no assignment: no action", base(func(in *Input) { in.Active = ""; in.Epoch = 0; in.Seen = 0 }), ActNone, "no service"},
		{"stale assignment here: not promoted", base(func(in *Input) { in.Active = "b"; in.Seen = 12 }), ActNone, "stale assignment"},
		{"stale assignment elsewhere: primary not fenced", base(func(in *Input) { in.Seen = 12; in.Status = primary }), ActNone, "stale assignment"},
		{"unobservable here, local control: start", base(func(in *Input) {
			in.Active, in.Observed, in.Status, in.CanStart = "b", false, replication.Status{}, true
		}), ActStart, "starting its server"},
		{"unobservable here, start failed a moment ago: wait", base(func(in *Input) {
			in.Active, in.Observed, in.Status, in.CanStart, in.StartFailed = "b", false, replication.Status{}, true, now.Add(-time.Second)
		}), ActNone, "starting its server failed, retrying"},
		{"unobservable elsewhere, local control, active ready: follow", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart = false, replication.Status{}, true
		}), ActFollow, "does not answer: following site a, a writable primary"},
		{"unobservable elsewhere, local control, active not ready: a standby only", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.ActiveReady = false, replication.Status{}, true, false
		}), ActStartStandby, "a former primary stays down"},
		{"unobservable elsewhere, another site writable, active not ready: a standby only", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.ActiveReady, in.OtherWritable = false, replication.Status{}, true, false, "c"
		}), ActStartStandby, "starting it only if it was a standby"},
		{"unobservable elsewhere, start failed a moment ago: wait", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.StartFailed = false, replication.Status{}, true, now.Add(-time.Second)
		}), ActNone, "starting its server failed, retrying"},
		{"unobservable elsewhere, start failed long ago: follow", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.StartFailed = false, replication.Status{}, true, now.Add(-time.Minute)
		}), ActFollow, "following site a"},
		{"unobservable elsewhere, follow failed a moment ago: wait", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.FollowFailed = false, replication.Status{}, true, now.Add(-time.Second)
		}), ActNone, "following site a failed; retrying"},
		{"follow failed a moment ago: the note says why", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart = false, replication.Status{}, true
			in.FollowFailed, in.FollowError = now.Add(-time.Second), "pg_ctl start: exit status 1"
		}), ActNone, "following site a failed (pg_ctl start: exit status 1); retrying after"},
		{"unobservable elsewhere, follow failed a moment ago, active not ready: wait", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.ActiveReady, in.FollowFailed = false, replication.Status{}, true, false, now.Add(-time.Second)
		}), ActNone, "retrying"},
		{"unobservable elsewhere, start failed long ago, active not ready: a standby only", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.ActiveReady, in.StartFailed = false, replication.Status{}, true, false, now.Add(-time.Minute)
		}), ActStartStandby, "a former primary stays down"},
		{"unobservable elsewhere, no local control: no action", base(func(in *Input) {
			in.Observed, in.Status = false, replication.Status{}
		}), ActNone, "no action on stale data"},
		{"unobservable here, follow failed a moment ago: start all the same", base(func(in *Input) {
			in.Active, in.Observed, in.Status, in.CanStart, in.FollowFailed = "b", false, replication.Status{}, true, now.Add(-time.Second)
		}), ActStart, "starting its server"},
		{"unobservable here, another site writable: start (judged when it answers)", base(func(in *Input) {
			in.Active, in.Observed, in.Status, in.CanStart, in.OtherWritable = "b", false, replication.Status{}, true, "c"
		}), ActStart, "starting its server"},
		{"unobservable, local control, stale assignment: nothing started", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.Seen = false, replication.Status{}, true, 12
		}), ActNone, "stale assignment"},
		{"unobservable, local control, stale assignment here: nothing started", base(func(in *Input) {
			in.Active, in.Observed, in.Status, in.CanStart, in.Seen = "b", false, replication.Status{}, true, 12
		}), ActNone, "stale assignment"},
		{"unobservable, local control, conflict: nothing started", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.Active, in.Conflict = false, replication.Status{}, true, "", "conflicting assignments"
		}), ActNone, "conflicting"},
		{"unobservable, local control, no assignment: nothing started", base(func(in *Input) {
			in.Observed, in.Status, in.CanStart, in.Active, in.Epoch, in.Seen = false, replication.Status{}, true, "", 0, 0
		}), ActNone, "no service"},
		{"unobservable, local control, joining: nothing started", base(func(in *Input) {
			in.State, in.Observed, in.Status, in.CanStart = site.ControllerJoining, false, replication.Status{}, true
		}), ActNone, "joining"},
		{"unobservable, local control, self-fenced: fence, nothing started", base(func(in *Input) {
			in.State, in.Active, in.Observed, in.Status, in.CanStart = site.ControllerSelfFenced, "b", false, replication.Status{}, true
		}), ActFence, "no writes"},
		{"unobservable, local control, fenced, active not ready: fence, nothing started", base(func(in *Input) {
			in.Fenced, in.Observed, in.Status, in.CanStart, in.ActiveReady = true, false, replication.Status{}, true, false
		}), ActFence, "once it is primary"},
		{"unobservable, local control, fenced, assigned here: fence, nothing started", base(func(in *Input) {
			in.Fenced, in.Active, in.Observed, in.Status, in.CanStart = true, "b", false, replication.Status{}, true
		}), ActFence, "no writes here"},
		{"unobservable: no action", base(func(in *Input) { in.Active = "b"; in.Observed = false; in.Status = replication.Status{} }), ActNone, "no action on stale data"},
		{"active here, eligible: promote", base(func(in *Input) { in.Active = "b" }), ActPromote, "promoting"},
		{"active here, lagging: refuse", base(func(in *Input) { in.Active = "b"; in.Status = lagging }), ActRefuse, "exceeds the limit"},
		{"active here, lagging, forced: promote", base(func(in *Input) { in.Active = "b"; in.Status = lagging; in.Force = true }), ActPromote, "forced by an operator, although"},
		{"active here, unhealthy, forced: promote", base(func(in *Input) { in.Active = "b"; in.Status = broken; in.Force = true }), ActPromote, "forced"},
		{"active here, forced, another writable: wait", base(func(in *Input) { in.Active = "b"; in.Status = lagging; in.Force = true; in.OtherWritable = "a" }), ActNone, "waiting until it is fenced"},
		{"active here, unhealthy: refuse", base(func(in *Input) { in.Active = "b"; in.Status = broken }), ActRefuse, "unhealthy"},
		{"failover, standby not streaming: promote", base(func(in *Input) { in.Active = "b"; in.Failover = true; in.Status = broken }), ActPromote, "promoting"},
		{"failover, not streaming, lagging: refuse", base(func(in *Input) {
			in.Active = "b"
			in.Failover = true
			in.Status = lagging
			in.Status.Healthy = false
		}), ActRefuse, "exceeds the limit"},
		{"active here, sync required: refuse", base(func(in *Input) { in.Active = "b"; in.Policy.RequireSync = true }), ActRefuse, "requires synchronous"},
		{"active here, sync required, another standby holds more: refuse", base(func(in *Input) {
			in.Active = "b"
			in.Policy.RequireSync = true
			in.SyncWhy = "site c holds more WAL"
		}), ActRefuse, "site c holds more WAL"},
		{"active here, sync required, sync holder: promote", base(func(in *Input) {
			in.Active = "b"
			in.Policy.RequireSync = true
			in.SyncHolder = true
		}), ActPromote, "synchronously"},
		{"active here, old primary writable: wait", base(func(in *Input) { in.Active = "b"; in.OtherWritable = "a" }), ActNone, "waiting until it is fenced"},
		{"active here, planned, behind the old primary: wait", base(func(in *Input) {
			in.Active = "b"
			in.CatchUp = "replaying up to site a's last WAL position 0/3000200 (at 0/3000100)"
		}), ActNone, "planned move: replaying up to site a's last WAL position"},
		{"active here, failover, catch-up unknown: promote", base(func(in *Input) {
			in.Active = "b"
			in.Failover = true
			in.CatchUp = "waiting for site a's report"
		}), ActPromote, "promoting"},
		{"active here, fenced primary, catch-up left: lift the fence", base(func(in *Input) {
			in.Active = "b"
			in.Status = fencedPrimary
			in.CatchUp = "replaying"
		}), ActPromote, "lifting the fence"},
		{"active here, primary: nothing", base(func(in *Input) { in.Active = "b"; in.Status = primary }), ActNone, "primary"},
		{"active here, fenced primary, another writable: wait", base(func(in *Input) {
			in.Active = "b"
			in.Status = fencedPrimary
			in.OtherWritable = "c"
		}), ActNone, "waiting until it is fenced"},
		{"active here, fenced primary: lift the fence", base(func(in *Input) { in.Active = "b"; in.Status = fencedPrimary }), ActPromote, "lifting the fence"},
		{"second primary: fence and follow", base(func(in *Input) { in.Status = primary }), ActFenceFollow, "writable primary but site a is active"},
		{"second primary, active not ready: fence", base(func(in *Input) { in.Status = primary; in.ActiveReady = false }), ActFence, "once it is primary"},
		{"second primary, follow backoff: fence", base(func(in *Input) { in.Status = primary; in.FollowFailed = now.Add(-time.Second) }), ActFence, "retrying"},
		{"standby, new epoch: follow", base(func(in *Input) { in.Followed = "a"; in.FollowedEpoch = 9 }), ActFollow, "following site a"},
		{"standby, new target: follow", base(func(in *Input) { in.Followed = "c"; in.FollowedEpoch = 10 }), ActFollow, "following site a"},
		{"standby following: nothing", base(func(in *Input) { in.Followed = "a"; in.FollowedEpoch = 10 }), ActNone, "following site a"},
		{"standby unhealthy for long: follow", base(func(in *Input) {
			in.Followed, in.FollowedEpoch, in.Status, in.UnhealthyFor = "a", 10, broken, time.Minute
		}), ActFollow, "following"},
		{"standby unhealthy for a moment: wait", base(func(in *Input) {
			in.Followed, in.FollowedEpoch, in.Status, in.UnhealthyFor = "a", 10, broken, time.Second
		}), ActNone, "following"},
		{"standby unhealthy, recent failure: wait", base(func(in *Input) { in.Status = broken; in.FollowFailed = now.Add(-time.Second) }), ActNone, "retrying"},
		{"standby unhealthy, old failure: follow", base(func(in *Input) { in.Status = broken; in.FollowFailed = now.Add(-5 * time.Second) }), ActFollow, "following"},
		{"standby, active not primary yet: wait", base(func(in *Input) { in.ActiveReady = false }), ActNone, "not yet primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.in)
			if d.Action != tt.want || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Decide = %s (%q), want %s (reason containing %q)", d.Action, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

// TestCatchUp: in a planned move the new primary waits for the old one's
// fence and its last position, and for its own replay to reach it.
func TestCatchUp(t *testing.T) {
	own := replication.Status{Role: replication.RoleStandby, Healthy: true, Position: "0/3000100"}
	report := func(m site.MemberReport) site.ReplicationReport {
		m.Group = "pg"
		return site.ReplicationReport{Members: []site.MemberReport{m}}
	}
	tests := []struct {
		name string
		rep  site.ReplicationReport
		want string // a part of the answer; "" for none
	}{
		{"no report of the old primary", site.ReplicationReport{}, "waiting for site a's report of its member"},
		{"old primary still writable", report(site.MemberReport{Role: "primary", Writable: true, Epoch: 10, Position: "0/3000100"}),
			"waiting for site a to fence its primary"},
		{"old primary's report older than the assignment", report(site.MemberReport{Role: "primary", Epoch: 9, Position: "0/3000100"}),
			"it reports epoch 9, the assignment is at 10"},
		{"behind the fenced old primary", report(site.MemberReport{Role: "primary", Epoch: 10, Position: "0/3000200"}),
			"replaying up to site a's last WAL position 0/3000200 (at 0/3000100)"},
		{"caught up", report(site.MemberReport{Role: "primary", Epoch: 10, Position: "0/3000100"}), ""},
		{"ahead (a checkpoint record it reported before)", report(site.MemberReport{Role: "primary", Epoch: 10, Position: "0/3000000"}), ""},
		{"the old primary follows already", report(site.MemberReport{Role: "standby", Epoch: 10, Position: "0/3000200"}), ""},
		{"bad position", report(site.MemberReport{Role: "primary", Epoch: 10, Position: "3000200"}), "cannot read site a's last WAL position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := catchUp("pg", "a", 10, own, tt.rep)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("catchUp = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStrictest(t *testing.T) {
	p := strictest(nil)
	if p.MaxLagBytes != 16<<20 || p.MaxLagSeconds != 30 || p.RequireSync {
		t.Errorf("no services: %+v, want the defaults", p)
	}
	p = strictest([]config.RPO{{MaxLagBytes: -1, MaxLagSeconds: 10}, {MaxLagBytes: 100, MaxLagSeconds: -1, RequireSync: true}})
	if p.MaxLagBytes != 100 || p.MaxLagSeconds != 10 || !p.RequireSync {
		t.Errorf("strictest = %+v, want 100 bytes, 10 s, sync", p)
	}
}

func TestWithPassword(t *testing.T) {
	for _, tt := range []struct{ conn, pw, want string }{
		{"host=x user=y", "", "host=x user=y"},
		{"host=x user=y", `it's\`, `host=x user=y password='it\'s\\'`},
		{"postgres://y@x/db", "p w", "postgres://y@x/db?password=p+w"},
	} {
		if got := WithPassword(tt.conn, tt.pw); got != tt.want {
			t.Errorf("WithPassword(%q, %q) = %q, want %q", tt.conn, tt.pw, got, tt.want)
		}
	}
}

func TestBuildMembers(t *testing.T) {
	cl := &config.Cluster{Replication: []config.ReplicationGroup{
		{Name: "pg", Driver: config.DriverPostgres, Members: []config.ReplicationMember{
			{Site: "a", Conn: "host=127.0.0.1 port=1 user=zdt", Password: "secret", ReplicationConn: "host=127.0.0.1 port=1 user=repl"},
			{Site: "b", Conn: "host=127.0.0.1 port=2 user=zdt", ReplicationConn: "host=127.0.0.1 port=2 user=repl"},
		}},
		{Name: "disk", Driver: config.DriverDRBD, Members: []config.ReplicationMember{{Site: "a", Resource: "r0"}, {Site: "b", Resource: "r0"}}},
		{Name: "other", Driver: config.DriverPostgres, Members: []config.ReplicationMember{{Site: "b", Conn: "host=x", ReplicationConn: "host=x"}}},
	}}
	members, closeAll, err := BuildMembers(cl, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if len(members) != 2 || members["pg"] == nil || members["disk"] == nil {
		t.Errorf("members of a = %v, want pg and disk", members)
	}
	cl.Replication[0].Members[0].Conn = "host=127.0.0.1 port=notaport"
	if _, _, err := BuildMembers(cl, "a", nil); err == nil || !strings.Contains(err.Error(), "replication group pg") {
		t.Errorf("bad conninfo: err = %v, want one naming the group", err)
	}
}

func TestSyncHolder(t *testing.T) {
	report := func(ms ...site.MemberReport) site.ReplicationReport { return site.ReplicationReport{Members: ms} }
	primary := site.MemberReport{Group: "pg", Role: "primary", SyncStandbys: []string{"b", "c"}}
	own := replication.Status{Role: replication.RoleStandby, Position: "0/3000100"}
	for _, tc := range []struct {
		name    string
		reports map[string]site.ReplicationReport
		own     replication.Status
		want    bool
		why     string
	}{
		{"furthest", map[string]site.ReplicationReport{"a": report(primary),
			"c": report(site.MemberReport{Group: "pg", Epoch: 9, Position: "0/3000000"})}, own, true, "no other synchronous standby holds more"},
		{"the other holds more", map[string]site.ReplicationReport{"a": report(primary),
			"c": report(site.MemberReport{Group: "pg", Epoch: 9, Position: "0/3000200"})}, own, false, "site c holds more WAL"},
		{"the other's report is older than the assignment", map[string]site.ReplicationReport{"a": report(primary),
			"c": report(site.MemberReport{Group: "pg", Epoch: 8, Position: "0/3000000"})}, own, false, "waiting for site c's report"},
		{"the other still replays", map[string]site.ReplicationReport{"a": report(primary),
			"c": report(site.MemberReport{Group: "pg", Epoch: 9, Position: "0/3000000", LagBytes: 10})}, own, false, "still replaying"},
		{"not listed by the primary", map[string]site.ReplicationReport{"a": report(site.MemberReport{Group: "pg", Role: "primary", SyncStandbys: []string{"c"}})},
			own, false, "did not list this member"},
		{"no report of the primary", map[string]site.ReplicationReport{}, own, false, "no report from the previous primary"},
		{"this one still replays", map[string]site.ReplicationReport{"a": report(primary)},
			replication.Status{Role: replication.RoleStandby, Position: "0/3000100", LagBytes: 1}, false, "this member is still replaying"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := syncHolder("pg", "b", "a", 9, tc.own, tc.reports)
			if ok != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("syncHolder = %v, %q; want %v, %q", ok, why, tc.want, tc.why)
			}
		})
	}
}
