package site

import (
	"testing"
	"time"
)

// TestOpStatusStepSince: an op is at its step since the step started, or,
// before it starts, since the step before it ended or the op was created.
func TestOpStatusStepSince(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name  string
		steps []Step
		step  string
		since time.Time
	}{
		{"not started", []Step{{Name: "fence", Status: StepPending}}, "fence", t0},
		{"running", []Step{{Name: "fence", Status: StepDone, Started: at(1), Ended: at(2)}, {Name: "confirm", Status: StepRunning, Started: at(5)}}, "confirm", at(5)},
		{"next not started", []Step{{Name: "fence", Status: StepDone, Started: at(1), Ended: at(3)}, {Name: "skipped", Status: StepSkipped}, {Name: "place", Status: StepPending}}, "place", at(3)},
		{"all done", []Step{{Name: "fence", Status: StepDone, Started: at(1), Ended: at(3)}}, "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os := opStatus(&Op{ID: "op", Kind: "failover", Created: t0, Steps: tc.steps})
			if os.Step != tc.step || !os.StepSince.Equal(tc.since) {
				t.Errorf("step %q since %s; want %q since %s", os.Step, os.StepSince, tc.step, tc.since)
			}
		})
	}
}
