package failover

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testConfig() *config.Cluster {
	return &config.Cluster{
		Name:    "test",
		Timings: config.Timings{BootstrapGrace: 10 * time.Second},
		Sites:   []config.Site{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Services: []config.Service{
			{Name: "web", Sites: []string{"a", "b", "c"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/26")}},
			{Name: "db", Sites: []string{"b", "c", "a"}},
			{Name: "mail", Sites: []string{"a", "c"}},
		},
	}
}

// state builds a snapshot: up sites hold a lease, every listed site has
// joined, fenced sites have a fence, assigned maps service to site.
type state struct {
	up, joined, fenced []string
	assigned           map[string]string
	ops                []*site.Op
}

func (s state) snapshot() *site.Snapshot {
	snap := &site.Snapshot{
		Alive: map[string]site.Alive{}, Registered: map[string]site.Registration{},
		Fences: map[string]site.Fence{}, Assignments: map[string]site.Assignment{}, Ops: s.ops,
	}
	for _, n := range append(append([]string{}, s.up...), s.joined...) {
		snap.Registered[n] = site.Registration{Site: n}
	}
	for _, n := range s.up {
		snap.Alive[n] = site.Alive{Site: n}
	}
	for _, n := range s.fenced {
		snap.Fences[n] = site.Fence{Site: n}
	}
	for svc, n := range s.assigned {
		snap.Assignments[svc] = site.Assignment{Service: svc, Site: n, Epoch: 7}
	}
	return snap
}

// summary is a Decision reduced to what a table can state.
type summary struct {
	resume string
	kind   string
	steps  []string // "fence a", "assign web from a", "assign db to b"
}

func summarise(d Decision) summary {
	var s summary
	if d.Resume != nil {
		s.resume = d.Resume.ID
	}
	if op := d.Start; op != nil {
		s.kind = op.Kind
		for _, st := range op.Steps {
			switch st.Name {
			case StepFence:
				s.steps = append(s.steps, "fence "+st.Params["site"])
			case StepAssign:
				line := "assign " + st.Params["service"]
				if st.Params["from"] != "" {
					line += " from " + st.Params["from"]
				}
				if st.Params["to"] != "" {
					line += " to " + st.Params["to"]
				}
				s.steps = append(s.steps, line)
			}
		}
	}
	return s
}

func TestDecide(t *testing.T) {
	all := map[string]string{"web": "a", "db": "b", "mail": "a"}
	running := &site.Op{ID: "op-1", Outcome: site.OpRunning}
	tests := []struct {
		name    string
		state   state
		elapsed time.Duration // since this coordinator was elected
		want    summary
	}{
		{
			name:  "all up and assigned: nothing to do",
			state: state{up: []string{"a", "b", "c"}, assigned: all},
		},
		{
			name:  "an unfinished op is resumed before anything else",
			state: state{up: []string{"b", "c"}, joined: []string{"a"}, assigned: all, ops: []*site.Op{{ID: "op-0", Outcome: site.OpSucceeded}, running}},
			want:  summary{resume: "op-1"},
		},
		{
			name: "a dark site's failover goes before a planned op",
			state: state{up: []string{"b", "c"}, joined: []string{"a"}, assigned: all,
				ops: []*site.Op{{ID: "op-sw", Kind: KindSwitchover, Outcome: site.OpRunning}}},
			want: summary{kind: KindFailover, steps: []string{"fence a", "assign web from a", "assign mail from a"}},
		},
		{
			name: "a failover is resumed before an older planned op",
			state: state{up: []string{"b", "c"}, joined: []string{"a"}, fenced: []string{"a"}, assigned: all,
				ops: []*site.Op{{ID: "op-sw", Kind: KindSwitchover, Outcome: site.OpRunning}, {ID: "op-fo", Kind: KindFailover, Outcome: site.OpRunning}}},
			want: summary{resume: "op-fo"},
		},
		{
			name: "a planned op is resumed when no site is dark",
			state: state{up: []string{"a", "b", "c"}, assigned: all,
				ops: []*site.Op{{ID: "op-sw", Kind: KindSwitchover, Outcome: site.OpRunning}}},
			want: summary{resume: "op-sw"},
		},
		{
			name:  "a dark site is fenced and every service it serves moves",
			state: state{up: []string{"b", "c"}, joined: []string{"a"}, assigned: all},
			want:  summary{kind: KindFailover, steps: []string{"fence a", "assign web from a", "assign mail from a"}},
		},
		{
			name:  "a dark site that serves nothing is still fenced",
			state: state{up: []string{"a", "b"}, joined: []string{"c"}, assigned: all},
			want:  summary{kind: KindFailover, steps: []string{"fence c"}},
		},
		{
			name:  "a site that never joined is not failed over",
			state: state{up: []string{"a", "b"}, assigned: all},
		},
		{
			name:  "a fenced site is not failed over again",
			state: state{up: []string{"b", "c"}, joined: []string{"a"}, fenced: []string{"a"}, assigned: map[string]string{"web": "b", "db": "b", "mail": "c"}},
		},
		{
			name:  "a fenced site that came back holds a lease but stays out",
			state: state{up: []string{"a", "b", "c"}, fenced: []string{"a"}, assigned: map[string]string{"web": "b", "db": "b", "mail": "c"}},
		},
		{
			name:  "two dark sites: the first in config order goes first",
			state: state{up: []string{"a"}, joined: []string{"b", "c"}, assigned: all},
			want:  summary{kind: KindFailover, steps: []string{"fence b", "assign db from b"}},
		},
		{
			name:  "bootstrap: each service to its preferred site when it is up",
			state: state{up: []string{"a", "b", "c"}},
			want:  summary{kind: KindBootstrap, steps: []string{"assign web to a", "assign db to b", "assign mail to a"}},
		},
		{
			name:  "bootstrap waits for a preferred site within the grace",
			state: state{up: []string{"b", "c"}},
			want:  summary{kind: KindBootstrap, steps: []string{"assign db to b"}},
		},
		{
			name:    "bootstrap after the grace takes the first site that is up",
			state:   state{up: []string{"b", "c"}},
			elapsed: 10 * time.Second,
			want:    summary{kind: KindBootstrap, steps: []string{"assign web to b", "assign db to b", "assign mail to c"}},
		},
		{
			name:    "bootstrap skips fenced sites",
			state:   state{up: []string{"a", "b", "c"}, fenced: []string{"a"}},
			elapsed: 10 * time.Second,
			want:    summary{kind: KindBootstrap, steps: []string{"assign web to b", "assign db to b", "assign mail to c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(testConfig(), tt.state.snapshot(), "b", t0.Add(tt.elapsed), t0)
			if err != nil {
				t.Fatal(err)
			}
			got := summarise(d)
			if got.resume != tt.want.resume || got.kind != tt.want.kind || !slices.Equal(got.steps, tt.want.steps) {
				t.Errorf("Decide:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestChooseSite(t *testing.T) {
	svc := config.Service{Name: "web", Sites: []string{"a", "b", "c", "d", "e"}}
	tests := []struct {
		name    string
		state   state
		exclude string
		want    string
		why     string
	}{
		{name: "first up in order", state: state{up: []string{"b", "c", "d", "e"}, joined: []string{"a"}}, exclude: "a", want: "b"},
		{name: "skips fenced and dark", state: state{up: []string{"c", "d", "e"}, joined: []string{"a", "b"}, fenced: []string{"c"}}, exclude: "a", want: "d"},
		{name: "five sites, only the last up", state: state{up: []string{"e"}, joined: []string{"a", "b", "c", "d"}}, exclude: "a", want: "e"},
		{
			name:    "none can serve: says why for each site",
			state:   state{up: []string{"a", "c"}, joined: []string{"b", "d", "e"}, fenced: []string{"c"}},
			exclude: "a",
			why:     "no site can serve service web: a is being failed over, b is dark, c is fenced, d is dark, e is dark",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := ChooseSite(svc, tt.state.snapshot(), tt.exclude)
			if got != tt.want || why != tt.why {
				t.Errorf("ChooseSite = %q, %q; want %q, %q", got, why, tt.want, tt.why)
			}
		})
	}
}

// TestIsQuiet: a coordinator is quiet, its timer's passes spared, only when
// what it would decide depends on the state alone.
func TestIsQuiet(t *testing.T) {
	all := map[string]string{"web": "a", "db": "b", "mail": "a"}
	running := &site.Op{ID: "op-1", Kind: KindSwitchover, Outcome: site.OpRunning}
	done := &site.Op{ID: "op-0", Kind: KindFailover, Outcome: site.OpSucceeded}
	tests := []struct {
		name    string
		st      state
		leading time.Duration // how long the coordinator has led
		want    bool
	}{
		{"every site up, every service assigned, only finished ops", state{up: []string{"a", "b", "c"}, assigned: all, ops: []*site.Op{done}}, time.Minute, true},
		{"a site fenced, its services moved", state{up: []string{"a", "b"}, fenced: []string{"c"}, assigned: all}, time.Minute, true},
		{"within the bootstrap grace", state{up: []string{"a", "b", "c"}, assigned: all}, 9 * time.Second, false},
		{"an op unfinished", state{up: []string{"a", "b", "c"}, assigned: all, ops: []*site.Op{done, running}}, time.Minute, false},
		{"a site dark, not fenced yet", state{up: []string{"a", "b"}, joined: []string{"c"}, assigned: all}, time.Minute, false},
		{"a service stranded at a fenced site", state{up: []string{"b", "c"}, fenced: []string{"a"}, assigned: all}, time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isQuiet(testConfig(), tt.st.snapshot(), t0.Add(tt.leading), t0); got != tt.want {
				t.Errorf("quiet %t, want %t", got, tt.want)
			}
		})
	}
}

// TestTimerPassDue: the timer calls for a pass at every tick unless the
// coordinator is quiet, and then every quietPasses renew intervals.
func TestTimerPassDue(t *testing.T) {
	const renew = 500 * time.Millisecond
	tests := []struct {
		quiet     bool
		sinceLast time.Duration
		want      bool
	}{
		{false, renew, true},
		{true, renew, false},
		{true, (quietPasses - 1) * renew, false},
		{true, quietPasses * renew, true},
	}
	for _, tt := range tests {
		if got := timerPassDue(tt.quiet, tt.sinceLast, renew); got != tt.want {
			t.Errorf("quiet %t, %s since the last pass: due %t, want %t", tt.quiet, tt.sinceLast, got, tt.want)
		}
	}
}
