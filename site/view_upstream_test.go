package site_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestViewHoldsTheObserversRecords: the view follows the route observer's
// records too, and a status built from it is the one built from etcd.
func TestViewHoldsTheObserversRecords(t *testing.T) {
	s, cl, ctx := setup(t)
	v := runView(t, s)
	cfg := *cl.Config
	cfg.BGP.Observer = &config.Observer{}
	sameStatus := func(after string) {
		t.Helper()
		_, routes, err := v.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.Upstream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, routes); diff != "" {
			t.Errorf("after %s: the view's observer records differ from etcd's (-etcd +view):\n%s", after, diff)
		}
		fromEtcd, err := s.Status(ctx, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		fromView, err := s.StatusFrom(ctx, &cfg, v)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fromEtcd.Upstream, fromView.Upstream); diff != "" {
			t.Errorf("after %s: the status's upstream lines differ (-etcd +view):\n%s", after, diff)
		}
		if diff := cmp.Diff(fromEtcd.Services, fromView.Services); diff != "" {
			t.Errorf("after %s: the status's services differ (-etcd +view):\n%s", after, diff)
		}
	}
	sameStatus("nothing")

	g, _ := elect(t, ctx, s, "a")
	join(t, ctx, s, "a")
	if _, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a"}); err != nil {
		t.Fatal(err)
	}
	route := site.UpstreamRoute{Prefix: "203.0.113.0/26", BestSite: "a", ASPath: []uint32{64512}, Paths: []site.UpstreamPath{{Site: "a", Best: true}}, Observed: time.Now().UTC()}
	if _, err := s.PutUpstream(ctx, []site.UpstreamRoute{route}, nil); err != nil {
		t.Fatal(err)
	}
	sameStatus("a record written")
	before, held, err := v.State(ctx)
	if err != nil || before == nil {
		t.Fatal(err)
	}

	moved := route
	moved.BestSite, moved.Paths = "b", []site.UpstreamPath{{Site: "b", Best: true}}
	if _, err := s.PutUpstream(ctx, []site.UpstreamRoute{moved}, nil); err != nil {
		t.Fatal(err)
	}
	sameStatus("the record changed")
	if got := held["203.0.113.0/26"].BestSite; got != "a" {
		t.Errorf("records read before the change say best site %q; want a (they must not change)", got)
	}
	if _, err := s.PutUpstream(ctx, nil, []string{"203.0.113.0/26"}); err != nil {
		t.Fatal(err)
	}
	sameStatus("the record deleted")
	_, routes, err := v.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 0 || len(held) != 1 {
		t.Errorf("after the delete the view holds %v, the records read before %v; want none and one", routes, held)
	}
}
