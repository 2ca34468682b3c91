package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// manyServices are n services, each with an IPv6 prefix of its own, all
// preferring site a, then b, then c.
func manyServices(n int) []config.Service {
	svcs := make([]config.Service, n)
	for i := range svcs {
		svcs[i] = config.Service{
			Name:     fmt.Sprintf("svc-%04d", i),
			Sites:    []string{"a", "b", "c"},
			Prefixes: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i))},
		}
	}
	return svcs
}

// moveAllOffA has every site up and every service assigned to site a, and
// journals an op that moves each of them away from a, one assign step per
// service, as a failover does; it returns the op and the revision it was
// journaled at.
func moveAllOffA(t *testing.T, ctx context.Context, store *site.Store, svcs []config.Service) (*site.Op, int64) {
	t.Helper()
	for _, s := range []string{"a", "b", "c"} {
		lease, err := store.Client().Grant(ctx, 600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Join(ctx, lease.ID, site.Alive{Site: s}, site.Registration{Site: s}); err != nil {
			t.Fatal(err)
		}
	}
	var puts []clientv3.Op
	for _, svc := range svcs {
		b, err := json.Marshal(site.Assignment{Service: svc.Name, Site: "a", Op: "op-0", At: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, clientv3.OpPut(store.Keys().Assignment(svc.Name), string(b)))
		if len(puts) == 100 {
			if _, err := store.Client().Txn(ctx).Then(puts...).Commit(); err != nil {
				t.Fatal(err)
			}
			puts = nil
		}
	}
	if _, err := store.Client().Txn(ctx).Then(puts...).Commit(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	op := &site.Op{ID: site.NewOpID(now, KindFailover), Kind: KindFailover, Params: map[string]string{"site": "a"},
		Who: "test", Created: now, Outcome: site.OpRunning}
	for _, svc := range svcs {
		op.Steps = append(op.Steps, site.Step{Name: StepAssign, Params: map[string]string{"service": svc.Name, "from": "a"}, Status: site.StepPending})
	}
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := store.Client().Put(ctx, store.Keys().Op(op.ID), string(b))
	if err != nil {
		t.Fatal(err)
	}
	return op, resp.Header.Revision
}

// writesSince counts, per key under prefix, the writes since revision rev.
func writesSince(t *testing.T, ctx context.Context, store *site.Store, prefix string, rev int64) (map[string]int, map[int64]bool) {
	t.Helper()
	now, err := store.Client().Get(ctx, "x", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	counts, revs := map[string]int{}, map[int64]bool{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range store.Client().Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch %s: %v", prefix, err)
		}
		for _, ev := range resp.Events {
			counts[string(ev.Kv.Key)]++
			revs[ev.Kv.ModRevision] = true
		}
		if resp.Header.Revision >= now.Header.Revision {
			break
		}
	}
	return counts, revs
}

// checkMovedOnce checks that the op succeeded with every step done, and
// that each service was moved once, by the op, off site a.
func checkMovedOnce(t *testing.T, ctx context.Context, store *site.Store, svcs []config.Service, op *site.Op, since int64) {
	t.Helper()
	got, err := store.Op(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != site.OpSucceeded {
		t.Fatalf("op %s; want succeeded (%s)", got.Outcome, got.Error)
	}
	for i, st := range got.Steps {
		if st.Status != site.StepDone {
			t.Fatalf("step %d (%s): %s, %q; want done", i, st.Params["service"], st.Status, st.Detail)
		}
	}
	writes, _ := writesSince(t, ctx, store, store.Keys().Services(), since)
	snap, err := store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range svcs {
		a := snap.Assignments[svc.Name]
		if n := writes[store.Keys().Assignment(svc.Name)]; n != 1 || a.Op != op.ID || a.Site != "b" || a.From != "a" {
			t.Fatalf("service %s: written %d times, now at site %s by op %s from %q; want written once, at b by %s from a", svc.Name, n, a.Site, a.Op, a.From, op.ID)
		}
	}
}

// runCoordinator runs a coordinator at site self until the op has ended or,
// when killAfter is above 0, until killAfter has passed: then its context
// is cut wherever it is (in a read, a transaction, between two writes).
func runCoordinator(t *testing.T, ctx context.Context, cl *sitetest.Cluster, store *site.Store, self, id string, killAfter time.Duration) {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	coord := New(Config{Cluster: cl.Config, Site: self, Store: store, Log: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))})
	done := make(chan error, 1)
	go func() { done <- coord.Run(cctx) }()
	if killAfter > 0 {
		kill := time.AfterFunc(killAfter, cancel)
		defer kill.Stop()
	} else {
		err := store.WatchOp(ctx, id, 0, func(op *site.Op) (bool, error) { return op.Finished(), nil }, nil)
		if err != nil {
			t.Fatalf("watch op %s: %v", id, err)
		}
		cancel()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("coordinator at %s: %v", self, err)
		}
	case <-ctx.Done():
		t.Fatalf("coordinator at %s did not stop: %v", self, ctx.Err())
	}
}

// TestAssignRowInFewTransactions: an op that moves 1,000 services commits
// their assignments in one transaction per site.MaxAssignWrites writes,
// and journals the op no more than once per transaction.
func TestAssignRowInFewTransactions(t *testing.T) {
	svcs := manyServices(1000)
	cl := sitetest.New(t, sitetest.Options{Services: svcs})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	op, rev := moveAllOffA(t, ctx, store, svcs)

	runCoordinator(t, ctx, cl, store, "a", op.ID, 0)

	checkMovedOnce(t, ctx, store, svcs, op, rev)
	_, txns := writesSince(t, ctx, store, store.Keys().Services(), rev)
	opWrites, _ := writesSince(t, ctx, store, store.Keys().Op(op.ID), rev)
	// A failover's assignment takes two writes: itself and its event.
	perTxn := site.MaxAssignWrites / 2
	want := (len(svcs) + perTxn - 1) / perTxn
	if len(txns) != want {
		t.Errorf("the assignments were written in %d transactions; want %d (%d a transaction)", len(txns), want, perTxn)
	}
	if n := opWrites[store.Keys().Op(op.ID)]; n > want+4 {
		t.Errorf("the op was journaled %d times; want at most %d (at most once a transaction, and when it starts and ends)", n, want+4)
	}
	t.Logf("1,000 services moved in %d transactions; the op journaled %d times", len(txns), opWrites[store.Keys().Op(op.ID)])
}

// TestAssignRowResumesAfterKills: the coordinator running an op of 1,000
// assign steps is killed (its context cut) at random points, again and
// again, each time at another site; once one is left to finish it, the op
// has succeeded with every step done, and each service was moved once.
func TestAssignRowResumesAfterKills(t *testing.T) {
	svcs := manyServices(1000)
	cl := sitetest.New(t, sitetest.Options{Services: svcs})
	store := site.NewStore(cl.Client(), cl.Config.Name)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	op, rev := moveAllOffA(t, ctx, store, svcs)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("seed %d", seed)
	sites := []string{"a", "b", "c"}
	const kills = 12
	for k := range kills {
		after := 20*time.Millisecond + time.Duration(rng.Int64N(int64(400*time.Millisecond)))
		runCoordinator(t, ctx, cl, store, sites[k%len(sites)], op.ID, after)
		cur, err := store.Op(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, st := range cur.Steps {
			if st.Status == site.StepDone {
				done++
			}
		}
		t.Logf("coordinator at %s killed after %s: %d of %d steps done", sites[k%len(sites)], after.Round(time.Millisecond), done, len(cur.Steps))
		if cur.Finished() {
			break
		}
	}
	runCoordinator(t, ctx, cl, store, "b", op.ID, 0)

	checkMovedOnce(t, ctx, store, svcs, op, rev)
	got, err := store.Op(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Coordinators) < 2 {
		t.Errorf("the op was run by %v only; want it resumed after a kill", got.Coordinators)
	}
}
