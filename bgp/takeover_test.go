package bgp

import (
	"strings"
	"testing"
	"time"
)

const holdTime = 90 * time.Second

// takeover is the input right after the coordinator fenced dark site from
// and assigned the service to active, with a takeover started at t0.
func takeover(order []string, from, active string, now time.Time, gone bool) Input {
	in := service(order, active)
	in.Epoch = 8
	in.Fenced = fenced(from)
	in.Takeover = &Takeover{From: from, Started: t0, HoldTime: holdTime, PathGone: gone}
	in.Now = now
	return in
}

func TestTakeover(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		in          Input
		want        string
		activeCause Cause
		recheck     time.Time // of the active site's decision
		stale       int       // the dark site's stale path, in prepends; -1: gone
	}{
		{
			name: "three sites, stale path held: b at 0 beats a's headroom",
			cfg:  hs(1, 1), in: takeover(three, "a", "b", t0.Add(time.Second), false),
			want: "a=- b=0 c=2", activeCause: CauseTakeover, recheck: t0.Add(holdTime), stale: 1,
		},
		{
			name: "three sites, just before the hold time ends",
			cfg:  hs(1, 1), in: takeover(three, "a", "b", t0.Add(holdTime-time.Nanosecond), false),
			want: "a=- b=0 c=2", activeCause: CauseTakeover, recheck: t0.Add(holdTime), stale: 1,
		},
		{
			name: "three sites, the observer reports a's path gone: back to the headroom",
			cfg:  hs(1, 1), in: takeover(three, "a", "b", t0.Add(5*time.Second), true),
			want: "a=- b=1 c=2", activeCause: CauseActive, stale: -1,
		},
		{
			name: "three sites, the hold time has passed: back to the headroom",
			cfg:  hs(1, 1), in: takeover(three, "a", "b", t0.Add(holdTime), false),
			want: "a=- b=1 c=2", activeCause: CauseActive, stale: -1,
		},
		{
			name: "three sites, dark a not fenced yet still counts as a standby",
			cfg:  hs(1, 1), in: func() Input { in := takeover(three, "a", "c", t0, false); in.Fenced = nil; return in }(),
			want: "a=2 b=3 c=0", activeCause: CauseTakeover, recheck: t0.Add(holdTime), stale: 1,
		},
		{
			name: "three sites, headroom 3: takeover still at 0",
			cfg:  hs(3, 2), in: takeover(three, "b", "c", t0.Add(time.Second), false),
			want: "a=5 b=- c=0", activeCause: CauseTakeover, recheck: t0.Add(holdTime), stale: 3,
		},
		{
			name: "five sites, stale path held: c at 0",
			cfg:  hs(1, 1), in: takeover(five, "a", "c", t0.Add(time.Second), false),
			want: "a=- b=2 c=0 d=3 e=4", activeCause: CauseTakeover, recheck: t0.Add(holdTime), stale: 1,
		},
		{
			name: "five sites, gone: c back to 1",
			cfg:  hs(1, 1), in: takeover(five, "a", "c", t0.Add(time.Second), true),
			want: "a=- b=2 c=1 d=3 e=4", activeCause: CauseActive, stale: -1,
		},
		{
			name: "five sites, hold time passed, step 2",
			cfg:  hs(1, 2), in: takeover(five, "e", "b", t0.Add(2*holdTime), false),
			want: "a=3 b=1 c=5 d=7 e=-", activeCause: CauseActive, stale: -1,
		},
		{
			name: "five sites, a second dark site fenced too",
			cfg:  hs(2, 2), in: func() Input { in := takeover(five, "b", "d", t0, false); in.Fenced["a"] = true; return in }(),
			want: "a=- b=- c=4 d=0 e=6", activeCause: CauseTakeover, recheck: t0.Add(holdTime), stale: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := decideAll(t, tc.cfg, tc.in)
			if got := render(tc.in.Order, ds); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			d := ds[tc.in.Active]
			if d.Cause != tc.activeCause || !d.Recheck.Equal(tc.recheck) {
				t.Errorf("active %s: cause %s, recheck %v; want %s, %v (%s)", tc.in.Active, d.Cause, d.Recheck, tc.activeCause, tc.recheck, d.Reason)
			}
			from := tc.in.Takeover.From
			if !(strings.Contains(d.Reason, "from dark site "+from) || strings.Contains(d.Reason, "takeover from "+from)) || !strings.Contains(d.Reason, "epoch 8") {
				t.Errorf("active reason %q does not name the dark site and the epoch", d.Reason)
			}
			// The upstream holds the dark site's stale path until it is gone; the
			// assigned site must win anyway, on a tie-break that favours the
			// stale path.
			var stale []path
			if tc.stale >= 0 {
				stale = append(stale, path{site: tc.in.Takeover.From, prepends: tc.stale, stale: true})
			}
			ps := append(livePaths(ds), stale...)
			if b, ok := best(ps, tc.in.Order); !ok || b.site != tc.in.Active {
				t.Errorf("upstream best path %+v among %+v, want one to %s", b, ps, tc.in.Active)
			}
		})
	}
}

