package failover

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// rpoState: db (group pg, order b, c, a; RPO 1000 bytes) was at b, which
// is dark; b's primary last reported WAL position 0/5000000, and c and a
// are up with standbys that reported the same position and the given lag
// (against what they received).
func rpoState(cLag, aLag int64) (*config.Cluster, *site.Snapshot) {
	cfg := testConfig()
	cfg.Services[1].ReplicationGroup = "pg"
	cfg.Services[1].RPO = config.RPO{MaxLagBytes: 1000, MaxLagSeconds: -1}
	cfg.Replication = []config.ReplicationGroup{{Name: "pg", Driver: config.DriverPostgres, Members: []config.ReplicationMember{{Site: "a"}, {Site: "b"}, {Site: "c"}}}}
	snap := state{up: []string{"a", "c"}, joined: []string{"b"}, assigned: map[string]string{"web": "a", "db": "b", "mail": "a"}}.snapshot()
	snap.Replication = map[string]site.ReplicationReport{
		"b": {Members: []site.MemberReport{{Group: "pg", Role: "primary", Healthy: true, Writable: true, Position: "0/5000000"}}},
		"c": {Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: false, Detail: "not streaming", LagBytes: cLag, Position: "0/5000000"}}},
		"a": {Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: false, Detail: "not streaming", LagBytes: aLag, Position: "0/5000000"}}},
	}
	return cfg, snap
}

