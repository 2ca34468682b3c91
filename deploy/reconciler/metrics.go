package reconciler

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// metrics counts the site's guests by tier and state.
type metrics struct {
	guests      *prometheus.Desc
	hostsFailed *prometheus.Desc
	preemptions prometheus.Counter

	mu     sync.Mutex
	counts map[[2]string]int // tier, state -> guests
	failed int
}

func newMetrics(siteName string) *metrics {
	labels := prometheus.Labels{"site": siteName}
	return &metrics{
		guests: prometheus.NewDesc("zdt_guests", "Guests on this site's hosts by tier and state.",
			[]string{"tier", "state"}, labels),
		hostsFailed: prometheus.NewDesc("zdt_hosts_failed", "This site's hosts that stopped answering.", nil, labels),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{Name: "zdt_guest_preemptions_total",
			Help: "Guests this site stopped because they were preempted for a higher tier.", ConstLabels: labels}),
		counts: map[[2]string]int{},
	}
}

func (m *metrics) observe(report site.HostsReport, guests map[string]config.Guest) {
	counts := map[[2]string]int{}
	failed := 0
	for _, h := range report.Hosts {
		if h.Failed {
			failed++
		}
		for _, g := range h.Running {
			counts[[2]string{guests[g.Name].Tier, "running"}]++
		}
	}
	m.mu.Lock()
	m.counts, m.failed = counts, failed
	m.mu.Unlock()
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.guests
	ch <- m.hostsFailed
	m.preemptions.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tier := range []string{config.TierGold, config.TierSilver, config.TierBronze} {
		ch <- prometheus.MustNewConstMetric(m.guests, prometheus.GaugeValue, float64(m.counts[[2]string{tier, "running"}]), tier, "running")
	}
	ch <- prometheus.MustNewConstMetric(m.hostsFailed, prometheus.GaugeValue, float64(m.failed))
	m.preemptions.Collect(ch)
}
