package failover

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// guestConfig is three sites with one host each (4 vCPUs, 8 GiB) and the
// guests given.
func guestConfig(guests ...config.Guest) *config.Cluster {
	cfg := testConfig()
	for i, s := range []string{"a", "b", "c"} {
		cfg.Sites[i].Hosts = []config.Host{{Name: s + "1", Site: s, VCPUs: 4, MemoryMiB: 8192, CPUOvercommit: 1, MemoryOvercommit: 1}}
	}
	cfg.Services[0].Guests = guests
	return cfg
}

func guest(name, tier, zone string, vcpus int) config.Guest {
	return config.Guest{Name: name, Service: "web", Tier: tier, Zone: zone, VCPUs: vcpus, MemoryMiB: 1024}
}

// placed maps guest to "state host".
func placed(ps []site.Placement) map[string]string {
	m := map[string]string{}
	for _, p := range ps {
		m[p.Guest] = strings.TrimSpace(string(p.State) + " " + p.Host)
	}
	return m
}

func withPlacements(snap *site.Snapshot, ps map[string]string) *site.Snapshot {
	snap.Placements = map[string]site.Placement{}
	for g, h := range ps {
		snap.Placements[g] = site.Placement{Guest: g, Site: h[:1], Host: h, State: site.GuestRunning, Epoch: 5}
	}
	return snap
}

