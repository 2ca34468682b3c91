package observer

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestWriteRecoversWithoutRewriting: the observer's first publish, of many
// records, is blocked part-way (its etcd cut off: the write times out).
// Once etcd answers again, the next publishes, of the same routes with a
// newer time, write only what had not landed: every record is written
// once (the transaction in flight at the cut, at most, twice), then
// nothing while nothing changes, then only what changed.
func TestWriteRecoversWithoutRewriting(t *testing.T) {
	const cutAfter = 300 // records landed
	cl := sitetest.New(t, sitetest.Options{})
	proxy := cl.NewProxy("a")
	store := site.NewStore(cl.Client(proxy.URL), cl.Config.Name)
	o := &Observer{cfg: Config{Cluster: cl.Config, Store: store}, last: map[string]site.UpstreamRoute{}, log: zap.NewNop()}
	keys := site.NewKeys(cl.Config.Name)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// Count the writes of upstream records as etcd commits them.
	direct := cl.Client(cl.Endpoint("b"))
	records := keys.Upstream()
	sentinel := strings.TrimSuffix(records, "/") + "-sentinel" // beside the records, not among them
	var puts, batch atomic.Int64                               // records written; the most in one transaction
	seen := make(chan string, 16)
	watch := direct.Watch(ctx, strings.TrimSuffix(records, "/"), clientv3.WithPrefix())
	go func() {
		for wr := range watch {
			inTxn := map[int64]int64{}
			for _, ev := range wr.Events {
				switch {
				case string(ev.Kv.Key) == sentinel:
					seen <- string(ev.Kv.Value)
				case ev.Type == clientv3.EventTypePut && strings.HasPrefix(string(ev.Kv.Key), records):
					inTxn[ev.Kv.ModRevision]++
					batch.Store(max(batch.Load(), inTxn[ev.Kv.ModRevision]))
					if puts.Add(1) == cutAfter {
						seen <- "cut now"
					}
				}
			}
		}
	}()
	// settled waits until the watch has seen every write so far.
	settled := func(tag string) int64 {
		t.Helper()
		if _, err := direct.Put(ctx, sentinel, tag); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case got := <-seen:
				if got == tag {
					return puts.Load()
				}
			case <-ctx.Done():
				t.Fatalf("the watch did not see %s: %v", tag, ctx.Err())
			}
		}
	}

	const n = 2000
	routes := func(at time.Time, bestA int) map[string]site.UpstreamRoute {
		out := map[string]site.UpstreamRoute{}
		for i := range n {
			p := fmt.Sprintf("2001:db8:%x::/48", i)
			best := "b"
			if i < bestA {
				best = "a"
			}
			out[p] = site.UpstreamRoute{Prefix: p, BestSite: best, ASPath: []uint32{64602}, Observed: at}
		}
		return out
	}

	// Each transaction crosses the proxy slowly; once a few have landed,
	// etcd is cut off and the publish times out.
	proxy.Delay(20 * time.Millisecond)
	go func() {
		if <-seen == "cut now" {
			proxy.Cut()
		}
	}()
	err := o.write(ctx, routes(time.Now(), 0))
	if err == nil {
		t.Fatal("the first publish succeeded with etcd cut off part-way")
	}
	proxy.Heal()
	proxy.Delay(0)
	landed := settled("after the cut")
	if landed < cutAfter || landed >= n {
		t.Fatalf("%d of %d records landed before the cut; want some, not all", landed, n)
	}
	t.Logf("first publish: %d of %d records written before the cut (%v)", landed, n, err)

	// Publish as the observer does, pass after pass, until one succeeds
	// (on a loaded machine a pass may time out again): each failed pass
	// leaves at most one transaction in doubt.
	failed := int64(1)
	for err := o.write(ctx, routes(time.Now(), 0)); err != nil; err = o.write(ctx, routes(time.Now(), 0)) {
		if failed++; failed > 10 {
			t.Fatalf("10 publishes failed: %v", err)
		}
	}
	total := settled("second")
	if total < n || total > n+failed*batch.Load() {
		t.Errorf("%d records written in %d publishes of %d; want each written once (one transaction in doubt per failed publish)", total, failed+1, n)
	}

	if err := o.write(ctx, routes(time.Now(), 0)); err != nil {
		t.Fatal(err)
	}
	if again := settled("third") - total; again != 0 {
		t.Errorf("a publish with nothing changed but the time wrote %d records; want none", again)
	}
	if err := o.write(ctx, routes(time.Now(), 10)); err != nil {
		t.Fatal(err)
	}
	if changed := settled("fourth") - total; changed != 10 {
		t.Errorf("a publish with 10 best paths moved wrote %d records; want 10", changed)
	}
	got, err := store.Upstream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got["2001:db8:9::/48"].BestSite != "a" || !strings.HasPrefix(got["2001:db8:a::/48"].BestSite, "b") {
		t.Errorf("%d records in etcd; want %d, the first ten leading to a", len(got), n)
	}
}

// TestWriteAfterAFailedWrite: a publish that failed may have landed all the
// same (cancelled after etcd took it). The next publish must write its
// record even if it is the one written before the failure.
func TestWriteAfterAFailedWrite(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	o := &Observer{cfg: Config{Cluster: cl.Config, Store: store}, last: map[string]site.UpstreamRoute{}, log: zap.NewNop()}
	ctx := t.Context()
	const p = "2001:db8:a::/48"
	to := func(s string) map[string]site.UpstreamRoute {
		return map[string]site.UpstreamRoute{p: {Prefix: p, BestSite: s, ASPath: []uint32{64601}, Observed: time.Now()}}
	}
	sitetest.FailedWriteLanded(t,
		func(ctx context.Context) error { return o.write(ctx, to("b")) },
		func(ctx context.Context) error {
			_, err := store.PutUpstream(ctx, []site.UpstreamRoute{to("a")[p]}, nil)
			return err
		},
		func(ctx context.Context) error { return o.write(ctx, to("a")) })
	got, err := store.Upstream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[p].BestSite != "b" {
		t.Errorf("the record of %s in etcd leads to %q; want b", p, got[p].BestSite)
	}
}
