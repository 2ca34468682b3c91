package site_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
)

func TestJudge(t *testing.T) {
	healthy := func() site.Status {
		return site.Status{
			Sites:       []site.SiteStatus{{Name: "a", State: site.SiteUp}, {Name: "b", State: site.SiteUp}},
			Services:    []site.ServiceStatus{{Name: "db", Active: "a"}},
			Replication: []site.GroupStatus{{Group: "pg", Members: []site.MemberStatus{{Site: "a", Writable: true}, {Site: "b"}}}},
			Guests:      []site.GuestStatus{{Name: "g", Tier: "gold", State: "running"}, {Name: "s", Tier: "silver", State: "preempted"}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*site.Status)
		want   site.Health
	}{
		{"healthy", func(*site.Status) {}, site.Health{State: site.HealthHealthy}},
		{"a site dark", func(st *site.Status) { st.Sites[1].State = site.SiteDark },
			site.Health{State: site.HealthDegraded, Reasons: []string{"site b is dark"}}},
		{"no writable primary", func(st *site.Status) { st.Replication[0].Members[0].Writable = false },
			site.Health{State: site.HealthDegraded, Reasons: []string{"group pg has no writable primary"}}},
		{"two writable", func(st *site.Status) { st.Replication[0].Members[1].Writable = true },
			site.Health{State: site.HealthDegraded, Reasons: []string{"group pg has 2 writable members (a, b)"}}},
		{"gold guest unplaced", func(st *site.Status) { st.Guests[0].State = "unplaced" },
			site.Health{State: site.HealthDegraded, Reasons: []string{"gold guest g is unplaced"}}},
		{"an alarm", func(st *site.Status) { st.Alarms = []site.Alarm{{Severity: site.AlarmCritical}} },
			site.Health{State: site.HealthDegraded, Reasons: []string{"1 critical alarm(s)"}}},
		{"served at a fenced site", func(st *site.Status) { st.Sites[0].State = site.SiteFenced },
			site.Health{State: site.HealthDown, Reasons: []string{"service db is served nowhere: its site a is fenced", "site a is fenced"}}},
		{"never assigned", func(st *site.Status) { st.Services[0].Active = "" },
			site.Health{State: site.HealthDown, Reasons: []string{"service db is served nowhere: it is assigned to no site"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := healthy()
			tc.change(&st)
			got := st.Judge()
			if got.State != tc.want.State || !slices.Equal(got.Reasons, tc.want.Reasons) {
				t.Errorf("Judge() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestJudgeGroupsManyReasons: beyond five things with one reason (a dark
// site of a large cluster), the health gives one reason for them all with
// a few of their names; five or fewer are still named one by one.
func TestJudgeGroupsManyReasons(t *testing.T) {
	st := site.Status{Sites: []site.SiteStatus{{Name: "a", State: site.SiteUp}, {Name: "c", State: site.SiteFenced}}}
	for i := range 8 {
		name := fmt.Sprintf("svc-%d", i)
		st.Services = append(st.Services, site.ServiceStatus{Name: name, Active: "c"})
		st.Replication = append(st.Replication, site.GroupStatus{Group: "pg-" + name, Members: []site.MemberStatus{{Site: "a"}}})
		st.Guests = append(st.Guests, site.GuestStatus{Name: name + "-gold", Tier: "gold", State: "unknown"})
	}
	st.Services = append(st.Services, site.ServiceStatus{Name: "lone"})
	st.Guests = append(st.Guests, site.GuestStatus{Name: "g-unplaced", Tier: "gold", State: "unplaced"})
	want := []string{
		"8 services are served nowhere: their site c is fenced (svc-0, svc-1, svc-2 and 5 more)",
		"service lone is served nowhere: it is assigned to no site",
		"site c is fenced",
		"8 groups have no writable primary (pg-svc-0, pg-svc-1, pg-svc-2 and 5 more)",
		"8 gold guests are unknown (svc-0-gold, svc-1-gold, svc-2-gold and 5 more)",
		"gold guest g-unplaced is unplaced",
	}
	if got := st.Judge(); got.State != site.HealthDown || !slices.Equal(got.Reasons, want) {
		t.Errorf("health %s:\n  %s\nwant down:\n  %s", got.State, strings.Join(got.Reasons, "\n  "), strings.Join(want, "\n  "))
	}
}
