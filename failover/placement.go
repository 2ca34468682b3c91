package failover

import (
	"fmt"
	"slices"

	"github.com/zdt-project/zdt/deploy"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// KindPlacement is the op that moves guests when placements must change
// outside a failover (a host failed, capacity came back, new guests).
const KindPlacement = "placement"

// StepPlace solves the guests' placement and writes what changed.
const StepPlace = "place"

// PlanPlacement solves where every guest of the config should be, given the
// cluster's state, and returns the placements that differ from those in
// etcd (in site, host or state), in the solver's order.
//
// Sites that are not up (dark or fenced) and hosts their sites report
// failed have no room. A host's capacity comes from the config or, when
// the config leaves it out, from its site's report; a host with neither
// takes no guests. A guest bigger than every host with a known capacity is
// unplaced with that reason rather than failing the whole solve.
//
// Drained sites (zdt evacuate) take no guest, Bronze and Silver ones being
// preempted for Gold ones as in a failover, unless that leaves a Gold guest
// without a host that a drained site could give it: then the solve is done
// again with them, and its plan is used if it runs more Gold guests.
func PlanPlacement(cfg *config.Cluster, snap *site.Snapshot) ([]site.Placement, error) {
	out, stopped, err := planPlacement(cfg, snap, true)
	if err != nil || stopped == 0 || len(snap.Drains) == 0 {
		return out, err
	}
	with, stoppedWith, err := planPlacement(cfg, snap, false)
	if err != nil || stoppedWith >= stopped {
		return out, nil
	}
	return with, nil
}

// planPlacement solves once; goldStopped counts the Gold guests it leaves
// not running.
func planPlacement(cfg *config.Cluster, snap *site.Snapshot, avoidDrained bool) (out []site.Placement, goldStopped int, err error) {
	gold := map[string]bool{}
	p := deploy.Problem{Current: map[string]string{}}
	if cfg.Placement.ZoneScope == config.ZoneScopeService {
		p.Scope = deploy.ScopeService
	}
	known := map[string]bool{}
	for _, h := range cfg.Hosts() {
		dh, ok := hostCapacity(h, snap)
		if !ok {
			continue
		}
		p.Hosts = append(p.Hosts, dh)
		known[h.Name] = true
		if !snap.Up(h.Site) {
			continue
		}
		if r, ok := hostReport(snap, h); ok && r.Failed {
			p.FailedHosts = append(p.FailedHosts, h.Name)
		}
		if snap.HostDrained(h.Name) {
			p.DrainedHosts = append(p.DrainedHosts, h.Name)
		}
	}
	for _, s := range cfg.Sites {
		switch {
		case !snap.Up(s.Name):
			p.FailedSites = append(p.FailedSites, s.Name)
		case avoidDrained && snap.Drained(s.Name):
			p.DrainedSites = append(p.DrainedSites, s.Name)
		}
	}
	for _, g := range cfg.Guests() {
		dg, err := deployGuest(g)
		if err != nil {
			return nil, 0, err
		}
		gold[g.Name] = dg.Tier == deploy.Gold
		if why := fitsNoHost(dg, p.Hosts); why != "" {
			out = appendChange(out, snap, site.Placement{Guest: g.Name, State: site.GuestUnplaced, Reason: why})
			if gold[g.Name] {
				goldStopped++
			}
			continue
		}
		p.Guests = append(p.Guests, dg)
		switch cur, ok := snap.Placements[g.Name]; {
		case ok && cur.State == site.GuestRunning && known[cur.Host]:
			p.Current[g.Name] = cur.Host
		case ok && cur.State == site.GuestPreempted:
			p.Preempted = append(p.Preempted, g.Name)
		}
	}
	if len(p.Guests) == 0 {
		return out, goldStopped, nil
	}
	plan, err := deploy.Solve(p)
	if err != nil {
		return nil, 0, fmt.Errorf("place guests: %w", err)
	}
	for _, d := range plan.Decisions {
		pl := site.Placement{Guest: d.Guest, Reason: d.Reason}
		switch d.State {
		case deploy.Running:
			pl.State, pl.Site, pl.Host = site.GuestRunning, d.Site, d.Host
		case deploy.Preempted:
			pl.State = site.GuestPreempted
		default:
			pl.State = site.GuestUnplaced
		}
		if pl.State != site.GuestRunning && gold[d.Guest] {
			goldStopped++
		}
		out = appendChange(out, snap, pl)
	}
	return out, goldStopped, nil
}

// appendChange adds pl if it differs from the guest's placement in etcd.
func appendChange(out []site.Placement, snap *site.Snapshot, pl site.Placement) []site.Placement {
	cur, ok := snap.Placements[pl.Guest]
	if ok && cur.State == pl.State && cur.Site == pl.Site && cur.Host == pl.Host {
		return out
	}
	return append(out, pl)
}

func deployGuest(g config.Guest) (deploy.Guest, error) {
	tier, err := deploy.ParseTier(g.Tier)
	if err != nil {
		return deploy.Guest{}, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	zone, err := deploy.ParseZone(g.Zone)
	if err != nil {
		return deploy.Guest{}, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return deploy.Guest{Name: g.Name, Service: g.Service, Tier: tier, Zone: zone, VCPUs: g.VCPUs, MemoryMiB: g.MemoryMiB}, nil
}

func hostReport(snap *site.Snapshot, h config.Host) (site.HostReport, bool) {
	r := snap.Hosts[h.Site]
	i := slices.IndexFunc(r.Hosts, func(hr site.HostReport) bool { return hr.Name == h.Name })
	if i < 0 {
		return site.HostReport{}, false
	}
	return r.Hosts[i], true
}

// hostCapacity is the host as the solver sees it: the config's capacity, or
// the one its site reports; ok is false when neither says.
func hostCapacity(h config.Host, snap *site.Snapshot) (deploy.Host, bool) {
	dh := deploy.Host{Name: h.Name, Site: h.Site, VCPUs: h.VCPUs, MemoryMiB: h.MemoryMiB,
		CPUOvercommit: h.CPUOvercommit, MemoryOvercommit: h.MemoryOvercommit}
	if r, ok := hostReport(snap, h); ok {
		if dh.VCPUs == 0 {
			dh.VCPUs = r.VCPUs
		}
		if dh.MemoryMiB == 0 {
			dh.MemoryMiB = r.MemoryMiB
		}
	}
	return dh, dh.VCPUs > 0 && dh.MemoryMiB > 0
}

// fitsNoHost says why a guest fits no host, "" when it fits one.
func fitsNoHost(g deploy.Guest, hosts []deploy.Host) string {
	if len(hosts) == 0 {
		return "cannot place: no host's capacity is known yet (set it in the config, or wait for the sites to report their hypervisors)"
	}
	for _, h := range hosts {
		if g.VCPUs <= h.UsableVCPUs() && g.MemoryMiB <= h.UsableMemoryMiB() {
			return ""
		}
	}
	return fmt.Sprintf("cannot place: needs %d vCPUs / %d MiB, more than any host with a known capacity offers", g.VCPUs, g.MemoryMiB)
}
