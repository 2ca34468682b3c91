package site_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zdt-project/zdt/site"
)

// runView runs a view of s until the test ends.
func runView(t *testing.T, s *site.Store) *site.View {
	t.Helper()
	v := site.NewView(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("View.Run: %v", err)
		}
	})
	return v
}

// sameAsStore checks that the view's snapshot is the store's, read at the
// same revision (nothing writes in between).
func sameAsStore(t *testing.T, ctx context.Context, s *site.Store, v *site.View, after string) {
	t.Helper()
	want, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Snapshot(ctx)
	if err != nil {
		t.Fatalf("after %s: %v", after, err)
	}
	if got.Changed <= 0 || got.Changed > got.Rev {
		t.Errorf("after %s: the view's last change at revision %d, its revision %d", after, got.Changed, got.Rev)
	}
	got.Changed = 0 // the store's snapshot does not know it
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after %s: the view's snapshot differs from the store's (-store +view):\n%s", after, diff)
	}
}

func TestViewFollowsTheStore(t *testing.T) {
	s, _, ctx := setup(t)
	v := runView(t, s)
	sameAsStore(t, ctx, s, v, "nothing")

	g, sess := elect(t, ctx, s, "b")
	sameAsStore(t, ctx, s, v, "b elected")
	join(t, ctx, s, "a")
	join(t, ctx, s, "b")
	lease := join(t, ctx, s, "c")
	sameAsStore(t, ctx, s, v, "joins")
	if _, err := s.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "c's lease revoked")
	if _, err := s.FenceSite(ctx, g, site.Fence{Site: "c", Op: "op-1", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a"}); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "a fence and an assignment")
	ps := []site.Placement{{Guest: "g1", Site: "a", Host: "a1"}, {Guest: "g2", Site: "b", Host: "b1"}}
	if err := s.PutPlacements(ctx, g, ps, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBGPReport(ctx, site.BGPReport{Site: "a", Addresses: []string{"203.0.113.1"}}); err != nil {
		t.Fatal(err)
	}
	web := site.ServiceAnnouncements{Site: "a", Service: "web", Announcements: []site.Announcement{{Service: "web", Prefix: "203.0.113.0/26"}}}
	db := site.ServiceAnnouncements{Site: "a", Service: "db", Announcements: []site.Announcement{{Service: "db", Prefix: "203.0.113.64/26", Prepends: 3}}}
	if n, err := s.PutAnnouncements(ctx, "a", []site.ServiceAnnouncements{web, db}, nil); err != nil || n != 2 {
		t.Fatalf("PutAnnouncements = %d, %v", n, err)
	}
	sameAsStore(t, ctx, s, v, "placements, a BGP report and its announcements")
	if n, err := s.PutAnnouncements(ctx, "a", nil, []string{"db"}); err != nil || n != 1 {
		t.Fatalf("PutAnnouncements (delete) = %d, %v", n, err)
	}
	sameAsStore(t, ctx, s, v, "an announcement record deleted")
	hosts := site.HostsReport{Site: "a", Updated: time.Now()}
	if err := s.PutHostsReport(ctx, hosts, []site.HostReport{{Name: "a2", VCPUs: 4}, {Name: "a1", VCPUs: 8, Running: []site.RunningGuest{{Name: "g1"}}}, {Name: "a3"}}, nil); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "a's host records")
	if err := s.PutHostsReport(ctx, hosts, []site.HostReport{{Name: "a2", VCPUs: 4, Failed: true}}, []string{"a3"}); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "a host record changed, another deleted")
	snap, err := v.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if an, ok := snap.Announcement("a", "web", "203.0.113.0/26"); !ok || an.Prepends != 0 {
		t.Errorf("a's announcement of web's prefix: %+v, %v", an, ok)
	}
	if an, ok := snap.Announcement("a", "db", "203.0.113.64/26"); ok {
		t.Errorf("a's deleted announcement of db's prefix is still there: %+v", an)
	}
	if h := snap.Hosts["a"]; len(h.Hosts) != 2 || h.Hosts[0].Name != "a1" || len(h.Hosts[0].Running) != 1 || h.Hosts[1].Name != "a2" || !h.Hosts[1].Failed || !h.Updated.Equal(hosts.Updated) {
		t.Errorf("a's hosts report: %+v; want a1 running g1, then a2 failed, updated at %v", h, hosts.Updated)
	}
	op := &site.Op{ID: "op-1", Kind: "failover", Outcome: site.OpRunning, Steps: []site.Step{{Name: "fence"}, {Name: "assign", Params: map[string]string{"service": "web"}}}}
	if err := s.CreateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "an op created")

	// The unfinished op is the caller's to change; the next snapshot
	// has the op as etcd has it.
	snap, err = v.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap.Ops[0].Steps[1].Params["service"] = "changed"
	snap.Ops[0].Steps[0].Status = site.StepDone
	sameAsStore(t, ctx, s, v, "a snapshot changed by its reader")

	// A snapshot never changes, though the view shares its maps until
	// the next change.
	before, err := v.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assign(ctx, g, before.Assignments["web"], site.Assignment{Service: "web", Site: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Delete(ctx, s.Keys().Placement("g2")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHostsReport(ctx, site.HostsReport{Site: "a"}, []site.HostReport{{Name: "a1", VCPUs: 8}}, []string{"a2"}); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "web reassigned, g2's placement deleted, a1's guest stopped, a2 gone")
	for i, old := range []*site.Snapshot{before, again} {
		if a := old.Assignments["web"]; a.Site != "a" {
			t.Errorf("snapshot %d taken before web moved to b has it at %q", i+1, a.Site)
		}
		if h := old.Hosts["a"]; len(h.Hosts) != 2 || len(h.Hosts[0].Running) != 1 {
			t.Errorf("snapshot %d taken before a's hosts changed has %+v", i+1, h.Hosts)
		}
		if _, ok := old.Placements["g2"]; !ok {
			t.Errorf("snapshot %d taken before g2's placement was deleted lost it", i+1)
		}
	}

	op.Steps[0].Status = site.StepDone
	if err := s.UpdateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "an op updated")

	// Deletions: a placement, the op, c's fence; a second candidate, then
	// the coordinator's resignation.
	for _, key := range []string{s.Keys().Placement("g1"), s.Keys().Op("op-1"), s.Keys().Fence("c")} {
		if _, err := s.Client().Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		sameAsStore(t, ctx, s, v, "deleting "+key)
	}
	sess2, err := concurrency.NewSession(s.Client(), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer sess2.Close()
	elect2 := make(chan error, 1)
	go func() {
		el := concurrency.NewElection(sess2, strings.TrimSuffix(s.Keys().Election(), "/"))
		elect2 <- el.Campaign(ctx, "c")
	}()
	waitCandidates(t, ctx, s, 2)
	sameAsStore(t, ctx, s, v, "c campaigns")
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-elect2; err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "b resigns, c is elected")

	// A write outside the cluster's keys advances the revision but
	// sends the view no event: the view asks its watch for progress.
	if _, err := s.Client().Put(ctx, "/elsewhere/x", "1"); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "a write outside the cluster's keys")
}

