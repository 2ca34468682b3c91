package announcer

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdt-project/zdt/bgp/speaker"
)

// metrics is the announcer's Prometheus collector.
type metrics struct {
	applies    *prometheus.CounterVec
	applyTime  prometheus.Histogram
	changes    *prometheus.CounterVec
	announced  *prometheus.Desc
	prepends   *prometheus.Desc
	peerUp     *prometheus.Desc
	site       string
	mu         sync.Mutex
	lastDs     []decided
	lastPeers  []speaker.PeerStatus
	collectors []prometheus.Collector
}

func newMetrics(site string) *metrics {
	labels := prometheus.Labels{"site": site}
	m := &metrics{
		site: site,
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdt_bgp_applies_total", Help: "Applications of the wanted announcements to the speaker, by result.", ConstLabels: labels,
		}, []string{"result"}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "zdt_bgp_apply_seconds", Help: "Time to apply the wanted announcements to the speaker.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdt_bgp_route_changes_total", Help: "Routes announced, replaced (prepends changed) or withdrawn.", ConstLabels: labels,
		}, []string{"change"}),
		announced: prometheus.NewDesc("zdt_bgp_announced_prefixes", "Prefixes the site announces.", nil, labels),
		prepends: prometheus.NewDesc("zdt_bgp_prefix_prepends",
			"Copies of the local AS the site prepends to a prefix it announces (the upstream sees one more).", []string{"service", "prefix", "cause"}, labels),
		peerUp: prometheus.NewDesc("zdt_bgp_peer_up", "1 while the BGP session to the peer is established.", []string{"peer", "state"}, labels),
	}
	m.collectors = []prometheus.Collector{m.applies, m.applyTime, m.changes}
	return m
}

func (m *metrics) observeApply(d time.Duration, diff speaker.Diff, err error) {
	m.applyTime.Observe(d.Seconds())
	if err != nil {
		m.applies.WithLabelValues("error").Inc()
	} else {
		m.applies.WithLabelValues("ok").Inc()
	}
	m.changes.WithLabelValues("announced").Add(float64(diff.Announced))
	m.changes.WithLabelValues("replaced").Add(float64(diff.Replaced))
	m.changes.WithLabelValues("withdrawn").Add(float64(diff.Withdrawn))
}

func (m *metrics) setAnnouncements(ds []decided) {
	m.mu.Lock()
	m.lastDs = ds
	m.mu.Unlock()
}

func (m *metrics) setPeers(ps []speaker.PeerStatus) {
	m.mu.Lock()
	m.lastPeers = ps
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
	ch <- m.announced
	ch <- m.prepends
	ch <- m.peerUp
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, d := range m.lastDs {
		if d.Announce {
			n++
			ch <- prometheus.MustNewConstMetric(m.prepends, prometheus.GaugeValue, float64(d.Prepends), d.service, d.Prefix.String(), d.Cause.String())
		}
	}
	ch <- prometheus.MustNewConstMetric(m.announced, prometheus.GaugeValue, float64(n))
	for _, p := range m.lastPeers {
		up := 0.0
		if p.State == "established" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.peerUp, prometheus.GaugeValue, up, p.Address.String(), p.State)
	}
}
