package bgp

import (
	"maps"
	"strings"
	"testing"
)

// TestMovePhases walks planned moves through their phases. At every phase
// at least one site announces; the old site keeps the headroom (never
// withdrawn, never raised) until the new site's path is in place; and the
// best path (fewest prepends, ties broken by the service's order) leads to
// the old site until the new site's path is confirmed, then to the new one.
func TestMovePhases(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		order    []string
		from, to string
		fenced   []string
		// levels before the move (from assigned), in prepare, announce and
		// release, and after the move (to assigned)
		levels [5]string
	}{
		{
			name: "three sites a to b", cfg: hs(1, 1), order: three, from: "a", to: "b",
			levels: [5]string{
				"a=1 b=2 c=3", // a assigned
				"a=1 b=2 c=3", // prepare: nothing moves while b is made ready
				"a=1 b=0 c=3", // announce: b beats a, a keeps the headroom
				"a=2 b=0 c=3", // release: b's path is in place, a goes up to its rank
				"a=2 b=1 c=3", // b assigned, back at the headroom
			},
		},
		{
			name: "three sites c to a, headroom 2 step 2", cfg: hs(2, 2), order: three, from: "c", to: "a",
			levels: [5]string{"a=4 b=6 c=2", "a=4 b=6 c=2", "a=1 b=6 c=2", "a=1 b=4 c=6", "a=2 b=4 c=6"},
		},
		{
			name: "three sites b to c, a fenced", cfg: hs(1, 1), order: three, from: "b", to: "c", fenced: []string{"a"},
			levels: [5]string{"a=- b=1 c=2", "a=- b=1 c=2", "a=- b=1 c=0", "a=- b=2 c=0", "a=- b=2 c=1"},
		},
		{
			name: "five sites b to d", cfg: hs(1, 1), order: five, from: "b", to: "d",
			levels: [5]string{
				"a=2 b=1 c=3 d=4 e=5",
				"a=2 b=1 c=3 d=4 e=5",
				"a=2 b=1 c=3 d=0 e=5",
				"a=2 b=3 c=4 d=0 e=5", // standbys ranked behind d now
				"a=2 b=3 c=4 d=1 e=5",
			},
		},
		{
			name: "five sites e to a, c fenced, headroom 2", cfg: hs(2, 1), order: five, from: "e", to: "a", fenced: []string{"c"},
			levels: [5]string{
				"a=3 b=4 c=- d=5 e=2",
				"a=3 b=4 c=- d=5 e=2",
				"a=1 b=4 c=- d=5 e=2",
				"a=1 b=3 c=- d=4 e=5",
				"a=2 b=3 c=- d=4 e=5",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inputs := [5]Input{service(tc.order, tc.from)}
			for i, phase := range []MovePhase{MovePrepare, MoveAnnounce, MoveRelease} {
				in := service(tc.order, tc.to)
				in.Move = &Move{From: tc.from, Phase: phase}
				inputs[i+1] = in
			}
			inputs[4] = service(tc.order, tc.to)
			var prepare map[string]Decision
			for i, in := range inputs {
				in.Fenced = fenced(tc.fenced...)
				ds := decideAll(t, tc.cfg, in)
				if got := render(tc.order, ds); got != tc.levels[i] {
					t.Errorf("%s: got %s, want %s", describe(in), got, tc.levels[i])
				}
				b, ok := best(livePaths(ds), tc.order)
				if !ok {
					t.Fatalf("%s: no site announces", describe(in))
				}
				want := tc.to
				if i <= 1 {
					want = tc.from
				}
				if b.site != want {
					t.Errorf("%s: best path to %s, want %s", describe(in), b.site, want)
				}
				if m := in.Move; m != nil && m.Phase < MoveRelease {
					if d := ds[tc.from]; d.Announcement != Announced(tc.cfg.Headroom) || d.Cause != CauseMoveHold {
						t.Errorf("%s: old site %s: %s, want the headroom (move-hold)", describe(in), tc.from, d)
					}
				}
				if m := in.Move; m != nil {
					for _, s := range []string{tc.from, tc.to} {
						if !strings.Contains(ds[s].Reason, "planned move") || !strings.Contains(ds[s].Reason, m.Phase.String()) {
							t.Errorf("%s: reason at %s does not give the move and its phase: %q", describe(in), s, ds[s].Reason)
						}
					}
				}
				switch i {
				case 1:
					prepare = ds
				case 2:
					// Until the new site's path is confirmed at the upstream, the
					// upstream may still hold the new site's previous path: the
					// best path is the old site's then.
					unconfirmed := maps.Clone(ds)
					unconfirmed[tc.to] = prepare[tc.to]
					if b, _ := best(livePaths(unconfirmed), tc.order); b.site != tc.from {
						t.Errorf("%s: before %s's path arrives the best path is to %s, want %s", describe(in), tc.to, b.site, tc.from)
					}
					if d := ds[tc.to]; d.Cause != CauseMoveIn {
						t.Errorf("%s: new site %s: cause %s, want move-in", describe(in), tc.to, d.Cause)
					}
				}
			}
		})
	}
}

// TestMoveToFencedSite: if the new site is fenced, the old site keeps the
// headroom whatever the phase says, so the service keeps its path.
func TestMoveToFencedSite(t *testing.T) {
	for _, order := range [][]string{three, five} {
		for _, phase := range []MovePhase{MovePrepare, MoveAnnounce, MoveRelease} {
			in := service(order, "b")
			in.Fenced = fenced("b")
			in.Move = &Move{From: "a", Phase: phase}
			ds := decideAll(t, hs(1, 1), in)
			if d := ds["a"]; d.Cause != CauseMoveHold || d.Announcement != Announced(1) {
				t.Errorf("%d sites, %s: old site a: %s, want the headroom (move-hold)", len(order), phase, d)
			}
			if phase == MoveRelease && !strings.Contains(ds["a"].Reason, "b is fenced") {
				t.Errorf("reason %q does not say b is fenced", ds["a"].Reason)
			}
			if d := ds["b"]; d.Announce || d.Cause != CauseFenced {
				t.Errorf("%d sites, %s: fenced new site b: %s, want withdrawn", len(order), phase, d)
			}
			if b, _ := best(livePaths(ds), order); b.site != "a" {
				t.Errorf("%d sites, %s: best path to %s, want a", len(order), phase, b.site)
			}
		}
	}
}
