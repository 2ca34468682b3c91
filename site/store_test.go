package site_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

func setup(t *testing.T) (*site.Store, *sitetest.Cluster, context.Context) {
	t.Helper()
	cl := sitetest.New(t, sitetest.Options{Services: []config.Service{
		{Name: "web", Sites: []string{"a", "b", "c"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/26")}},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return site.NewStore(cl.Client(), cl.Config.Name), cl, ctx
}

// elect makes a coordinator and returns its guard.
func elect(t *testing.T, ctx context.Context, s *site.Store, name string) (site.Guard, *concurrency.Session) {
	t.Helper()
	sess, err := concurrency.NewSession(s.Client(), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	el := concurrency.NewElection(sess, s.Keys().Election()[:len(s.Keys().Election())-1])
	if err := el.Campaign(ctx, name); err != nil {
		t.Fatal(err)
	}
	return site.Guard{Key: el.Key(), Rev: el.Rev()}, sess
}

func join(t *testing.T, ctx context.Context, s *site.Store, name string) clientv3.LeaseID {
	t.Helper()
	lease, err := s.Client().Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, lease.ID, site.Alive{Site: name}, site.Registration{Site: name}); err != nil {
		t.Fatal(err)
	}
	return lease.ID
}

func TestFenceSiteOnlyWhileDark(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "b")
	lease := join(t, ctx, s, "a")

	_, err := s.FenceSite(ctx, g, site.Fence{Site: "a", Op: "op-1"})
	if !errors.Is(err, site.ErrSiteAlive) {
		t.Fatalf("fencing a site that holds its lease: %v, want ErrSiteAlive", err)
	}
	if _, err := s.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	f, err := s.FenceSite(ctx, g, site.Fence{Site: "a", Op: "op-1"})
	if err != nil || f.Op != "op-1" {
		t.Fatalf("fence a dark site: %+v, %v", f, err)
	}
	// Idempotent: a second op finds the first op's fence.
	f, err = s.FenceSite(ctx, g, site.Fence{Site: "a", Op: "op-2"})
	if err != nil || f.Op != "op-1" {
		t.Fatalf("fence again: %+v, %v; want op-1's fence", f, err)
	}
	// A site that joins while fenced learns it in the same transaction.
	lease2, _ := s.Client().Grant(ctx, 5)
	res, err := s.Join(ctx, lease2.ID, site.Alive{Site: "a"}, site.Registration{Site: "a"})
	if err != nil || res.Fence == nil || res.Fence.Op != "op-1" {
		t.Fatalf("join of a fenced site: %+v, %v; want its fence", res, err)
	}
}

func TestGuardStopsADeposedCoordinator(t *testing.T) {
	s, _, ctx := setup(t)
	g, sess := elect(t, ctx, s, "a")
	if err := sess.Close(); err != nil { // resigns: the key is gone
		t.Fatal(err)
	}
	_, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "b"})
	if !errors.Is(err, site.ErrNotCoordinator) {
		t.Fatalf("assign by a deposed coordinator: %v, want ErrNotCoordinator", err)
	}
	op := &site.Op{ID: "op-x", Kind: "test", Outcome: site.OpRunning}
	if err := s.CreateOp(ctx, g, op); !errors.Is(err, site.ErrNotCoordinator) {
		t.Fatalf("create op by a deposed coordinator: %v, want ErrNotCoordinator", err)
	}
	// Its successor's guard works.
	g2, _ := elect(t, ctx, s, "b")
	if _, err := s.Assign(ctx, g2, site.Assignment{}, site.Assignment{Service: "web", Site: "b"}); err != nil {
		t.Fatalf("assign by the coordinator: %v", err)
	}
}

func TestAssignComparesEpochs(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	first, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a", Op: "op-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "c"}); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("assign over an unseen assignment: %v, want ErrConflict", err)
	}
	second, err := s.Assign(ctx, g, first, site.Assignment{Service: "web", Site: "b", Op: "op-2"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Epoch <= first.Epoch {
		t.Errorf("epochs %d then %d; want them to grow", first.Epoch, second.Epoch)
	}
	if _, err := s.Assign(ctx, g, first, site.Assignment{Service: "web", Site: "c"}); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("assign from a stale epoch: %v, want ErrConflict", err)
	}
	got, err := s.Assignment(ctx, "web")
	if err != nil || got.Site != "b" || got.Epoch != second.Epoch || got.Op != "op-2" {
		t.Fatalf("assignment %+v, %v; want b at epoch %d", got, err, second.Epoch)
	}
}