// TestTakeoverBeatsEveryStalePath proves the ladder: whatever state a site
// was in when it went dark (active, standby, either end of a planned move in
// any phase, any sites fenced), the site that takes the service over
// announces a path strictly shorter than the stale path the dark site left,
// so the upstream prefers it at once on any tie-break. The one exception is
// documented in the package doc and pinned here: with headroom 1 the new
// site of a planned move beats the old one at 0, which a takeover can only
// tie; headroom 2 and more have no exception.
func TestTakeoverBeatsEveryStalePath(t *testing.T) {
	for _, order := range [][]string{three, five} {
		for h := 1; h <= 3; h++ {
			for s := 1; s <= 3; s++ {
				cfg := Config{Headroom: h, Step: s}
				cfg.MaxPrepends = cfg.TopPrepends(len(order))
				states := allStates(order)
				exceptions := 0
				for _, st := range states {
					ds := decideAll(t, cfg, st)
					checkNoTies(t, st, ds)
					for dark, last := range ds {
						if !last.Announce {
							continue
						}
						if !beatsStale(t, cfg, st, dark, last) {
							exceptions++
						}
					}
				}
				if h >= 2 && exceptions > 0 {
					t.Errorf("%d sites, headroom %d, step %d: %d stale paths a takeover does not beat", len(order), h, s, exceptions)
				}
				if h == 1 && exceptions == 0 {
					t.Errorf("%d sites, headroom 1, step %d: no move-in exception found; update the package doc", len(order), s)
				}
			}
		}
	}
}

// beatsStale takes the service over from dark, which left last at the
// upstream, by every other site that may, and checks that the new active
// path is strictly shorter than the stale one. It returns false for the
// documented exception (headroom 1, a move-in path at 0), after checking
// that it is that exception.
func beatsStale(t *testing.T, cfg Config, st Input, dark string, last Decision) bool {
	t.Helper()
	beaten := true
	for _, next := range st.Order {
		if next == dark || st.Fenced[next] {
			continue
		}
		in := service(st.Order, next)
		in.Fenced = fenced(dark)
		for s := range st.Fenced {
			in.Fenced[s] = true
		}
		in.Takeover = &Takeover{From: dark, Started: t0, HoldTime: holdTime}
		in.Now = t0.Add(time.Second)
		d := decideAt(t, cfg, in, next)
		if d.Cause != CauseTakeover || d.Prepends != 0 {
			t.Fatalf("takeover by %s: %s, want 0 prepends (takeover)", next, d)
		}
		if d.Prepends < last.Prepends {
			continue
		}
		if cfg.Headroom == 1 && last.Cause == CauseMoveIn && last.Prepends == 0 {
			beaten = false
			continue
		}
		t.Errorf("state %s: dark %s left %s (%s); the takeover by %s announces %s and does not beat it",
			describe(st), dark, last.Announcement, last.Cause, next, d.Announcement)
	}
	return beaten
}

// allStates lists every state of a service over order that is not a
// takeover: every assigned site, every set of fenced sites but the assigned
// one, and no move or a planned move from every unfenced site in every
// phase.
func allStates(order []string) []Input {
	var out []Input
	for _, active := range order {
		others := without(order, active)
		for mask := 0; mask < 1<<len(others); mask++ {
			f := map[string]bool{}
			for i, s := range others {
				if mask&(1<<i) != 0 {
					f[s] = true
				}
			}
			in := service(order, active)
			in.Fenced = f
			out = append(out, in)
			for _, from := range others {
				if f[from] {
					continue
				}
				for p := MovePrepare; p <= MoveRelease; p++ {
					in := in
					in.Move = &Move{From: from, Phase: p}
					out = append(out, in)
				}
			}
		}
	}
	return out
}

// checkNoTies checks that no two sites announce the same number of
// prepends, and that the lowest is the site that must carry the best path.
func checkNoTies(t *testing.T, in Input, ds map[string]Decision) {
	t.Helper()
	seen := map[int]string{}
	for _, s := range in.Order {
		d := ds[s]
		if !d.Announce {
			continue
		}
		if o, ok := seen[d.Prepends]; ok {
			t.Errorf("state %s: %s and %s both announce %s", describe(in), o, s, d.Announcement)
		}
		seen[d.Prepends] = s
	}
	b, ok := best(livePaths(ds), in.Order)
	if want := carrier(in); !ok || b.site != want {
		t.Errorf("state %s: best path %+v (%s), want one to %s", describe(in), b, render(in.Order, ds), want)
	}
}

// carrier is the site that must carry the best path once every site has
// applied its decision: the assigned site, or the old site of a planned
// move until the new one is ready and announced.
func carrier(in Input) string {
	if m := in.Move; m != nil && m.Phase == MovePrepare {
		return m.From
	}
	return in.Active
}

func describe(in Input) string {
	var b strings.Builder
	b.WriteString("active " + in.Active)
	for _, s := range in.Order {
		if in.Fenced[s] {
			b.WriteString(", " + s + " fenced")
		}
	}
	if m := in.Move; m != nil {
		b.WriteString(", move from " + m.From + " " + m.Phase.String())
	}
	if tk := in.Takeover; tk != nil {
		b.WriteString(", takeover from " + tk.From)
	}
	return b.String()
}

func without(list []string, x string) []string {
	var out []string
	for _, s := range list {
		if s != x {
			out = append(out, s)
		}
	}
	return out
}
