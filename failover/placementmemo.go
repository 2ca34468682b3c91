package failover

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// placementMemo remembers the coordinator's last solve of the guests'
// placement and what it was solved from. Every pass of an idle coordinator
// asks whether the placement must change; at 10,000 guests a solve takes
// a good part of a second, so the solve is done again only when something
// it reads changed (placementInput).
type placementMemo struct {
	key    [sha256.Size]byte
	solved bool
	out    []site.Placement
	// changed is the Snapshot.Changed of the snapshot last planned from
	// (0: unknown): a snapshot with the same one holds the same records,
	// and is not even digested.
	changed int64
}

// plan is PlanPlacement, solved again only when its input changed. A nil
// memo always solves.
func (m *placementMemo) plan(cfg *config.Cluster, snap *site.Snapshot) ([]site.Placement, error) {
	if m == nil {
		return PlanPlacement(cfg, snap)
	}
	if m.solved && snap.Changed != 0 && snap.Changed == m.changed {
		return m.out, nil
	}
	key := placementInput(snap)
	if m.solved && key == m.key {
		m.changed = snap.Changed
		return m.out, nil
	}
	out, err := PlanPlacement(cfg, snap)
	if err != nil {
		return nil, err
	}
	m.key, m.out, m.solved, m.changed = key, out, true, snap.Changed
	return out, nil
}

// placementInput digests what PlanPlacement reads of the cluster's state:
// which sites are up, the drains of sites and hosts, each host's reported
// capacity and failure (not the guests it runs, which change while they
// start), and every placement at its epoch. The config is the
// coordinator's own, which does not change while it runs.
func placementInput(snap *site.Snapshot) [sha256.Size]byte {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(snap.Alive)) {
		fmt.Fprintf(h, "alive %s\n", name)
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Fences)) {
		fmt.Fprintf(h, "fenced %s\n", name)
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Drains)) {
		fmt.Fprintf(h, "drained %s\n", name)
	}
	for _, name := range slices.Sorted(maps.Keys(snap.HostDrains)) {
		fmt.Fprintf(h, "host drained %s\n", name)
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Hosts)) {
		for _, r := range snap.Hosts[name].Hosts {
			fmt.Fprintf(h, "host %s %s %d %d %t\n", name, r.Name, r.VCPUs, r.MemoryMiB, r.Failed)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(snap.Placements)) {
		p := snap.Placements[name]
		fmt.Fprintf(h, "placed %s %d %s %s %s\n", name, p.Epoch, p.Site, p.Host, p.State)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}
