package deploy

import (
	"cmp"
	"slices"
)

// keep lets every guest on a healthy host stay, in priority order, while it
// fits and breaks no zone rule, and queues all other guests for placing.
func (s *solver) keep() {
	var running []int
	for g := range s.gs {
		gs := &s.gs[g]
		switch {
		case gs.from >= 0:
			running = append(running, g)
		case gs.preempted:
			gs.cause = causeBack
			s.enqueue(g)
		default:
			gs.cause = causeNew
			s.enqueue(g)
		}
	}
	slices.SortStableFunc(running, func(a, b int) int { return cmp.Compare(s.gs[b].tier, s.gs[a].tier) })
	for _, g := range running {
		gs := &s.gs[g]
		h := &s.hosts[gs.from]
		switch {
		case s.sites[h.site].failed:
			gs.cause = causeSiteFailed
		case !h.healthy:
			gs.cause = causeHostFailed
		case !s.allowed(g, gs.from):
			gs.cause, gs.other = causeZone, s.conflict(g, gs.from)
		case h.freeCPU < gs.cpu || h.freeMem < gs.mem:
			gs.cause = causeOverfull
		default:
			s.assign(g, gs.from)
			gs.state, gs.reason = Running, "stays on host "+h.name
			continue
		}
		s.enqueue(g)
	}
}

func (s *solver) enqueue(g int) { s.queue[s.gs[g].tier] = append(s.queue[s.gs[g].tier], g) }

// placeTier places the queued guests of tier t: first those that were
// running, then those preempted earlier, then new ones; bigger ones first.
func (s *solver) placeTier(t Tier) {
	q := s.queue[t]
	slices.SortFunc(q, func(a, b int) int {
		ga, gb := &s.gs[a], &s.gs[b]
		return cmp.Or(
			cmp.Compare(ga.class(), gb.class()),
			cmp.Compare(gb.cpu, ga.cpu),
			cmp.Compare(gb.mem, ga.mem),
			cmp.Compare(a, b))
	})
	for _, g := range q {
		s.place(g)
	}
	s.queue[t] = nil
}

func (gs *guestState) class() int {
	switch {
	case gs.from >= 0:
		return 0
	case gs.cause == causeBack:
		return 1
	}
	return 2
}

// place puts g on the best host with room, in its own site first when it
// has one; else it stops guests of lower tiers to make room; else it records
// why g cannot run.
func (s *solver) place(g int) {
	gs := &s.gs[g]
	pref := -1
	if gs.from >= 0 && !s.sites[s.hosts[gs.from].site].failed {
		pref = s.hosts[gs.from].site
	}
	h, sameSiteFull := -1, false
	if pref >= 0 {
		h = s.bestFit(g, pref, true)
		sameSiteFull = h < 0
	}
	if h < 0 {
		h = s.bestFit(g, pref, false)
	}
	var victims []int
	if h < 0 {
		h, victims = s.preempt(g, pref)
		sameSiteFull = sameSiteFull && h >= 0 && s.hosts[h].site != pref
	}
	if h >= 0 {
		s.assign(g, h)
		gs.state, gs.reason = Running, s.placedReason(g, sameSiteFull, victims)
		return
	}
	switch {
	case gs.cause == causeVictim:
		gs.state = Preempted // keeps the reason set by preempt
	case gs.preempted && gs.tier != Gold: // a guest made gold since is never preempted
		gs.state, gs.reason = Preempted, "stays preempted: "+s.diagnose(g)
	default:
		gs.state, gs.reason = Unplaced, "cannot place: "+s.diagnose(g)+s.causeSuffix(g)
	}
}

// bestFit returns the healthy host with room for g, that g may use and
// that g leaves tightest, or -1. It looks at the hosts of the site when
// inside, else at all hosts outside it.
func (s *solver) bestFit(g, site int, inside bool) int {
	gs := &s.gs[g]
	best, bestScore := -1, 0.0
	try := func(h int) {
		hs := &s.hosts[h]
		if !hs.healthy || hs.freeCPU < gs.cpu || hs.freeMem < gs.mem || !s.allowed(g, h) {
			return
		}
		score := float64(hs.freeCPU-gs.cpu)/float64(hs.cpu) + float64(hs.freeMem-gs.mem)/float64(hs.mem)
		if best < 0 || score < bestScore {
			best, bestScore = h, score
		}
	}
	if inside {
		for _, h := range s.sites[site].hosts {
			try(h)
		}
		return best
	}
	for h := range s.hosts {
		if s.hosts[h].site != site {
			try(h)
		}
	}
	return best
}

// allowed reports whether g may run on host h under the zone rules.
func (s *solver) allowed(g, h int) bool {
	gs := &s.gs[g]
	if gs.zone == 0 {
		return true
	}
	switch gs.tier {
	case Gold:
		return s.goldZones[gs.group][s.hosts[h].site][2-gs.zone] == 0
	case Silver:
		return s.silverZones[gs.group][h][2-gs.zone] == 0
	}
	return true
}

// conflict names a placed guest that keeps g off host h by the zone rules.
func (s *solver) conflict(g, h int) int {
	gs := &s.gs[g]
	hosts := []int{h}
	if gs.tier == Gold {
		hosts = s.sites[s.hosts[h].site].hosts
	}
	found := -1
	for _, x := range hosts {
		for _, o := range s.hosts[x].running {
			os := &s.gs[o]
			if os.tier == gs.tier && os.group == gs.group && os.zone == 3-gs.zone && (found < 0 || o < found) {
				found = o
			}
		}
	}
	return found
}

func (s *solver) assign(g, h int) { s.move(g, h, 1) }

func (s *solver) unassign(g int) { s.move(g, s.gs[g].at, -1) }

// move adds g to host h (sign 1) or takes it off (sign -1), keeping the
// host's free room, usage per tier, victim order and zone counts.
func (s *solver) move(g, h, sign int) {
	gs, hs := &s.gs[g], &s.hosts[h]
	hs.freeCPU -= sign * gs.cpu
	hs.freeMem -= int64(sign) * gs.mem
	hs.tierCount[gs.tier] += sign
	hs.tierCPU[gs.tier] += sign * gs.cpu
	hs.tierMem[gs.tier] += int64(sign) * gs.mem
	i, _ := slices.BinarySearchFunc(hs.running, g, s.victimOrder)
	if sign > 0 {
		hs.running = slices.Insert(hs.running, i, g)
		gs.at = h
	} else {
		hs.running = slices.Delete(hs.running, i, i+1)
		gs.at = -1
	}
	if gs.zone != 0 {
		switch gs.tier {
		case Gold:
			s.goldZones[gs.group][hs.site][gs.zone-1] += int32(sign)
		case Silver:
			s.silverZones[gs.group][h][gs.zone-1] += int32(sign)
		}
	}
}
