package site_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

func TestConfirmFence(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")

	_, err := s.ConfirmFence(ctx, "c", "operator:ann@noc1")
	if !errors.Is(err, site.ErrNotFenced) || !strings.Contains(err.Error(), "confirm applies only to a site a failover has fenced") {
		t.Fatalf("confirm the fence of a site that has none: %v, want ErrNotFenced saying when confirm applies", err)
	}
	if _, _, err := s.FenceToConfirm(ctx, "c"); !errors.Is(err, site.ErrNotFenced) {
		t.Fatalf("dry run of the same: %v, want ErrNotFenced", err)
	}

	fenced, err := s.FenceSite(ctx, g, site.Fence{Site: "c", Op: "op-1", By: "a", At: time.Now().UTC(), Reason: "lease expired"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	f, err := s.ConfirmFence(ctx, "c", "operator:ann@noc1")
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if f.Confirmed == nil || f.Confirmed.By != "operator:ann@noc1" || f.Confirmed.At.Before(before) || f.Confirmed.At.After(after) {
		t.Fatalf("confirmed fence %+v; want confirmed by operator:ann@noc1 between %s and %s", f.Confirmed, before, after)
	}
	stored, err := s.Fence(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Op != fenced.Op || stored.Reason != fenced.Reason || stored.Confirmed == nil || !stored.Confirmed.At.Equal(f.Confirmed.At) {
		t.Fatalf("stored fence %+v; want %+v confirmed at %s", stored, fenced, f.Confirmed.At)
	}

	// Idempotent: a second confirmation finds the first.
	again, err := s.ConfirmFence(ctx, "c", "operator:bob@noc2")
	if err != nil || again.Confirmed == nil || again.Confirmed.By != "operator:ann@noc1" {
		t.Fatalf("confirm again: %+v, %v; want ann's confirmation", again.Confirmed, err)
	}
	if dry, _, err := s.FenceToConfirm(ctx, "c"); err != nil || dry.Confirmed == nil {
		t.Fatalf("dry run on a confirmed fence: %+v, %v", dry, err)
	}
	events, err := s.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countEvents(events, "fence-confirmed"); n != 1 {
		t.Fatalf("%d fence-confirmed events, want 1: %+v", n, events)
	}
	if e := events[len(events)-1]; e.Subject != "c" || e.Op != "op-1" || !strings.Contains(e.Message, "operator:ann@noc1 confirmed that site c is dark") {
		t.Errorf("event %+v", e)
	}
	if snap, err := s.Snapshot(ctx); err != nil || snap.StateOf("c") != site.SiteFenced {
		t.Errorf("site c after the confirmation: %v", err)
	}
}

// TestConfirmFenceOfASiteThatIsBack: a fenced site whose controller holds a
// lease again is confirmed too (a failover that cannot reach its resources
// must not wait for ever), and the dry run says it holds a lease.
func TestConfirmFenceOfASiteThatIsBack(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	lease := join(t, ctx, s, "b")
	if _, err := s.Client().Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FenceSite(ctx, g, site.Fence{Site: "b", Op: "op-1"}); err != nil {
		t.Fatal(err)
	}
	if _, alive, err := s.FenceToConfirm(ctx, "b"); err != nil || alive {
		t.Fatalf("dry run while b is dark: alive %t, %v", alive, err)
	}
	join(t, ctx, s, "b")
	f, alive, err := s.FenceToConfirm(ctx, "b")
	if err != nil || !alive || f.Op != "op-1" || f.Confirmed != nil {
		t.Fatalf("dry run once b is back: %+v, alive %t, %v; want op-1's fence, alive", f, alive, err)
	}
	f, err = s.ConfirmFence(ctx, "b", "operator:ann@noc1")
	if err != nil || f.Confirmed == nil {
		t.Fatalf("confirm the fence of a site holding a lease: %+v, %v", f, err)
	}
}

// TestConfirmFenceConcurrently: operators confirming at once all get the one
// confirmation that won, and it is logged once.
func TestConfirmFenceConcurrently(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	if _, err := s.FenceSite(ctx, g, site.Fence{Site: "c", Op: "op-1"}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	got := make([]site.Fence, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = s.ConfirmFence(ctx, "c", fmt.Sprintf("operator:op%d@noc", i)) })
	}
	wg.Wait()
	stored, err := s.Fence(ctx, "c")
	if err != nil || stored.Confirmed == nil {
		t.Fatalf("stored fence %+v, %v", stored, err)
	}
	for i := range n {
		if errs[i] != nil || got[i].Confirmed == nil || *got[i].Confirmed != *stored.Confirmed {
			t.Errorf("confirmer %d: %+v, %v; want the stored confirmation %+v", i, got[i].Confirmed, errs[i], *stored.Confirmed)
		}
	}
	events, err := s.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := countEvents(events, "fence-confirmed"); c != 1 {
		t.Errorf("%d fence-confirmed events, want 1", c)
	}
}

func countEvents(events []site.Event, kind string) int {
	n := 0
	for _, e := range events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
