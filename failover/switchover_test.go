package failover

import (
	"slices"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// switchoverState: every site up and reporting itself up; db and its
// sibling service report use group pg, whose primary is at b (writable) and
// whose standbys at a and c are healthy, caught up and followed the
// assignment (epoch 7); web is at a, mail at c.
func switchoverState() (*config.Cluster, *site.Snapshot) {
	cfg := testConfig()
	cfg.Services[1].ReplicationGroup = "pg" // db
	cfg.Services = append(cfg.Services, config.Service{Name: "report", Sites: []string{"b", "c"}, ReplicationGroup: "pg"})
	cfg.Replication = []config.ReplicationGroup{{Name: "pg", Driver: config.DriverPostgres, Members: []config.ReplicationMember{
		{Site: "a"}, {Site: "b"}, {Site: "c"},
	}}}
	snap := state{up: []string{"a", "b", "c"}, assigned: map[string]string{"web": "a", "db": "b", "report": "b", "mail": "c"}}.snapshot()
	snap.Reports = map[string]site.Report{}
	snap.Replication = map[string]site.ReplicationReport{}
	for _, s := range []string{"a", "b", "c"} {
		snap.Reports[s] = site.Report{Site: s, State: site.ControllerUp}
		m := site.MemberReport{Group: "pg", Role: "standby", Healthy: true, Epoch: 7}
		if s == "b" {
			m = site.MemberReport{Group: "pg", Role: "primary", Healthy: true, Writable: true, Epoch: 7}
		}
		snap.Replication[s] = site.ReplicationReport{Site: s, Members: []site.MemberReport{m}}
	}
	return cfg, snap
}

func TestPlanSwitchover(t *testing.T) {
	setMember := func(s string, mod func(*site.MemberReport)) func(*site.Snapshot) {
		return func(snap *site.Snapshot) {
			rep := snap.Replication[s]
			mod(&rep.Members[0])
			snap.Replication[s] = rep
		}
	}
	tests := []struct {
		name   string
		req    SwitchoverRequest
		change func(*site.Snapshot)
		steps  []string // the plan's steps, when it may run
		want   []string // substrings, one per blocker, in order
	}{
		{
			name:  "a service moves with its group's other services",
			req:   SwitchoverRequest{Service: "db", To: "c"},
			steps: []string{"check-switchover db,report b>c", "assign db b>c", "assign report b>c", "await-primary pg b>c", "move-prefixes db,report >", "await-followers pg >"},
		},
		{
			name:  "a service without a group",
			req:   SwitchoverRequest{Service: "web", To: "b"},
			steps: []string{"check-switchover web a>b", "assign web a>b", "move-prefixes web >"},
		},
		{
			name:  "every service of a site",
			req:   SwitchoverRequest{Site: "b", To: "c"},
			steps: []string{"check-switchover db,report b>c", "assign db b>c", "assign report b>c", "await-primary pg b>c", "move-prefixes db,report >", "await-followers pg >"},
		},
		{name: "unknown target", req: SwitchoverRequest{Service: "db", To: "x"}, want: []string{`site "x" is not in the config (sites: a, b, c)`}},
		{name: "unknown service", req: SwitchoverRequest{Service: "dns", To: "c"}, want: []string{`service "dns" is not in the config (services: web, db, mail, report)`}},
		{name: "unknown site", req: SwitchoverRequest{Site: "x", To: "c"}, want: []string{`site "x" is not in the config`}},
		{name: "a site that holds nothing", req: SwitchoverRequest{Site: "b", To: "c"}, change: func(s *site.Snapshot) {
			s.Assignments["db"] = site.Assignment{Service: "db", Site: "c", Epoch: 7}
			s.Assignments["report"] = site.Assignment{Service: "report", Site: "c", Epoch: 7}
		}, want: []string{"site b holds no service: there is nothing to move"}},
		{name: "already there", req: SwitchoverRequest{Service: "db", To: "b"}, want: []string{"the services are at site b already"}},
		{name: "not allowed at the target", req: SwitchoverRequest{Service: "db", To: "a"}, want: []string{"service report may not run at site a (its sites: b, c)"}},
		{name: "target dark", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) { delete(s.Alive, "c") },
			want: []string{"site c is dark: a switchover needs both sites up (a dark site is failed over: zdt failover)"}},
		{name: "source fenced", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) { s.Fences["b"] = site.Fence{Site: "b"} },
			want: []string{"site b is fenced: a switchover needs both sites up"}},
		{name: "target drained", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) { s.Drains = map[string]site.Drain{"c": {Site: "c"}} },
			want: []string{"site c is drained for maintenance: undrain it first (zdt undrain --site c)"}},
		{name: "target's controller not up", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) {
			s.Reports["c"] = site.Report{Site: "c", State: site.ControllerSelfFenced, Reason: "lease not renewed"}
		}, want: []string{"site c's controller does not report itself up (it reports self-fenced: lease not renewed)"}},
		{name: "another op on the service", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) {
			s.Ops = []*site.Op{{ID: "op-1", Kind: "switchover", Who: "operator:bob", Outcome: site.OpRunning, Params: map[string]string{"services": "db,report"}}}
		}, want: []string{"op op-1 (switchover, by operator:bob) is still running for service db: one op at a time"}},
		{name: "a failover of the source site", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) {
			s.Ops = []*site.Op{{ID: "op-2", Kind: "failover", Who: "coordinator:a", Outcome: site.OpRunning, Params: map[string]string{"site": "b"}}}
		}, want: []string{"op op-2 (failover, by coordinator:a) is still running for site b"}},
		{name: "a finished op is no blocker", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) {
			s.Ops = []*site.Op{{ID: "op-1", Kind: "switchover", Outcome: site.OpSucceeded, Params: map[string]string{"services": "db,report"}}}
		}, steps: []string{"check-switchover db,report b>c", "assign db b>c", "assign report b>c", "await-primary pg b>c", "move-prefixes db,report >", "await-followers pg >"}},
		{name: "old primary not writable", req: SwitchoverRequest{Service: "db", To: "c"},
			change: setMember("b", func(m *site.MemberReport) { m.Writable, m.Detail = false, "fenced: read-only" }),
			want:   []string{"site b's member of group pg is not a writable primary (primary, fenced: read-only)"}},
		{name: "target not streaming", req: SwitchoverRequest{Service: "db", To: "c"},
			change: setMember("c", func(m *site.MemberReport) { m.Healthy, m.Detail = false, "not streaming" }),
			want:   []string{"site c's member of group pg is not a healthy standby (standby, not streaming)"}},
		{name: "target follows an older primary", req: SwitchoverRequest{Service: "db", To: "c"},
			change: setMember("c", func(m *site.MemberReport) { m.Epoch = 3 }),
			want:   []string{"has not followed the current primary yet (it acted on epoch 3, the assignment is at 7)"}},
		{name: "target too far behind", req: SwitchoverRequest{Service: "db", To: "c"},
			change: setMember("c", func(m *site.MemberReport) { m.LagBytes = 1 << 40 }),
			want:   []string{"site c's member of group pg is too far behind to take over now"}},
		{name: "no report of the target's member", req: SwitchoverRequest{Service: "db", To: "c"},
			change: func(s *site.Snapshot) { delete(s.Replication, "c") },
			want:   []string{"site c does not report its member of group pg"}},
		{name: "every reason at once", req: SwitchoverRequest{Service: "db", To: "c"}, change: func(s *site.Snapshot) {
			s.Reports["c"] = site.Report{Site: "c", State: site.ControllerJoining}
			rep := s.Replication["c"]
			rep.Members[0].Healthy = false
			s.Replication["c"] = rep
		}, want: []string{"does not report itself up", "not a healthy standby"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := switchoverState()
			if tt.change != nil {
				tt.change(snap)
			}
			op, why := PlanSwitchover(cfg, snap, tt.req, "operator:ann", t0)
			wantBlockers(t, "PlanSwitchover", why, tt.want)
			if len(why) > 0 {
				if op != nil {
					t.Errorf("an op despite blockers: %+v", op)
				}
				return
			}
			var steps []string
			for _, st := range op.Steps {
				subject := st.Params["service"] + st.Params["group"]
				if subject == "" {
					subject = st.Params["services"]
				}
				steps = append(steps, st.Name+" "+subject+" "+st.Params["from"]+">"+st.Params["to"])
			}
			if !slices.Equal(steps, tt.steps) {
				t.Errorf("steps %q; want %q", steps, tt.steps)
			}
			if op.Kind != KindSwitchover || op.Who != "operator:ann" || op.Params["to"] != tt.req.To {
				t.Errorf("op %+v", op)
			}
		})
	}
}

