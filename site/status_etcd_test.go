package site_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestEtcdMembers: the status lists every etcd member with its database's
// sizes and quota, and which one leads, whether the client knows every
// member or, like a controller's, its own alone.
func TestEtcdMembers(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{})
	for _, tc := range []struct {
		name      string
		endpoints []string
	}{
		{"every endpoint", nil},
		{"one endpoint", []string{etcd.Endpoint("b")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := site.NewClient(etcd.Config, tc.endpoints, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			st, err := site.NewStore(client, etcd.Config.Name).Status(t.Context(), etcd.Config)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			leaders := 0
			for _, m := range st.EtcdMembers {
				names = append(names, m.Name)
				if m.Endpoint != etcd.Endpoint(m.Name) || m.Error != "" || m.DBSize <= 0 || m.InUse <= 0 || m.InUse > m.DBSize || m.Quota != 2<<30 {
					t.Errorf("member %+v: want its endpoint, sizes and the default quota (2 GiB)", m)
				}
				if m.Leader {
					leaders++
					if m.Name != etcd.Leader() {
						t.Errorf("member %s shown leading; %s leads", m.Name, etcd.Leader())
					}
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"a", "b", "c"}) || leaders != 1 {
				t.Errorf("members %v, %d leading; want a, b, c, one leading", names, leaders)
			}
			for _, r := range st.Health.Reasons {
				if strings.Contains(r, "etcd") {
					t.Errorf("health says %q of a new cluster", r)
				}
			}
		})
	}
}

// TestEtcdMembersDark: a member that is down is shown with its error at
// once (its connection is refused), an endpoint that accepts connections
// and never answers with its error within a second, or 100 ms when its
// site is down; the others with their sizes.
func TestEtcdMembersDark(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{})
	etcd.KillMember("c")
	client, err := site.NewClient(etcd.Config, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	hung := "http://" + sitetest.Blackhole(t)
	start := time.Now()
	got := site.ReadEtcdMembers(t.Context(), client, []site.EtcdMember{
		{Name: "a", Endpoint: etcd.Endpoint("a")},
		{Name: "c", Endpoint: etcd.Endpoint("c")},
		{Name: "hung", Endpoint: hung},
		{Name: "unstarted"},
	}, nil)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("reading the members took %s; want about a second at most", took)
	}
	if got[0].Error != "" || got[0].DBSize <= 0 {
		t.Errorf("member a: %+v; want its sizes", got[0])
	}
	for _, m := range got[1:] {
		want := map[string]string{"c": "connection refused", "hung": "no answer in 1s", "unstarted": "no client URL"}[m.Name]
		if m.DBSize != 0 || m.Leader || !strings.Contains(m.Error, want) {
			t.Errorf("member %s: %+v; want an error with %q and no sizes", m.Name, m, want)
		}
	}

	// The member of a site that is down is waited for 100 ms.
	got = site.ReadEtcdMembers(t.Context(), client, []site.EtcdMember{{Name: "hung", Endpoint: hung}}, site.KnownDown("hung"))
	if !strings.Contains(got[0].Error, "no answer in 100ms (site hung is not up)") {
		t.Errorf("member hung, its site down: %+v; want no answer in 100ms", got[0])
	}

	// Through the status: c is listed, with its error; a and b answer.
	st, err := site.NewStore(client, etcd.Config.Name).Status(t.Context(), etcd.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.EtcdMembers {
		switch {
		case m.Name == "c" && !(strings.HasPrefix(m.Error, "cannot connect: dial tcp ") && strings.HasSuffix(m.Error, "connection refused")):
			t.Errorf("member c in the status: %+v; want cannot connect: dial tcp ...: connection refused", m)
		case m.Name != "c" && (m.Error != "" || m.DBSize <= 0):
			t.Errorf("member %s in the status: %+v; want its sizes", m.Name, m)
		}
	}
	if len(st.EtcdMembers) != 3 {
		t.Errorf("etcd members %+v; want a, b and c", st.EtcdMembers)
	}
}

// TestJudgeEtcdQuota: a member's database above 90% of its quota makes the
// cluster degraded, saying which and how full; one at 85% does not, nor
// one whose status could not be read, nor one without a quota.
func TestJudgeEtcdQuota(t *testing.T) {
	st := site.Status{
		Sites: []site.SiteStatus{{Name: "a", State: site.SiteUp}},
		EtcdMembers: []site.EtcdMember{
			{Name: "a", DBSize: 85 << 20, InUse: 10 << 20, Quota: 100 << 20},
			{Name: "b", Error: "context deadline exceeded"},
			{Name: "c", DBSize: 5 << 30, Quota: -1},
		},
	}
	if h := st.Judge(); h.State != site.HealthHealthy {
		t.Errorf("members at 85%%, unread and without quota: %+v; want healthy", h)
	}
	st.EtcdMembers[0].DBSize = 1946 << 20
	st.EtcdMembers[0].InUse = 120 << 20
	st.EtcdMembers[0].Quota = 2 << 30
	h := st.Judge()
	want := "etcd member a's db 1.9 GiB (120.0 MiB in use), 95% of the 2.0 GiB quota: at the quota etcd refuses every write"
	if h.State != site.HealthDegraded || !slices.Contains(h.Reasons, want) {
		t.Errorf("member at 95%%: %+v; want degraded, saying %q", h, want)
	}
	if s := st.EtcdMembers[2].Sizes(); !strings.Contains(s, "5.0 GiB") || !strings.Contains(s, "no quota") {
		t.Errorf("sizes without a quota: %q", s)
	}
}
