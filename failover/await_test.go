package failover

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// movedState is switchoverState after op "op-1" moved db and report (group
// pg) from b to c at epoch 8: c's member is a writable primary, a's and
// b's follow it.
func movedState() (*config.Cluster, *site.Snapshot) {
	cfg, snap := switchoverState()
	for _, svc := range []string{"db", "report"} {
		snap.Assignments[svc] = site.Assignment{Service: svc, Site: "c", From: "b", Op: "op-1", Epoch: 8}
	}
	snap.Replication["c"] = site.ReplicationReport{Site: "c", Members: []site.MemberReport{{Group: "pg", Role: "primary", Healthy: true, Writable: true, Epoch: 8, Streaming: []string{"a", "b"}}}}
	for _, s := range []string{"a", "b"} {
		snap.Replication[s] = site.ReplicationReport{Site: s, Members: []site.MemberReport{{Group: "pg", Role: "standby", Healthy: true, Epoch: 8}}}
	}
	return cfg, snap
}

func TestOpMoves(t *testing.T) {
	cfg, snap := movedState()
	if to, epoch, none := opMoves(cfg, snap, "op-1", []string{"db", "report"}, "pg"); to != "c" || epoch != 8 || none != "" {
		t.Errorf("opMoves = %q, %d, %q; want c, 8", to, epoch, none)
	}
	// web is not in group pg: it does not count.
	if _, _, none := opMoves(cfg, snap, "op-1", []string{"web"}, "pg"); !strings.Contains(none, "this op moved none of them") {
		t.Errorf("opMoves of a service of another group: %q", none)
	}
	// A later op moved db on; report has no assignment.
	snap.Assignments["db"] = site.Assignment{Service: "db", Site: "a", Op: "op-2", Epoch: 9}
	delete(snap.Assignments, "report")
	_, _, none := opMoves(cfg, snap, "op-1", []string{"db", "report"}, "pg")
	for _, want := range []string{"service db is at site a by op op-2", "service report has no assignment"} {
		if !strings.Contains(none, want) {
			t.Errorf("opMoves says %q; want %q in it", none, want)
		}
	}
}

