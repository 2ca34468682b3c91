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
	for _, svc := range st.Services {
		switch {
		case svc.Active == "":
			down = append(down, fmt.Sprintf("service %s is served nowhere: it is assigned to no site", svc.Name))
		case state[svc.Active] != SiteUp:
			down = append(down, fmt.Sprintf("service %s is served nowhere: its site %s is %s", svc.Name, svc.Active, state[svc.Active]))
		}
	}
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
			degraded = append(degraded, fmt.Sprintf("group %s has no writable primary", g.Group))
		case len(writable) > 1:
			degraded = append(degraded, fmt.Sprintf("group %s has %d writable members (%s)", g.Group, len(writable), strings.Join(writable, ", ")))
		}
	}
	for _, g := range st.Guests {
		if g.Tier == "gold" && g.State != string(GuestRunning) {
			degraded = append(degraded, fmt.Sprintf("gold guest %s is %s", g.Name, g.State))
		}
	}
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
