package site_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// alarmCluster is three sites; service web has two guests, service db
// uses replication group pg, and no service uses group spare.
func alarmCluster() *config.Cluster {
	return &config.Cluster{
		Name:  "t",
		Sites: []config.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Services: []config.Service{
			{Name: "web", Sites: []string{"a", "b", "c"}, Guests: []config.Guest{
				{Name: "web-1", Service: "web", Tier: config.TierGold},
				{Name: "web-2", Service: "web", Tier: config.TierBronze},
			}},
			{Name: "db", Sites: []string{"a", "b", "c"}, ReplicationGroup: "pg"},
		},
		Replication: []config.ReplicationGroup{
			{Name: "pg", Members: []config.ReplicationMember{{Site: "a"}, {Site: "b"}, {Site: "c"}}},
			{Name: "spare", Members: []config.ReplicationMember{{Site: "a"}, {Site: "b"}}},
		},
	}
}

var (
	reportTime = time.Date(2026, 12, 2, 3, 12, 45, 0, time.UTC)
	readTime   = reportTime.Add(42 * time.Minute)
)

// healthy is a snapshot with nothing to alarm about: every site up, web-1
// runs where it is placed, web-2 is preempted and does not run, db and its
// one writable member are at site a.
func healthy() *site.Snapshot {
	s := &site.Snapshot{
		Alive:       map[string]site.Alive{"a": {}, "b": {}, "c": {}},
		Fences:      map[string]site.Fence{},
		Assignments: map[string]site.Assignment{"db": {Service: "db", Site: "a", Epoch: 42}},
		Placements: map[string]site.Placement{
			"web-1": {Guest: "web-1", Site: "a", Host: "a1", State: site.GuestRunning},
			"web-2": {Guest: "web-2", State: site.GuestPreempted, Reason: "room for gold guests"},
		},
		Hosts:       map[string]site.HostsReport{},
		Replication: map[string]site.ReplicationReport{},
	}
	run(s, "a", "a1", "web-1")
	s.Replication["a"] = site.ReplicationReport{Site: "a", Updated: reportTime, Members: []site.MemberReport{
		{Group: "pg", Role: "primary", Writable: true}, {Group: "spare", Role: "primary", Writable: true},
	}}
	for _, name := range []string{"b", "c"} {
		s.Replication[name] = site.ReplicationReport{Site: name, Updated: reportTime, Members: []site.MemberReport{
			{Group: "pg", Role: "standby"},
		}}
	}
	return s
}

// run adds a guest to the hosts report of a site.
func run(s *site.Snapshot, siteName, host, guest string) {
	r := s.Hosts[siteName]
	r.Site, r.Updated = siteName, reportTime
	i := 0
	for i < len(r.Hosts) && r.Hosts[i].Name != host {
		i++
	}
	if i == len(r.Hosts) {
		r.Hosts = append(r.Hosts, site.HostReport{Name: host})
	}
	r.Hosts[i].Running = append(r.Hosts[i].Running, site.RunningGuest{Name: guest})
	s.Hosts[siteName] = r
}

// writable makes the site's pg member a writable primary.
func writable(s *site.Snapshot, siteName string) {
	s.Replication[siteName] = site.ReplicationReport{Site: siteName, Updated: reportTime, Members: []site.MemberReport{
		{Group: "pg", Role: "primary", Writable: true},
	}}
}

func dark(s *site.Snapshot, siteName string) { delete(s.Alive, siteName) }

