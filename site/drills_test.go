package site_test

import (
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestRecordDrill: a site's last drill is kept, with an event, and a later
// one replaces it; other sites have none.
func TestRecordDrill(t *testing.T) {
	s, _, ctx := setup(t)
	if err := s.RecordDrill(ctx, site.DrillRecord{Kind: "switchover"}); err == nil {
		t.Fatal("a drill without a site was recorded")
	}
	at := time.Date(2026, 12, 3, 10, 38, 28, 0, time.UTC)
	first := site.DrillRecord{Site: "b", Kind: "switchover", Who: "operator:ann@noc1", Started: at, Ended: at.Add(7 * time.Second),
		Passed: true, RTOSeconds: 3.81, Probed: true, OutageSeconds: 1.311, LostWrites: 0}
	if err := s.RecordDrill(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Started, second.Passed, second.Failed = at.Add(time.Hour), false, "services back: db at c"
	if err := s.RecordDrill(ctx, second); err != nil {
		t.Fatal(err)
	}
	drills, err := s.LastDrills(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(drills) != 1 || !drills["b"].Started.Equal(second.Started) || drills["b"].Passed {
		t.Fatalf("last drills %+v; want b's second, failed", drills)
	}
	events, err := s.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countEvents(events, "drill"); n != 2 {
		t.Errorf("%d drill events; want 2", n)
	}
	want := "switchover PASSED at 2026-12-03T10:38:28Z by operator:ann@noc1: RTO 3.81s, longest client outage 1.311s, 0 acknowledged writes lost"
	if got := first.String(); got != want {
		t.Errorf("the record in a line:\n  %s\nwant\n  %s", got, want)
	}
	noWrites := first
	noWrites.LostWrites, noWrites.Passed, noWrites.Failed = -1, false, "client served at the end: refused"
	if got := noWrites.String(); got != "switchover FAILED at 2026-12-03T10:38:28Z by operator:ann@noc1: RTO 3.81s, longest client outage 1.311s; client served at the end: refused" {
		t.Errorf("a failed drill without writes in a line: %s", got)
	}
}