// setMember changes the site's report of its member of group pg.
func setMember(s *site.Snapshot, at string, mod func(*site.MemberReport)) {
	rep := s.Replication[at]
	rep.Members = slices.Clone(rep.Members)
	mod(&rep.Members[0])
	s.Replication[at] = rep
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
		{name: "the next site's standby is within the RPO", cLag: 10, aLag: 10, want: "c",
			why: []string{"site c: its member of group pg may be promoted: asynchronous replication, lag 10 B within the limit of 1000 B",
				"by site b's primary's last reported WAL position 0/5000000; this member reported 0/5000000, 10 B behind what it received"}},
		{name: "the next site lags: the one after it", cLag: 5000, aLag: 10, want: "a", why: []string{"site a: its member"}},
		{
			name: "every standby lags: none, and why", cLag: 5000, aLag: 2000,
			why: []string{"b is being left", "c: its member of group pg may not be promoted: lag 4.9 KiB exceeds the limit", "a: its member of group pg may not be promoted: lag"},
		},
		{
			name: "reporting lag 0, the next site is behind the old primary's last position: the one after it", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "0/4FFF000" }) // 4 KiB behind
			},
			want: "a",
		},
		{
			name: "behind the old primary's last position: none, and by how much", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "0/4FFF000" })
				setMember(s, "a", func(m *site.MemberReport) { m.Position = "0/4000000" })
			},
			why: []string{"c: its member of group pg may not be promoted: lag 4 KiB exceeds the limit of 1000 B",
				"a: its member of group pg may not be promoted: lag 16 MiB exceeds the limit of 1000 B"},
		},
		{
			name: "a little behind the old primary's last position: within the RPO", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "0/4FFFF00" })
			},
			want: "c", why: []string{"lag 256 B within the limit of 1000 B", "position 0/5000000; this member reported 0/4FFFF00"},
		},
		{
			name: "its own lag larger than how far it is behind the old primary: its own", cLag: 5000, aLag: 10,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "0/4FFFF00" })
			},
			want: "a",
		},
		{
			name: "ahead of the old primary's last report (it reported before the last writes): its own lag", cLag: 10, aLag: 10,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "0/5001000" })
			},
			want: "c", why: []string{"lag 10 B within"},
		},
		{
			name: "the old primary's last report holds no position: unknown, none", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "b", func(m *site.MemberReport) { m.Position = "" })
			},
			why: []string{"c: its member of group pg may not be promoted: how far it is behind site b's primary is unknown (site b's primary reported no WAL position), and the service allows at most 1000 B lost"},
		},
		{
			name: "the old primary's site last reported it could not observe it: unknown, none", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				s.Replication["b"] = site.ReplicationReport{Members: []site.MemberReport{{Group: "pg", Role: "unknown", Detail: "cannot observe: connection refused"}}}
			},
			why: []string{"how far it is behind site b's primary is unknown (site b's last report of its member is not a primary's (role unknown), so it gives no last WAL position)"},
		},
		{
			name: "no report of the old primary: unknown, none", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) { delete(s.Replication, "b") },
			why:    []string{"how far it is behind site b's primary is unknown (site b has not reported its member)"},
		},
		{
			name: "the standby reports no position: unknown for it", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "" })
			},
			want: "a",
		},
		{
			name: "an unreadable position: unknown", cLag: 0, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "5000000" })
				setMember(s, "a", func(m *site.MemberReport) { m.Position = "0/ZZ" })
			},
			why: []string{"c: its member of group pg may not be promoted: how far it is behind site b's primary is unknown (the member's position: WAL position \"5000000\" is not of the form",
				"a: its member of group pg may not be promoted: how far it is behind site b's primary is unknown (the member's position: WAL position \"0/ZZ\""},
		},
		{
			name: "unknown, but no limit in bytes: judged on its seconds, and says so", cLag: 0, aLag: 0,
			change: func(cfg *config.Cluster, s *site.Snapshot) {
				cfg.Services[1].RPO = config.RPO{MaxLagBytes: -1, MaxLagSeconds: 30}
				setMember(s, "b", func(m *site.MemberReport) { m.Position = "" })
			},
			want: "c", why: []string{"lag 0s within the limit of 30s (how far it is behind site b's primary is unknown: site b's primary reported no WAL position)"},
		},
		{
			name: "unknown, synchronous by the old primary's report: promoted", cLag: 0, aLag: 0,
			change: func(cfg *config.Cluster, s *site.Snapshot) {
				cfg.Services[1].RPO.RequireSync = true
				setMember(s, "b", func(m *site.MemberReport) { m.Position, m.SyncStandbys = "", []string{"a"} })
			},
			want: "a", why: []string{"replicates synchronously"},
		},
		{
			name: "synchronous by the old primary's report, far behind its last position: promoted", cLag: 5000, aLag: 0,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				setMember(s, "b", func(m *site.MemberReport) { m.SyncStandbys = []string{"c"} })
				setMember(s, "c", func(m *site.MemberReport) { m.Position = "0/1000000" })
			},
			want: "c", why: []string{"replicates synchronously"},
		},
		{
			name: "a DRBD group: judged on the out-of-sync data it reports", cLag: 10, aLag: 10,
			change: func(cfg *config.Cluster, s *site.Snapshot) {
				cfg.Replication[0].Driver = config.DriverDRBD
				for _, at := range []string{"b", "c", "a"} {
					setMember(s, at, func(m *site.MemberReport) { m.Position = "7A3F0C21D9E8B4C5" })
				}
			},
			want: "c", why: []string{"lag 10 B within the limit of 1000 B"},
		},
		{
			name: "the old site up (an evacuation): positions are not compared", cLag: 10, aLag: 10,
			change: func(_ *config.Cluster, s *site.Snapshot) {
				s.Alive["b"] = site.Alive{Site: "b"}
				setMember(s, "c", func(m *site.MemberReport) { m.Position, m.Healthy = "0/1000000", true })
			},
			want: "c", why: []string{"lag 10 B within"},
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
			name: "a synchronous group: of the standbys the old primary waited for, the one holding more WAL", cLag: 0, aLag: 0,
			change: func(cfg *config.Cluster, s *site.Snapshot) {
				cfg.Replication[0].Synchronous = true
				s.Assignments["db"] = site.Assignment{Service: "db", Site: "b", Epoch: 7}
				setMember(s, "b", func(m *site.MemberReport) { m.SyncStandbys = []string{"a", "c"} })
				setMember(s, "c", func(m *site.MemberReport) { m.Position, m.Epoch = "0/4FFFF00", 7 })
				setMember(s, "a", func(m *site.MemberReport) { m.Position, m.Epoch = "0/5000000", 7 })
			},
			want: "a", why: []string{"replicates synchronously"},
		},
		{
			name: "a synchronous group: no standby sure to hold everything, none promoted", cLag: 0, aLag: 0,
			change: func(cfg *config.Cluster, s *site.Snapshot) {
				cfg.Replication[0].Synchronous = true
				s.Assignments["db"] = site.Assignment{Service: "db", Site: "b", Epoch: 7}
				setMember(s, "b", func(m *site.MemberReport) { m.SyncStandbys = []string{"a", "c"} })
				setMember(s, "c", func(m *site.MemberReport) { m.Position, m.Epoch = "0/4FFFF00", 7 })
				setMember(s, "a", func(m *site.MemberReport) { m.Position, m.Epoch, m.LagBytes = "0/5000000", 7, 10 })
			},
			want: "", why: []string{"c: its member of group pg may not be promoted", "site a is still replaying what it received"},
		},
		{
			name: "a service without a group: the first site up", cLag: 5000, aLag: 5000,
			change: func(cfg *config.Cluster, _ *site.Snapshot) { cfg.Services[1].ReplicationGroup = "" },
			want:   "c", why: []string{"site c is up (service db has no replication group)"},
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
