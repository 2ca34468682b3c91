package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// statusCollector collects the cluster-wide metrics of a fixed status.
type statusCollector struct {
	m   *metrics
	st  site.Status
	now time.Time
}

func (s statusCollector) Describe(ch chan<- *prometheus.Desc) { s.m.Describe(ch) }
func (s statusCollector) Collect(ch chan<- prometheus.Metric) { s.m.collectStatus(ch, s.st, s.now) }

// TestClusterMetrics: the figures the NOC alerts on, labelled by the site
// they describe and by the reporting controller: a site's state, a service
// with no site that is up, a group with no writable primary or two, Gold
// guests not running, which site coordinates, how long the unfinished ops
// have been at their steps, whether the route observer runs.
func TestClusterMetrics(t *testing.T) {
	m := newMetrics(&Controller{site: config.Site{Name: "a"}})
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	st := site.Status{
		Sites: []site.SiteStatus{{Name: "a", State: site.SiteUp, Coordinator: true}, {Name: "b", State: site.SiteFenced}, {Name: "c", State: site.SiteDark}},
		Ops: []site.OpStatus{
			{ID: "op1", Kind: "runbook", Step: "go-ahead", Created: now.Add(-90 * time.Second), StepSince: now.Add(-60 * time.Second)},
			{ID: "op2", Kind: "failover", Created: now.Add(time.Second)}, // another host's clock ahead, no step left
		},
		Observer: &site.ObserverStatus{Running: false}, // its beat is gone
		Services: []site.ServiceStatus{
			{Name: "web", Active: "a", Sites: []string{"a", "b"}},
			{Name: "db", Active: "b"}, // stranded at a fenced site
			{Name: "new"},             // never assigned
		},
		Replication: []site.GroupStatus{
			{Group: "pg", Members: []site.MemberStatus{{Site: "a", Writable: true}, {Site: "c"}}},
			{Group: "split", Members: []site.MemberStatus{{Site: "a", Writable: true}, {Site: "b", Writable: true}}},
			{Group: "none", Members: []site.MemberStatus{{Site: "a"}}},
		},
		Guests: []site.GuestStatus{
			{Name: "g1", Tier: "gold", State: "running"}, {Name: "g2", Tier: "gold", State: "unplaced"},
			{Name: "s1", Tier: "silver", State: "preempted"}, {Name: "s2", Tier: "silver", State: "preempted"},
		},
	}
	want := `
# HELP zdt_site_state 1 for the state each site of the cluster is in (up, dark, fenced).
# TYPE zdt_site_state gauge
zdt_site_state{reporter="a",site="a",state="dark"} 0
zdt_site_state{reporter="a",site="a",state="fenced"} 0
zdt_site_state{reporter="a",site="a",state="up"} 1
zdt_site_state{reporter="a",site="b",state="dark"} 0
zdt_site_state{reporter="a",site="b",state="fenced"} 1
zdt_site_state{reporter="a",site="b",state="up"} 0
zdt_site_state{reporter="a",site="c",state="dark"} 1
zdt_site_state{reporter="a",site="c",state="fenced"} 0
zdt_site_state{reporter="a",site="c",state="up"} 0
# HELP zdt_sites How many of the cluster's sites are in each state (up, dark, fenced).
# TYPE zdt_sites gauge
zdt_sites{reporter="a",state="dark"} 1
zdt_sites{reporter="a",state="fenced"} 1
zdt_sites{reporter="a",state="up"} 1
# HELP zdt_service_active_sites Sites each service is active at: 1 when it is served, 0 when it has no site that is up.
# TYPE zdt_service_active_sites gauge
zdt_service_active_sites{reporter="a",service="db"} 0
zdt_service_active_sites{reporter="a",service="new"} 0
zdt_service_active_sites{reporter="a",service="web"} 1
# HELP zdt_replication_writable_primaries Members of each replication group that report themselves writable: 1 is right, 0 is an outage, 2 or more a split brain.
# TYPE zdt_replication_writable_primaries gauge
zdt_replication_writable_primaries{group="none",reporter="a"} 0
zdt_replication_writable_primaries{group="pg",reporter="a"} 1
zdt_replication_writable_primaries{group="split",reporter="a"} 2
# HELP zdt_guests_by_placement Guests by tier and placement state (running, preempted, unplaced, pending); a Gold guest not running is an SLA breach.
# TYPE zdt_guests_by_placement gauge
zdt_guests_by_placement{reporter="a",state="preempted",tier="silver"} 2
zdt_guests_by_placement{reporter="a",state="running",tier="gold"} 1
zdt_guests_by_placement{reporter="a",state="unplaced",tier="gold"} 1
# HELP zdt_service_site 1 for the site each service is assigned to (whether or not that site is up), 0 for the other sites it may be served at.
# TYPE zdt_service_site gauge
zdt_service_site{reporter="a",service="web",site="a"} 1
zdt_service_site{reporter="a",service="web",site="b"} 0
# HELP zdt_site_coordinator 1 for the site whose controller holds the coordinator election, 0 for the others: no 1 means no coordinator, and nothing fails over.
# TYPE zdt_site_coordinator gauge
zdt_site_coordinator{reporter="a",site="a"} 1
zdt_site_coordinator{reporter="a",site="b"} 0
zdt_site_coordinator{reporter="a",site="c"} 0
# HELP zdt_op_running_seconds How long each unfinished op has run, since it was created.
# TYPE zdt_op_running_seconds gauge
zdt_op_running_seconds{kind="failover",op="op2",reporter="a"} 0
zdt_op_running_seconds{kind="runbook",op="op1",reporter="a"} 90
# HELP zdt_op_step_running_seconds How long each unfinished op has been at its current step (a confirm step waits for a person, a wait for the sites).
# TYPE zdt_op_step_running_seconds gauge
zdt_op_step_running_seconds{kind="runbook",op="op1",reporter="a",step="go-ahead"} 60
# HELP zdt_upstream_observer_up 1 while the route observer's beat is in etcd (it runs and reaches etcd), 0 when it is not: its records of the upstream are then its last view, stale. Absent without an observer.
# TYPE zdt_upstream_observer_up gauge
zdt_upstream_observer_up{reporter="a"} 0
`
	if err := testutil.CollectAndCompare(statusCollector{m, st, now}, strings.NewReader(want),
		"zdt_site_state", "zdt_sites", "zdt_service_active_sites", "zdt_replication_writable_primaries", "zdt_guests_by_placement",
		"zdt_service_site", "zdt_site_coordinator", "zdt_op_running_seconds", "zdt_op_step_running_seconds", "zdt_upstream_observer_up"); err != nil {
		t.Error(err)
	}
}

// TestClusterMetricsQuiet: no coordinator is a 0 for every site; without
// unfinished ops and without an observer, those metrics are absent.
func TestClusterMetricsQuiet(t *testing.T) {
	m := newMetrics(&Controller{site: config.Site{Name: "b"}})
	st := site.Status{Sites: []site.SiteStatus{{Name: "a", State: site.SiteUp}, {Name: "b", State: site.SiteUp}}}
	want := `
# HELP zdt_site_coordinator 1 for the site whose controller holds the coordinator election, 0 for the others: no 1 means no coordinator, and nothing fails over.
# TYPE zdt_site_coordinator gauge
zdt_site_coordinator{reporter="b",site="a"} 0
zdt_site_coordinator{reporter="b",site="b"} 0
`
	if err := testutil.CollectAndCompare(statusCollector{m, st, time.Now()}, strings.NewReader(want),
		"zdt_site_coordinator", "zdt_op_running_seconds", "zdt_op_step_running_seconds", "zdt_upstream_observer_up"); err != nil {
		t.Error(err)
	}
}
