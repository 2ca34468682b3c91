package controller

import (
	"encoding/json"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestSiteLossReplacesGuests: the failover op of a dark site places its
// guests again: its gold guest runs at a surviving site, away from the
// Gold-Zone-B guest's site, and a bronze guest makes room.
func TestSiteLossReplacesGuests(t *testing.T) {
	hosts := map[string][]config.Host{}
	for _, s := range []string{"a", "b", "c"} {
		hosts[s] = []config.Host{{Name: s + "1", Site: s, VCPUs: 4, MemoryMiB: 8192, CPUOvercommit: 1, MemoryOvercommit: 1}}
	}
	services := testServices()
	g := func(name, tier, zone string) config.Guest {
		return config.Guest{Name: name, Service: "web", Tier: tier, Zone: zone, VCPUs: 4, MemoryMiB: 1024}
	}
	services[0].Guests = []config.Guest{g("gold-a", "gold", "A"), g("gold-b", "gold", "B"), g("bronze", "bronze", "")}
	tc := newTestClusterWith(t, sitetest.Options{Services: services, Hosts: hosts})
	ctx := ctxFor(t, 60*time.Second)
	tc.start("c", startOptions{}) // c coordinates
	if got := tc.coordinator(ctx); got != "c" {
		t.Fatalf("coordinator %s, want c", got)
	}
	tc.start("a", startOptions{})
	tc.start("b", startOptions{})
	before := tc.bootstrapped(ctx)

	placement := func(guest string) site.Placement {
		resp, _ := waitKey(t, ctx, tc.obs, tc.store.Keys().Placement(guest), guest+" placed", present)
		return decodeKV[site.Placement](t, resp)
	}
	first := map[string]site.Placement{}
	for _, name := range []string{"gold-a", "gold-b", "bronze"} {
		first[name] = placement(name)
		if first[name].State != site.GuestRunning {
			t.Fatalf("guest %s: %+v; want running (one per site)", name, first[name])
		}
	}
	// Take down the site of gold-a, unless that is the coordinator's.
	victim := first["gold-a"].Site
	if victim == "c" {
		victim = first["gold-b"].Site
	}
	moving := "gold-a"
	if first["gold-a"].Site != victim {
		moving = "gold-b"
	}
	tc.etcd.KillMember(victim)
	tc.kill(victim)
	op := tc.checkFailover(ctx, victim, before)
	if last := op.Steps[len(op.Steps)-1]; last.Name != "place" || last.Status != site.StepDone {
		t.Fatalf("last step %+v; want place done", last)
	}
	resp, _ := waitKey(t, ctx, tc.obs, tc.store.Keys().Placement(moving), moving+" moved", func(r *clientv3.GetResponse) bool {
		var p site.Placement
		return present(r) && json.Unmarshal(r.Kvs[0].Value, &p) == nil && p.Op == op.ID
	})
	moved := decodeKV[site.Placement](t, resp)
	other := first["gold-a"]
	if moving == "gold-a" {
		other = first["gold-b"]
	}
	if moved.State != site.GuestRunning || moved.Site == victim || moved.Site == other.Site {
		t.Errorf("%s after the loss of %s: %+v; want running at the site that is neither dark nor %s's (%s)", moving, victim, moved, other.Guest, other.Site)
	}
	snap, err := tc.store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := snap.Placements["bronze"]; b.State != site.GuestPreempted {
		t.Errorf("bronze: %+v; want preempted to make room", b)
	}
	t.Logf("%s: %s", moving, moved.Reason)
}