func TestAlarms(t *testing.T) {
	type want struct {
		kind     site.AlarmKind
		severity site.AlarmSeverity
		subject  string
		site     string
		stale    bool
		says     []string
	}
	confirmed := site.Fence{Site: "c", Op: "op-1", Confirmed: &site.Confirmation{By: "operator:ann@noc1", At: readTime.Add(-time.Minute)}}
	tests := []struct {
		name  string
		snap  func(s *site.Snapshot)
		now   time.Time
		wants []want
	}{
		{name: "nothing to alarm about", snap: func(*site.Snapshot) {}},
		{
			name: "guest runs on a host it is not placed on",
			snap: func(s *site.Snapshot) {
				s.Hosts = map[string]site.HostsReport{}
				run(s, "b", "b1", "web-1")
			},
			wants: []want{{site.AlarmGuestMisplaced, site.AlarmCritical, "web-1", "b", false,
				[]string{"guest web-1 runs on host b1 at site b, but it is placed on host a1 at site a"}}},
		},
		{
			name: "guest runs at two places",
			snap: func(s *site.Snapshot) { run(s, "b", "b1", "web-1") },
			wants: []want{{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "b", false,
				[]string{"guest web-1 runs on host b1 at site b and also on host a1 at site a; it is placed on host a1 at site a"}}},
		},
		{
			name: "guest runs at two places, neither its placement's",
			snap: func(s *site.Snapshot) {
				s.Hosts = map[string]site.HostsReport{}
				run(s, "b", "b1", "web-1")
				run(s, "c", "c2", "web-1")
			},
			wants: []want{
				{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "b", false, []string{"runs on host b1 at site b and also on host c2 at site c"}},
				{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "c", false, []string{"runs on host c2 at site c and also on host b1 at site b"}},
			},
		},
		{
			name: "preempted guest runs",
			snap: func(s *site.Snapshot) { run(s, "b", "b2", "web-2") },
			wants: []want{{site.AlarmGuestNotWanted, site.AlarmWarning, "web-2", "b", false,
				[]string{"guest web-2 runs on host b2 at site b, but its placement says preempted: room for gold guests"}}},
		},
		{
			name: "guest without placement runs",
			snap: func(s *site.Snapshot) {
				delete(s.Placements, "web-2")
				run(s, "b", "b2", "web-2")
			},
			wants: []want{{site.AlarmGuestNotWanted, site.AlarmWarning, "web-2", "b", false, []string{"but it has no placement"}}},
		},
		{
			name: "domain that is no guest of the config is not ours",
			snap: func(s *site.Snapshot) { run(s, "b", "b1", "someone-elses") },
		},
		{
			name: "stale report of a dark site still alarms, with its age",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				run(s, "c", "c1", "web-1")
			},
			now: readTime,
			wants: []want{{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "c", true, []string{
				"guest web-1 runs on host c1 at site c (stale: site c is dark; its last report was written at 03:12:45 UTC, 42m0s ago) and also on host a1 at site a",
			}}},
		},
		{
			name: "without a clock the report's date, no age",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				run(s, "c", "c1", "web-1")
			},
			wants: []want{{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "c", true, []string{
				"(stale: site c is dark; its last report was written at 2026-12-02 03:12:45 UTC)",
			}}},
		},
		{
			name: "report older than half a day says its date",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				run(s, "c", "c1", "web-1")
			},
			now: reportTime.Add(26 * time.Hour),
			wants: []want{{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "c", true, []string{
				"its last report was written at 2026-12-02 03:12:45 UTC, 26h0m0s ago)",
			}}},
		},
		{
			name: "stale report of a fenced site says how to settle it",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				s.Fences["c"] = site.Fence{Site: "c", Op: "op-1"}
				run(s, "c", "c1", "web-1")
			},
			now: readTime,
			wants: []want{{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "c", true, []string{
				"; check site c, and once you know it is dark: zdt fence confirm --site c",
			}}},
		},
		{
			name: "confirmed dark site: a warning",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				s.Fences["c"] = confirmed
				run(s, "c", "c1", "web-1")
			},
			now: readTime,
			wants: []want{{site.AlarmGuestTwice, site.AlarmWarning, "web-1", "c", true, []string{
				"; operator:ann@noc1 confirmed site c dark at 2026-12-02T03:53:45Z",
			}}},
		},
		{
			name: "fenced site that is back reports afresh",
			snap: func(s *site.Snapshot) {
				s.Fences["c"] = confirmed
				run(s, "c", "c1", "web-1")
			},
			wants: []want{{site.AlarmGuestTwice, site.AlarmCritical, "web-1", "c", false, nil}},
		},
		{
			name: "dark site that still holds the placement: no alarm",
			snap: func(s *site.Snapshot) {
				dark(s, "a")
			},
		},
		{
			name: "writable member at a site that does not hold the service",
			snap: func(s *site.Snapshot) {
				writable(s, "b")
				s.Replication["a"] = site.ReplicationReport{Site: "a", Members: []site.MemberReport{{Group: "pg", Role: "standby"}}}
			},
			wants: []want{{site.AlarmWritableNotActive, site.AlarmCritical, "pg", "b", false, []string{
				"replication group pg: the member at site b is writable (role primary), but the group's services are active elsewhere: db at site a (epoch 42)",
			}}},
		},
		{
			name: "two writable members, one of a dark site",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				writable(s, "c")
			},
			now: readTime,
			wants: []want{{site.AlarmWritableTwice, site.AlarmCritical, "pg", "c", true, []string{
				"the member at site c (stale: site c is dark; its last report was written at 03:12:45 UTC, 42m0s ago) is writable (role primary)",
				"; also writable: the member at site a",
			}}},
		},
		{
			name: "two writable members, one confirmed dark",
			snap: func(s *site.Snapshot) {
				dark(s, "c")
				s.Fences["c"] = confirmed
				writable(s, "c")
			},
			wants: []want{{site.AlarmWritableTwice, site.AlarmWarning, "pg", "c", true, []string{"confirmed site c dark"}}},
		},
		{
			name: "two writable members and no assignment: the group is blamed",
			snap: func(s *site.Snapshot) {
				delete(s.Assignments, "db")
				writable(s, "b")
			},
			wants: []want{{site.AlarmWritableTwice, site.AlarmCritical, "pg", "", false, []string{
				"replication group pg has 2 writable members: the member at site a, the member at site b; no service using the group is assigned",
			}}},
		},
		{
			name: "two writable members and no assignment, one confirmed dark",
			snap: func(s *site.Snapshot) {
				delete(s.Assignments, "db")
				dark(s, "c")
				s.Fences["c"] = confirmed
				writable(s, "c")
			},
			wants: []want{{site.AlarmWritableTwice, site.AlarmWarning, "pg", "", true, []string{"confirmed site c dark"}}},
		},
		{
			name: "dark site that still holds the assignment: no alarm",
			snap: func(s *site.Snapshot) {
				s.Assignments["db"] = site.Assignment{Service: "db", Site: "c", Epoch: 43}
				s.Replication["a"] = site.ReplicationReport{Site: "a", Members: []site.MemberReport{{Group: "pg", Role: "standby"}}}
				dark(s, "c")
				writable(s, "c")
			},
		},
		{
			name: "service still assigned to a fenced site",
			snap: func(s *site.Snapshot) {
				s.Assignments["db"] = site.Assignment{Service: "db", Site: "c", Epoch: 43}
				s.Replication["a"] = site.ReplicationReport{Site: "a", Members: []site.MemberReport{{Group: "pg", Role: "standby"}}}
				s.Fences["c"] = site.Fence{Site: "c", Op: "op-1"}
			},
			wants: []want{{site.AlarmServiceStranded, site.AlarmCritical, "db", "c", false,
				[]string{"service db is still assigned to fenced site c: no site could take it"}}},
		},
		{
			name: "critical alarms first",
			snap: func(s *site.Snapshot) {
				run(s, "b", "b2", "web-2") // a warning, found first
				writable(s, "b")
			},
			wants: []want{
				{site.AlarmWritableTwice, site.AlarmCritical, "pg", "b", false, nil},
				{site.AlarmGuestNotWanted, site.AlarmWarning, "web-2", "b", false, nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := healthy()
			tt.snap(snap)
			got := site.Alarms(alarmCluster(), snap, tt.now)
			if got == nil {
				t.Fatal("Alarms returned nil; want an empty list for JSON")
			}
			if len(got) != len(tt.wants) {
				t.Fatalf("%d alarms, want %d:\n%s", len(got), len(tt.wants), dump(got))
			}
			for i, w := range tt.wants {
				g := got[i]
				if g.Kind != w.kind || g.Severity != w.severity || g.Subject != w.subject || g.Site != w.site || g.Stale != w.stale {
					t.Errorf("alarm %d: %s %s %s site %q stale %t; want %s %s %s site %q stale %t\n%s", i,
						g.Kind, g.Severity, g.Subject, g.Site, g.Stale, w.kind, w.severity, w.subject, w.site, w.stale, g.Message)
				}
				for _, s := range w.says {
					if !strings.Contains(g.Message, s) {
						t.Errorf("alarm %d does not say\n  %s\ngot\n  %s", i, s, g.Message)
					}
				}
			}
		})
	}
}

