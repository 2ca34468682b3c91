package site_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestRequestOpPlannedFrom: of two ops planned from the same snapshot, the
// first is journaled and the second refused with ErrConflict (it must be
// planned again, from a state with the first in it); a request planned
// after the first is journaled.
func TestRequestOpPlannedFrom(t *testing.T) {
	s, _, ctx := setup(t)
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first := &site.Op{ID: site.NewOpID(now, "switchover"), Kind: "switchover", Outcome: site.OpRunning}
	second := &site.Op{ID: site.NewOpID(now, "switchover"), Kind: "switchover", Outcome: site.OpRunning}
	if err := s.RequestOp(ctx, first, snap.Rev); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestOp(ctx, second, snap.Rev); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("an op planned before another was journaled: %v; want ErrConflict", err)
	}
	if _, err := s.Op(ctx, second.ID); !errors.Is(err, site.ErrNotFound) {
		t.Fatalf("the refused op was journaled: %v", err)
	}
	again, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestOp(ctx, second, again.Rev); err != nil {
		t.Fatalf("planned again after the first: %v", err)
	}
}
