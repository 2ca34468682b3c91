package failover

import (
	"slices"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
)

func TestPlanEvacuate(t *testing.T) {
	steps := func(op *site.Op) []string {
		var out []string
		for _, st := range op.Steps {
			subject := st.Params["service"] + st.Params["group"]
			if subject == "" {
				subject = st.Params["services"] + st.Params["site"]
			}
			if st.Params["to"] != "" {
				subject += " " + st.Params["from"] + ">" + st.Params["to"]
			}
			out = append(out, st.Name+" "+subject)
		}
		return out
	}
	tests := []struct {
		name   string
		site   string
		change func(*site.Snapshot)
		steps  []string
		want   []string // substrings, one per blocker
	}{
		{
			name: "a site with a group's services: they go together to the next site",
			site: "b",
			steps: []string{"drain b", "check-switchover db,report b>c", "assign db b>c", "assign report b>c",
				"await-primary pg b>c", "place b", "move-prefixes db,report", "await-followers pg"},
		},
		{
			name:  "a site with a service without a group",
			site:  "a",
			steps: []string{"drain a", "check-switchover web a>b", "assign web a>b", "place a", "move-prefixes web"},
		},
		{
			name:   "a drained site is no target while another will do",
			site:   "a",
			change: func(s *site.Snapshot) { s.Drains = map[string]site.Drain{"b": {Site: "b"}} },
			steps:  []string{"drain a", "check-switchover web a>c", "assign web a>c", "place a", "move-prefixes web"},
		},
		{
			name:   "a site that holds nothing is drained all the same",
			site:   "c",
			change: func(s *site.Snapshot) { s.Assignments["mail"] = site.Assignment{Service: "mail", Site: "a", Epoch: 7} },
			steps:  []string{"drain c", "place c"},
		},
		{name: "unknown site", site: "x", want: []string{`site "x" is not in the config`}},
		{name: "a dark site is failed over", site: "b", change: func(s *site.Snapshot) { delete(s.Alive, "b") },
			want: []string{"site b is dark: only a site that is up is evacuated"}},
		{name: "no site can take a service", site: "c", want: []string{"no site can take service mail: a is dark; c is being left"}, change: func(s *site.Snapshot) {
			delete(s.Alive, "a")
		}},
		{name: "the target's standby lags", site: "b", change: func(s *site.Snapshot) {
			rep := s.Replication["c"]
			rep.Members[0].LagBytes = 1 << 40
			s.Replication["c"] = rep
		}, want: []string{"no site can take service db: b is being left; c: its member of group pg may not be promoted"}},
		{name: "another op on the site", site: "b", change: func(s *site.Snapshot) {
			s.Ops = []*site.Op{{ID: "op-9", Kind: "switchover", Who: "operator:bob", Outcome: site.OpRunning, Params: map[string]string{"from": "b", "to": "c", "services": "db,report"}}}
		}, want: []string{"op op-9 (switchover, by operator:bob) is still running for site b", "op op-9 (switchover, by operator:bob) is still running for service db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, snap := switchoverState()
			if tt.change != nil {
				tt.change(snap)
			}
			op, why := PlanEvacuate(cfg, snap, tt.site, "operator:ann", "power work", 0, t0)
			wantBlockers(t, "PlanEvacuate", why, tt.want)
			if len(why) > 0 {
				return
			}
			if got := steps(op); !slices.Equal(got, tt.steps) {
				t.Errorf("steps %q; want %q", got, tt.steps)
			}
			if op.Kind != KindEvacuate || op.Params["site"] != tt.site || op.Steps[0].Params["reason"] != "power work" {
				t.Errorf("op %+v", op)
			}
		})
	}
}

func TestPlanUndrain(t *testing.T) {
	cfg, snap := switchoverState()
	if op, why := PlanUndrain(cfg, snap, "b", "operator:ann", t0); op != nil || len(why) != 1 || !strings.Contains(why[0], "site b is not drained") {
		t.Fatalf("undrain of a site that is not drained: %v, %q", op, why)
	}
	snap.Drains = map[string]site.Drain{"b": {Site: "b", Op: "op-1"}}
	op, why := PlanUndrain(cfg, snap, "b", "operator:ann", t0)
	if len(why) > 0 || op.Kind != KindUndrain || len(op.Steps) != 1 || op.Steps[0].Name != StepUndrain {
		t.Fatalf("undrain: %+v, %q", op, why)
	}
}

// TestDrainedSiteChosenLast: a first assignment and a failover pick a
// drained site only when no other site will do.
func TestDrainedSiteChosenLast(t *testing.T) {
	cfg, snap := switchoverState()
	snap.Drains = map[string]site.Drain{"a": {Site: "a"}}
	web, _ := cfg.Service("web") // sites a, b, c
	if to, why := ChooseSite(web, snap, ""); to != "b" {
		t.Errorf("ChooseSite with a drained = %q (%s), want b", to, why)
	}
	delete(snap.Alive, "b")
	delete(snap.Alive, "c")
	if to, why := ChooseSite(web, snap, ""); to != "a" {
		t.Errorf("ChooseSite with only the drained a up = %q (%s), want a", to, why)
	}
	cfg, snap = switchoverState()
	snap.Drains = map[string]site.Drain{"c": {Site: "c"}}
	db, _ := cfg.Service("db") // sites b, c, a; at b
	if to, why := ChooseTarget(cfg, db, snap, "b"); to != "a" {
		t.Errorf("ChooseTarget from b with c drained = %q (%s), want a", to, why)
	}
	delete(snap.Alive, "a")
	if to, why := ChooseTarget(cfg, db, snap, "b"); to != "c" {
		t.Errorf("ChooseTarget from b with a dark and c drained = %q (%s), want c", to, why)
	}
}
