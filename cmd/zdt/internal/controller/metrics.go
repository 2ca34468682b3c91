package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdt-project/zdt/site"
)

// metrics is the controller's Prometheus collector. Cluster-wide figures
// (sites by state, ops by kind and outcome) are read from etcd at scrape
// time, so every controller reports the same, current numbers. The
// controller's own metrics carry its site as label "site"; the cluster-wide
// ones carry it as "reporter", and "site" names the site they describe.
type metrics struct {
	c *Controller

	leaseRemaining *prometheus.Desc
	coordinator    *prometheus.Desc
	state          *prometheus.Desc
	sites          *prometheus.Desc
	ops            *prometheus.Desc
	alarms         *prometheus.Desc
	siteState      *prometheus.Desc
	serviceSites   *prometheus.Desc
	writable       *prometheus.Desc
	guests         *prometheus.Desc
	coordinatorAt  *prometheus.Desc
	serviceSite    *prometheus.Desc
	opRunning      *prometheus.Desc
	opStep         *prometheus.Desc
	observerUp     *prometheus.Desc
	scrapeErrors   prometheus.Counter
	selfFences     prometheus.Counter
	failStatic     prometheus.Gauge
}

func newMetrics(c *Controller) *metrics {
	constLabels := prometheus.Labels{"site": c.site.Name}
	reporter := prometheus.Labels{"reporter": c.site.Name}
	return &metrics{
		c: c,
		leaseRemaining: prometheus.NewDesc("zdt_lease_remaining_seconds",
			"Time before this site's lease can expire at the etcd majority.", nil, constLabels),
		coordinator: prometheus.NewDesc("zdt_coordinator",
			"1 while this site's controller is the coordinator.", nil, constLabels),
		state: prometheus.NewDesc("zdt_controller_state",
			"1 for the state this site's controller is in.", []string{"state"}, constLabels),
		sites: prometheus.NewDesc("zdt_sites",
			"How many of the cluster's sites are in each state (up, dark, fenced).", []string{"state"}, reporter),
		ops: prometheus.NewDesc("zdt_ops",
			"Ops in the journal by kind and outcome.", []string{"kind", "outcome"}, reporter),
		alarms: prometheus.NewDesc("zdt_alarms",
			"Alarms of zdt status by kind and severity: a guest running where it is not placed, a writable member at a site that is not active, a service stranded at a fenced site.",
			[]string{"kind", "severity"}, reporter),
		siteState: prometheus.NewDesc("zdt_site_state",
			"1 for the state each site of the cluster is in (up, dark, fenced).", []string{"site", "state"}, reporter),
		serviceSites: prometheus.NewDesc("zdt_service_active_sites",
			"Sites each service is active at: 1 when it is served, 0 when it has no site that is up.", []string{"service"}, reporter),
		writable: prometheus.NewDesc("zdt_replication_writable_primaries",
			"Members of each replication group that report themselves writable: 1 is right, 0 is an outage, 2 or more a split brain.", []string{"group"}, reporter),
		guests: prometheus.NewDesc("zdt_guests_by_placement",
			"Guests by tier and placement state (running, preempted, unplaced, pending); a Gold guest not running is an SLA breach.", []string{"tier", "state"}, reporter),
		serviceSite: prometheus.NewDesc("zdt_service_site",
			"1 for the site each service is assigned to (whether or not that site is up), 0 for the other sites it may be served at.", []string{"service", "site"}, reporter),
		coordinatorAt: prometheus.NewDesc("zdt_site_coordinator",
			"1 for the site whose controller holds the coordinator election, 0 for the others: no 1 means no coordinator, and nothing fails over.", []string{"site"}, reporter),
		opRunning: prometheus.NewDesc("zdt_op_running_seconds",
			"How long each unfinished op has run, since it was created.", []string{"op", "kind"}, reporter),
		opStep: prometheus.NewDesc("zdt_op_step_running_seconds",
			"How long each unfinished op has been at its current step (a confirm step waits for a person, a wait for the sites).", []string{"op", "kind", "step"}, reporter),
		observerUp: prometheus.NewDesc("zdt_upstream_observer_up",
			"1 while the route observer's beat is in etcd (it runs and reaches etcd), 0 when it is not: its records of the upstream are then its last view, stale. Absent without an observer.", nil, reporter),
		scrapeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "zdt_metrics_cluster_read_errors_total",
			Help: "Scrapes that could not read the cluster's state from etcd.", ConstLabels: constLabels}),
		selfFences: prometheus.NewCounter(prometheus.CounterOpts{Name: "zdt_self_fences_total",
			Help: "Times this site's controller fenced itself.", ConstLabels: constLabels}),
		failStatic: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zdt_fail_static",
			Help: "1 while this site fails static: etcd has failed for every site, so it serves on in its current roles with its automation frozen.", ConstLabels: constLabels}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.leaseRemaining
	ch <- m.coordinator
	ch <- m.state
	ch <- m.sites
	ch <- m.ops
	ch <- m.alarms
	ch <- m.siteState
	ch <- m.serviceSites
	ch <- m.writable
	ch <- m.guests
	ch <- m.coordinatorAt
	ch <- m.serviceSite
	ch <- m.opRunning
	ch <- m.opStep
	ch <- m.observerUp
	m.scrapeErrors.Describe(ch)
	m.selfFences.Describe(ch)
	m.failStatic.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	info := m.c.member.Info()
	left := 0.0
	if !info.LeaseExpiry.IsZero() {
		left = max(0, time.Until(info.LeaseExpiry).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(m.leaseRemaining, prometheus.GaugeValue, left)
	ch <- prometheus.MustNewConstMetric(m.coordinator, prometheus.GaugeValue, boolValue(m.c.Leading()))
	for _, s := range []site.ControllerState{site.ControllerJoining, site.ControllerUp, site.ControllerSelfFenced, site.ControllerFenced, site.ControllerStopped} {
		ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, boolValue(info.State == s), string(s))
	}
	m.collectCluster(ch)
	m.scrapeErrors.Collect(ch)
	m.selfFences.Collect(ch)
	m.failStatic.Collect(ch)
}

