package site_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestPruneOps: finished ops older than the cutoff go, then all but the
// newest kept; a running op stays whatever its age.
func TestPruneOps(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 6 {
		op := &site.Op{ID: fmt.Sprintf("op-%d", i), Kind: "placement", Created: t0.Add(time.Duration(i) * time.Hour),
			Ended: t0.Add(time.Duration(i)*time.Hour + time.Minute), Outcome: site.OpSucceeded}
		if i == 0 {
			op.Ended, op.Outcome = time.Time{}, site.OpRunning // the oldest still runs
		}
		if err := s.CreateOp(ctx, g, op); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, op.ID)
	}
	// op-1 ended before the cutoff; of op-2..op-5, keep the newest 3.
	n, err := s.PruneOps(ctx, g, t0.Add(90*time.Minute), 3)
	if err != nil || n != 2 {
		t.Fatalf("PruneOps: %d, %v; want 2 deleted", n, err)
	}
	var left []string
	for _, id := range ids {
		if _, err := s.Op(ctx, id); err == nil {
			left = append(left, id)
		}
	}
	if want := []string{"op-0", "op-3", "op-4", "op-5"}; !slices.Equal(left, want) {
		t.Errorf("ops left %v, want %v", left, want)
	}
	if n, err := s.PruneOps(ctx, g, t0.Add(90*time.Minute), 3); err != nil || n != 0 {
		t.Errorf("PruneOps again: %d, %v; want nothing to do", n, err)
	}
}

// TestPruneEvents: events older than the cutoff go, then all but the
// newest kept.
func TestPruneEvents(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		if err := s.AppendEvent(ctx, site.Event{At: t0.Add(time.Duration(i) * time.Minute), Site: "a", Kind: "test", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneEvents(ctx, g, t0.Add(3*time.Minute), 5)
	if err != nil || n != 5 {
		t.Fatalf("PruneEvents: %d, %v; want 5 deleted (3 by age, 2 by count)", n, err)
	}
	events, err := s.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range events {
		left = append(left, e.Message)
	}
	if want := []string{"5", "6", "7", "8", "9"}; !slices.Equal(left, want) {
		t.Errorf("events left %v, want %v", left, want)
	}
}