func TestPlanPlacementFirstPlacesEveryGuest(t *testing.T) {
	cfg := guestConfig(guest("ga", "gold", "A", 2), guest("gb", "gold", "B", 2), guest("s", "silver", "", 2), guest("br", "bronze", "", 2))
	snap := state{up: []string{"a", "b", "c"}}.snapshot()
	changes, err := PlanPlacement(cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	got := placed(changes)
	if len(got) != 4 {
		t.Fatalf("placements %v; want all four guests", got)
	}
	for g, p := range got {
		if !strings.HasPrefix(p, "running ") {
			t.Errorf("guest %s: %s; want running", g, p)
		}
	}
	if got["ga"][len("running "):][:1] == got["gb"][len("running "):][:1] {
		t.Errorf("Gold-Zone-A and Gold-Zone-B at the same site: %v", got)
	}
	// Once written, nothing changes.
	again, err := PlanPlacement(cfg, withPlacements(snap, map[string]string{
		"ga": got["ga"][8:], "gb": got["gb"][8:], "s": got["s"][8:], "br": got["br"][8:]}))
	if err != nil || len(again) != 0 {
		t.Errorf("second plan: %v, %v; want no change", placed(again), err)
	}
}

func TestPlanPlacementSiteLoss(t *testing.T) {
	// a is fenced: its gold guest must move; b and c are full of bronze
	// and silver, which make room in that order.
	cfg := guestConfig(
		guest("ga", "gold", "A", 4),
		guest("br", "bronze", "", 4),
		guest("s", "silver", "", 4),
	)
	snap := withPlacements(state{up: []string{"b", "c"}, joined: []string{"a"}, fenced: []string{"a"}}.snapshot(),
		map[string]string{"ga": "a1", "br": "b1", "s": "c1"})
	changes, err := PlanPlacement(cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	got := placed(changes)
	want := map[string]string{"ga": "running b1", "br": "preempted"}
	if len(got) != len(want) || got["ga"] != want["ga"] || got["br"] != want["br"] {
		t.Fatalf("changes %v; want %v (silver s stays on c1)", got, want)
	}
	for _, p := range changes {
		if p.Reason == "" {
			t.Errorf("guest %s: no reason", p.Guest)
		}
	}
}

func TestPlanPlacementCapacity(t *testing.T) {
	t.Run("from the site's report when the config leaves it out", func(t *testing.T) {
		cfg := guestConfig(guest("g", "gold", "", 6))
		cfg.Sites[0].Hosts[0].VCPUs = 0
		snap := state{up: []string{"a", "b", "c"}}.snapshot()
		snap.Hosts = map[string]site.HostsReport{"a": {Site: "a", Hosts: []site.HostReport{{Name: "a1", VCPUs: 8, MemoryMiB: 8192}}}}
		changes, err := PlanPlacement(cfg, snap)
		if err != nil || placed(changes)["g"] != "running a1" {
			t.Fatalf("%v, %v; want g on a1, the only host with 8 vCPUs", placed(changes), err)
		}
	})
	t.Run("a reported failed host takes nothing", func(t *testing.T) {
		cfg := guestConfig(guest("g", "gold", "", 2))
		snap := withPlacements(state{up: []string{"a", "b", "c"}}.snapshot(), map[string]string{"g": "a1"})
		snap.Hosts = map[string]site.HostsReport{"a": {Site: "a", Hosts: []site.HostReport{{Name: "a1", Failed: true}}}}
		changes, err := PlanPlacement(cfg, snap)
		if err != nil || len(changes) != 1 || changes[0].Host == "a1" || changes[0].State != site.GuestRunning {
			t.Fatalf("%v, %v; want g moved off the failed a1", placed(changes), err)
		}
	})
	t.Run("a guest bigger than every host is unplaced, the rest still placed", func(t *testing.T) {
		cfg := guestConfig(guest("big", "gold", "", 64), guest("g", "gold", "", 1))
		changes, err := PlanPlacement(cfg, state{up: []string{"a", "b", "c"}}.snapshot())
		if err != nil {
			t.Fatal(err)
		}
		got := placed(changes)
		if got["big"] != "unplaced" || !strings.HasPrefix(got["g"], "running") {
			t.Fatalf("%v; want big unplaced and g running", got)
		}
		for _, p := range changes {
			if p.Guest == "big" && p.Reason != "cannot place: needs 64 vCPUs / 1024 MiB, more than any host with a known capacity offers" {
				t.Errorf("reason %q", p.Reason)
			}
		}
	})
}

func TestDecidePlacement(t *testing.T) {
	cfg := guestConfig(guest("g", "gold", "", 1))
	all := map[string]string{"web": "a", "db": "b", "mail": "a"}
	t.Run("waits for every site within the grace", func(t *testing.T) {
		d, err := Decide(cfg, state{up: []string{"a", "b"}, assigned: all}.snapshot(), "b", t0, t0)
		if err != nil || d.Start != nil || d.Resume != nil {
			t.Fatalf("%+v, %v; want nothing yet", d, err)
		}
	})
	t.Run("places once every site is up", func(t *testing.T) {
		d, err := Decide(cfg, state{up: []string{"a", "b", "c"}, assigned: all}.snapshot(), "b", t0, t0)
		if err != nil || d.Start == nil || d.Start.Kind != KindPlacement || d.Start.Steps[0].Name != StepPlace {
			t.Fatalf("%+v, %v; want a placement op", d, err)
		}
	})
	t.Run("a failover places guests after the reassignments", func(t *testing.T) {
		d, err := Decide(cfg, state{up: []string{"b", "c"}, joined: []string{"a"}, assigned: all}.snapshot(), "b", t0.Add(time.Minute), t0)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, st := range d.Start.Steps {
			steps = append(steps, st.Name)
		}
		place := slices.IndexFunc(d.Start.Steps, func(st site.Step) bool { return st.Name == StepPlace })
		lastAssign := -1
		for i, st := range d.Start.Steps {
			if st.Name == StepAssign {
				lastAssign = i
			}
		}
		if place < 0 || place < lastAssign || d.Start.Steps[place+1].Name != StepAwaitGuests {
			t.Fatalf("failover steps %v; want place after the assignments, before the waits", steps)
		}
	})
}

// TestPlanPlacementDrained: a drained site's guests move off it, a Bronze
// one preempted for its Gold one as in a failover; a drained site still
// takes a Gold guest that no other site has room for.
func TestPlanPlacementDrained(t *testing.T) {
	cfg := guestConfig(guest("ga", "gold", "", 4), guest("br", "bronze", "", 4), guest("s", "silver", "", 2))
	snap := withPlacements(state{up: []string{"a", "b", "c"}}.snapshot(), map[string]string{"ga": "a1", "br": "b1", "s": "c1"})
	snap.Drains = map[string]site.Drain{"a": {Site: "a"}}
	changes, err := PlanPlacement(cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	if got := placed(changes); len(got) != 2 || got["ga"] != "running b1" || got["br"] != "preempted" {
		t.Errorf("changes with a drained: %v; want ga to b1, br preempted", got)
	}
	for _, p := range changes {
		if p.Guest == "ga" && !strings.Contains(p.Reason, "site a is drained") {
			t.Errorf("ga's reason %q; want it to say site a is drained", p.Reason)
		}
	}

	// With b and c drained too, there is nowhere else for ga: it stays.
	snap.Drains["b"], snap.Drains["c"] = site.Drain{Site: "b"}, site.Drain{Site: "c"}
	changes, err = PlanPlacement(cfg, snap)
	if err != nil || len(changes) != 0 {
		t.Errorf("changes with every site drained: %v, %v; want none", placed(changes), err)
	}
}
