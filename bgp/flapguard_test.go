package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestFlapGuard(t *testing.T) {
	const interval = 30 * time.Second
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	cur := func(n int, since time.Time) *Applied {
		a := Applied{Announcement: Announced(n), Since: since}
		if n < 0 {
			a.Announcement = withdrawn
		}
		return &a
	}
	tests := []struct {
		name     string
		in       func() Input // Site, Fenced, Takeover, Move, ...; Now is set from now
		site     string
		current  *Applied // nil: never announced
		now      time.Time
		interval time.Duration

		want    Announcement
		wanted  Announcement
		urgent  bool
		hold    time.Time
		recheck time.Time
		reason  string // in the reason
	}{
		{
			name: "three sites: a standby moves up a rank 10s after its last change: held",
			in:   func() Input { in := service(three, "a"); in.Fenced = fenced("b"); return in }, site: "c",
			current: cur(3, at(0)), now: at(10), interval: interval,
			want: Announced(3), wanted: Announced(2), hold: at(30), recheck: at(30), reason: "flap guard: keep 3 prepends until",
		},
		{
			name: "three sites: the same once the interval has passed",
			in:   func() Input { in := service(three, "a"); in.Fenced = fenced("b"); return in }, site: "c",
			current: cur(3, at(0)), now: at(30), interval: interval,
			want: Announced(2), wanted: Announced(2),
		},
		{
			name: "five sites: a standby moves down a rank: held",
			in:   func() Input { return service(five, "b") }, site: "c",
			current: cur(2, at(0)), now: at(1), interval: interval,
			want: Announced(2), wanted: Announced(3), hold: at(30), recheck: at(30),
		},
		{
			name: "three sites: fenced 1s after the last change: urgent",
			in:   func() Input { in := service(three, "a"); in.Fenced = fenced("b"); return in }, site: "b",
			current: cur(2, at(0)), now: at(1), interval: interval,
			want: withdrawn, wanted: withdrawn, urgent: true, reason: "urgent",
		},
		{
			name: "five sites: the fenced active site withdraws at once",
			in:   func() Input { in := service(five, "d"); in.Fenced = fenced("d"); return in }, site: "d",
			current: cur(1, at(0)), now: at(1), interval: interval,
			want: withdrawn, wanted: withdrawn, urgent: true,
		},
		{
			name: "three sites: self-fenced: urgent",
			in:   func() Input { in := service(three, "a"); in.SelfFenced = true; return in }, site: "a",
			current: cur(1, at(0)), now: at(1), interval: interval,
			want: withdrawn, wanted: withdrawn, urgent: true,
		},
		{
			name: "five sites: takeover 1s after the last change: urgent",
			in:   func() Input { return takeover(five, "a", "c", at(1), false) }, site: "c",
			current: cur(3, at(0)), now: at(1), interval: interval,
			want: Announced(0), wanted: Announced(0), urgent: true, recheck: t0.Add(holdTime), reason: "urgent",
		},
		{
			name: "three sites: back from the takeover to the headroom 10s after it: held",
			in:   func() Input { return takeover(three, "a", "b", at(10), true) }, site: "b",
			current: cur(0, at(0)), now: at(10), interval: interval,
			want: Announced(0), wanted: Announced(1), hold: at(30), recheck: at(30),
		},
		{
			name: "three sites: back from the move-in to the headroom when the move ends: held",
			in:   func() Input { return service(three, "b") }, site: "b",
			current: cur(0, at(0)), now: at(5), interval: interval,
			want: Announced(0), wanted: Announced(1), hold: at(30), recheck: at(30),
		},
		{
			name: "three sites: the new site of a move announces below the headroom: urgent",
			in:   func() Input { in := service(three, "b"); in.Move = &Move{From: "a", Phase: MoveAnnounce}; return in }, site: "b",
			current: cur(2, at(0)), now: at(5), interval: interval,
			want: Announced(0), wanted: Announced(0), urgent: true,
		},
		{
			name: "five sites: the old site of a move leaves the headroom once released: urgent",
			in:   func() Input { in := service(five, "e"); in.Move = &Move{From: "a", Phase: MoveRelease}; return in }, site: "a",
			current: cur(1, at(0)), now: at(5), interval: interval,
			want: Announced(2), wanted: Announced(2), urgent: true,
		},
		{
			name: "three sites: reassigned without a move, the old active site gets out of the way: urgent",
			in:   func() Input { return service(three, "c") }, site: "a",
			current: cur(1, at(0)), now: at(5), interval: interval,
			want: Announced(2), wanted: Announced(2), urgent: true,
		},
		{
			name: "three sites: reassigned without a move, the new active site gets down to the headroom: urgent",
			in:   func() Input { return service(three, "c") }, site: "c",
			current: cur(3, at(0)), now: at(5), interval: interval,
			want: Announced(1), wanted: Announced(1), urgent: true,
		},
		{
			name: "five sites: a standby back from a self-fence 5s after withdrawing: held",
			in:   func() Input { return service(five, "a") }, site: "e",
			current: cur(-1, at(0)), now: at(5), interval: interval,
			want: withdrawn, wanted: Announced(5), hold: at(30), recheck: at(30),
		},
		{
			name: "five sites: the active site back from a self-fence: urgent",
			in:   func() Input { return service(five, "a") }, site: "a",
			current: cur(-1, at(0)), now: at(5), interval: interval,
			want: Announced(1), wanted: Announced(1), urgent: true,
		},
		{
			name: "three sites: no flap guard (interval 0)",
			in:   func() Input { in := service(three, "a"); in.Fenced = fenced("b"); return in }, site: "c",
			current: cur(3, at(0)), now: at(1), interval: 0,
			want: Announced(2), wanted: Announced(2),
		},
		{
			name: "three sites: last change unknown",
			in:   func() Input { in := service(three, "a"); in.Fenced = fenced("b"); return in }, site: "c",
			current: cur(3, time.Time{}), now: at(1), interval: interval,
			want: Announced(2), wanted: Announced(2),
		},
		{
			name: "three sites: never announced",
			in:   func() Input { return service(three, "a") }, site: "c",
			current: nil, now: at(1), interval: interval,
			want: Announced(3), wanted: Announced(3),
		},
		{
			name: "three sites: no change, nothing held",
			in:   func() Input { return service(three, "a") }, site: "c",
			current: cur(3, at(0)), now: at(1), interval: interval,
			want: Announced(3), wanted: Announced(3),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hs(1, 1)
			cfg.MinChangeInterval = tc.interval
			in := tc.in()
			in.Site = tc.site
			in.Now = tc.now
			in.Prefixes = []netip.Prefix{v4, v6}
			if tc.current != nil {
				in.Current = map[netip.Prefix]Applied{v4: *tc.current, v6: *tc.current}
			}
			ds, err := Decide(cfg, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Announcement != tc.want || d.Wanted != tc.wanted || d.Urgent != tc.urgent ||
					!d.HoldUntil.Equal(tc.hold) || !d.Recheck.Equal(tc.recheck) {
					t.Errorf("%s: %s (wants %s), urgent %v, hold until %v, recheck %v;\nwant %s (wants %s), urgent %v, hold until %v, recheck %v\nreason: %s",
						d.Prefix, d.Announcement, d.Wanted, d.Urgent, d.HoldUntil, d.Recheck,
						tc.want, tc.wanted, tc.urgent, tc.hold, tc.recheck, d.Reason)
				}
				if !strings.Contains(d.Reason, tc.reason) {
					t.Errorf("%s: reason %q does not say %q", d.Prefix, d.Reason, tc.reason)
				}
			}
		})
	}
}
