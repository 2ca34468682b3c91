package bgp

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// path is one path to a service prefix at the simulated upstream router.
type path struct {
	site     string
	prepends int  // ours; GoBGP adds the local AS once more on eBGP export
	stale    bool // left by a dark site, held until its session times out
}

// asPathLen is the path's AS path length as the upstream sees it.
func (p path) asPathLen() int { return p.prepends + 1 }

// best is the upstream's choice among paths: the shortest AS path; on a
// tie, a stale path (routers prefer the oldest eBGP path, and a dark site's
// path is the oldest: the worst case for us); then the site that comes
// first in order. ok is false when there is no path at all.
func best(paths []path, order []string) (path, bool) {
	if len(paths) == 0 {
		return path{}, false
	}
	b := paths[0]
	for _, p := range paths[1:] {
		switch {
		case p.asPathLen() != b.asPathLen():
			if p.asPathLen() < b.asPathLen() {
				b = p
			}
		case p.stale != b.stale:
			if p.stale {
				b = p
			}
		case slices.Index(order, p.site) < slices.Index(order, b.site):
			b = p
		}
	}
	return b, true
}

// livePaths are the paths of the sites' decisions.
func livePaths(ds map[string]Decision) []path {
	var ps []path
	for s, d := range ds {
		if d.Announce {
			ps = append(ps, path{site: s, prepends: d.Prepends})
		}
	}
	return ps
}

// world simulates every site of one service and the upstream, for one
// prefix: each live site decides on the shared input with what it
// announces now, and the upstream receives the changes one site at a time,
// in any order. A dark site decides nothing; its last path stays at the
// upstream, stale, until its session's hold time has passed.
type world struct {
	t      *testing.T
	cfg    Config
	order  []string
	prefix netip.Prefix
	now    time.Time

	applied    map[string]Applied   // what each site announces
	darkSince  map[string]time.Time // sites gone dark, since when
	selfFenced map[string]bool
}

func newWorld(t *testing.T, cfg Config, order []string, prefix netip.Prefix) *world {
	return &world{t: t, cfg: cfg, order: order, prefix: prefix, now: t0,
		applied: map[string]Applied{}, darkSince: map[string]time.Time{}, selfFenced: map[string]bool{}}
}

// paths is what the upstream holds: the announced paths of the sites,
// those of dark sites stale until their hold time has passed.
func (w *world) paths(applied map[string]Applied) []path {
	var ps []path
	for _, s := range w.order {
		a := applied[s]
		since, dark := w.darkSince[s]
		if !a.Announce || (dark && !w.now.Before(since.Add(holdTime))) {
			continue
		}
		ps = append(ps, path{site: s, prepends: a.Prepends, stale: dark})
	}
	return ps
}

// step moves the clock to at, lets every live site decide on in and apply
// its decision, and checks invariant 2 of the design at every order in
// which the upstream may receive the changes and once it has them all. It
// returns the live sites' decisions.
func (w *world) step(at time.Time, in Input) map[string]Decision {
	w.t.Helper()
	w.now = at
	in.Now = at
	in.Prefixes = []netip.Prefix{w.prefix}
	before := w.best()
	ds := map[string]Decision{}
	var changed []string
	for _, s := range w.order {
		if _, dark := w.darkSince[s]; dark {
			continue
		}
		in := in
		in.Site = s
		in.SelfFenced = w.selfFenced[s]
		in.Current = map[netip.Prefix]Applied{}
		if a, ok := w.applied[s]; ok {
			in.Current[w.prefix] = a
		}
		out, err := Decide(w.cfg, in)
		if err != nil {
			w.t.Fatalf("%s: Decide at %s: %v", stamp(at), s, err)
		}
		ds[s] = out[0]
		if out[0].Announcement != w.applied[s].Announcement || w.applied[s].Since.IsZero() {
			changed = append(changed, s)
		}
	}
	// The upstream receives the changes one by one, in every order.
	permute(changed, func(arrival []string) {
		applied := maps.Clone(w.applied)
		for _, s := range arrival {
			applied[s] = Applied{Announcement: ds[s].Announcement, Since: at}
			w.checkPartial(in, before, applied, ds, arrival)
		}
	})
	for _, s := range changed {
		w.applied[s] = Applied{Announcement: ds[s].Announcement, Since: at}
	}
	w.checkConverged(in, ds)
	return ds
}

