package site_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestAbort: a dry run says what would be asked and writes nothing; the
// request is recorded; asking again, as someone else, says who asked
// first; an op that has ended is refused with how it ended.
func TestAbort(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	ann := site.Request{By: "operator:ann@noc1", Reason: "drill over"}
	if _, err := s.Abort(ctx, "no-such-op", ann, true); !errors.Is(err, site.ErrNotFound) {
		t.Fatalf("abort an unknown op: %v, want ErrNotFound", err)
	}
	op := runningOp(t, ctx, s, g, time.Now().UTC())

	dry, err := s.Abort(ctx, op.ID, ann, true)
	if err != nil || dry.Action != site.AbortWouldRequest || !dry.DryRun || dry.Who != ann.By || dry.Coordinator != "a" || dry.Op.AbortRequested != nil {
		t.Fatalf("dry run: %+v, %v; want would-request, coordinator a", dry, err)
	}
	if stored, err := s.Op(ctx, op.ID); err != nil || stored.AbortRequested != nil || stored.Rev != op.Rev {
		t.Fatalf("after the dry run the op is %+v at %d (%v); want it unchanged at %d", stored.AbortRequested, stored.Rev, err, op.Rev)
	}

	res, err := s.Abort(ctx, op.ID, ann, false)
	if err != nil || res.Action != site.AbortRequested || res.Op.AbortRequested == nil || res.Op.AbortRequested.By != ann.By || res.Reason != ann.Reason {
		t.Fatalf("abort: %+v, %v; want requested by ann", res, err)
	}
	bob := site.Request{By: "operator:bob@noc2"}
	for _, dryRun := range []bool{true, false} {
		again, err := s.Abort(ctx, op.ID, bob, dryRun)
		if err != nil || again.Action != site.AbortAlreadyRequested || again.Who != bob.By || again.Op.AbortRequested.By != ann.By {
			t.Fatalf("abort again (dry run %t): %+v, %v; want already-requested, by ann", dryRun, again, err)
		}
	}

	stored, err := s.Op(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.Outcome, stored.Ended, stored.Error = site.OpAborted, time.Date(2026, 12, 2, 3, 14, 0, 0, time.UTC), "aborted by operator:ann@noc1: drill over"
	if err := s.UpdateOp(ctx, g, stored); err != nil {
		t.Fatal(err)
	}
	for _, dryRun := range []bool{true, false} {
		_, err := s.Abort(ctx, op.ID, bob, dryRun)
		want := "op " + op.ID + " has ended already: aborted at 2026-12-02T03:14:00.000Z: aborted by operator:ann@noc1: drill over; there is nothing to abort"
		if !errors.Is(err, site.ErrOpEnded) || err.Error() != want {
			t.Fatalf("abort an ended op (dry run %t): %v; want ErrOpEnded saying %q", dryRun, err, want)
		}
	}
}

// TestConfirmFenceAs: a site without a fence is refused; a dry run reads
// and writes nothing; the confirmation is recorded; confirming again says
// who confirmed first.
func TestConfirmFenceAs(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	if _, err := s.ConfirmFenceAs(ctx, "c", "operator:ann@noc1", true, true); !errors.Is(err, site.ErrNotFenced) {
		t.Fatalf("dry run on a site without a fence: %v, want ErrNotFenced", err)
	}
	if _, err := s.FenceSite(ctx, g, site.Fence{Site: "c", Op: "op-1", By: "a", At: time.Now().UTC(), Reason: "lease expired"}); err != nil {
		t.Fatal(err)
	}
	dry, err := s.ConfirmFenceAs(ctx, "c", "operator:ann@noc1", true, true)
	if err != nil || dry.Action != site.FenceWouldConfirm || !dry.DryRun || !dry.RequireConfirmation || dry.Fence.Confirmed != nil || dry.SiteAlive {
		t.Fatalf("dry run: %+v, %v; want would-confirm", dry, err)
	}
	if f, err := s.Fence(ctx, "c"); err != nil || f.Confirmed != nil {
		t.Fatalf("after the dry run the fence is confirmed %+v (%v); want not", f.Confirmed, err)
	}
	res, err := s.ConfirmFenceAs(ctx, "c", "operator:ann@noc1", false, false)
	if err != nil || res.Action != site.FenceConfirmed || res.Fence.Confirmed == nil || res.Fence.Confirmed.By != "operator:ann@noc1" || res.RequireConfirmation {
		t.Fatalf("confirm: %+v, %v; want confirmed by ann", res, err)
	}
	again, err := s.ConfirmFenceAs(ctx, "c", "operator:bob@noc2", false, false)
	if err != nil || again.Action != site.FenceAlreadyConfirmed || again.Who != "operator:bob@noc2" || again.Fence.Confirmed.By != "operator:ann@noc1" {
		t.Fatalf("confirm again: %+v, %v; want already-confirmed, by ann", again, err)
	}
}
