package site

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site/config"
)

// AlarmKind names what an alarm is about.
type AlarmKind string

// The kinds of alarm.
const (
	// AlarmGuestTwice: a guest runs at two places at once (DESIGN.md,
	// invariant 3). The alarm names a copy that is not where the guest's
	// placement wants it.
	AlarmGuestTwice AlarmKind = "guest-runs-twice"
	// AlarmGuestMisplaced: a guest runs on a host other than its
	// placement's.
	AlarmGuestMisplaced AlarmKind = "guest-misplaced"
	// AlarmGuestNotWanted: a guest runs though its placement says preempted
	// or unplaced, or it has none.
	AlarmGuestNotWanted AlarmKind = "guest-not-wanted"
	// AlarmWritableTwice: a replication group has more than one writable
	// member (invariant 1).
	AlarmWritableTwice AlarmKind = "two-writable-members"
	// AlarmWritableNotActive: a replication member is writable at a site
	// that holds none of the assignments of the services using its group.
	AlarmWritableNotActive AlarmKind = "writable-not-active"
	// AlarmServiceStranded: a service is assigned to a fenced site: when
	// the site was failed over, no site could take the service (none up,
	// or no standby within its RPO). It is down until one can.
	AlarmServiceStranded AlarmKind = "service-stranded"
)

// AlarmSeverity says how soon a person must look.
type AlarmSeverity string

// The severities of an alarm.
const (
	// AlarmCritical: data or a guest's disks may be written from two places,
	// or are about to be.
	AlarmCritical AlarmSeverity = "critical"
	// AlarmWarning: the sites do something the cluster does not want, but
	// nothing is written twice: a guest runs that should not (capacity), or
	// the offending report comes from a site an operator confirmed dark.
	AlarmWarning AlarmSeverity = "warning"
)

// Alarm is one contradiction between what the cluster wants (placements,
// assignments) and what its sites report, for a person to look at.
type Alarm struct {
	Kind     AlarmKind     `json:"kind"`
	Severity AlarmSeverity `json:"severity"`
	// Subject is the guest or the replication group the alarm is about.
	Subject string `json:"subject"`
	// Site is where the offending copy runs or the writable member is; ""
	// when the alarm blames no one site.
	Site    string `json:"site"`
	Message string `json:"message"`
	// Stale: the alarm rests on the last report of a site that holds no
	// lease; what it says may have changed since.
	Stale bool `json:"stale"`
	// ReportedAt is when Site's report was written.
	ReportedAt time.Time `json:"reported_at,omitzero"`
}

// Alarms derives from the snapshot what the sites report that contradicts
// what the cluster wants: a guest that runs where it is not placed, or at two
// places; a replication member that is writable at a site holding none of
// its services, or two writable members in one group. The critical ones come
// first. now is when the snapshot was read, for the age of stale reports
// (zero: the age is not stated).
//
// Unlike the rest of the status, alarms also rest on the last reports of
// sites that hold no lease. Such a report may be stale, but it is the last
// word of a site whose controller may have crashed or frozen while its
// hypervisors and database servers run on: the case the outside fence exists
// for, and the one that corrupts data if nobody looks. So the alarm is shown,
// marked stale with the time of the report, and stays critical until an
// operator confirms the site's fence (`zdt fence confirm`); then it is a
// warning: the site is known to be dark, and its failback cleans up.
func Alarms(cfg *config.Cluster, snap *Snapshot, now time.Time) []Alarm {
	alarms := append(guestAlarms(cfg, snap, now), replicationAlarms(cfg, snap, now)...)
	alarms = append(alarms, strandedAlarms(cfg, snap)...)
	slices.SortStableFunc(alarms, func(a, b Alarm) int {
		return severityRank(a.Severity) - severityRank(b.Severity)
	})
	if alarms == nil {
		alarms = []Alarm{}
	}
	return alarms
}

func severityRank(s AlarmSeverity) int {
	if s == AlarmCritical {
		return 0
	}
	return 1
}

// reportSource is the site report an alarm rests on.
type reportSource struct {
	site    string
	written time.Time
	// stale: the site holds no lease.
	stale  bool
	fenced bool
	// confirmed is set when an operator confirmed the site's fence.
	confirmed *Confirmation
}

