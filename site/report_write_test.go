package site_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/zdt-project/zdt/site"
)

// TestPutReportAfter: a conditional report write lands only over the report
// it was based on; one based on an older report is refused with the
// current revision, and the newer report stays.
func TestPutReportAfter(t *testing.T) {
	s, _, ctx := setup(t)
	rev, err := s.PutReportAfter(ctx, site.Report{Site: "a", State: site.ControllerUp, Reason: "joined"}, 0)
	if err != nil || rev <= 0 {
		t.Fatalf("first write over no report: rev %d, %v", rev, err)
	}
	if _, err := s.PutReportAfter(ctx, site.Report{Site: "a", State: site.ControllerUp}, 0); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("a write that expects no report, over one: %v, want ErrConflict", err)
	}
	newer, err := s.PutReportAfter(ctx, site.Report{Site: "a", State: site.ControllerStopped, Reason: "controller stopped"}, rev)
	if err != nil || newer <= rev {
		t.Fatalf("write over the report at %d: rev %d, %v", rev, newer, err)
	}
	// A write sent before the newer one, based on the same report, lands
	// late: refused, with the revision it lost to.
	cur, err := s.PutReportAfter(ctx, site.Report{Site: "a", State: site.ControllerUp, Reason: "stale"}, rev)
	if !errors.Is(err, site.ErrConflict) || cur != newer {
		t.Fatalf("stale write: rev %d, %v; want ErrConflict and %d", cur, err, newer)
	}
	resp, err := s.Client().Get(ctx, s.Keys().Report("a"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read the report: %v", err)
	}
	var got site.Report
	if err := json.Unmarshal(resp.Kvs[0].Value, &got); err != nil || got.State != site.ControllerStopped {
		t.Fatalf("report after the stale write: %+v (%v), want the stopped one", got, err)
	}
}
