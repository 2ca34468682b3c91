package statustable

import (
	"cmp"
	"slices"

	"github.com/zdt-project/zdt/site"
)

// Shown says how Limit cut a status's long lists: of each, how many items
// it keeps of how many there are, and the guests counted by site, tier and
// zone, so that a reader of the cut status (the dashboard) still has the
// whole picture of what it does not list.
type Shown struct {
	Limit    int   `json:"limit"`
	Alarms   Count `json:"alarms"`
	Services Count `json:"services"`
	Guests   Count `json:"guests"`
	Prefixes Count `json:"prefixes"`
	// GuestCounts counts every guest of the status, kept or not.
	GuestCounts []GuestCount `json:"guest_counts"`
}

// Count is one list's items: how many there are, how many of them have a
// problem (a critical alarm, for the alarms), and how many are kept.
type Count struct {
	Total    int `json:"total"`
	Problems int `json:"problems"`
	Shown    int `json:"shown"`
}

// GuestCount counts the guests placed at one site (Site "" for those
// placed nowhere) of one tier and zone, and how many of them run where they
// are placed.
type GuestCount struct {
	Site    string `json:"site"`
	Tier    string `json:"tier"`
	Zone    string `json:"zone,omitempty"`
	Guests  int    `json:"guests"`
	Running int    `json:"running"`
}

// Limit cuts the alarms, services, guests and prefixes of st (the
// announcements and the observer's view follow the prefixes kept) to at
// most n each, keeping the items with a problem first and then the others
// in their order; what is kept stays in the status's order. The sites,
// replication groups, sessions and ops are few, and stay whole. It is for
// readers that cannot take a large cluster's whole status every few
// seconds; n < 1 keeps everything.
func Limit(st site.Status, n int) (site.Status, Shown) {
	if n < 1 {
		n = max(len(st.Alarms), len(st.Services), len(st.Guests), len(st.Announcements), len(st.Upstream), 1)
	}
	ix := newStatusIndex(st)
	var rows []prefixRow
	if ix.routing {
		rows = ix.prefixRows(st.Services) // of every service, before they are cut
	}
	shown := Shown{Limit: n, GuestCounts: countGuests(st.Guests)}
	st.Alarms, shown.Alarms = limitList(st.Alarms, n, func(a site.Alarm) bool { return a.Severity == site.AlarmCritical })
	st.Services, shown.Services = limitList(st.Services, n, func(s site.ServiceStatus) bool { return len(ix.serviceProblems(s)) > 0 })
	st.Guests, shown.Guests = limitList(st.Guests, n, guestHasProblem)
	if ix.routing {
		rows, shown.Prefixes = limitList(rows, n, func(r prefixRow) bool { return len(r.problems) > 0 })
		prefixes := make(map[string]bool, len(rows))
		for _, r := range rows {
			prefixes[r.prefix] = true
		}
		st.Announcements = keep(st.Announcements, func(a site.AnnouncementStatus) bool { return prefixes[a.Prefix] })
		st.Upstream = keep(st.Upstream, func(u site.UpstreamStatus) bool { return prefixes[u.Prefix] })
	}
	return st, shown
}

// limitList keeps at most n of items, those bad says have a problem first,
// in their order.
func limitList[T any](items []T, n int, bad func(T) bool) ([]T, Count) {
	c := Count{Total: len(items)}
	problems := make([]bool, len(items))
	for i, it := range items {
		problems[i] = bad(it)
		if problems[i] {
			c.Problems++
		}
	}
	if len(items) <= n {
		c.Shown = len(items)
		return items, c
	}
	// Every problem fits, and the first others fill the rest; or the
	// first n problems.
	others := max(n-c.Problems, 0)
	out := make([]T, 0, n)
	for i, it := range items {
		if problems[i] || others > 0 {
			if !problems[i] {
				others--
			}
			out = append(out, it)
			if len(out) == n {
				break
			}
		}
	}
	c.Shown = len(out)
	return out, c
}

// countGuests counts the guests by site, tier and zone, in that order.
func countGuests(guests []site.GuestStatus) []GuestCount {
	type key struct{ site, tier, zone string }
	at := map[key]int{}
	out := []GuestCount{}
	for _, g := range guests {
		k := key{g.Site, g.Tier, g.Zone}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, GuestCount{Site: g.Site, Tier: g.Tier, Zone: g.Zone})
		}
		out[i].Guests++
		if g.State == string(site.GuestRunning) && len(g.RunningOn) > 0 {
			out[i].Running++
		}
	}
	slices.SortFunc(out, cmpGuestCount)
	return out
}

// cmpGuestCount orders guest counts by site, tier and zone.
func cmpGuestCount(a, b GuestCount) int {
	return cmp.Or(cmp.Compare(a.Site, b.Site), cmp.Compare(a.Tier, b.Tier), cmp.Compare(a.Zone, b.Zone))
}
