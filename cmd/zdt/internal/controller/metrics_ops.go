package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zdt-project/zdt/site"
)

// The cluster-wide metrics of time: how long ops have run and been at a
// step, how old the route observer's records are.

// collectOps sends how long each unfinished op has run, and has been at its
// step.
func (m *metrics) collectOps(ch chan<- prometheus.Metric, ops []site.OpStatus, now time.Time) {
	for _, op := range ops {
		ch <- prometheus.MustNewConstMetric(m.opRunning, prometheus.GaugeValue, age(now, op.Created), op.ID, op.Kind)
		if op.Step != "" {
			ch <- prometheus.MustNewConstMetric(m.opStep, prometheus.GaugeValue, age(now, op.StepSince), op.ID, op.Kind, op.Step)
		}
	}
}

// age is the time from then to now in seconds, 0 when then is unknown or
// ahead (another host's clock).
func age(now, then time.Time) float64 {
	if then.IsZero() {
		return 0
	}
	return max(0, now.Sub(then).Seconds())
}
