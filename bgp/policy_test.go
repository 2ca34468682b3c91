package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

var (
	v4 = netip.MustParsePrefix("203.0.113.0/26")
	v6 = netip.MustParsePrefix("2001:db8:100::/48")

	three = []string{"a", "b", "c"}
	five  = []string{"a", "b", "c", "d", "e"}
)

// hs is a config with headroom h and step s, the default cap and no flap
// guard.
func hs(h, s int) Config { return Config{Headroom: h, Step: s, MaxPrepends: DefaultMaxPrepends} }

// service is the input of service web (an IPv4 and an IPv6 prefix) over
// order, assigned to active at epoch 7, seen at t0 by no site yet.
func service(order []string, active string) Input {
	return Input{
		Service: "web", Prefixes: []netip.Prefix{v4, v6}, Order: order,
		Active: active, Epoch: 7, Fenced: map[string]bool{}, Now: t0,
	}
}

// fenced returns a fence set.
func fenced(sites ...string) map[string]bool {
	f := map[string]bool{}
	for _, s := range sites {
		f[s] = true
	}
	return f
}

// decideAt returns site's decision for in: the one of its first prefix,
// after checking that every prefix got the same (it does when no prefix
// has a Current of its own).
func decideAt(t *testing.T, cfg Config, in Input, site string) Decision {
	t.Helper()
	in.Site = site
	ds, err := Decide(cfg, in)
	if err != nil {
		t.Fatalf("Decide at %s: %v", site, err)
	}
	if len(ds) != len(in.Prefixes) {
		t.Fatalf("Decide at %s: %d decisions for %d prefixes", site, len(ds), len(in.Prefixes))
	}
	for i, d := range ds {
		if d.Prefix != in.Prefixes[i] {
			t.Fatalf("Decide at %s: decision %d is for %s, want %s", site, i, d.Prefix, in.Prefixes[i])
		}
		if d.Reason == "" {
			t.Errorf("Decide at %s: %s has no reason", site, d.Prefix)
		}
		if d.Announce && (d.Prepends < 0 || d.Prepends > cfg.MaxPrepends) {
			t.Errorf("Decide at %s: %s with %d prepends, outside [0, %d]", site, d.Prefix, d.Prepends, cfg.MaxPrepends)
		}
		if _, ok := in.Current[d.Prefix]; !ok && (d.Announcement != ds[0].Announcement || d.Cause != ds[0].Cause) {
			t.Errorf("Decide at %s: %s got %s (%s), %s got %s (%s)", site, d.Prefix, d.Announcement, d.Cause, ds[0].Prefix, ds[0].Announcement, ds[0].Cause)
		}
	}
	return ds[0]
}

// decideAll returns every site's decision for in, by site; selfFenced sites
// see themselves self-fenced.
func decideAll(t *testing.T, cfg Config, in Input, selfFenced ...string) map[string]Decision {
	t.Helper()
	out := map[string]Decision{}
	for _, s := range in.Order {
		in := in
		in.SelfFenced = slices.Contains(selfFenced, s)
		out[s] = decideAt(t, cfg, in, s)
	}
	return out
}

// render writes decisions as "a=1 b=2 c=-" in order ("-": withdrawn).
func render(order []string, ds map[string]Decision) string {
	var parts []string
	for _, s := range order {
		d, ok := ds[s]
		switch {
		case !ok:
			parts = append(parts, s+"=?")
		case d.Announce:
			parts = append(parts, fmt.Sprintf("%s=%d", s, d.Prepends))
		default:
			parts = append(parts, s+"=-")
		}
	}
	return strings.Join(parts, " ")
}

