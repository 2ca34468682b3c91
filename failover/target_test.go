package failover

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// rpoState: db (group pg, order b, c, a) was at b, which is dark; c and a
// are up with standbys that reported the given lag.
func rpoState(cLag, aLag int64) (*config.Cluster, *site.Snapshot) {
	cfg := testConfig()
	cfg.Services[1].ReplicationGroup = "pg"
	cfg.Services[1].RPO = config.RPO{MaxLagBytes: 1000, MaxLagSeconds: -1}
	cfg.Replication = []config.ReplicationGroup{{Name: "pg", Members: []config.ReplicationMember{{Site: "a"}, {Site: "b"}, {Site: "c"}}}}
	snap := state{up: []string{"a", "c"}, joined: []string{"b"}, assigned: map[string]string{"web": "a", "db": "b", "mail": "a"}}.snapshot()
	snap.Replication = map[string]site.ReplicationReport{
		"b": {Members: []site.MemberReport{{Group: "pg", Role: "primary", Healthy: true, Writable: true}}},
		"c": {Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: false, Detail: "not streaming", LagBytes: cLag}}},
		"a": {Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: false, Detail: "not streaming", LagBytes: aLag}}},
	}
	return cfg, snap
}

func TestChooseTarget(t *testing.T) {
	tests := []struct {
		name   string
		cLag   int64
		aLag   int64
		change func(*config.Cluster, *site.Snapshot)
		want   string
		why    []string
	}{
		{name: "the next site's standby is within the RPO", cLag: 10, aLag: 10, want: "c"},
		{name: "the next site lags: the one after it", cLag: 5000, aLag: 10, want: "a"},
		{
			name: "every standby lags: none, and why", cLag: 5000, aLag: 2000,
			why: []string{"b is being left", "c: its member of group pg may not be promoted: lag 4.9 KiB exceeds the limit", "a: its member of group pg may not be promoted: lag"},
		},
		{
			name: "a member whose server is down cannot be promoted", cLag: 10, aLag: 10,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				s.Replication["c"] = site.ReplicationReport{Members: []site.MemberReport{{Group: "pg", Role: "unknown", Detail: "connection refused"}}}
			},
			want: "a",
		},
		{
			name: "no report from the next site", cLag: 10, aLag: 10,
			change: func(_ *config.Cluster, s *site.Snapshot) { delete(s.Replication, "c") },
			want:   "a",
		},
		{
			name: "require_sync: only the standby the old primary waited for", cLag: 0, aLag: 0,
			change: func(cfg *config.Cluster, s *site.Snapshot) {
				cfg.Services[1].RPO.RequireSync = true
				s.Replication["b"].Members[0].SyncStandbys = []string{"a"}
			},
			want: "a",
		},
		{
			name: "a service without a group: the first site up", cLag: 5000, aLag: 5000,
			change: func(cfg *config.Cluster, _ *site.Snapshot) { cfg.Services[1].ReplicationGroup = "" },
			want:   "c",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := rpoState(tt.cLag, tt.aLag)
			if tt.change != nil {
				tt.change(cfg, snap)
			}
			svc, _ := cfg.Service("db")
			got, why := ChooseTarget(cfg, svc, snap, "b")
			if got != tt.want {
				t.Fatalf("ChooseTarget = %q (%s); want %q", got, why, tt.want)
			}
			for _, w := range tt.why {
				if !strings.Contains(why, w) {
					t.Errorf("why %q lacks %q", why, w)
				}
			}
		})
	}
}

func TestPlanReassign(t *testing.T) {
	cfg, snap := rpoState(5000, 5000)
	snap.Fences["b"] = site.Fence{Site: "b"} // failed over; db stayed
	if got := Stranded(cfg, snap); len(got) != 1 || got[0].Name != "db" {
		t.Fatalf("Stranded = %v; want db", got)
	}
	if op := PlanReassign(cfg, snap, "a", t0); op != nil {
		t.Fatalf("PlanReassign with every standby lagging = %+v; want none", op.Steps)
	}
	// c catches up: db moves.
	snap.Replication["c"].Members[0].LagBytes = 0
	op := PlanReassign(cfg, snap, "a", t0)
	if op == nil || op.Steps[0].Name != StepAssign || op.Steps[0].Params["service"] != "db" || op.Steps[0].Params["from"] != "b" {
		t.Fatalf("PlanReassign after c caught up = %+v; want a step moving db from b", op)
	}
	var waits []string
	for _, st := range op.Steps[1:] {
		waits = append(waits, st.Name+" "+st.Params["group"]+" "+st.Params["services"])
	}
	if want := []string{"await-primary pg db", "await-prefixes  db", "await-followers pg db"}; !slices.Equal(waits, want) {
		t.Errorf("PlanReassign waits %q; want %q", waits, want)
	}
	d, err := Decide(cfg, snap, "a", t0, t0)
	if err != nil || d.Start == nil || d.Start.Kind != KindReassign {
		t.Fatalf("Decide = %+v, %v; want a reassign op", d, err)
	}
	// Not again right after one.
	snap.Ops = append(snap.Ops, &site.Op{ID: "op-r", Kind: KindReassign, Created: t0, Outcome: site.OpSucceeded})
	cfg.Timings.RenewInterval = 500 * time.Millisecond
	if d, _ := Decide(cfg, snap, "a", t0.Add(cfg.Timings.RenewInterval), t0); d.Start != nil {
		t.Errorf("Decide right after a reassign op started %s", d.Start.Kind)
	}
}