func (m *metrics) collectCluster(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cfg := m.c.cfg.Cluster
	st, err := m.c.view.Status(ctx, cfg)
	if err != nil {
		m.scrapeErrors.Inc()
		return
	}
	if cfg.BGP.Observer != nil {
		if beat, ok, err := m.c.store.ObserverBeatNow(ctx); err != nil {
			m.scrapeErrors.Inc()
		} else {
			st.SetObserver(beat, ok)
		}
	}
	m.collectStatus(ch, st, time.Now())
}

// collectStatus sends the cluster-wide metrics of a status read at now.
func (m *metrics) collectStatus(ch chan<- prometheus.Metric, st site.Status, now time.Time) {
	states := []site.SiteState{site.SiteUp, site.SiteDark, site.SiteFenced}
	byState := map[site.SiteState]int{site.SiteUp: 0, site.SiteDark: 0, site.SiteFenced: 0}
	up := map[string]bool{}
	for _, s := range st.Sites {
		byState[s.State]++
		up[s.Name] = s.State == site.SiteUp
		for _, state := range states {
			ch <- prometheus.MustNewConstMetric(m.siteState, prometheus.GaugeValue, boolValue(s.State == state), s.Name, string(state))
		}
		ch <- prometheus.MustNewConstMetric(m.coordinatorAt, prometheus.GaugeValue, boolValue(s.Coordinator), s.Name)
	}
	for _, svc := range st.Services {
		ch <- prometheus.MustNewConstMetric(m.serviceSites, prometheus.GaugeValue, boolValue(svc.Active != "" && up[svc.Active]), svc.Name)
		for _, s := range svc.Sites {
			ch <- prometheus.MustNewConstMetric(m.serviceSite, prometheus.GaugeValue, boolValue(s == svc.Active), svc.Name, s)
		}
	}
	for _, g := range st.Replication {
		n := 0
		for _, mem := range g.Members {
			if mem.Writable {
				n++
			}
		}
		ch <- prometheus.MustNewConstMetric(m.writable, prometheus.GaugeValue, float64(n), g.Group)
	}
	type guestKey struct{ tier, state string }
	guests := map[guestKey]int{}
	for _, g := range st.Guests {
		guests[guestKey{g.Tier, g.State}]++
	}
	for k, n := range guests {
		ch <- prometheus.MustNewConstMetric(m.guests, prometheus.GaugeValue, float64(n), k.tier, k.state)
	}
	for state, n := range byState {
		ch <- prometheus.MustNewConstMetric(m.sites, prometheus.GaugeValue, float64(n), string(state))
	}
	for _, oc := range st.OpCounts {
		ch <- prometheus.MustNewConstMetric(m.ops, prometheus.GaugeValue, float64(oc.Count), oc.Kind, string(oc.Outcome))
	}
	m.collectOps(ch, st.Ops, now)
	if st.Observer != nil {
		ch <- prometheus.MustNewConstMetric(m.observerUp, prometheus.GaugeValue, boolValue(st.Observer.Running))
	}
	type alarmKey struct{ kind, severity string }
	alarms := map[alarmKey]int{}
	for _, a := range st.Alarms {
		alarms[alarmKey{string(a.Kind), string(a.Severity)}]++
	}
	for k, n := range alarms {
		ch <- prometheus.MustNewConstMetric(m.alarms, prometheus.GaugeValue, float64(n), k.kind, k.severity)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
