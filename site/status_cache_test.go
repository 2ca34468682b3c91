package site_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// A status built from a view is built once for each state of the records:
// beats leave it as it was, while a change to a record, the observer's or
// a lease's time left shows in the very next status.
func TestStatusFromViewIsBuiltOncePerState(t *testing.T) {
	s, cl, ctx := setup(t)
	v := runView(t, s)
	cfg := *cl.Config
	cfg.BGP.Observer = &config.Observer{}
	g, _ := elect(t, ctx, s, "a")
	lease := join(t, ctx, s, "a")
	atA, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a"})
	if err != nil {
		t.Fatal(err)
	}
	status := func() site.Status {
		t.Helper()
		st, err := s.StatusFrom(ctx, &cfg, v)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// shared reports whether two statuses share their records' lists,
	// which only a status built once can.
	shared := func(x, y site.Status) bool {
		return &x.Services[0] == &y.Services[0] && &x.Upstream[0] == &y.Upstream[0]
	}
	// same fails the test unless the view's status is the one built from
	// etcd's records, but for what the clock moves.
	same := func(after string, got site.Status) {
		t.Helper()
		want, err := s.Status(ctx, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []*site.Status{&want, &got} {
			st.EtcdMembers = nil
			for i := range st.Sites {
				st.Sites[i].LeaseRemainingMS = 0
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after %s: the status from the view differs from etcd's (-etcd +view):\n%s", after, diff)
		}
	}

	first := status()
	same("the assignment", first)
	if first.Services[0].Active != "a" {
		t.Fatalf("web is active at %q; want a", first.Services[0].Active)
	}
	for range 3 {
		if err := s.Beat(ctx, "a", "test", lease); err != nil {
			t.Fatal(err)
		}
	}
	again := status()
	if again.Revision <= first.Revision {
		t.Fatalf("the status after three beats is of revision %d; want after %d", again.Revision, first.Revision)
	}
	if !shared(first, again) {
		t.Error("the status was built anew after beats alone")
	}
	if &first.Sites[0] == &again.Sites[0] {
		t.Error("two statuses share their sites, whose leases' time left differs")
	}
	if a := again.Sites[0]; a.Name != "a" || a.LeaseRemainingMS <= 0 {
		t.Errorf("site %s has %d ms left on its lease; want a, with time left", a.Name, a.LeaseRemainingMS)
	}

	// A record changes: the next status says so.
	if _, err := s.Assign(ctx, g, atA, site.Assignment{Service: "web", Site: "b"}); err != nil {
		t.Fatal(err)
	}
	moved := status()
	if shared(again, moved) || moved.Services[0].Active != "b" {
		t.Errorf("after the assignment changed: web active at %q (shared with the status before: %v); want b, built anew",
			moved.Services[0].Active, shared(again, moved))
	}
	same("the assignment changed", moved)

	// The observer's record changes: so does the next status.
	route := site.UpstreamRoute{Prefix: "203.0.113.0/26", BestSite: "b", ASPath: []uint32{64512}, Paths: []site.UpstreamPath{{Site: "b", Best: true}}, Observed: time.Now().UTC()}
	if _, err := s.PutUpstream(ctx, []site.UpstreamRoute{route}, nil); err != nil {
		t.Fatal(err)
	}
	observed := status()
	if u := observed.Upstream[0]; u.BestSite != "b" || shared(moved, observed) {
		t.Errorf("after the observer's record: best site %q (shared with the status before: %v); want b, built anew",
			u.BestSite, shared(moved, observed))
	}
	same("the observer's record", observed)
	if first.Services[0].Active != "a" || first.Upstream[0].BestSite != "" {
		t.Errorf("the first status changed after it was handed out: web active at %q, best site %q",
			first.Services[0].Active, first.Upstream[0].BestSite)
	}
}
