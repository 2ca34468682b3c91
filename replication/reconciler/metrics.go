package reconciler

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdt-project/zdt/replication"
)

// roles are the values of the role label.
var roles = []replication.Role{replication.RolePrimary, replication.RoleStandby, replication.RoleUnknown}

// metrics describe the site's members as last observed, and count the
// actions taken on them.
type metrics struct {
	lagBytes, lagSeconds, role, healthy *prometheus.Desc
	maxLagBytes, maxLagSeconds          *prometheus.Desc
	actions                             *prometheus.CounterVec

	mu      sync.Mutex
	members map[string]memberMetrics // by group
}

type memberMetrics struct {
	lagBytes   int64
	lagSeconds float64
	role       replication.Role
	healthy    bool
	// policy is the group's RPO: its limits are exported beside the lag.
	policy replication.RPOPolicy
}

func newMetrics(siteName string) *metrics {
	labels := prometheus.Labels{"site": siteName}
	return &metrics{
		lagBytes: prometheus.NewDesc("zdt_replication_lag_bytes",
			"How far this site's member of the group is behind its primary, in bytes.", []string{"group"}, labels),
		lagSeconds: prometheus.NewDesc("zdt_replication_lag_seconds",
			"How far this site's member of the group is behind its primary, in seconds (0 when caught up).", []string{"group"}, labels),
		role: prometheus.NewDesc("zdt_replication_role",
			"1 for the current role of this site's member of the group.", []string{"group", "role"}, labels),
		maxLagBytes: prometheus.NewDesc("zdt_replication_rpo_max_lag_bytes",
			"The group's RPO limit in bytes (the strictest of its services' rpo.max_lag_bytes): a standby further behind may not be promoted without --force. Absent when the group has no limit.", []string{"group"}, labels),
		maxLagSeconds: prometheus.NewDesc("zdt_replication_rpo_max_lag_seconds",
			"The group's RPO limit in seconds (the strictest of its services' rpo.max_lag_seconds): a standby further behind may not be promoted without --force. Absent when the group has no limit.", []string{"group"}, labels),
		healthy: prometheus.NewDesc("zdt_replication_healthy",
			"1 when this site's member of the group is healthy (a standby streaming, a primary accepting writes).", []string{"group"}, labels),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zdt_replication_actions_total",
			Help:        "Actions on this site's members: promote, fence, follow, and refuse (a promotion the RPO policy refused), by result.",
			ConstLabels: labels}, []string{"group", "action", "result"}),
		members: map[string]memberMetrics{},
	}
}

func (m *metrics) observe(group string, policy replication.RPOPolicy, ok bool, st replication.Status) {
	mm := memberMetrics{role: replication.RoleUnknown, policy: policy}
	if ok {
		mm = memberMetrics{lagBytes: st.LagBytes, lagSeconds: st.LagSeconds, role: st.Role, healthy: st.Healthy, policy: policy}
	}
	m.mu.Lock()
	m.members[group] = mm
	m.mu.Unlock()
}

// action counts one action; result is "ok" or "error" ("refused" for a
// refusal).
func (m *metrics) action(group, action, result string) {
	m.actions.WithLabelValues(group, action, result).Inc()
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.lagBytes
	ch <- m.lagSeconds
	ch <- m.role
	ch <- m.healthy
	ch <- m.maxLagBytes
	ch <- m.maxLagSeconds
	m.actions.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	for g, mm := range m.members {
		ch <- prometheus.MustNewConstMetric(m.lagBytes, prometheus.GaugeValue, float64(mm.lagBytes), g)
		ch <- prometheus.MustNewConstMetric(m.lagSeconds, prometheus.GaugeValue, mm.lagSeconds, g)
		for _, r := range roles {
			ch <- prometheus.MustNewConstMetric(m.role, prometheus.GaugeValue, b2f(mm.role == r), g, string(r))
		}
		ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, b2f(mm.healthy), g)
		// A negative limit is none.
		if mm.policy.MaxLagBytes >= 0 {
			ch <- prometheus.MustNewConstMetric(m.maxLagBytes, prometheus.GaugeValue, float64(mm.policy.MaxLagBytes), g)
		}
		if mm.policy.MaxLagSeconds >= 0 {
			ch <- prometheus.MustNewConstMetric(m.maxLagSeconds, prometheus.GaugeValue, mm.policy.MaxLagSeconds, g)
		}
	}
	m.mu.Unlock()
	m.actions.Collect(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