func TestPrimaryPending(t *testing.T) {
	tests := []struct {
		name   string
		member *site.MemberReport // nil: no report
		want   string             // "" or a substring
	}{
		{name: "promoted", member: &site.MemberReport{Group: "pg", Role: "primary", Writable: true, Epoch: 8}},
		{name: "no report", want: "no report of it yet"},
		{name: "still a standby", member: &site.MemberReport{Group: "pg", Role: "standby", Epoch: 8, Detail: "replaying"}, want: "standby, writable false, epoch 8 of 8: replaying"},
		{name: "fenced primary", member: &site.MemberReport{Group: "pg", Role: "primary", Epoch: 8}, want: "primary, writable false"},
		{name: "an older assignment", member: &site.MemberReport{Group: "pg", Role: "primary", Writable: true, Epoch: 7}, want: "epoch 7 of 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, snap := movedState()
			snap.Replication["c"] = site.ReplicationReport{Site: "c"}
			if tt.member != nil {
				snap.Replication["c"] = site.ReplicationReport{Site: "c", Members: []site.MemberReport{*tt.member}}
			}
			got := primaryPending(snap, "c", "pg", 8)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("primaryPending = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestFollowersPending(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*site.Snapshot)
		pending   []string // substrings, one per site
		following []string
	}{
		{name: "every other member follows", following: []string{"a", "b"}},
		{name: "the old primary is being rewound", change: func(s *site.Snapshot) {
			s.Replication["b"] = site.ReplicationReport{Site: "b", Members: []site.MemberReport{{Group: "pg", Role: "primary", Epoch: 7, Detail: "rewinding"}}}
		}, pending: []string{"site b's member: primary, healthy false, epoch 7 of 8: rewinding"}, following: []string{"a"}},
		{name: "a member that does not report", change: func(s *site.Snapshot) {
			delete(s.Replication, "a")
		}, pending: []string{"site a does not report its member"}, following: []string{"b"}},
		{name: "an unhealthy standby", change: func(s *site.Snapshot) {
			s.Replication["a"] = site.ReplicationReport{Site: "a", Members: []site.MemberReport{{Group: "pg", Role: "standby", Epoch: 8, Detail: "no WAL receiver"}}}
		}, pending: []string{"site a's member: standby, healthy false"}, following: []string{"b"}},
		{name: "a standby that still streams from the old primary", change: func(s *site.Snapshot) {
			s.Replication["c"] = site.ReplicationReport{Site: "c", Members: []site.MemberReport{{Group: "pg", Role: "primary", Healthy: true, Writable: true, Epoch: 8, Streaming: []string{"b"}}}}
		}, pending: []string{"site a's member does not stream from the primary at site c yet (it lists b)"}, following: []string{"b"}},
		{name: "a site that is not up is left to its failback", change: func(s *site.Snapshot) {
			s.Fences["b"] = site.Fence{Site: "b"}
			s.Replication["b"] = site.ReplicationReport{Site: "b"}
		}, following: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := movedState()
			if tt.change != nil {
				tt.change(snap)
			}
			pending, following := followersPending(cfg, snap, "pg", "c", 8)
			if len(pending) != len(tt.pending) {
				t.Fatalf("pending %q; want %q", pending, tt.pending)
			}
			for i := range pending {
				if !strings.Contains(pending[i], tt.pending[i]) {
					t.Errorf("pending %q; want %q", pending[i], tt.pending[i])
				}
			}
			if !slices.Equal(following, tt.following) {
				t.Errorf("following %q; want %q", following, tt.following)
			}
		})
	}
	cfg, snap := movedState()
	if pending, _ := followersPending(cfg, snap, "nope", "c", 8); len(pending) != 1 || !strings.Contains(pending[0], "replication group nope is not in the config") {
		t.Errorf("followersPending of an unknown group: %q", pending)
	}
}

func TestGuestsPending(t *testing.T) {
	guestsConfig := func() *config.Cluster {
		cfg := testConfig()
		cfg.Services[0].Guests = []config.Guest{{Name: "web-1", Service: "web"}, {Name: "web-2", Service: "web"}, {Name: "web-3", Service: "web"}}
		return cfg
	}
	running := func(names ...string) []site.RunningGuest {
		var out []site.RunningGuest
		for _, n := range names {
			out = append(out, site.RunningGuest{Name: n})
		}
		return out
	}
	tests := []struct {
		name    string
		change  func(*site.Snapshot)
		n       int
		pending []string
		lost    string
	}{
		{name: "every placed guest runs", n: 2},
		{name: "one not started yet", change: func(s *site.Snapshot) {
			s.Hosts["c"] = site.HostsReport{Site: "c", Hosts: []site.HostReport{{Name: "c1", Running: running("web-1")}}}
		}, n: 2, pending: []string{"web-2 not on c1 yet"}},
		{name: "the host says why", change: func(s *site.Snapshot) {
			s.Hosts["c"] = site.HostsReport{Site: "c", Hosts: []site.HostReport{{Name: "c1", Error: "out of memory"}}}
		}, n: 2, pending: []string{"web-1 not on c1 yet (out of memory)", "web-2 not on c1 yet (out of memory)"}},
		{name: "a host the site does not report", change: func(s *site.Snapshot) {
			s.Hosts["c"] = site.HostsReport{Site: "c"}
		}, n: 2, pending: []string{"web-1: site c does not report host c1", "web-2: site c does not report host c1"}},
		{name: "the target went dark", change: func(s *site.Snapshot) {
			delete(s.Alive, "c")
		}, n: 1, lost: "guest web-1 was placed at site c, which is dark now"},
		{name: "placed anew by a later op", change: func(s *site.Snapshot) {
			p := s.Placements["web-2"]
			p.Op = "op-2"
			s.Placements["web-2"] = p
			s.Hosts["c"] = site.HostsReport{Site: "c", Hosts: []site.HostReport{{Name: "c1", Running: running("web-1")}}}
		}, n: 1},
		{name: "nothing placed by the op", change: func(s *site.Snapshot) {
			s.Placements = map[string]site.Placement{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, snap := movedState()
			snap.Placements = map[string]site.Placement{
				"web-1": {Guest: "web-1", Site: "c", Host: "c1", State: site.GuestRunning, Op: "op-1"},
				"web-2": {Guest: "web-2", Site: "c", Host: "c1", State: site.GuestRunning, Op: "op-1"},
				"web-3": {Guest: "web-3", State: site.GuestPreempted, Op: "op-1"},
			}
			snap.Hosts = map[string]site.HostsReport{"c": {Site: "c", Hosts: []site.HostReport{{Name: "c1", Running: running("web-1", "web-2")}}}}
			if tt.change != nil {
				tt.change(snap)
			}
			n, pending, lost := guestsPending(guestsConfig(), snap, "op-1")
			if n != tt.n || !slices.Equal(pending, tt.pending) || !strings.Contains(lost, tt.lost) || (tt.lost == "") != (lost == "") {
				t.Errorf("guestsPending = %d, %q, %q; want %d, %q, %q", n, pending, lost, tt.n, tt.pending, tt.lost)
			}
		})
	}
}

func TestPrefixesPending(t *testing.T) {
	const db = "203.0.113.64/26"
	prefixConfig := func() *config.Cluster {
		cfg, _ := movedState()
		cfg.BGP.Headroom = 2
		for i := range cfg.Sites {
			cfg.Sites[i].BGP = &config.SiteBGP{}
		}
		cfg.Services[1].Prefixes = []netip.Prefix{netip.MustParsePrefix(db)}
		return cfg
	}
	announcing := func(prepends int) map[site.SiteService][]site.Announcement {
		return map[site.SiteService][]site.Announcement{{Site: "c", Service: "db"}: {{Service: "db", Prefix: db, Prepends: prepends}}}
	}
	tests := []struct {
		name     string
		change   func(*config.Cluster, *site.Snapshot)
		upstream map[string]site.UpstreamRoute // nil: no observer
		n        int
		pending  []string
	}{
		{name: "the new site announces at the headroom", change: func(_ *config.Cluster, s *site.Snapshot) { s.Announced = announcing(2) }, n: 1},
		{name: "a takeover announces with none", change: func(_ *config.Cluster, s *site.Snapshot) { s.Announced = announcing(0) }, n: 1},
		{name: "still a standby", change: func(_ *config.Cluster, s *site.Snapshot) { s.Announced = announcing(3) }, n: 1,
			pending: []string{db + ": site c announces it with 3 prepends, as a standby"}},
		{name: "not announced yet", n: 1, pending: []string{db + ": site c does not announce it yet"}},
		{name: "the observer's best path leads there", upstream: map[string]site.UpstreamRoute{db: {Prefix: db, BestSite: "c"}}, n: 1},
		{name: "the observer's best path leads to the old site", change: func(_ *config.Cluster, s *site.Snapshot) { s.Announced = announcing(1) },
			upstream: map[string]site.UpstreamRoute{db: {Prefix: db, BestSite: "b"}}, n: 1,
			pending: []string{db + `: the observer's best path leads to "b"`}},
		{name: "a prefix the observer has no record of is judged by the site's report", upstream: map[string]site.UpstreamRoute{}, n: 1,
			pending: []string{db + ": site c does not announce it yet"}},
		{name: "a prefix the observer has no record of, announced", change: func(_ *config.Cluster, s *site.Snapshot) { s.Announced = announcing(2) },
			upstream: map[string]site.UpstreamRoute{}, n: 1},
		{name: "a site without a BGP speaker announces nothing", change: func(c *config.Cluster, _ *site.Snapshot) { c.Sites[2].BGP = nil }},
		{name: "a service the op did not move", change: func(_ *config.Cluster, s *site.Snapshot) {
			s.Assignments["db"] = site.Assignment{Service: "db", Site: "a", Op: "op-2", Epoch: 9}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := prefixConfig()
			_, snap := movedState()
			if tt.change != nil {
				tt.change(cfg, snap)
			}
			n, pending := prefixesPending(cfg, snap, tt.upstream, "op-1", []string{"db", "report", "web"})
			if n != tt.n || !slices.Equal(pending, tt.pending) {
				t.Errorf("prefixesPending = %d, %q; want %d, %q", n, pending, tt.n, tt.pending)
			}
		})
	}
}

// TestDecidePassesWaitingOpsOver: an op that waits for the sites holds up
// neither another unfinished op nor the failover of a site that went dark
// meanwhile, and a dark site whose failover is open gets no second one.
func TestDecidePassesWaitingOpsOver(t *testing.T) {
	failoverOf := func(id, s string) *site.Op {
		return &site.Op{ID: id, Kind: KindFailover, Params: map[string]string{"site": s}, Outcome: site.OpRunning}
	}
	switchover := &site.Op{ID: "so-1", Kind: KindSwitchover, Params: map[string]string{"service": "web"}, Outcome: site.OpRunning}
	placement := &site.Op{ID: "pl-1", Kind: KindPlacement, Outcome: site.OpRunning}
	assigned := map[string]string{"web": "b", "db": "b", "mail": "c"}
	tests := []struct {
		name    string
		state   state
		waiting []string
		want    summary
	}{
		{name: "a failover that does not wait is resumed",
			state: state{up: []string{"b", "c"}, joined: []string{"a"}, fenced: []string{"a"}, assigned: assigned, ops: []*site.Op{failoverOf("fo-a", "a")}},
			want:  summary{resume: "fo-a"}},
		{name: "a waiting failover does not hold up the failover of another dark site",
			state:   state{up: []string{"c"}, joined: []string{"a", "b"}, fenced: []string{"a"}, assigned: assigned, ops: []*site.Op{failoverOf("fo-a", "a")}},
			waiting: []string{"fo-a"},
			want:    summary{kind: KindFailover, steps: []string{"fence b", "assign web from b", "assign db from b"}}},
		{name: "a dark site whose failover is open gets no second one",
			state:   state{up: []string{"b", "c"}, joined: []string{"a"}, assigned: assigned, ops: []*site.Op{failoverOf("fo-a", "a")}},
			waiting: []string{"fo-a"},
			want:    summary{}},
		{name: "a waiting switchover does not hold up the next op",
			state:   state{up: []string{"a", "b", "c"}, assigned: assigned, ops: []*site.Op{switchover, placement}},
			waiting: []string{"so-1"},
			want:    summary{resume: "pl-1"}},
		{name: "every op waits: nothing to do, and nothing new starts",
			state:   state{up: []string{"a", "b", "c"}, assigned: map[string]string{"web": "a"}, ops: []*site.Op{switchover, placement}},
			waiting: []string{"so-1", "pl-1"},
			want:    summary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waiting := map[string]bool{}
			for _, id := range tt.waiting {
				waiting[id] = true
			}
			d, err := decide(testConfig(), tt.state.snapshot(), "c", t0, t0, waiting, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarise(d); got.resume != tt.want.resume || got.kind != tt.want.kind || !slices.Equal(got.steps, tt.want.steps) {
				t.Errorf("decide = %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestGuestsLimit: an await-guests step waits its limit and 10 ms more per
// guest, unless its "within" sets the limit for all of them.
func TestGuestsLimit(t *testing.T) {
	for _, tt := range []struct {
		within bool
		n      int
		want   time.Duration
	}{
		{false, 0, 30 * time.Second},
		{false, 3200, 62 * time.Second},
		{true, 3200, 30 * time.Second},
	} {
		if got := guestsLimit(30*time.Second, tt.within, tt.n); got != tt.want {
			t.Errorf("guestsLimit(30s, within %t, %d guests) = %s; want %s", tt.within, tt.n, got, tt.want)
		}
	}
}

// TestSomeOf: a wait's detail names ten of what is pending and counts the
// rest.
func TestSomeOf(t *testing.T) {
	var pending []string
	for i := range 12 {
		pending = append(pending, fmt.Sprintf("g%d", i))
	}
	if got, want := someOf(pending[:10]), "g0; g1; g2; g3; g4; g5; g6; g7; g8; g9"; got != want {
		t.Errorf("someOf(10) = %q; want %q", got, want)
	}
	if got, want := someOf(pending), "g0; g1; g2; g3; g4; g5; g6; g7; g8; g9; and 2 more"; got != want {
		t.Errorf("someOf(12) = %q; want %q", got, want)
	}
}
