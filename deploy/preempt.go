package deploy

import (
	"cmp"
	"sort"
)

// preempt finds a host where g fits once guests of lower tiers stop, stops
// them and returns the host and the stopped guests, or -1. Bronze guests
// alone are tried first, on every host, then silver ones too; gold guests
// never stop. Among the hosts that can make room it takes the one with the
// fewest guests to stop, then the fewest silver ones, then the smallest,
// then one in site pref, then the first by name.
func (s *solver) preempt(g, pref int) (int, []int) {
	gs := &s.gs[g]
	for top := Bronze; top < gs.tier; top++ {
		best, bestCost := -1, preemptCost{}
		for h := range s.hosts {
			hs := &s.hosts[h]
			if !hs.healthy {
				continue
			}
			roomCPU, roomMem := hs.freeCPU, hs.freeMem
			for t := Bronze; t <= top; t++ {
				roomCPU += hs.tierCPU[t]
				roomMem += hs.tierMem[t]
			}
			if roomCPU < gs.cpu || roomMem < gs.mem || !s.allowed(g, h) {
				continue
			}
			// Once one guest is enough somewhere, only single stops compete.
			s.scratch = s.victims(g, h, top, best >= 0 && bestCost.count == 1, s.scratch[:0])
			if len(s.scratch) == 0 {
				continue
			}
			c := s.cost(s.scratch, h, pref)
			if best < 0 || c.less(bestCost) {
				best, bestCost = h, c
				s.best = append(s.best[:0], s.scratch...)
			}
		}
		if best < 0 {
			continue
		}
		victims := append([]int(nil), s.best...)
		for _, v := range victims {
			s.unassign(v)
			vs := &s.gs[v]
			vs.cause, vs.other = causeVictim, g
			vs.reason = "preempted to make room for " + s.gs[g].tier.String() + " guest " + s.guests[g].Name + " on " + s.hosts[best].name
			s.enqueue(v)
		}
		return best, victims
	}
	return -1, nil
}

// victims appends to buf the guests of tiers up to top to stop on host h so
// that g fits there, which the caller has checked is possible: the smallest
// single guest that is enough, else (unless singleOnly) the biggest first,
// bronze before silver, until there is room, without those that turn out not
// to be needed.
func (s *solver) victims(g, h int, top Tier, singleOnly bool, buf []int) []int {
	gs, hs := &s.gs[g], &s.hosts[h]
	needCPU, needMem := gs.cpu-hs.freeCPU, gs.mem-hs.freeMem
	// The running guests come by tier, biggest first, so walking a tier's
	// block backwards from the last one with enough vCPUs meets the
	// candidates smallest first.
	end := 0
	for t := Bronze; t <= top; t++ {
		start := end
		end += hs.tierCount[t]
		block := hs.running[start:end]
		n := sort.Search(len(block), func(i int) bool { return s.gs[block[i]].cpu < needCPU })
		for i := n - 1; i >= 0; i-- {
			if s.gs[block[i]].mem >= needMem {
				return append(buf, block[i])
			}
		}
	}
	if singleOnly {
		return buf
	}
	for _, v := range hs.running[:end] {
		if needCPU <= 0 && needMem <= 0 {
			break
		}
		buf = append(buf, v)
		needCPU -= s.gs[v].cpu
		needMem -= s.gs[v].mem
	}
	for i := len(buf) - 1; i >= 0; i-- {
		vs := &s.gs[buf[i]]
		if needCPU+vs.cpu <= 0 && needMem+vs.mem <= 0 {
			needCPU += vs.cpu
			needMem += vs.mem
			buf = append(buf[:i], buf[i+1:]...)
		}
	}
	return buf
}

// victimOrder orders the guests of a host as preempt considers stopping
// them: lowest tier first, then biggest first, then by name.
func (s *solver) victimOrder(a, b int) int {
	ga, gb := &s.gs[a], &s.gs[b]
	return cmp.Or(
		cmp.Compare(ga.tier, gb.tier),
		cmp.Compare(gb.cpu, ga.cpu),
		cmp.Compare(gb.mem, ga.mem),
		cmp.Compare(a, b))
}

// preemptCost ranks the ways to make room on a host; lower is better.
type preemptCost struct {
	count, silver int
	cpu           int
	mem           int64
	away          bool // outside the preferred site
	host          int
}

func (s *solver) cost(victims []int, h, pref int) preemptCost {
	c := preemptCost{count: len(victims), away: pref >= 0 && s.hosts[h].site != pref, host: h}
	for _, v := range victims {
		vs := &s.gs[v]
		if vs.tier == Silver {
			c.silver++
		}
		c.cpu += vs.cpu
		c.mem += vs.mem
	}
	return c
}

func (c preemptCost) less(d preemptCost) bool {
	return cmp.Or(
		cmp.Compare(c.count, d.count),
		cmp.Compare(c.silver, d.silver),
		cmp.Compare(c.cpu, d.cpu),
		cmp.Compare(c.mem, d.mem),
		compareBool(c.away, d.away),
		cmp.Compare(c.host, d.host)) < 0
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