// checkPartial checks invariant 2 while the upstream has received only
// some changes: it has a path; its best path leads to the site that held it
// before the step or to the one that must carry it now (any site while the
// service comes up); and once the one that must carry it now has its path
// there, to that one.
func (w *world) checkPartial(in Input, before string, applied map[string]Applied, ds map[string]Decision, arrival []string) {
	w.t.Helper()
	b, ok := best(w.paths(applied), w.order)
	want := carrier(in)
	if _, dark := w.darkSince[want]; dark {
		want = "" // the coordinator has not acted on it yet
	}
	switch {
	case before == "":
		// The service comes up: nothing held it before.
	case !ok:
		w.t.Errorf("%s: %s: no path at the upstream after %v arrived", stamp(w.now), describe(in), arrival)
	case b.site != before && b.site != want:
		w.t.Errorf("%s: %s: after %v arrived the best path leads to %s, neither %s (before) nor %s (now): %s",
			stamp(w.now), describe(in), arrival, b.site, before, want, w.show(applied))
	}
	if want != "" && applied[want].Announcement == ds[want].Announcement && b.site != want {
		w.t.Errorf("%s: %s: %s's path has arrived but the best path leads to %s: %s",
			stamp(w.now), describe(in), want, b.site, w.show(applied))
	}
}

// checkConverged checks invariant 2 once the upstream has every change: the
// best path leads to the assigned site, or during a planned move to the old
// site until the new one is ready.
func (w *world) checkConverged(in Input, ds map[string]Decision) {
	w.t.Helper()
	b, ok := best(w.paths(w.applied), w.order)
	want := carrier(in)
	if _, dark := w.darkSince[want]; dark {
		return // a dark assigned site: the coordinator has not acted on it yet
	}
	if !ok || b.site != want {
		w.t.Errorf("%s: %s: best path %+v, want one to %s: %s", stamp(w.now), describe(in), b, want, w.show(w.applied))
	}
	if m := in.Move; m != nil && m.Phase < MoveRelease {
		if d := ds[m.From]; d.Announcement != Announced(w.cfg.Headroom) {
			w.t.Errorf("%s: %s: old site %s announces %s before the new site's path is in place, want the headroom", stamp(w.now), describe(in), m.From, d.Announcement)
		}
	}
}

// best is the site the upstream's best path leads to now.
func (w *world) best() string {
	b, _ := best(w.paths(w.applied), w.order)
	return b.site
}

// bestPath is the upstream's best path now.
func (w *world) bestPath() path {
	b, _ := best(w.paths(w.applied), w.order)
	return b
}

// dark makes site go dark: it decides nothing more, and its last path stays
// at the upstream until its hold time has passed.
func (w *world) dark(site string, at time.Time) { w.darkSince[site] = at }

func (w *world) show(applied map[string]Applied) string {
	var parts []string
	for _, p := range w.paths(applied) {
		s := fmt.Sprintf("%s=%d", p.site, p.prepends)
		if p.stale {
			s += "(stale)"
		}
		parts = append(parts, s)
	}
	return "upstream holds " + strings.Join(parts, " ")
}

// permute calls f with every ordering of list (once with an empty list).
func permute(list []string, f func([]string)) {
	var rec func(prefix, rest []string)
	rec = func(prefix, rest []string) {
		if len(rest) == 0 {
			f(prefix)
			return
		}
		for i := range rest {
			next := append(slices.Clone(prefix), rest[i])
			others := append(slices.Clone(rest[:i]), rest[i+1:]...)
			rec(next, others)
		}
	}
	rec(nil, list)
}

// TestUpstreamFollowsAssignment runs a service through a life at three and
// at five sites, for an IPv4 and an IPv6 prefix: steady state, a standby
// self-fences, the active site goes dark and another takes over while its
// stale path is held, the stale path times out, a planned move, and a
// fenced site. At every step the simulated upstream's best path must lead to
// the assigned site (or, during a planned move, to the old site until the
// new one's path is in place), at every order of arrival of the changes.
func TestUpstreamFollowsAssignment(t *testing.T) {
	for _, order := range [][]string{three, five} {
		for _, prefix := range []netip.Prefix{v4, v6} {
			for _, cfg := range []Config{
				{Headroom: 1, Step: 1, MaxPrepends: 10, MinChangeInterval: 30 * time.Second},
				{Headroom: 2, Step: 2, MaxPrepends: 10, MinChangeInterval: 30 * time.Second},
				{Headroom: 1, Step: 1, MaxPrepends: 10},
			} {
				name := fmt.Sprintf("%d sites %s headroom %d step %d interval %s", len(order), prefix, cfg.Headroom, cfg.Step, cfg.MinChangeInterval)
				t.Run(name, func(t *testing.T) { life(t, cfg, order, prefix) })
			}
		}
	}
}

