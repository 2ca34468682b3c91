package failover

import (
	"slices"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// failbackState is site a back after a failover of it: fenced, holding a
// lease, reporting itself fenced, its member of pg a healthy standby that
// acted on db's assignment at b, running no guest.
func failbackState() (*config.Cluster, *site.Snapshot) {
	cfg := testConfig()
	cfg.Services[1].ReplicationGroup = "pg" // db, at b
	cfg.Replication = []config.ReplicationGroup{{Name: "pg", Driver: config.DriverPostgres, Members: []config.ReplicationMember{
		{Site: "a"}, {Site: "b"}, {Site: "c"},
	}}}
	snap := state{up: []string{"a", "b", "c"}, fenced: []string{"a"}, assigned: map[string]string{"web": "b", "db": "b", "mail": "c"}}.snapshot()
	snap.Fences["a"] = site.Fence{Site: "a", Op: "op-failover"}
	snap.Reports = map[string]site.Report{"a": {Site: "a", State: site.ControllerFenced}}
	snap.Replication = map[string]site.ReplicationReport{
		"a": {Site: "a", Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: true, Epoch: 7}}},
		"b": {Site: "b", Members: []site.MemberReport{{Group: "pg", Role: "primary", Healthy: true, Writable: true, Epoch: 7, Streaming: []string{"a", "c"}}}},
	}
	snap.Hosts = map[string]site.HostsReport{"a": {Site: "a", Hosts: []site.HostReport{{Name: "a1"}}}}
	return cfg, snap
}

func TestFailbackBlockers(t *testing.T) {
	tests := []struct {
		name   string
		site   string
		change func(*site.Snapshot)
		want   []string // substrings, one per blocker, in order
	}{
		{name: "back clean: nothing blocks", site: "a"},
		{
			name: "its standby does not stream from the current primary yet (it still follows the old one)",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Replication["b"] = site.ReplicationReport{Site: "b", Members: []site.MemberReport{{Group: "pg", Role: "primary", Healthy: true, Writable: true, Epoch: 7, Streaming: []string{"c"}}}}
			},
			want: []string{"site a's member does not stream from the primary at site b yet (it lists c); wait until it does"},
		},
		{name: "unknown site", site: "x", want: []string{`site "x" is not in the config (sites: a, b, c)`}},
		{name: "not fenced", site: "b", want: []string{"site b is not fenced: there is nothing to fail back"}},
		{
			name:   "dark: start its controller first",
			site:   "a",
			change: func(s *site.Snapshot) { delete(s.Alive, "a") },
			want:   []string{"site a is dark (no live lease): start its controller, then fail it back"},
		},
		{
			name:   "its controller has not seen its fence yet",
			site:   "a",
			change: func(s *site.Snapshot) { s.Reports["a"] = site.Report{Site: "a", State: site.ControllerJoining} },
			want:   []string{"site a's controller does not report itself fenced yet (it reports joining)"},
		},
		{
			name: "its old primary is still writable",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Replication["a"] = site.ReplicationReport{Members: []site.MemberReport{{Group: "pg", Role: "primary", Writable: true, Healthy: true}}}
			},
			want: []string{"site a's member of group pg is a primary (writable true); it must be rewound and follow b first"},
		},
		{
			name: "its standby does not stream",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Replication["a"] = site.ReplicationReport{Members: []site.MemberReport{{Group: "pg", Role: "standby", Detail: "not streaming", Epoch: 7}}}
			},
			want: []string{"site a's member of group pg is not a healthy standby: not streaming"},
		},
		{
			name: "its standby follows an older primary",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Replication["a"] = site.ReplicationReport{Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: true, Epoch: 3}}}
			},
			want: []string{"has not followed the current primary at b yet (it acted on epoch 3, the assignment is at 7)"},
		},
		{
			name:   "no report of its member",
			site:   "a",
			change: func(s *site.Snapshot) { delete(s.Replication, "a") },
			want:   []string{"site a does not report its member of group pg yet"},
		},
		{
			name: "a guest still runs there",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Hosts["a"] = site.HostsReport{Hosts: []site.HostReport{{Name: "a1", Running: []site.RunningGuest{{Name: "web-1"}}}}}
			},
			want: []string{"guest web-1 still runs at site a (host a1)"},
		},
		{
			name: "an op for it still runs",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Ops = []*site.Op{{ID: "op-9", Kind: "failover", Who: "coordinator@b", Params: map[string]string{"site": "a"}, Outcome: site.OpRunning}}
			},
			want: []string{"op op-9 (failover, by coordinator@b) is still running for site a"},
		},
		{
			name: "every reason at once",
			site: "a",
			change: func(s *site.Snapshot) {
				s.Reports["a"] = site.Report{Site: "a", State: site.ControllerJoining}
				s.Hosts["a"] = site.HostsReport{Hosts: []site.HostReport{{Name: "a1", Running: []site.RunningGuest{{Name: "web-1"}}}}}
			},
			want: []string{"does not report itself fenced", "guest web-1 still runs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := failbackState()
			if tt.change != nil {
				tt.change(snap)
			}
			got := FailbackBlockers(cfg, snap, tt.site)
			if len(got) != len(tt.want) {
				t.Fatalf("FailbackBlockers = %q; want %d blockers like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("blocker %d = %q; want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestPlanFailback(t *testing.T) {
	cfg, snap := failbackState()
	op, why := PlanFailback(cfg, snap, "a", "operator:test", t0)
	if len(why) > 0 {
		t.Fatalf("PlanFailback refused: %q", why)
	}
	var steps []string
	for _, st := range op.Steps {
		steps = append(steps, st.Name+" "+st.Params["site"])
	}
	if want := []string{"check-failback a", "unfence a"}; !slices.Equal(steps, want) {
		t.Errorf("steps %q; want %q", steps, want)
	}
	if op.Kind != KindFailback || op.Who != "operator:test" || op.Steps[1].Params["fenced_by"] != "op-failover" {
		t.Errorf("op %+v", op)
	}
	delete(snap.Alive, "a")
	if op, why := PlanFailback(cfg, snap, "a", "operator:test", t0); op != nil || len(why) != 1 {
		t.Errorf("PlanFailback of a dark site = %v, %q; want no op and one reason", op, why)
	}
}

// The check-failback step fails at once only when the site is no longer
// fenced; anything else it waits out (what it returns as pending), and the
// op itself is no blocker.
func TestFailbackCheck(t *testing.T) {
	cfg, snap := failbackState()
	op, _ := PlanFailback(cfg, snap, "a", "operator:test", t0)
	snap.Ops = append(snap.Ops, op)
	if fail, pending := failbackCheck(cfg, snap, "a", op.ID); fail != "" || pending != "" {
		t.Errorf("a clean site: fail %q, pending %q; want neither (the op itself blocks nothing)", fail, pending)
	}
	// A report a pass behind: the step waits, it does not fail.
	r := snap.Reports["a"]
	r.State = site.ControllerUp
	snap.Reports["a"] = r
	if fail, pending := failbackCheck(cfg, snap, "a", op.ID); fail != "" || !strings.Contains(pending, "does not report itself fenced") {
		t.Errorf("a site that does not report itself fenced yet: fail %q, pending %q; want a wait", fail, pending)
	}
	delete(snap.Fences, "a")
	if fail, _ := failbackCheck(cfg, snap, "a", op.ID); !strings.Contains(fail, "no longer fenced") {
		t.Errorf("an unfenced site: fail %q; want the step to fail at once", fail)
	}
}