func dump(alarms []site.Alarm) string {
	var b strings.Builder
	for _, a := range alarms {
		b.WriteString("  " + string(a.Severity) + " " + string(a.Kind) + ": " + a.Message + "\n")
	}
	return b.String()
}

// TestStatusCarriesAlarms: the status lists its alarms, as an empty list in
// JSON when there are none.
func TestStatusCarriesAlarms(t *testing.T) {
	snap := healthy()
	st := site.BuildStatus(alarmCluster(), snap, nil)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"alarms":[]`) {
		t.Errorf("status JSON without alarms: %s", b)
	}
	run(snap, "b", "b1", "web-1")
	st = site.BuildStatus(alarmCluster(), snap, nil)
	if len(st.Alarms) != 1 || st.Alarms[0].Kind != site.AlarmGuestTwice {
		t.Errorf("status alarms: %+v", st.Alarms)
	}
	// The rest of the status still ignores what a dark site reported.
	dark(snap, "b")
	st = site.BuildStatus(alarmCluster(), snap, nil)
	if len(st.Alarms) != 1 || !st.Alarms[0].Stale || len(st.Guests[0].RunningOn) != 1 {
		t.Errorf("dark site b: alarms %+v, web-1 running on %v", st.Alarms, st.Guests[0].RunningOn)
	}
}

// TestStatusCarriesRPO checks that a service with a replication group
// shows its RPO, and one without shows none.
func TestStatusCarriesRPO(t *testing.T) {
	cfg := alarmCluster()
	cfg.Services[1].RPO = config.RPO{MaxLagBytes: 1 << 20, MaxLagSeconds: 2.5, RequireSync: true}
	st := site.BuildStatus(cfg, healthy(), nil)
	b, err := json.Marshal(st.Services)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"rpo":{"max_lag_bytes":1048576,"max_lag_seconds":2.5,"require_sync":true}`; !strings.Contains(string(b), want) {
		t.Errorf("services JSON lacks db's %s: %s", want, b)
	}
	if st.Services[0].RPO != nil {
		t.Errorf("web, without a replication group, has RPO %+v; want none", *st.Services[0].RPO)
	}
}