func TestSteadyStateLadder(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		order      []string
		active     string
		fenced     []string
		selfFenced []string
		want       string
	}{
		{name: "three sites, active a", cfg: hs(1, 1), order: three, active: "a", want: "a=1 b=2 c=3"},
		{name: "three sites, active b: standbys by order, skipping b", cfg: hs(1, 1), order: three, active: "b", want: "a=2 b=1 c=3"},
		{name: "three sites, active c", cfg: hs(1, 1), order: three, active: "c", want: "a=2 b=3 c=1"},
		{name: "three sites, order c a b", cfg: hs(1, 1), order: []string{"c", "a", "b"}, active: "a", want: "c=2 a=1 b=3"},
		{name: "three sites, headroom 2 step 3", cfg: hs(2, 3), order: three, active: "b", want: "a=5 b=2 c=8"},
		{name: "five sites, active a", cfg: hs(1, 1), order: five, active: "a", want: "a=1 b=2 c=3 d=4 e=5"},
		{name: "five sites, active c", cfg: hs(1, 1), order: five, active: "c", want: "a=2 b=3 c=1 d=4 e=5"},
		{name: "five sites, headroom 2 step 2 fills the cap of 10", cfg: hs(2, 2), order: five, active: "e", want: "a=4 b=6 c=8 d=10 e=2"},

		{name: "three sites, fenced standby withdraws and leaves the ranks", cfg: hs(1, 1), order: three, active: "a", fenced: []string{"b"}, want: "a=1 b=- c=2"},
		{name: "three sites, fenced active withdraws", cfg: hs(1, 1), order: three, active: "a", fenced: []string{"a"}, want: "a=- b=2 c=3"},
		{name: "five sites, two fenced standbys", cfg: hs(1, 1), order: five, active: "b", fenced: []string{"a", "d"}, want: "a=- b=1 c=2 d=- e=3"},
		{name: "three sites, self-fenced standby withdraws, ranks unchanged", cfg: hs(1, 1), order: three, active: "a", selfFenced: []string{"b"}, want: "a=1 b=- c=3"},
		{name: "three sites, self-fenced active withdraws", cfg: hs(1, 1), order: three, active: "a", selfFenced: []string{"a"}, want: "a=- b=2 c=3"},
		{name: "five sites, self-fenced and fenced", cfg: hs(1, 1), order: five, active: "c", fenced: []string{"a"}, selfFenced: []string{"c", "e"}, want: "a=- b=2 c=- d=3 e=-"},

		{name: "three sites, unassigned: nobody announces", cfg: hs(1, 1), order: three, active: "", want: "a=- b=- c=-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := service(tc.order, tc.active)
			in.Fenced = fenced(tc.fenced...)
			got := render(tc.order, decideAll(t, tc.cfg, in, tc.selfFenced...))
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCauses(t *testing.T) {
	in := service(five, "b")
	in.Fenced = fenced("d")
	ds := decideAll(t, hs(1, 1), in, "e")
	want := map[string]Cause{"a": CauseStandby, "b": CauseActive, "c": CauseStandby, "d": CauseFenced, "e": CauseSelfFenced}
	for s, c := range want {
		if ds[s].Cause != c {
			t.Errorf("site %s: cause %s, want %s (%s)", s, ds[s].Cause, c, ds[s].Reason)
		}
	}
	for _, want := range []string{"epoch 7", "headroom", "service web"} {
		if !strings.Contains(ds["b"].Reason, want) {
			t.Errorf("active reason %q does not mention %q", ds["b"].Reason, want)
		}
	}
	if !strings.Contains(ds["c"].Reason, "standby rank 2 behind b") {
		t.Errorf("standby reason %q does not give its rank", ds["c"].Reason)
	}

	out := decideAt(t, hs(1, 1), in, "z")
	if out.Announce || out.Cause != CauseNotServing {
		t.Errorf("site z, not among the service's sites: %s, want withdrawn (not-serving)", out)
	}
	un := decideAt(t, hs(1, 1), service(three, ""), "a")
	if un.Cause != CauseUnassigned {
		t.Errorf("unassigned service: cause %s, want unassigned", un.Cause)
	}
}

// TestPrefixFamilies: IPv4 and IPv6 prefixes get the same decisions; the
// flap guard works on each prefix by itself.
func TestPrefixFamilies(t *testing.T) {
	v4b := netip.MustParsePrefix("198.51.100.128/25")
	v6b := netip.MustParsePrefix("2001:db8:ffff::/64")
	cfg := hs(1, 1)
	cfg.MinChangeInterval = 30 * time.Second

	in := service(five, "c")
	in.Site = "a"
	in.Prefixes = []netip.Prefix{v4, v6, v4b, v6b}
	in.Fenced = fenced("b") // a moves up from rank 3 to rank 1: 4 -> 2 prepends
	in.Now = t0.Add(time.Minute)
	in.Current = map[netip.Prefix]Applied{
		v4:  {Announcement: Announced(4), Since: t0.Add(50 * time.Second)}, // changed 10s ago: held
		v6:  {Announcement: Announced(4), Since: t0},                       // a minute ago: due
		v4b: {Announcement: Announced(4), Since: t0},
		v6b: {Announcement: Announced(4), Since: t0.Add(55 * time.Second)},
	}
	ds, err := Decide(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		prefix netip.Prefix
		now    Announcement
		hold   time.Time
	}{
		{v4, Announced(4), t0.Add(80 * time.Second)},
		{v6, Announced(2), time.Time{}},
		{v4b, Announced(2), time.Time{}},
		{v6b, Announced(4), t0.Add(85 * time.Second)},
	}
	for i, w := range want {
		d := ds[i]
		if d.Prefix != w.prefix || d.Announcement != w.now || !d.HoldUntil.Equal(w.hold) || d.Wanted != Announced(2) {
			t.Errorf("decision %d: %s: %s (wants %s), hold until %v; want %s: %s (wants 2 prepends), hold until %v",
				i, d.Prefix, d.Announcement, d.Wanted, d.HoldUntil, w.prefix, w.now, w.hold)
		}
	}

	for _, order := range [][]string{three, five} {
		for _, active := range order {
			in := service(order, active)
			in.Prefixes = []netip.Prefix{v6, v4, v6b, v4b}
			decideAll(t, cfg, in) // checks that all prefixes agree
		}
	}
}

// TestCurrentOfOtherServices: the announcer passes the site's whole table
// as Current; only the service's own prefixes in it are read and checked.
func TestCurrentOfOtherServices(t *testing.T) {
	in := service(three, "b")
	in.Site = "a"
	other := netip.MustParsePrefix("198.51.100.0/24")
	if slices.Contains(in.Prefixes, other) {
		t.Fatalf("the service has %s; the test needs a prefix of another", other)
	}
	in.Current = map[netip.Prefix]Applied{other: {Announcement: Announcement{Announce: true, Prepends: -1}}}
	if _, err := Decide(hs(1, 1), in); err != nil {
		t.Errorf("a bad entry for another service's prefix: %v; want it ignored", err)
	}
}

func TestBadInput(t *testing.T) {
	ok := func() Input {
		in := service(three, "b")
		in.Site = "a"
		return in
	}
	tests := []struct {
		name   string
		modify func(*Input)
		want   string
	}{
		{"no site", func(in *Input) { in.Site = "" }, "no site"},
		{"no sites in order", func(in *Input) { in.Order = nil; in.Active = "" }, "no sites"},
		{"no time", func(in *Input) { in.Now = time.Time{} }, "no time"},
		{"repeated site", func(in *Input) { in.Order = []string{"a", "b", "a"} }, "repeated"},
		{"active not in order", func(in *Input) { in.Active = "z" }, "not among"},
		{"move to itself", func(in *Input) { in.Move = &Move{From: "b", Phase: MovePrepare} }, "to itself"},
		{"move from unknown site", func(in *Input) { in.Move = &Move{From: "z", Phase: MovePrepare} }, "not among"},
		{"move without phase", func(in *Input) { in.Move = &Move{From: "a"} }, "unknown phase"},
		{"move without assignment", func(in *Input) { in.Active = ""; in.Move = &Move{From: "a", Phase: MovePrepare} }, "without an assignment"},
		{"takeover from itself", func(in *Input) { in.Takeover = &Takeover{From: "b", Started: t0} }, "another site"},
		{"takeover negative hold", func(in *Input) { in.Takeover = &Takeover{From: "a", Started: t0, HoldTime: -time.Second} }, "negative hold"},
		{"takeover and move", func(in *Input) {
			in.Takeover = &Takeover{From: "a", Started: t0}
			in.Move = &Move{From: "c", Phase: MoveAnnounce}
		}, "at once"},
		{"invalid prefix", func(in *Input) { in.Prefixes = []netip.Prefix{v4, {}} }, "not valid"},
		{"prefix twice", func(in *Input) { in.Prefixes = []netip.Prefix{v6, v4, v6} }, "twice"},
		{"negative current", func(in *Input) {
			in.Current = map[netip.Prefix]Applied{v4: {Announcement: Announcement{Announce: true, Prepends: -1}}}
		}, "-1 prepends"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ok()
			tc.modify(&in)
			ds, err := Decide(hs(1, 1), in)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInput saying %q", err, tc.want)
			}
			if ds != nil {
				t.Errorf("decisions with an error: %v", ds)
			}
		})
	}
	if _, err := Decide(hs(1, 1), ok()); err != nil {
		t.Fatalf("the unmodified input: %v", err)
	}
}
