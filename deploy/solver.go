package deploy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Solve places every guest of p and returns the plan. It returns an error
// wrapping ErrInvalid, and no plan, when p does not validate.
func Solve(p Problem) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("solve placement: %w", err)
	}
	s := newSolver(p)
	s.keep()
	for t := Gold; t >= Bronze; t-- {
		s.placeTier(t)
	}
	return s.plan(), nil
}

// solver is the state of one Solve. Guests, hosts and sites are indexed by
// their position in name order, so every tie-break by index is by name.
type solver struct {
	scope  Scope
	guests []Guest // by name
	gs     []guestState
	hosts  []hostState // by name
	sites  []siteState // by name
	// goldZones[group][site] and silverZones[group][host] count the gold
	// (silver) guests of zone A and B placed there; nil for a group without
	// zoned gold (silver) guests. A group is the whole cluster under
	// ScopeCluster and one service under ScopeService.
	goldZones   [][][2]int32
	silverZones [][][2]int32
	queue       [Gold + 1][]int // guests to place, per tier
	scratch     []int           // victim buffers of preempt
	best        []int
}

type siteState struct {
	name    string
	failed  bool // failed or drained: no capacity
	drained bool
	hosts   []int
}

type hostState struct {
	name      string
	site      int
	healthy   bool
	drained   bool // not healthy because drained (not failed)
	cpu       int  // usable, after overcommit
	mem       int64
	freeCPU   int
	freeMem   int64
	tierCount [Gold + 1]int   // per tier: the guests placed here,
	tierCPU   [Gold + 1]int   // the vCPUs they use
	tierMem   [Gold + 1]int64 // and the memory they use
	running   []int           // placed guests, in victim order (see victimOrder)
}

type guestState struct {
	tier      Tier
	zone      int // 0 none, 1 A, 2 B
	group     int
	cpu       int
	mem       int64
	from      int  // host it runs on now, or -1
	at        int  // host the plan puts it on, or -1
	preempted bool // preempted earlier and not running now
	cause     cause
	other     int // the guest behind cause: zone conflict or preemptor
	state     State
	reason    string
}

// cause is why a guest needs a place.
type cause int

const (
	causeNew        cause = iota // was not running
	causeBack                    // was preempted earlier
	causeHostFailed              // its host failed
	causeSiteFailed              // its host's site failed
	causeOverfull                // its host cannot hold it next to guests kept before it
	causeZone                    // a guest of the other zone, kept before it, excludes it
	causeVictim                  // stopped for a guest of a higher tier
)

func newSolver(p Problem) *solver {
	s := &solver{scope: p.Scope}
	s.guests = slices.Clone(p.Guests)
	slices.SortFunc(s.guests, func(a, b Guest) int { return strings.Compare(a.Name, b.Name) })
	hosts := slices.Clone(p.Hosts)
	slices.SortFunc(hosts, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })

	failedSite := set(p.FailedSites)
	drainedSite := set(p.DrainedSites)
	failedHost := set(p.FailedHosts)
	drainedHost := set(p.DrainedHosts)
	siteIdx := map[string]int{}
	for _, h := range hosts {
		siteIdx[h.Site] = 0
	}
	for i, name := range slices.Sorted(maps.Keys(siteIdx)) {
		siteIdx[name] = i
		s.sites = append(s.sites, siteState{name: name, failed: failedSite[name] || drainedSite[name], drained: drainedSite[name]})
	}
	hostIdx := make(map[string]int, len(hosts))
	s.hosts = make([]hostState, len(hosts))
	for i, h := range hosts {
		si := siteIdx[h.Site]
		cpu, mem := h.UsableVCPUs(), h.UsableMemoryMiB()
		s.hosts[i] = hostState{
			name: h.Name, site: si, healthy: !failedHost[h.Name] && !drainedHost[h.Name] && !s.sites[si].failed,
			drained: drainedHost[h.Name] && !failedHost[h.Name],
			cpu:     cpu, mem: mem, freeCPU: cpu, freeMem: mem,
		}
		s.sites[si].hosts = append(s.sites[si].hosts, i)
		hostIdx[h.Name] = i
	}

	groups := map[string]int{}
	if p.Scope == ScopeService {
		for _, g := range s.guests {
			groups[g.Service] = 0
		}
		for i, name := range slices.Sorted(maps.Keys(groups)) {
			groups[name] = i
		}
	}
	s.goldZones = make([][][2]int32, max(1, len(groups)))
	s.silverZones = make([][][2]int32, max(1, len(groups)))
	preempted := set(p.Preempted)
	s.gs = make([]guestState, len(s.guests))
	for i, g := range s.guests {
		gs := guestState{
			tier: g.Tier, zone: zoneIndex(g.Zone), group: groups[g.Service],
			cpu: g.VCPUs, mem: g.MemoryMiB, from: -1, at: -1, other: -1,
		}
		if h, ok := p.Current[g.Name]; ok {
			gs.from = hostIdx[h]
		} else {
			gs.preempted = preempted[g.Name]
		}
		if gs.zone != 0 && gs.tier == Gold && s.goldZones[gs.group] == nil {
			s.goldZones[gs.group] = make([][2]int32, len(s.sites))
		}
		if gs.zone != 0 && gs.tier == Silver && s.silverZones[gs.group] == nil {
			s.silverZones[gs.group] = make([][2]int32, len(s.hosts))
		}
		s.gs[i] = gs
	}
	return s
}

// plan collects the decisions, gold first, then by name.
func (s *solver) plan() Plan {
	order := make([]int, len(s.gs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(s.gs[b].tier, s.gs[a].tier) })
	p := Plan{Decisions: make([]Decision, len(order)), index: make(map[string]int, len(order))}
	for i, g := range order {
		gs := &s.gs[g]
		d := Decision{Guest: s.guests[g].Name, Tier: gs.tier, State: gs.state, Reason: gs.reason}
		if gs.from >= 0 {
			d.From = s.hosts[gs.from].name
		}
		if gs.state == Running {
			d.Host, d.Site = s.hosts[gs.at].name, s.sites[s.hosts[gs.at].site].name
		}
		p.Decisions[i] = d
		p.index[d.Guest] = i
	}
	return p
}

func zoneIndex(z Zone) int {
	switch z {
	case ZoneA:
		return 1
	case ZoneB:
		return 2
	}
	return 0
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
