package statustable

import (
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestStatusTableAlarms: the alarms come first, and a status without alarms
// has no such section; a confirmed fence says who confirmed it.
func TestStatusTableAlarms(t *testing.T) {
	st := site.Status{
		Cluster:     "t",
		Revision:    7,
		Coordinator: "a",
		Sites: []site.SiteStatus{
			{Name: "a", State: site.SiteUp, Controller: site.ControllerUp, LeaseRemainingMS: 2000, Coordinator: true, Joined: true},
			{Name: "c", State: site.SiteFenced, LeaseRemainingMS: -1, Joined: true, Fence: &site.Fence{
				Site: "c", Op: "op-1", At: time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC), Reason: "lease expired",
				Confirmed: &site.Confirmation{By: "operator:ann@noc1", At: time.Date(2026, 12, 2, 3, 50, 0, 0, time.UTC)},
			}},
		},
		Services: []site.ServiceStatus{{Name: "db", Active: "a", Epoch: 42, Sites: []string{"a", "c"}}},
		Alarms: []site.Alarm{
			{Kind: site.AlarmGuestTwice, Severity: site.AlarmCritical, Subject: "web-1", Site: "b",
				Message: "guest web-1 runs on host b1 at site b and also on host a1 at site a; it is placed on host a1 at site a"},
			{Kind: site.AlarmWritableTwice, Severity: site.AlarmWarning, Subject: "pg", Site: "c", Stale: true,
				Message: "replication group pg: the member at site c (stale: site c is dark; its last report was written at 03:12:45 UTC, 42m0s ago) is writable (role primary), but the group's services are active elsewhere: db at site a (epoch 42); also writable: the member at site a; operator:ann@noc1 confirmed site c dark at 2026-12-02T03:50:00Z"},
		},
	}
	st.Health = st.Judge()
	var b strings.Builder
	if err := writeStatusTable(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `cluster t   coordinator a   revision 7
HEALTH DEGRADED: site c is fenced; 1 critical alarm(s); 1 warning alarm(s)

ALARM     KIND                  SUBJECT  SITE  WHAT
CRITICAL  guest-runs-twice      web-1    b     guest web-1 runs on host b1 at site b and also on host a1 at site a; it is placed on host a1 at site a
WARNING   two-writable-members  pg       c     replication group pg: the member at site c (stale: site c is dark; its last report was written at 03:12:45 UTC, 42m0s ago) is writable (role primary), but the group's services are active elsewhere: db at site a (epoch 42); also writable: the member at site a; operator:ann@noc1 confirmed site c dark at 2026-12-02T03:50:00Z

SITE  STATE   CONTROLLER  LEASE  NOTE
a     up      up          2s     coordinator
c     fenced  -           -      fenced by op op-1 at 2026-12-02T03:13:00Z: lease expired; confirmed dark by operator:ann@noc1 at 2026-12-02T03:50:00Z
`
	if got := b.String(); !strings.HasPrefix(got, want) {
		t.Errorf("status table starts\n%s\nwant\n%s", got, want)
	}

	st.Alarms = []site.Alarm{}
	b.Reset()
	if err := writeStatusTable(&b, st); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ALARM ") {
		t.Errorf("status table without alarms:\n%s", b.String())
	}
}

// TestStatusTableInsecure: a cluster that runs without TLS says so, right
// under its health, on every status.
func TestStatusTableInsecure(t *testing.T) {
	st := site.Status{Cluster: "t", Insecure: []string{"etcd (http://127.0.0.1:2001)", "the API of site a (http://127.0.0.1:7001)"}}
	st.Health = st.Judge()
	var b strings.Builder
	if err := writeStatusTable(&b, st); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	want := "INSECURE (insecure_plaintext: true): no TLS on etcd (http://127.0.0.1:2001), the API of site a (http://127.0.0.1:7001)."
	if len(lines) < 3 || !strings.HasPrefix(lines[3], want) {
		t.Errorf("status table:\n%s\nwant its fourth line to start %q", b.String(), want)
	}
}

// TestStatusTableStaleObserver: without the observer's beat, its view of
// the upstream is shown as stale.
func TestStatusTableStaleObserver(t *testing.T) {
	st := site.Status{
		Cluster:  "t",
		Sites:    []site.SiteStatus{{Name: "a", State: site.SiteUp, Joined: true}},
		Services: []site.ServiceStatus{{Name: "web", Active: "a", Sites: []string{"a"}, Prefixes: []string{"203.0.113.0/26"}}},
		Upstream: []site.UpstreamStatus{{Prefix: "203.0.113.0/26", Service: "web", Active: "a", BestSite: "a", ASPath: []uint32{64601}}},
	}
	for _, running := range []bool{true, false} {
		st.SetObserver(site.ObserverBeat{}, running)
		var b strings.Builder
		if err := writeStatusTable(&b, st); err != nil {
			t.Fatal(err)
		}
		stale := strings.Contains(b.String(), "THE ROUTE OBSERVER IS NOT RUNNING") && strings.Contains(b.String(), "a (stale)")
		if stale == running {
			t.Errorf("observer running %v: the table says\n%s", running, b.String())
		}
	}
}

// TestViewQuery: a view as GET /status's query has the filters as given
// and all; the whole view has none.
func TestViewQuery(t *testing.T) {
	filter, err := NewFilter(largeConfig(3), []string{"svc-0000", "svc-0002"}, []string{"c"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := (View{Filter: filter, All: true}).Query().Encode(), "all=true&problems=true&service=svc-0000%2Csvc-0002&site=c"; got != want {
		t.Errorf("query %s, want %s", got, want)
	}
	if got := (View{}).Query().Encode(); got != "" {
		t.Errorf("the whole view's query %q, want none", got)
	}
}