// wantBlockers checks a planner's blockers: as many as want, each holding
// its substring, in order.
func wantBlockers(t *testing.T, planner string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s blockers = %q; want %d like %q", planner, got, len(want), want)
	}
	for i := range got {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("blocker %d = %q; want it to contain %q", i, got[i], want[i])
		}
	}
}

func TestSwitchBack(t *testing.T) {
	cfg, snap := switchoverState() // web (a,b,c) at a; db (b,c,a) and report (b,c) at b; mail (a,c) at c
	if got := SwitchBack(cfg, snap, "a"); len(got) != 1 || got[0] != (SwitchoverRequest{Service: "mail", To: "a"}) {
		t.Errorf("SwitchBack to a = %+v; want mail only (web is there, db prefers b)", got)
	}
	snap.Assignments["db"] = site.Assignment{Service: "db", Site: "c", Epoch: 9}
	snap.Assignments["report"] = site.Assignment{Service: "report", Site: "c", Epoch: 9}
	if got := SwitchBack(cfg, snap, "b"); len(got) != 1 || got[0] != (SwitchoverRequest{Service: "db", To: "b"}) {
		t.Errorf("SwitchBack to b = %+v; want one request for db (report moves with it)", got)
	}
}

func TestPlanForcedTakeover(t *testing.T) {
	// b fenced with db and report left there; its primary last reported
	// WAL position 0/50000000, and c, which reports only 4 KiB of lag
	// against what it received, is at 0/10000000: 1 GiB behind.
	stranded := func(s *site.Snapshot) {
		s.Fences["b"] = site.Fence{Site: "b"}
		rep := s.Replication["b"]
		rep.Members[0].Position = "0/50000000"
		s.Replication["b"] = rep
		rep = s.Replication["c"]
		rep.Members[0].LagBytes, rep.Members[0].LagSeconds, rep.Members[0].Healthy = 4096, 95, false
		rep.Members[0].Position = "0/10000000"
		s.Replication["c"] = rep
	}
	cfg, snap := switchoverState()
	stranded(snap)
	req := SwitchoverRequest{Service: "db", To: "c", Force: true}
	op, why := PlanSwitchover(cfg, snap, req, "operator:ann", t0)
	if len(why) > 0 {
		t.Fatalf("forced takeover refused: %q", why)
	}
	want := "group pg: site c's member was 1073741824 bytes and 95.0 s behind at 0001-01-01T00:00:00Z, by site b's primary's last reported WAL position 0/50000000 " +
		"(it was at 0/10000000, 4096 bytes behind what it had received); what it had not received may be lost"
	if op.Params["force"] != "true" || op.Params["possible_loss"] != want {
		t.Errorf("op params %v; want force and the possible loss %q", op.Params, want)
	}
	for _, st := range op.Steps {
		if st.Name != StepAwaitFollowers && st.Name != StepAwaitPrefixes && st.Params["force"] != "true" {
			t.Errorf("step %s without force: %v", st.Name, st.Params)
		}
	}
	if _, why := PlanSwitchover(cfg, snap, SwitchoverRequest{Service: "db", To: "c"}, "operator:ann", t0); len(why) == 0 {
		t.Errorf("the same without --force was not refused")
	}

	// The possible loss, judged as a failover judges a standby.
	for _, tt := range []struct {
		name   string
		change func(*site.Snapshot)
		want   []string
	}{
		{"its own lag larger than how far it is behind the old primary's last position", func(s *site.Snapshot) {
			setMember(s, "c", func(m *site.MemberReport) { m.Position, m.LagBytes = "0/4FFFFFFF", 8192 })
		}, []string{"site c's member was 8192 bytes and 95.0 s behind", "it was at 0/4FFFFFFF, 8192 bytes behind what it had received"}},
		{"ahead of the old primary's last report", func(s *site.Snapshot) {
			setMember(s, "c", func(m *site.MemberReport) { m.Position, m.LagBytes, m.LagSeconds = "0/50001000", 0, 0 })
		}, []string{"site c's member was 0 bytes and 0.0 s behind", "what it had not received may be lost"}},
		{"the old primary's site reports it could not observe it: unknown", func(s *site.Snapshot) {
			s.Replication["b"] = site.ReplicationReport{Site: "b", Members: []site.MemberReport{{Group: "pg", Role: "unknown", Detail: "cannot observe: connection refused"}}}
		}, []string{"group pg: how far site c's member was behind site b's primary is unknown (site b's last report of its member is not a primary's (role unknown), so it gives no last WAL position); " +
			"at 0001-01-01T00:00:00Z it was at WAL position 0/10000000, 4096 bytes and 95.0 s behind what it had received; whatever it had not received may be lost"}},
		{"the target reports no position: unknown", func(s *site.Snapshot) {
			setMember(s, "c", func(m *site.MemberReport) { m.Position = "" })
		}, []string{"how far site c's member was behind site b's primary is unknown (the member reported no WAL position)", "at WAL position (none)"}},
		{"an unreadable position: unknown", func(s *site.Snapshot) {
			setMember(s, "b", func(m *site.MemberReport) { m.Position = "50000000" })
		}, []string{"is unknown (site b's primary's last position: WAL position \"50000000\" is not of the form"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := switchoverState()
			stranded(snap)
			tt.change(snap)
			op, why := PlanSwitchover(cfg, snap, req, "operator:ann", t0)
			if len(why) > 0 {
				t.Fatalf("forced takeover refused: %q", why)
			}
			for _, w := range tt.want {
				if !strings.Contains(op.Params["possible_loss"], w) {
					t.Errorf("possible_loss %q lacks %q", op.Params["possible_loss"], w)
				}
			}
		})
	}

	for _, tt := range []struct {
		name   string
		change func(*site.Snapshot)
		want   []string
	}{
		{"from a site that is up", func(s *site.Snapshot) { delete(s.Fences, "b") },
			[]string{"site b is up, not fenced: --force takes services over only from a fenced site"}},
		{"a target that does not answer as a standby", func(s *site.Snapshot) {
			rep := s.Replication["c"]
			rep.Members[0].Role, rep.Members[0].Detail = "unknown", "connection refused"
			s.Replication["c"] = rep
		}, []string{"site c does not report its member of group pg as a standby (unknown, connection refused): there is nothing to promote"}},
		{"a target whose member is a primary", func(s *site.Snapshot) {
			setMember(s, "c", func(m *site.MemberReport) { m.Role, m.Detail = "primary", "fenced: read-only" })
		}, []string{"site c does not report its member of group pg as a standby (primary, fenced: read-only)"}},
		{"a target without a report", func(s *site.Snapshot) { delete(s.Replication, "c") },
			[]string{"site c does not report its member of group pg as a standby (no report)"}},
		{"a dark target", func(s *site.Snapshot) { delete(s.Alive, "c") }, []string{"site c is dark: the target must be up"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := switchoverState()
			stranded(snap)
			tt.change(snap)
			_, why := PlanSwitchover(cfg, snap, req, "operator:ann", t0)
			wantBlockers(t, "PlanSwitchover --force", why, tt.want)
		})
	}
}
