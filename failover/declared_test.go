package failover

import (
	"slices"
	"testing"

	"github.com/zdt-project/zdt/site"
)

func TestPlanDeclaredFailover(t *testing.T) {
	all := map[string]string{"web": "a", "db": "b", "mail": "a"}
	tests := []struct {
		name  string
		state state
		site  string
		steps []string
		why   []string
	}{
		{
			name:  "an up site: declare, wait for its own fence, then take it over",
			state: state{up: []string{"a", "b", "c"}, assigned: all},
			site:  "a",
			steps: []string{"declare a", "await-self-fence a", "fence-resources a", "assign web", "assign mail", "await-prefixes "},
		},
		{
			name:  "a fenced site",
			state: state{up: []string{"a", "b", "c"}, fenced: []string{"b"}, assigned: all},
			site:  "b",
			why:   []string{"site b is fenced already (by op ): there is nothing to fail over"},
		},
		{
			name:  "an unknown site",
			state: state{up: []string{"a", "b", "c"}, assigned: all},
			site:  "x",
			why:   []string{`site "x" is not in the config (sites: a, b, c)`},
		},
		{
			name: "an op for it runs",
			state: state{up: []string{"a", "b", "c"}, assigned: all, ops: []*site.Op{
				{ID: "op-1", Kind: "failback", Who: "operator:ann", Params: map[string]string{"site": "c"}, Outcome: site.OpRunning},
			}},
			site: "c",
			why:  []string{"op op-1 (failback, by operator:ann) is running for site c: wait for it or abort it (zdt ops abort op-1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, why := PlanDeclaredFailover(testConfig(), tt.state.snapshot(), tt.site, "operator:test", "broken", t0)
			if !slices.Equal(why, tt.why) {
				t.Fatalf("reasons %q; want %q", why, tt.why)
			}
			if tt.why != nil {
				if op != nil {
					t.Errorf("op %+v with reasons", op)
				}
				return
			}
			var steps []string
			for _, st := range op.Steps {
				steps = append(steps, st.Name+" "+st.Params["site"]+st.Params["service"])
			}
			if !slices.Equal(steps, tt.steps) {
				t.Errorf("steps %q; want %q", steps, tt.steps)
			}
			if op.Kind != KindFailover || op.Params["declared"] != "true" || op.Params["reason"] != "broken" || op.Who != "operator:test" {
				t.Errorf("op %s %v by %s", op.Kind, op.Params, op.Who)
			}
		})
	}
}
