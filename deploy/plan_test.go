package deploy

import (
	"encoding/json"
	"testing"
)

func TestPlanHelpers(t *testing.T) {
	p := Problem{
		Hosts: []Host{hostOf("a1", "a", 8, 8192), hostOf("b1", "b", 8, 8192)},
		Guests: []Guest{
			guestOf("g1", Gold, ZoneNone, 8, 8192),
			guestOf("s1", Silver, ZoneNone, 4, 4096),
			guestOf("b1", Bronze, ZoneNone, 4, 4096),
		},
		Current:     map[string]string{"g1": "a1", "s1": "b1", "b1": "b1"},
		FailedHosts: []string{"a1"},
	}
	plan, err := Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Moves() != 1 || plan.Preemptions() != 2 {
		t.Errorf("moves %d, preemptions %d; want 1, 2", plan.Moves(), plan.Preemptions())
	}
	d, ok := plan.Decision("s1")
	if !ok || d.State != Preempted || d.From != "b1" || d.Tier != Silver {
		t.Errorf("Decision(s1) = %+v, %v", d, ok)
	}
	if _, ok := plan.Decision("nobody"); ok {
		t.Error("Decision(nobody) found")
	}
	// A Plan built by hand has no index; Decision still finds guests.
	byHand := Plan{Decisions: plan.Decisions}
	if d2, ok := byHand.Decision("s1"); !ok || d2 != d {
		t.Errorf("hand-built Decision(s1) = %+v, %v", d2, ok)
	}
	b, err := json.Marshal(plan.Decisions[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Guest":"g1","Tier":"gold","State":"running","Host":"b1","Site":"b","From":"a1",` +
		`"Reason":"placed on b1 (site b): host a1 failed; same site had no room; preempted bronze guest b1 and silver guest s1"}`
	if string(b) != want {
		t.Errorf("JSON:\n got  %s\n want %s", b, want)
	}
}
