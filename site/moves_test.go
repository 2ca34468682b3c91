package site_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestAssignMoving: a planned move's assignment and its move record are
// written together; the phase advances only from the record last read; the
// snapshot and the routing read tell the two apart.
func TestAssignMoving(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	first, err := s.Assign(ctx, g, site.Assignment{}, site.Assignment{Service: "web", Site: "a", Op: "op-1"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	next, err := s.AssignMoving(ctx, g, first, site.Assignment{Service: "web", Site: "b", From: "a", Op: "op-2", Kind: "switchover", At: at}, at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, mv := snap.Assignments["web"], snap.Moves["web"]
	if a.Site != "b" || a.Epoch != next.Epoch || len(snap.Assignments) != 1 {
		t.Fatalf("snapshot assignments %+v; want web at b, epoch %d", snap.Assignments, next.Epoch)
	}
	want := site.Move{Service: "web", Op: "op-2", From: "a", To: "b", Phase: site.MovePrepare, At: at, Until: at.Add(time.Minute), Rev: next.Epoch}
	if mv != want || !mv.Of(a) {
		t.Fatalf("move %+v; want %+v, of the assignment", mv, want)
	}

	stale := mv
	if err := s.SetMovePhase(ctx, g, &mv, site.MoveAnnounce, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMovePhase(ctx, g, &stale, site.MoveRelease, at.Add(time.Second)); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("a phase written from a stale record: %v; want ErrConflict", err)
	}
	join(t, ctx, s, "b")
	r, err := s.Routing(ctx, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Alive["b"] || r.Alive["a"] || r.Alive["c"] {
		t.Errorf("routing read: alive %v; want b alone (the one that joined)", r.Alive)
	}
	if got := r.Moves["web"]; got.Phase != site.MoveAnnounce || got.Rev != mv.Rev || r.Assignments["web"].Epoch != next.Epoch {
		t.Errorf("routing read: move %+v, assignment %+v; want the announce phase at rev %d, the assignment at epoch %d", got, r.Assignments["web"], mv.Rev, next.Epoch)
	}
}
