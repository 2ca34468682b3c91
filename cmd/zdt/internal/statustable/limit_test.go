package statustable

import (
	"fmt"
	"slices"
	"testing"

	"github.com/zdt-project/zdt/site"
)

// TestLimit cuts a status whose services at the fenced site c are stranded
// (a third of them, with their prefixes and Gold guests): what has a
// problem is kept first, the rest fills up in order, what is kept stays in
// order, the announcements and the observer's view follow the prefixes
// kept, and the counts cover everything.
func TestLimit(t *testing.T) {
	st := largeStatus(30, 2, 3)
	for i := range 6 {
		sev := site.AlarmWarning
		if i%3 == 2 {
			sev = site.AlarmCritical
		}
		st.Alarms = append(st.Alarms, site.Alarm{Severity: sev, Subject: fmt.Sprintf("alarm-%d", i)})
	}
	ix := newStatusIndex(st)
	serviceBad := func(s site.ServiceStatus) bool { return len(ix.serviceProblems(s)) > 0 }
	rows := ix.prefixRows(st.Services)

	cut, shown := Limit(st, 15)

	// 10 services stranded at c and svc-0003 moving: every one, then the
	// first 4 others.
	wantServices := keepFirst(st.Services, 15, serviceBad)
	if got, want := names(cut.Services, svcName), names(wantServices, svcName); !slices.Equal(got, want) {
		t.Errorf("services kept:\n%v\nwant\n%v", got, want)
	}
	if shown.Services != (Count{Total: 30, Problems: 11, Shown: 15}) {
		t.Errorf("services counted %+v; want 30 of which 11 with a problem, 15 shown", shown.Services)
	}
	// 20 prefixes announced nowhere (their services' site is fenced):
	// the first 15 of them, and nothing else.
	var badPrefixes []string
	for _, r := range rows {
		if len(r.problems) > 0 {
			badPrefixes = append(badPrefixes, r.prefix)
		}
	}
	if len(badPrefixes) != 20 {
		t.Fatalf("the fixture has %d prefixes with a problem; want 20", len(badPrefixes))
	}
	kept := map[string]bool{}
	for _, u := range cut.Upstream {
		kept[u.Prefix] = true
	}
	for _, a := range cut.Announcements {
		if !kept[a.Prefix] {
			t.Errorf("announcement %+v kept for a prefix the limit cut", a)
		}
	}
	if got := names(cut.Upstream, func(u site.UpstreamStatus) string { return u.Prefix }); !slices.Equal(got, badPrefixes[:15]) {
		t.Errorf("prefixes kept %v; want the first 15 with a problem %v", got, badPrefixes[:15])
	}
	if shown.Prefixes != (Count{Total: 60, Problems: 20, Shown: 15}) {
		t.Errorf("prefixes counted %+v; want 60 of which 20 with a problem, 15 shown", shown.Prefixes)
	}
	// The Gold guests of the stranded services first.
	if got, want := names(cut.Guests, guestName), names(keepFirst(st.Guests, 15, guestHasProblem), guestName); !slices.Equal(got, want) {
		t.Errorf("guests kept:\n%v\nwant\n%v", got, want)
	}
	total, running := 0, 0
	for _, c := range shown.GuestCounts {
		total += c.Guests
		running += c.Running
	}
	wantRunning := 0
	for _, g := range st.Guests {
		if g.State == string(site.GuestRunning) && len(g.RunningOn) > 0 {
			wantRunning++
		}
	}
	if total != len(st.Guests) || running != wantRunning || !slices.IsSortedFunc(shown.GuestCounts, cmpGuestCount) {
		t.Errorf("guest counts %+v: %d guests, %d running; want %d guests, %d running, sorted by site, tier, zone",
			shown.GuestCounts, total, running, len(st.Guests), wantRunning)
	}
	// The alarms are few: all of them.
	if len(cut.Alarms) != 6 || shown.Alarms != (Count{Total: 6, Problems: 2, Shown: 6}) {
		t.Errorf("alarms %d kept, counted %+v; want all 6, 2 critical", len(cut.Alarms), shown.Alarms)
	}
	// Limited to 3, the two critical alarms first, then the first warning,
	// in their order.
	cut3, shown3 := Limit(st, 3)
	if got := names(cut3.Alarms, func(a site.Alarm) string { return a.Subject }); !slices.Equal(got, []string{"alarm-0", "alarm-2", "alarm-5"}) {
		t.Errorf("alarms kept by a limit of 3: %v; want alarm-0, alarm-2, alarm-5", got)
	}
	if len(cut3.Sites) != 3 || len(cut3.Peers) != 6 || len(cut3.Ops) != 2 || shown3.Limit != 3 {
		t.Errorf("a limit of 3 cut what it should keep: %d sites, %d sessions, %d ops (limit %d)", len(cut3.Sites), len(cut3.Peers), len(cut3.Ops), shown3.Limit)
	}
	// The original is untouched.
	if len(st.Services) != 30 || len(st.Upstream) != 60 || len(st.Guests) != 90 {
		t.Errorf("Limit changed the status it was given: %d services, %d prefixes, %d guests", len(st.Services), len(st.Upstream), len(st.Guests))
	}
}

// TestLimitKeepsSmallWhole: a status within the limit, or no limit, is
// kept whole.
func TestLimitKeepsSmallWhole(t *testing.T) {
	st := largeStatus(6, 2, 3)
	for _, n := range []int{0, -1, 18, 100} {
		cut, shown := Limit(st, n)
		if len(cut.Services) != 6 || len(cut.Announcements) != len(st.Announcements) || len(cut.Upstream) != 12 || len(cut.Guests) != 18 {
			t.Errorf("limit %d: %d services, %d announcements, %d prefixes, %d guests; want all (6, %d, 12, 18)",
				n, len(cut.Services), len(cut.Announcements), len(cut.Upstream), len(cut.Guests), len(st.Announcements))
		}
		if shown.Services.Shown != 6 || shown.Prefixes.Shown != 12 || shown.Guests.Shown != 18 {
			t.Errorf("limit %d: counted %+v", n, shown)
		}
	}
}

// keepFirst is what Limit should keep of items, worked out the slow way:
// every problem (the first n of them), then the others in order.
func keepFirst[T any](items []T, n int, bad func(T) bool) []T {
	var out []T
	budget := n - len(slices.DeleteFunc(slices.Clone(items), func(it T) bool { return !bad(it) }))
	for _, it := range items {
		switch {
		case len(out) == n:
		case bad(it):
			out = append(out, it)
		case budget > 0:
			budget--
			out = append(out, it)
		}
	}
	return out
}

func names[T any](items []T, name func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

func svcName(s site.ServiceStatus) string { return s.Name }
func guestName(g site.GuestStatus) string { return g.Name }
