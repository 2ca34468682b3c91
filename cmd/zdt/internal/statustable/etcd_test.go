package statustable

import (
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
)

// TestStatusTableEtcdMembers: under the health and etcd's alarms, one
// line per etcd member with its database's size, the part in use, its
// quota and whether it leads; a warning for a member over 80% of its
// quota, and the error of one that could not be read.
func TestStatusTableEtcdMembers(t *testing.T) {
	st := site.Status{
		Cluster: "t",
		Sites:   []site.SiteStatus{{Name: "a", State: site.SiteUp, LeaseRemainingMS: -1}},
		EtcdMembers: []site.EtcdMember{
			{Name: "a", Endpoint: "https://10.0.1.1:2379", DBSize: 48 << 20, InUse: 12 << 20, Quota: 2 << 30, Leader: true},
			{Name: "b", Endpoint: "https://10.0.2.1:2379", DBSize: 1782 << 20, InUse: 300 << 20, Quota: 2 << 30},
			{Name: "c", Endpoint: "https://10.0.3.1:2379", Error: "no answer in 1s: context deadline exceeded"},
		},
	}
	st.Health = st.Judge()
	if st.Health.State != site.HealthHealthy {
		t.Errorf("health %s (%v); want healthy", st.Health.State, st.Health.Reasons)
	}
	var b strings.Builder
	if err := writeStatusTable(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `cluster t   coordinator (none)   revision 0
HEALTH HEALTHY

ETCD MEMBER a  db 48.0 MiB (12.0 MiB in use), 2% of the 2.0 GiB quota, leader
ETCD MEMBER b  db 1.7 GiB (300.0 MiB in use), 87% of the 2.0 GiB quota   WARNING over 80% of the quota, where etcd refuses every write: see docs/operations.md, etcd's database
ETCD MEMBER c  not read (https://10.0.3.1:2379): no answer in 1s: context deadline exceeded

SITE  STATE`
	if got := b.String(); !strings.HasPrefix(got, want) {
		t.Errorf("status table starts\n%s\nwant\n%s", got, want)
	}

	// A member without a leader: said on its line, and the cluster is
	// degraded for it.
	st.EtcdMembers[1] = site.EtcdMember{Name: "b", Endpoint: "https://10.0.2.1:2379", DBSize: 48 << 20, InUse: 12 << 20, Quota: 2 << 30, NoLeader: true}
	st.Health = st.Judge()
	b.Reset()
	if err := writeStatusTable(&b, st); err != nil {
		t.Fatal(err)
	}
	if line := "ETCD MEMBER b  db 48.0 MiB (12.0 MiB in use), 2% of the 2.0 GiB quota, NO LEADER: cut off from the other members?"; !strings.Contains(b.String(), line) {
		t.Errorf("status table:\n%s\nwant a line starting %q", b.String(), line)
	}
	if st.Health.State != site.HealthDegraded || !strings.Contains(strings.Join(st.Health.Reasons, "; "), "etcd member b has no leader") {
		t.Errorf("health %s (%v); want degraded for b's member", st.Health.State, st.Health.Reasons)
	}

	st.EtcdMembers = nil
	b.Reset()
	if err := writeStatusTable(&b, st); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ETCD") {
		t.Errorf("status table without etcd members:\n%s", b.String())
	}
}
