package reconciler

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/zdt-project/zdt/replication"
)

// TestRPOLimitMetrics: the group's RPO limits are exported beside the
// member's lag, with the same labels, so that an alert can compare them; a
// group without a limit (negative) exports none.
func TestRPOLimitMetrics(t *testing.T) {
	m := newMetrics("c")
	m.observe("pg", replication.RPOPolicy{MaxLagBytes: 16 << 20, MaxLagSeconds: 30}, true,
		replication.Status{Role: replication.RoleStandby, LagBytes: 20 << 20, LagSeconds: 12.5, Healthy: true})
	m.observe("nolimit", replication.RPOPolicy{MaxLagBytes: -1, MaxLagSeconds: -1}, false, replication.Status{})
	want := `
# HELP zdt_replication_lag_bytes How far this site's member of the group is behind its primary, in bytes.
# TYPE zdt_replication_lag_bytes gauge
zdt_replication_lag_bytes{group="nolimit",site="c"} 0
zdt_replication_lag_bytes{group="pg",site="c"} 2.097152e+07
# HELP zdt_replication_rpo_max_lag_bytes The group's RPO limit in bytes (the strictest of its services' rpo.max_lag_bytes): a standby further behind may not be promoted without --force. Absent when the group has no limit.
# TYPE zdt_replication_rpo_max_lag_bytes gauge
zdt_replication_rpo_max_lag_bytes{group="pg",site="c"} 1.6777216e+07
# HELP zdt_replication_rpo_max_lag_seconds The group's RPO limit in seconds (the strictest of its services' rpo.max_lag_seconds): a standby further behind may not be promoted without --force. Absent when the group has no limit.
# TYPE zdt_replication_rpo_max_lag_seconds gauge
zdt_replication_rpo_max_lag_seconds{group="pg",site="c"} 30
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want),
		"zdt_replication_lag_bytes", "zdt_replication_rpo_max_lag_bytes", "zdt_replication_rpo_max_lag_seconds"); err != nil {
		t.Error(err)
	}
}
