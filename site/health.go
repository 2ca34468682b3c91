package site

import (
	"fmt"
	"strings"
)

// HealthState is the cluster's health in a word, as zdt status says it
// first (and in its exit status).
type HealthState string

// The health states.
const (
	// HealthHealthy: every site up, every service served at a site that is
	// up, one writable primary in each group, every Gold guest running, no
	// alarm.
	HealthHealthy HealthState = "healthy"
	// HealthDegraded: every service is served, but something is wrong: a
	// site is not up, an alarm, a group without exactly one writable
	// primary, a Gold guest not running, etcd failing or an etcd member's
	// database near its quota (EtcdQuotaDegraded).
	HealthDegraded HealthState = "degraded"
	// HealthDown: a service is served nowhere.
	HealthDown HealthState = "down"
)

// Health is the cluster's health and every reason for it.
type Health struct {
	State   HealthState `json:"state"`
	Reasons []string    `json:"reasons,omitempty"`
}

// Judge says the status's health: down when a service is served nowhere,
// degraded when anything else is wrong, healthy otherwise.
func (st Status) Judge() Health {
	state := map[string]SiteState{}
	var down, degraded []string
	for _, s := range st.Sites {
		state[s.Name] = s.State
		if s.State != SiteUp {
			degraded = append(degraded, fmt.Sprintf("site %s is %s", s.Name, s.State))
		}
	}
	nowhere := grouping{}
	for _, svc := range st.Services {
		switch {
		case svc.Active == "":
			nowhere.add("it is assigned to no site", "they are assigned to no site", svc.Name)
		case state[svc.Active] != SiteUp:
			nowhere.add(fmt.Sprintf("its site %s is %s", svc.Active, state[svc.Active]),
				fmt.Sprintf("their site %s is %s", svc.Active, state[svc.Active]), svc.Name)
		}
	}
	down = nowhere.reasons("service %[1]s is served nowhere: %[2]s", "%[1]d services are served nowhere: %[3]s (%[2]s)")
	noPrimary := grouping{}
	for _, g := range st.Replication {
		var writable []string
		for _, m := range g.Members {
			if m.Writable {
				writable = append(writable, m.Site)
			}
		}
		switch {
		case len(g.Members) == 0:
		case len(writable) == 0:
			noPrimary.add("", "", g.Group)
		case len(writable) > 1:
			degraded = append(degraded, fmt.Sprintf("group %s has %d writable members (%s)", g.Group, len(writable), strings.Join(writable, ", ")))
		}
	}
	degraded = append(degraded, noPrimary.reasons("group %[1]s has no writable primary", "%[1]d groups have no writable primary (%[2]s)")...)
	gold := grouping{}
	for _, g := range st.Guests {
		if g.Tier == "gold" && g.State != string(GuestRunning) {
			gold.add(g.State, g.State, g.Name)
		}
	}
	degraded = append(degraded, gold.reasons("gold guest %[1]s is %[2]s", "%[1]d gold guests are %[3]s (%[2]s)")...)
	bySeverity := map[AlarmSeverity]int{}
	for _, a := range st.Alarms {
		bySeverity[a.Severity]++
	}
	for _, sev := range []AlarmSeverity{AlarmCritical, AlarmWarning} {
		if n := bySeverity[sev]; n > 0 {
			degraded = append(degraded, fmt.Sprintf("%d %s alarm(s)", n, sev))
		}
	}
	if len(st.EtcdAlarms) > 0 {
		degraded = append(degraded, "etcd alarm "+strings.Join(st.EtcdAlarms, ", "))
	}
	degraded = append(degraded, st.etcdMemberReasons()...)
	if len(st.FailStatic) > 0 {
		degraded = append(degraded, "failing static at "+strings.Join(st.FailStatic, ", "))
	}
	switch {
	case len(down) > 0:
		return Health{State: HealthDown, Reasons: append(down, degraded...)}
	case len(degraded) > 0:
		return Health{State: HealthDegraded, Reasons: degraded}
	}
	return Health{State: HealthHealthy}
}

// listedReasons is how many things with one reason the health names one by
// one; beyond that it gives one reason for them all, with a few names, so
// that a dark site of a large cluster does not make the health a page.
const listedReasons = 5

// grouping gathers things (services, groups, guests) by their reason, in
// the order each reason first came.
type grouping struct {
	whys  []string // the reasons, as said of one thing
	plur  map[string]string
	names map[string][]string
}

// add files name under why; plural is why as said of many.
func (g *grouping) add(why, plural, name string) {
	if g.names == nil {
		g.names, g.plur = map[string][]string{}, map[string]string{}
	}
	if _, ok := g.names[why]; !ok {
		g.whys = append(g.whys, why)
		g.plur[why] = plural
	}
	g.names[why] = append(g.names[why], name)
}

// reasons says each reason: one for each thing while there are few of
// them (the format one, of its name and the reason), else one for them all
// (many, of their count, a few of their names and the reason as said of
// many).
func (g *grouping) reasons(one, many string) []string {
	var out []string
	for _, why := range g.whys {
		names := g.names[why]
		if len(names) <= listedReasons {
			for _, n := range names {
				out = append(out, fmt.Sprintf(one, n, why))
			}
			continue
		}
		some := strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
		out = append(out, fmt.Sprintf(many, len(names), some, g.plur[why]))
	}
	return out
}
