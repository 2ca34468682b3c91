package deploy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// hostOf builds a host without overcommit.
func hostOf(name, site string, vcpus int, memMiB int64) Host {
	return Host{Name: name, Site: site, VCPUs: vcpus, MemoryMiB: memMiB, CPUOvercommit: 1, MemoryOvercommit: 1}
}

// guestOf builds a guest of service "svc".
func guestOf(name string, t Tier, z Zone, vcpus int, memMiB int64) Guest {
	return Guest{Name: name, Service: "svc", Tier: t, Zone: z, VCPUs: vcpus, MemoryMiB: memMiB}
}

// violations lists every rule the plan breaks for the problem; it is the
// oracle of the table tests and of the property test.
func violations(p Problem, plan Plan) []string {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	hosts := map[string]Host{}
	for _, h := range p.Hosts {
		hosts[h.Name] = h
	}
	failedSite, failedHost := set(p.FailedSites), set(p.FailedHosts)
	healthy := func(h Host) bool { return !failedHost[h.Name] && !failedSite[h.Site] }
	guests := map[string]Guest{}
	for _, g := range p.Guests {
		guests[g.Name] = g
	}

	// Exactly one decision per guest, in order, each consistent.
	if len(plan.Decisions) != len(p.Guests) {
		add("%d decisions for %d guests", len(plan.Decisions), len(p.Guests))
	}
	seen := map[string]bool{}
	for i, d := range plan.Decisions {
		g, ok := guests[d.Guest]
		switch {
		case !ok:
			add("decision for unknown guest %q", d.Guest)
			continue
		case seen[d.Guest]:
			add("two decisions for guest %q", d.Guest)
		}
		seen[d.Guest] = true
		if i > 0 {
			prev := plan.Decisions[i-1]
			if cmp.Or(cmp.Compare(d.Tier, prev.Tier), strings.Compare(prev.Guest, d.Guest)) >= 0 {
				add("decision %q after %q: want gold first, then by name", d.Guest, prev.Guest)
			}
		}
		if d.Tier != g.Tier || d.From != p.Current[d.Guest] || d.Reason == "" {
			add("decision %+v does not match guest %+v (current %q)", d, g, p.Current[d.Guest])
		}
		if got, ok := plan.Decision(d.Guest); !ok || got != d {
			add("Plan.Decision(%q) = %+v, %v", d.Guest, got, ok)
		}
		switch d.State {
		case Running:
			h, ok := hosts[d.Host]
			switch {
			case !ok:
				add("guest %s runs on unknown host %q", d.Guest, d.Host)
			case !healthy(h):
				add("guest %s runs on failed host %s", d.Guest, d.Host)
			case h.Site != d.Site:
				add("guest %s: site %q, but host %s is at site %q", d.Guest, d.Site, d.Host, h.Site)
			}
		case Preempted, Unplaced:
			if d.Host != "" || d.Site != "" {
				add("guest %s is %s but has host %q site %q", d.Guest, d.State, d.Host, d.Site)
			}
			if g.Tier == Gold && d.State == Preempted {
				add("gold guest %s is preempted", d.Guest)
			}
		default:
			add("guest %s has state %v", d.Guest, d.State)
		}
	}

	// Capacity, and gold guests that lower tiers keep out.
	type use struct {
		cpu, goldCPU int
		mem, goldMem int64
	}
	used := map[string]*use{}
	for _, h := range p.Hosts {
		used[h.Name] = &use{}
	}
	for _, d := range plan.Decisions {
		if u := used[d.Host]; d.State == Running && u != nil {
			g := guests[d.Guest]
			u.cpu += g.VCPUs
			u.mem += g.MemoryMiB
			if g.Tier == Gold {
				u.goldCPU += g.VCPUs
				u.goldMem += g.MemoryMiB
			}
		}
	}
	for _, name := range sortedKeys(used) {
		h, u := hosts[name], used[name]
		if u.cpu > h.UsableVCPUs() || u.mem > h.UsableMemoryMiB() {
			add("host %s over capacity: %d/%d vCPUs, %d/%d MiB", name, u.cpu, h.UsableVCPUs(), u.mem, h.UsableMemoryMiB())
		}
	}

	// Zone rules, per the problem's scope.
	group := func(g Guest) string {
		if p.Scope == ScopeService {
			return g.Service
		}
		return ""
	}
	type key struct {
		where, group string
		zone         Zone
	}
	goldAt := map[key]string{}   // site
	silverOn := map[key]string{} // host
	for _, d := range plan.Decisions {
		g := guests[d.Guest]
		if d.State != Running || g.Zone == ZoneNone {
			continue
		}
		switch g.Tier {
		case Gold:
			goldAt[key{d.Site, group(g), g.Zone}] = g.Name
		case Silver:
			silverOn[key{d.Host, group(g), g.Zone}] = g.Name
		}
	}
	for k, a := range goldAt {
		if o, ok := goldAt[key{k.where, k.group, ZoneB}]; ok && k.zone == ZoneA {
			add("Gold-Zone-A guest %s and Gold-Zone-B guest %s at site %s", a, o, k.where)
		}
	}
	for k, a := range silverOn {
		if o, ok := silverOn[key{k.where, k.group, ZoneB}]; ok && k.zone == ZoneA {
			add("Silver-Zone-A guest %s and Silver-Zone-B guest %s on host %s", a, o, k.where)
		}
	}

	// No gold guest is left out while it would fit on a healthy host, zone
	// rules kept, if the silver and bronze guests there stopped.
	for _, d := range plan.Decisions {
		g := guests[d.Guest]
		if g.Tier != Gold || d.State == Running {
			continue
		}
		for _, h := range p.Hosts {
			u := used[h.Name]
			if !healthy(h) || h.UsableVCPUs()-u.goldCPU < g.VCPUs || h.UsableMemoryMiB()-u.goldMem < g.MemoryMiB {
				continue
			}
			if g.Zone != ZoneNone {
				other := ZoneA
				if g.Zone == ZoneA {
					other = ZoneB
				}
				if _, ok := goldAt[key{h.Site, group(g), other}]; ok {
					continue
				}
			}
			add("gold guest %s is %s, but would fit on %s if its lower tiers stopped", g.Name, d.State, h.Name)
		}
	}
	slices.Sort(bad) // the map walks above are unordered
	return bad
}
