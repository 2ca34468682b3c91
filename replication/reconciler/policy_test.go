package reconciler

import (
	"strings"
	"testing"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestGroupPolicy: a group's policy is the strictest of its services', and
// a synchronous group requires a synchronous (sure to hold everything)
// standby whatever its services say.
func TestGroupPolicy(t *testing.T) {
	cl := &config.Cluster{
		Services: []config.Service{
			{Name: "db", ReplicationGroup: "pg", RPO: config.RPO{MaxLagBytes: 1000, MaxLagSeconds: 30}},
			{Name: "report", ReplicationGroup: "pg", RPO: config.RPO{MaxLagBytes: 500, MaxLagSeconds: -1}},
			{Name: "ledger", ReplicationGroup: "sync", RPO: config.RPO{MaxLagBytes: 1000, MaxLagSeconds: 30}},
		},
		Replication: []config.ReplicationGroup{{Name: "pg"}, {Name: "sync", Synchronous: true}},
	}
	for _, tt := range []struct {
		group string
		want  replication.RPOPolicy
	}{
		{"pg", replication.RPOPolicy{MaxLagBytes: 500, MaxLagSeconds: 30}},
		{"sync", replication.RPOPolicy{MaxLagBytes: 1000, MaxLagSeconds: 30, RequireSync: true}},
		{"unused", replication.RPOPolicy{MaxLagBytes: config.DefaultMaxLagBytes, MaxLagSeconds: config.DefaultMaxLagSeconds}},
	} {
		if got := GroupPolicy(cl, tt.group); got != tt.want {
			t.Errorf("GroupPolicy(%s) = %+v; want %+v", tt.group, got, tt.want)
		}
	}
}

// TestSyncHolderFromReports: the coordinator's view, from the reports
// alone: of two standbys the dead primary waited for, only the one that
// holds more WAL holds everything.
func TestSyncHolderFromReports(t *testing.T) {
	reports := map[string]site.ReplicationReport{
		"a": {Members: []site.MemberReport{{Group: "pg", Role: "primary", SyncStandbys: []string{"b", "c"}}}},
		"b": {Members: []site.MemberReport{{Group: "pg", Role: "standby", Epoch: 9, Position: "0/3000100"}}},
		"c": {Members: []site.MemberReport{{Group: "pg", Role: "standby", Epoch: 9, Position: "0/3000000"}}},
	}
	if ok, why := SyncHolder("pg", "b", "a", 9, reports); !ok {
		t.Errorf("b, the furthest: %q; want it to hold everything", why)
	}
	if ok, why := SyncHolder("pg", "c", "a", 9, reports); ok || !strings.Contains(why, "site b holds more WAL") {
		t.Errorf("c, behind b: %v, %q; want no, because b holds more", ok, why)
	}
	if ok, why := SyncHolder("pg", "d", "a", 9, reports); ok || !strings.Contains(why, "site d does not report its member") {
		t.Errorf("a site without a report: %v, %q", ok, why)
	}
}