func source(snap *Snapshot, site string, written time.Time) reportSource {
	rs := reportSource{site: site, written: written}
	_, alive := snap.Alive[site]
	rs.stale = !alive
	if f, ok := snap.Fences[site]; ok {
		rs.fenced, rs.confirmed = true, f.Confirmed
	}
	return rs
}

// settled: the report is stale and an operator confirmed that its site is
// dark, so what it says runs there no longer does.
func (r reportSource) settled() bool { return r.stale && r.confirmed != nil }

// severity is s, or a warning when the report is settled.
func (r reportSource) severity(s AlarmSeverity) AlarmSeverity {
	if r.settled() {
		return AlarmWarning
	}
	return s
}

// staleNote marks a place known only from a stale report.
func (r reportSource) staleNote(now time.Time) string {
	if !r.stale {
		return ""
	}
	return fmt.Sprintf(" (stale: site %s is dark; its last report %s)", r.site, writtenAt(r.written, now))
}

// advice tells what is known, or what to do, about a stale report.
func (r reportSource) advice() string {
	switch {
	case !r.stale:
		return ""
	case r.confirmed != nil:
		return fmt.Sprintf("; %s confirmed site %s dark at %s", r.confirmed.By, r.site, r.confirmed.At.UTC().Format(time.RFC3339))
	case r.fenced:
		return fmt.Sprintf("; check site %s, and once you know it is dark: zdt fence confirm --site %s", r.site, r.site)
	}
	return ""
}