func TestJournal(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	now := time.Now()
	op := &site.Op{ID: site.NewOpID(now, "test"), Kind: "test", Created: now, Outcome: site.OpRunning,
		Steps: []site.Step{{Name: "one", Status: site.StepPending}}}
	if err := s.CreateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOp(ctx, g, op); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("create the same op twice: %v, want ErrConflict", err)
	}
	stale := *op
	op.Steps[0].Status = site.StepDone
	if err := s.UpdateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateOp(ctx, g, &stale); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("update from a stale read: %v, want ErrConflict", err)
	}
	open, err := s.UnfinishedOps(ctx)
	if err != nil || len(open) != 1 || open[0].Steps[0].Status != site.StepDone {
		t.Fatalf("unfinished ops: %+v, %v", open, err)
	}
	op.Outcome = site.OpSucceeded
	if err := s.UpdateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.UnfinishedOps(ctx); len(open) != 0 {
		t.Fatalf("finished op still listed as unfinished")
	}

	for i, kind := range []string{"first", "second", "third"} {
		if err := s.AppendEvent(ctx, site.Event{At: now.Add(time.Duration(i) * time.Millisecond), Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.Events(ctx, 2)
	if err != nil || len(events) != 2 || events[0].Kind != "second" || events[1].Kind != "third" {
		t.Fatalf("last two events: %+v, %v", events, err)
	}
}

func TestSnapshotAndStatus(t *testing.T) {
	s, cl, ctx := setup(t)
	g, _ := elect(t, ctx, s, "b")
	join(t, ctx, s, "a")
	join(t, ctx, s, "b")
	lease := join(t, ctx, s, "c")
	if _, err := s.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FenceSite(ctx, g, site.Fence{Site: "c", Op: "op-1", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := site.BuildStatus(cl.Config, snap, s.LeaseRemaining(ctx, snap))
	if st.Coordinator != "b" || st.Services[0].Active != "a" || st.Services[0].Epoch != a.Epoch {
		t.Errorf("status: coordinator %q, web at %q epoch %d; want b, a, %d", st.Coordinator, st.Services[0].Active, st.Services[0].Epoch, a.Epoch)
	}
	want := map[string]site.SiteState{"a": site.SiteUp, "b": site.SiteUp, "c": site.SiteFenced}
	for _, ss := range st.Sites {
		if ss.State != want[ss.Name] {
			t.Errorf("site %s: %s, want %s", ss.Name, ss.State, want[ss.Name])
		}
		if (ss.State == site.SiteUp) != (ss.LeaseRemainingMS > 0) {
			t.Errorf("site %s: lease remaining %dms", ss.Name, ss.LeaseRemainingMS)
		}
	}
}

func TestPutPlacementsInBatches(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	var ps []site.Placement
	for i := range 250 { // three transactions
		ps = append(ps, site.Placement{Guest: fmt.Sprintf("g%03d", i), Site: "a", Host: "a1", State: site.GuestRunning})
	}
	landed := 0
	if err := s.PutPlacements(ctx, g, ps, nil, func() { landed++ }); err != nil {
		t.Fatal(err)
	}
	if landed != 3 {
		t.Errorf("%d transactions said they landed; want 3", landed)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Placements) != 250 || snap.Placements["g249"].Epoch == 0 {
		t.Fatalf("%d placements read back; want 250 with epochs", len(snap.Placements))
	}
	// A write from a stale read is refused.
	moved := []site.Placement{{Guest: "g000", Site: "b", Host: "b1", State: site.GuestRunning}}
	if err := s.PutPlacements(ctx, g, moved, map[string]int64{"g000": snap.Placements["g000"].Epoch - 1}, nil); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("stale placement write: %v, want ErrConflict", err)
	}
	if err := s.PutPlacements(ctx, g, moved, map[string]int64{"g000": snap.Placements["g000"].Epoch}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAssignAllCountsWrites: one AssignAll carries at most
// site.MaxAssignWrites etcd writes, each assignment counting itself, its
// event and its move record; more is refused whole, before anything is
// written.
func TestAssignAllCountsWrites(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "b")
	writes := func(n int, until time.Time) []site.AssignWrite {
		var ws []site.AssignWrite
		for i := range n {
			svc := fmt.Sprintf("svc-%d", i)
			ws = append(ws, site.AssignWrite{Next: site.Assignment{Service: svc, Site: "a"}, Until: until,
				Event: site.Event{At: time.Now(), Site: "b", Kind: "step", Subject: svc, Message: "assigned"}})
		}
		return ws
	}
	tooMany := writes(site.MaxAssignWrites/2+1, time.Time{})
	if w := tooMany[0].Writes(); w != 2 {
		t.Fatalf("an assignment with an event takes %d writes; want 2", w)
	}
	if _, err := s.AssignAll(ctx, g, tooMany); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d assignments with events: %v; want refused", len(tooMany), err)
	}
	moving := writes(site.MaxAssignWrites/3+1, time.Now().Add(time.Minute))
	if _, err := s.AssignAll(ctx, g, moving); err == nil {
		t.Errorf("%d planned moves (3 writes each): no error; want refused", len(moving))
	}
	if snap, err := s.Snapshot(ctx); err != nil || len(snap.Assignments) != 0 {
		t.Fatalf("after refusals: %d assignments, %v; want none", len(snap.Assignments), err)
	}
	fit := writes(site.MaxAssignWrites/2, time.Time{})
	if _, err := s.AssignAll(ctx, g, fit); err != nil {
		t.Fatalf("%d assignments with events: %v", len(fit), err)
	}
	if snap, err := s.Snapshot(ctx); err != nil || len(snap.Assignments) != len(fit) {
		t.Errorf("%d assignments written, %v; want %d", len(snap.Assignments), err, len(fit))
	}
}
