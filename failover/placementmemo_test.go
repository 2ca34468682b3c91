package failover

import (
	"slices"

	"testing"

	"github.com/zdt-project/zdt/site"
)

// TestPlacementInput: the digest the coordinator keys its last solve on
// changes with everything the solve reads (a site's lease or fence, a
// drain, a host's capacity or failure, a placement) and not with the
// guests a host reports running, which change while guests start.
func TestPlacementInput(t *testing.T) {
	base := func() *site.Snapshot {
		return &site.Snapshot{
			Alive:      map[string]site.Alive{"a": {Site: "a"}, "b": {Site: "b"}},
			Fences:     map[string]site.Fence{},
			Drains:     map[string]site.Drain{},
			HostDrains: map[string]site.HostDrain{},
			Hosts: map[string]site.HostsReport{"a": {Site: "a", Hosts: []site.HostReport{
				{Name: "a1", VCPUs: 8, MemoryMiB: 16384, Running: []site.RunningGuest{{Name: "g1"}}}}}},
			Placements: map[string]site.Placement{"g1": {Guest: "g1", Site: "a", Host: "a1", State: site.GuestRunning, Epoch: 7}},
		}
	}
	want := placementInput(base())
	if got := placementInput(base()); got != want {
		t.Fatal("the same state digests differently")
	}
	same := base()
	same.Hosts["a"].Hosts[0].Running = append(same.Hosts["a"].Hosts[0].Running, site.RunningGuest{Name: "g2"})
	if placementInput(same) != want {
		t.Error("a guest more running on a host changed the digest; the solve does not read it")
	}
	for name, change := range map[string]func(*site.Snapshot){
		"a site's lease gone": func(s *site.Snapshot) { delete(s.Alive, "b") },
		"a site fenced":       func(s *site.Snapshot) { s.Fences["b"] = site.Fence{Site: "b"} },
		"a site drained":      func(s *site.Snapshot) { s.Drains["a"] = site.Drain{Site: "a"} },
		"a host drained":      func(s *site.Snapshot) { s.HostDrains["a1"] = site.HostDrain{Site: "a", Host: "a1"} },
		"a host failed":       func(s *site.Snapshot) { s.Hosts["a"].Hosts[0].Failed = true },
		"a host's capacity":   func(s *site.Snapshot) { s.Hosts["a"].Hosts[0].VCPUs = 16 },
		"a placement written": func(s *site.Snapshot) {
			p := s.Placements["g1"]
			p.Epoch = 9
			s.Placements["g1"] = p
		},
		"a guest placed": func(s *site.Snapshot) {
			s.Placements["g2"] = site.Placement{Guest: "g2", Site: "a", Host: "a1", State: site.GuestRunning, Epoch: 8}
		},
	} {
		s := base()
		change(s)
		if placementInput(s) == want {
			t.Errorf("%s: the digest did not change", name)
		}
	}
}

// TestPlacementMemo: the memo answers as PlanPlacement does, solving
// again once the state changed.
func TestPlacementMemo(t *testing.T) {
	cfg := guestConfig(guest("ga", "gold", "A", 2), guest("gb", "gold", "B", 2), guest("s", "silver", "", 2), guest("br", "bronze", "", 2))
	var memo placementMemo
	up := state{up: []string{"a", "b", "c"}}.snapshot()
	first, err := memo.plan(cfg, up)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := PlanPlacement(cfg, up); len(first) == 0 || len(first) != len(want) {
		t.Fatalf("memo planned %d placements; PlanPlacement %d", len(first), len(want))
	}
	again, err := memo.plan(cfg, up)
	if err != nil || len(again) != len(first) {
		t.Fatalf("asked again: %d placements, %v; want the same %d", len(again), err, len(first))
	}
	dark := state{up: []string{"b", "c"}}.snapshot()
	got, err := memo.plan(cfg, dark)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := PlanPlacement(cfg, dark)
	if len(got) != len(want) {
		t.Errorf("with site a dark the memo planned %d placements; PlanPlacement %d", len(got), len(want))
	}
	for _, p := range got {
		if p.Site == "a" && p.State == site.GuestRunning {
			t.Errorf("with site a dark the memo still runs guest %s at a: the solve was not done again", p.Guest)
		}
	}
}

// TestPlacementMemoByRevision: a view's snapshots say the revision of
// their last change (Snapshot.Changed); one with the revision of the last
// solve is answered without even a digest, and one with another revision
// is digested and, changed, solved again.
func TestPlacementMemoByRevision(t *testing.T) {
	cfg := guestConfig(guest("ga", "gold", "A", 2), guest("gb", "gold", "B", 2), guest("s", "silver", "", 2), guest("br", "bronze", "", 2))
	var memo placementMemo
	up := state{up: []string{"a", "b", "c"}}.snapshot()
	up.Changed = 40
	first, err := memo.plan(cfg, up)
	if err != nil {
		t.Fatal(err)
	}
	// The same revision stands for the same records: the memo does not
	// look at them (here they differ, which a view never does).
	stale := state{up: []string{"b", "c"}}.snapshot()
	stale.Changed = 40
	if got, _ := memo.plan(cfg, stale); len(got) != len(first) || !slices.Equal(got, first) {
		t.Errorf("the same revision: %v; want the last solve %v", got, first)
	}
	dark := state{up: []string{"b", "c"}}.snapshot()
	dark.Changed = 41
	got, err := memo.plan(cfg, dark)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.Site == "a" && p.State == site.GuestRunning {
			t.Errorf("a new revision with site a dark: guest %s still runs at a; the solve was not done again", p.Guest)
		}
	}
	// A new revision with the same records (a report that the solve does
	// not read) is digested, found the same, and not solved again.
	same := state{up: []string{"b", "c"}}.snapshot()
	same.Changed = 42
	if again, _ := memo.plan(cfg, same); !slices.Equal(again, got) || memo.changed != 42 {
		t.Errorf("a new revision, the same records: %v (memo at revision %d); want the last solve, at 42", again, memo.changed)
	}
}