func life(t *testing.T, cfg Config, order []string, prefix netip.Prefix) {
	w := newWorld(t, cfg, order, prefix)
	a, b, c := order[0], order[1], order[2]
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

	in := service(order, a)
	in.Epoch = 7
	w.step(sec(0), in)
	if w.best() != a {
		t.Fatalf("steady state: best path to %s, want %s", w.best(), a)
	}

	// A standby self-fences and comes back.
	w.selfFenced[c] = true
	ds := w.step(sec(10), in)
	if ds[c].Announce || !ds[c].Urgent {
		t.Errorf("self-fenced %s: %s, want an urgent withdrawal", c, ds[c])
	}
	w.selfFenced[c] = false
	ds = w.step(sec(15), in)
	if held := !ds[c].Announce && !ds[c].HoldUntil.IsZero(); held != (cfg.MinChangeInterval > 0) {
		t.Errorf("%s back 5s after its withdrawal: %s; it should be held by the flap guard if and only if there is one", c, ds[c])
	}
	w.step(sec(40), in)

	// The active site goes dark; the upstream holds its path. The coordinator
	// fences it and assigns the service to b, which takes over.
	w.dark(a, sec(60))
	w.step(sec(61), in)
	in = service(order, b)
	in.Epoch = 8
	in.Fenced = fenced(a)
	in.Takeover = &Takeover{From: a, Started: sec(65), HoldTime: holdTime}
	ds = w.step(sec(65), in)
	if ds[b].Prepends != 0 || !ds[b].Urgent {
		t.Errorf("takeover by %s: %s, want 0 prepends, urgent", b, ds[b])
	}
	if p := w.bestPath(); p.site != b {
		t.Errorf("takeover by %s: best path %+v", b, p)
	}
	stale := path{site: a, prepends: w.applied[a].Prepends, stale: true}
	if !slices.Contains(w.paths(w.applied), stale) {
		t.Fatalf("the upstream should still hold %s's stale path: %s", a, w.show(w.applied))
	}
	w.step(sec(100), in)

	// a's session times out at the upstream (hold time since it went dark);
	// the takeover's hold time ends a little later: b returns to the
	// headroom.
	w.step(sec(150), in)
	if slices.Contains(w.paths(w.applied), stale) {
		t.Fatalf("the upstream should have dropped %s's stale path: %s", a, w.show(w.applied))
	}
	ds = w.step(sec(155), in)
	if ds[b].Prepends != cfg.Headroom || ds[b].Cause != CauseActive {
		t.Errorf("after the hold time: %s, want the headroom", ds[b])
	}

	// A planned move from b to c.
	in = service(order, c)
	in.Epoch = 9
	in.Fenced = fenced(a)
	for _, phase := range []MovePhase{MovePrepare, MoveAnnounce, MoveRelease} {
		in.Move = &Move{From: b, Phase: phase}
		ds = w.step(sec(200+10*int(phase)), in)
		if want := carrier(in); w.best() != want {
			t.Errorf("move %s: best path to %s, want %s", phase, w.best(), want)
		}
	}
	if ds[b].Prepends <= cfg.Headroom {
		t.Errorf("move released: %s still at %s", b, ds[b].Announcement)
	}
	in.Move = nil
	ds = w.step(sec(235), in)
	if (cfg.MinChangeInterval > 0) != !ds[c].HoldUntil.IsZero() {
		t.Errorf("move over, 15s after %s's last change: %s; the return to the headroom waits for the flap guard (if any)", c, ds[c])
	}
	ds = w.step(sec(300), in)
	if ds[c].Prepends != cfg.Headroom {
		t.Errorf("move over: %s, want the headroom", ds[c])
	}

	// The old site is fenced (an evacuation): it withdraws at once.
	in.Fenced[b] = true
	ds = w.step(sec(301), in)
	if ds[b].Announce || !ds[b].Urgent {
		t.Errorf("fenced %s: %s, want an urgent withdrawal", b, ds[b])
	}
	if len(order) == 5 {
		// Two more standbys: d self-fences, e takes the service over in a
		// planned move while d is out.
		w.selfFenced[order[3]] = true
		w.step(sec(400), in)
		in = service(order, order[4])
		in.Epoch = 10
		in.Fenced = fenced(a, b)
		for _, phase := range []MovePhase{MovePrepare, MoveAnnounce, MoveRelease} {
			in.Move = &Move{From: c, Phase: phase}
			w.step(sec(400+10*int(phase)), in)
		}
		in.Move = nil
		w.step(sec(500), in)
		if w.best() != order[4] {
			t.Errorf("after the second move: best path to %s", w.best())
		}
	}
}