// waitCandidates waits until n candidates campaign.
func waitCandidates(t *testing.T, ctx context.Context, s *site.Store, n int64) {
	t.Helper()
	for {
		resp, err := s.Client().Get(ctx, s.Keys().Election(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d candidates: %v", n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestViewSignalsChangesNotBeats(t *testing.T) {
	s, _, ctx := setup(t)
	v := runView(t, s)
	if _, err := v.Snapshot(ctx); err != nil { // loaded
		t.Fatal(err)
	}
	select { // the load itself may have signalled
	case <-v.Changed():
	default:
	}
	lease := join(t, ctx, s, "a")
	select {
	case <-v.Changed():
	case <-ctx.Done():
		t.Fatal("a join: no change signalled")
	}
	joined, err := v.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Beat(ctx, "a", "i1", lease); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvent(ctx, site.Event{At: time.Now(), Site: "a", Kind: "test", Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	beaten, err := v.Snapshot(ctx) // the beats and events are applied
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Changed():
		t.Error("beats and events signalled a change")
	default:
	}
	if beaten.Rev <= joined.Rev || beaten.Changed != joined.Changed || joined.Changed == 0 {
		t.Errorf("after beats and events: revision %d → %d, last change %d → %d; want the revision to advance, the last change to stay (not 0)",
			joined.Rev, beaten.Rev, joined.Changed, beaten.Changed)
	}
}

func TestViewReadsAgainAfterItsWatchBroke(t *testing.T) {
	s, cl, ctx := setup(t)
	// The view reads from member a alone; the test writes through b.
	va := site.NewStore(cl.Client(cl.Endpoint("a")), cl.Config.Name)
	wb := site.NewStore(cl.Client(cl.Endpoint("b")), cl.Config.Name)
	v := runView(t, va)
	g, _ := elect(t, ctx, wb, "b")
	at, err := wb.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a"})
	if err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, ctx, s, v, "an assignment")

	// Member a dies (not the leader: the writes go on at once); meanwhile the service moves, and the history the
	// view's watch would resume from is compacted away.
	if err := cl.MoveLeader(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	cl.KillMember("a")
	a, err := wb.Assign(ctx, g, at, site.Assignment{Service: "web", Site: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := wb.Client().Put(ctx, wb.Keys().Root()+"filler", string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := wb.Client().Compact(ctx, a.Epoch+5); err != nil {
		t.Fatal(err)
	}
	cl.StartMember("a")
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		snap, err := v.Snapshot(rctx)
		if err == nil && snap.Assignments["web"].Site == "b" {
			break
		}
		if rctx.Err() != nil {
			t.Fatalf("the view did not catch up after its member came back: %v, %+v", err, snap)
		}
	}
	sameAsStore(t, ctx, s, v, "member a came back")
}
