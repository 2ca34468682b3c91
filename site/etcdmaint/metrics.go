package etcdmaint

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// metrics are the loop's Prometheus metrics: the member's sizes as its
// last pass read them, etcd's alarms, and what the passes did.
type metrics struct {
	dbSize  prometheus.Gauge
	inUse   prometheus.Gauge
	quota   prometheus.Gauge
	alarm   *prometheus.GaugeVec
	defrags *prometheus.CounterVec
	errors  prometheus.Counter
}

// alarmTypes are the alarms exported, 0 or 1 each.
func alarmTypes() []etcdserverpb.AlarmType {
	return []etcdserverpb.AlarmType{etcdserverpb.AlarmType_NOSPACE, etcdserverpb.AlarmType_CORRUPT}
}

func newMetrics(labels prometheus.Labels) *metrics {
	return &metrics{
		dbSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zdt_etcd_db_size_bytes",
			Help:        "Size of this site's etcd member's database file, free pages included: what etcd's quota is measured on.",
			ConstLabels: labels}),
		inUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zdt_etcd_db_size_in_use_bytes",
			Help:        "Part of this site's etcd member's database in use; a defragmentation shrinks the file to about this.",
			ConstLabels: labels}),
		quota: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zdt_etcd_quota_bytes",
			Help:        "Database quota of this site's etcd member: at it, etcd raises NOSPACE and refuses every write.",
			ConstLabels: labels}),
		alarm: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "zdt_etcd_alarm",
			Help:        "1 while etcd holds the alarm for any member (NOSPACE: every write refused; CORRUPT: a member's data differs).",
			ConstLabels: labels}, []string{"alarm"}),
		defrags: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zdt_etcd_defrags_total",
			Help:        "Defragmentations of this site's etcd member by result: ok, failed, no_lock (another member held the lock: tried again next pass), too_long (not started: it would stop the member too long).",
			ConstLabels: labels}, []string{"result"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "zdt_etcd_maintenance_errors_total",
			Help:        "Maintenance passes of this site's etcd member that failed: its status or etcd's alarms not read, the lock, a defragmentation or a disarm failed.",
			ConstLabels: labels}),
	}
}

// register registers every metric, each with its series at 0, or none.
func (m *metrics) register(reg prometheus.Registerer) error {
	for _, a := range alarmTypes() {
		m.alarm.WithLabelValues(a.String())
	}
	for _, r := range []string{DefragOK, DefragFailed, DefragNoLock, DefragTooLong} {
		m.defrags.WithLabelValues(r)
	}
	cs := []prometheus.Collector{m.dbSize, m.inUse, m.quota, m.alarm, m.defrags, m.errors}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) observeSizes(s Sizes) {
	m.dbSize.Set(float64(s.DB))
	m.inUse.Set(float64(s.InUse))
	m.quota.Set(float64(s.Quota))
}

func (m *metrics) observeAlarms(alarms []*etcdserverpb.AlarmMember) {
	for _, a := range alarmTypes() {
		m.alarm.WithLabelValues(a.String()).Set(boolValue(holds(alarms, 0, a)))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