// writtenAt says when a report was written and, when now is known, how long
// ago: the time of day alone while that is unambiguous.
func writtenAt(t, now time.Time) string {
	if t.IsZero() {
		return "carries no time"
	}
	if now.IsZero() {
		return "was written at " + t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	age := now.Sub(t).Round(time.Second)
	if age < 0 || age >= 12*time.Hour {
		s := "was written at " + t.UTC().Format("2006-01-02 15:04:05 UTC")
		if age >= 0 {
			s += ", " + age.String() + " ago"
		}
		return s
	}
	return "was written at " + t.UTC().Format("15:04:05 UTC") + ", " + age.String() + " ago"
}

// guestAlarms reports every copy of a guest that runs where its placement
// does not want it.
func guestAlarms(cfg *config.Cluster, snap *Snapshot, now time.Time) []Alarm {
	type runningCopy struct {
		host string
		src  reportSource
	}
	copies := map[string][]runningCopy{}
	for _, s := range cfg.Sites {
		r, ok := snap.Hosts[s.Name]
		if !ok {
			continue
		}
		src := source(snap, s.Name, r.Updated)
		for _, h := range r.Hosts {
			for _, g := range h.Running {
				copies[g.Name] = append(copies[g.Name], runningCopy{host: h.Name, src: src})
			}
		}
	}
	where := func(c runningCopy) string {
		return fmt.Sprintf("host %s at site %s%s", c.host, c.src.site, c.src.staleNote(now))
	}
	var alarms []Alarm
	for _, g := range cfg.Guests() {
		p, placed := snap.Placements[g.Name]
		wanted := placed && p.State == GuestRunning
		cs := copies[g.Name]
		for i, c := range cs {
			if wanted && c.src.site == p.Site && c.host == p.Host {
				continue
			}
			a := Alarm{Subject: g.Name, Site: c.src.site, Stale: c.src.stale, ReportedAt: c.src.written}
			msg := fmt.Sprintf("guest %s runs on %s", g.Name, where(c))
			switch {
			case len(cs) > 1:
				var others []string
				for j, o := range cs {
					if j != i {
						others = append(others, where(o))
					}
				}
				a.Kind, a.Severity = AlarmGuestTwice, AlarmCritical
				msg += " and also on " + strings.Join(others, " and ") + "; " + placementNote(p, placed)
			case wanted:
				a.Kind, a.Severity = AlarmGuestMisplaced, AlarmCritical
				msg += ", but " + placementNote(p, placed)
			default:
				a.Kind, a.Severity = AlarmGuestNotWanted, AlarmWarning
				msg += ", but " + placementNote(p, placed)
			}
			a.Severity = c.src.severity(a.Severity)
			a.Message = msg + c.src.advice()
			alarms = append(alarms, a)
		}
	}
	return alarms
}

func placementNote(p Placement, placed bool) string {
	switch {
	case !placed:
		return "it has no placement"
	case p.State == GuestRunning:
		return fmt.Sprintf("it is placed on host %s at site %s", p.Host, p.Site)
	case p.Reason != "":
		return fmt.Sprintf("its placement says %s: %s", p.State, p.Reason)
	}
	return fmt.Sprintf("its placement says %s", p.State)
}

// replicationAlarms reports every writable member at a site that holds none
// of its group's services, and groups with more than one writable member.
func replicationAlarms(cfg *config.Cluster, snap *Snapshot, now time.Time) []Alarm {
	type writer struct {
		role string
		src  reportSource
	}
	member := func(w writer) string {
		return fmt.Sprintf("the member at site %s%s", w.src.site, w.src.staleNote(now))
	}
	var alarms []Alarm
	for _, g := range cfg.Replication {
		var ws []writer
		for _, s := range cfg.Sites {
			r, ok := snap.Replication[s.Name]
			if !ok {
				continue
			}
			for _, m := range r.Members {
				if m.Group == g.Name && m.Writable {
					ws = append(ws, writer{role: orUnknown(m.Role), src: source(snap, s.Name, r.Updated)})
				}
			}
		}
		if len(ws) == 0 {
			continue
		}
		active := map[string]bool{}
		var holders []string
		for _, svc := range cfg.Services {
			a, ok := snap.Assignments[svc.Name]
			if svc.ReplicationGroup != g.Name || !ok || a.Site == "" {
				continue
			}
			active[a.Site] = true
			holders = append(holders, fmt.Sprintf("%s at site %s (epoch %d)", svc.Name, a.Site, a.Epoch))
		}
		blamed := 0
		for i, w := range ws {
			if len(active) == 0 || active[w.src.site] {
				continue
			}
			blamed++
			a := Alarm{Kind: AlarmWritableNotActive, Severity: w.src.severity(AlarmCritical), Subject: g.Name,
				Site: w.src.site, Stale: w.src.stale, ReportedAt: w.src.written}
			msg := fmt.Sprintf("replication group %s: %s is writable (role %s), but the group's services are active elsewhere: %s",
				g.Name, member(w), w.role, strings.Join(holders, ", "))
			if len(ws) > 1 {
				var others []string
				for j, o := range ws {
					if j != i {
						others = append(others, member(o))
					}
				}
				a.Kind = AlarmWritableTwice
				msg += "; also writable: " + strings.Join(others, ", ")
			}
			a.Message = msg + w.src.advice()
			alarms = append(alarms, a)
		}
		if len(ws) < 2 || blamed > 0 {
			continue
		}
		// Nothing tells which member should be the writable one: the
		// group's services are not assigned, or are assigned to each of
		// the writable members' sites.
		a := Alarm{Kind: AlarmWritableTwice, Severity: AlarmWarning, Subject: g.Name}
		var all []string
		advice := ""
		live := 0
		for _, w := range ws {
			all = append(all, member(w))
			advice += w.src.advice()
			if !w.src.settled() {
				live++
			}
			a.Stale = a.Stale || w.src.stale
		}
		if live > 1 {
			a.Severity = AlarmCritical
		}
		why := "no service using the group is assigned"
		if len(holders) > 0 {
			why = "the group's services are active at: " + strings.Join(holders, ", ")
		}
		a.Message = fmt.Sprintf("replication group %s has %d writable members: %s; %s%s",
			g.Name, len(ws), strings.Join(all, ", "), why, advice)
		alarms = append(alarms, a)
	}
	return alarms
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// strandedAlarms: every service assigned to a fenced site.
func strandedAlarms(cfg *config.Cluster, snap *Snapshot) []Alarm {
	var out []Alarm
	for _, svc := range cfg.Services {
		a, ok := snap.Assignments[svc.Name]
		if !ok {
			continue
		}
		if _, fenced := snap.Fences[a.Site]; !fenced {
			continue
		}
		out = append(out, Alarm{
			Kind: AlarmServiceStranded, Severity: AlarmCritical, Subject: svc.Name, Site: a.Site,
			Message: fmt.Sprintf("service %s is still assigned to fenced site %s: no site could take it (none up, or no standby within its RPO; "+
				"zdt events --service %s says why). It moves by itself once a site can", svc.Name, a.Site, svc.Name),
		})
	}
	return out
}
