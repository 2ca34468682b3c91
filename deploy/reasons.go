package deploy

import (
	"fmt"
	"strings"
)

// placedReason says why g runs where the solver put it:
// "placed on b2 (site b): host a1 failed; same site had no room".
func (s *solver) placedReason(g int, sameSiteFull bool, victims []int) string {
	gs := &s.gs[g]
	hs := &s.hosts[gs.at]
	if gs.at == gs.from {
		return "stays on host " + hs.name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "placed on %s (site %s): %s", hs.name, s.sites[hs.site].name, s.causeText(g))
	if sameSiteFull && gs.cause == causeHostFailed {
		b.WriteString("; same site had no room")
	}
	if len(victims) > 0 {
		b.WriteString("; preempted ")
		b.WriteString(s.victimList(victims))
	}
	return b.String()
}

// causeText says why g needed a place: "host a1 failed".
func (s *solver) causeText(g int) string {
	gs := &s.gs[g]
	switch gs.cause {
	case causeBack:
		return "back from preemption"
	case causeHostFailed:
		if s.hosts[gs.from].drained {
			return "host " + s.hosts[gs.from].name + " is drained"
		}
		return "host " + s.hosts[gs.from].name + " failed"
	case causeSiteFailed:
		if st := s.sites[s.hosts[gs.from].site]; st.drained {
			return "site " + st.name + " is drained"
		}
		return "site " + s.sites[s.hosts[gs.from].site].name + " failed"
	case causeOverfull:
		return "host " + s.hosts[gs.from].name + " is over capacity"
	case causeZone:
		o := &s.gs[gs.other]
		where := "on " + s.hosts[gs.from].name
		if gs.tier == Gold {
			where = "at site " + s.sites[s.hosts[gs.from].site].name
		}
		return fmt.Sprintf("%s guest %s runs %s", label(o.tier, s.guests[gs.other].Zone), s.guests[gs.other].Name, where)
	case causeVictim:
		return fmt.Sprintf("moved off %s to make room for %s guest %s",
			s.hosts[gs.from].name, s.gs[gs.other].tier, s.guests[gs.other].Name)
	}
	return "was not running"
}

// causeSuffix adds, to the reason of a running guest that cannot be placed,
// why it lost its place: " (host a1 failed)".
func (s *solver) causeSuffix(g int) string {
	if s.gs[g].from < 0 {
		return ""
	}
	return " (" + s.causeText(g) + ")"
}

// victimList names stopped guests by tier: "bronze guests b1, b2 and silver
// guest s1". The victims come lowest tier first.
func (s *solver) victimList(victims []int) string {
	var parts []string
	for i := 0; i < len(victims); {
		t := s.gs[victims[i]].tier
		var names []string
		for ; i < len(victims) && s.gs[victims[i]].tier == t; i++ {
			names = append(names, s.guests[victims[i]].Name)
		}
		noun := " guest "
		if len(names) > 1 {
			noun = " guests "
		}
		parts = append(parts, t.String()+noun+strings.Join(names, ", "))
	}
	return strings.Join(parts, " and ")
}

// diagnose says why g cannot be placed now: no healthy host, none big
// enough, the zone rules, or no room even by stopping lower tiers.
func (s *solver) diagnose(g int) string {
	gs := &s.gs[g]
	healthy, big, lowerThere, room := false, false, false, false
	for h := range s.hosts {
		hs := &s.hosts[h]
		if !hs.healthy {
			continue
		}
		healthy = true
		if hs.cpu < gs.cpu || hs.mem < gs.mem {
			continue
		}
		big = true
		roomCPU, roomMem := hs.freeCPU, hs.freeMem
		for t := Bronze; t < gs.tier; t++ {
			roomCPU += hs.tierCPU[t]
			roomMem += hs.tierMem[t]
			lowerThere = lowerThere || hs.tierCPU[t] > 0
		}
		room = room || roomCPU >= gs.cpu && roomMem >= gs.mem
	}
	needs := fmt.Sprintf("needs %d vCPUs / %d MiB", gs.cpu, gs.mem)
	switch {
	case !healthy:
		return "no healthy host"
	case !big:
		return needs + "; no healthy host is that big"
	case room:
		// Room exists, so the zone rules forbid every host that has it.
		other := ZoneA
		if gs.zone == 1 {
			other = ZoneB
		}
		where := "host"
		if gs.tier == Gold {
			where = "site"
		}
		text := fmt.Sprintf("every %s with room runs a %s guest", where, label(gs.tier, other))
		if s.scope == ScopeService {
			text += fmt.Sprintf(" of service %q", s.guests[g].Service)
		}
		return text
	}
	text := needs + "; no host has room"
	switch {
	case gs.tier == Gold && lowerThere:
		text += ", not even by stopping silver and bronze guests"
	case gs.tier == Gold:
		text += " and only gold guests run where it would fit"
	case gs.tier == Silver && lowerThere:
		text += ", not even by stopping bronze guests"
	case gs.tier == Silver:
		text += " and only gold and silver guests run where it would fit"
	}
	return text
}
