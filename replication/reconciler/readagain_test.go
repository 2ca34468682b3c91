package reconciler

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestReadAgainOnlyAfterAChange: a pass reads the assignments and reports
// again only after the watch told of a change of them, a change of state,
// a failed read, or viewMaxAge Intervals; else it uses the last read.
func TestReadAgainOnlyAfterAChange(t *testing.T) {
	etcd := sitetest.New(t, sitetest.Options{Services: []config.Service{{Name: "db", Sites: []string{"a", "b", "c"}}}})
	store := site.NewStore(etcd.Client(), etcd.Config.Name)
	r, err := New(Config{Cluster: etcd.Config, Site: "a", Store: store, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	put := func(key string, v string) *clientv3.Event {
		t.Helper()
		resp, err := store.Client().Put(ctx, key, v, clientv3.WithPrevKV())
		if err != nil {
			t.Fatal(err)
		}
		return &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: []byte(v), ModRevision: resp.Header.Revision}}
	}
	k := store.Keys()
	put(k.Assignment("db"), `{"service":"db","site":"a"}`)
	read := func(what string) *view {
		t.Helper()
		v, err := r.readAgain(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	first := read("the first read")
	if got := first.routing.Assignments["db"].Site; got != "a" {
		t.Fatalf("first read: db at %q, want a", got)
	}
	if again := read("nothing changed"); again != first {
		t.Fatal("nothing changed, but the pass read again")
	}

	// A beat, or an event of no interest, reads nothing again.
	if r.relevant(put(k.Beat("b"), "1")) {
		t.Error("a beat called for a pass")
	}
	if again := read("a beat"); again != first {
		t.Fatal("a beat made the pass read again")
	}

	// An assignment that the watch tells of.
	if !r.relevant(put(k.Assignment("db"), `{"service":"db","site":"b"}`)) {
		t.Fatal("an assignment did not call for a pass")
	}
	moved := read("db moved")
	if moved == first || moved.routing.Assignments["db"].Site != "b" {
		t.Fatalf("after db moved to b the pass has it at %q", moved.routing.Assignments["db"].Site)
	}

	// This site's own report: no pass, but the next one reads it.
	if r.relevant(put(k.SiteReplication("a"), `{"site":"a"}`)) {
		t.Error("the site's own report called for a pass")
	}
	own := read("own report")
	if own == moved {
		t.Fatal("the site's own report changed, but the pass did not read again")
	}

	// A change of state.
	r.SetState(site.ControllerFenced)
	if fenced := read("fenced"); fenced == own {
		t.Fatal("the state changed, but the pass did not read again")
	}

	// A change the watch missed is read once the last read is too old.
	last := read("nothing changed")
	put(k.Assignment("db"), `{"service":"db","site":"c"}`)
	if v := read("a change the watch missed"); v != last {
		t.Fatal("the pass read again with no reason")
	}
	r.lastViewAt = time.Now().Add(-viewMaxAge * r.cfg.Interval)
	if v := read("the last read too old"); v.routing.Assignments["db"].Site != "c" {
		t.Fatalf("a read older than viewMaxAge Intervals was used: db at %q, want c", v.routing.Assignments["db"].Site)
	}

	// A failed read is not kept.
	dead, stop := context.WithCancel(ctx)
	stop()
	r.viewStale.Store(true)
	if _, err := r.readAgain(dead); err == nil {
		t.Fatal("a read with a cancelled context succeeded")
	}
	if r.lastView != nil {
		t.Fatal("a failed read left the earlier read in use")
	}
}
