package deploy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestSolveProperties solves random inventories, in both scopes, and checks
// that no rule is ever broken (see violations), that solving is
// deterministic and blind to the order of the input, and that solving the
// plan's own outcome again moves and stops nothing.
func TestSolveProperties(t *testing.T) {
	const seeds = 1000
	var stats struct{ solves, moves, preemptions, unplaced, preempted, running int }
	for seed := uint64(1); seed <= seeds; seed++ {
		for _, scope := range []Scope{ScopeCluster, ScopeService} {
			p := randomProblem(rand.New(rand.NewPCG(seed, 0x2d7)), scope)
			plan, err := Solve(p)
			if err != nil {
				t.Fatalf("seed %d, %s: Solve: %v", seed, scope, err)
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf("seed %d, scope %s: %s\nproblem: %s", seed, scope, fmt.Sprintf(format, args...), describe(p))
			}
			if bad := violations(p, plan); len(bad) > 0 {
				fail("rules broken:\n%s\nplan:\n%s", strings.Join(bad, "\n"), describePlan(plan))
				continue
			}
			if again, _ := Solve(p); !reflect.DeepEqual(plan, again) {
				fail("two solves differ:\n%s\n---\n%s", describePlan(plan), describePlan(again))
			}
			shuffled := shuffle(p, rand.New(rand.NewPCG(seed, 1)))
			if other, _ := Solve(shuffled); !reflect.DeepEqual(plan.Decisions, other.Decisions) {
				fail("the input's order changes the plan:\n%s\n---\n%s", describePlan(plan), describePlan(other))
			}
			next := outcome(p, plan)
			settled, err := Solve(next)
			if err != nil {
				fail("solve the outcome: %v", err)
				continue
			}
			for i, d := range settled.Decisions {
				was := plan.Decisions[i]
				if d.State != was.State || d.Host != was.Host {
					fail("solving the outcome again changes %s: %s on %q (%s), then %s on %q (%s)",
						d.Guest, was.State, was.Host, was.Reason, d.State, d.Host, d.Reason)
				}
			}
			if m, n := settled.Moves(), settled.Preemptions(); m != 0 || n != 0 {
				fail("solving the outcome again moves %d and preempts %d guests", m, n)
			}

			stats.solves++
			stats.moves += plan.Moves()
			stats.preemptions += plan.Preemptions()
			for _, d := range plan.Decisions {
				switch d.State {
				case Running:
					stats.running++
				case Preempted:
					stats.preempted++
				case Unplaced:
					stats.unplaced++
				}
			}
		}
	}
	t.Logf("%+v", stats)
	if stats.moves == 0 || stats.preemptions == 0 || stats.unplaced == 0 || stats.preempted == 0 {
		t.Errorf("the generator misses cases: %+v", stats)
	}
}

// randomProblem draws three sites of 1 to 5 hosts, up to 80 guests of every
// tier and zone in three services, a random (possibly rule-breaking and
// over-full) current placement, earlier preemptions, and failures.
func randomProblem(r *rand.Rand, scope Scope) Problem {
	p := Problem{Scope: scope, Current: map[string]string{}}
	pick := func(xs ...float64) float64 { return xs[r.IntN(len(xs))] }
	for _, site := range []string{"a", "b", "c"} {
		for i := range 1 + r.IntN(5) {
			p.Hosts = append(p.Hosts, Host{
				Name:             fmt.Sprintf("%s%d", site, i+1),
				Site:             site,
				VCPUs:            []int{4, 8, 16, 24}[r.IntN(4)],
				MemoryMiB:        int64(4+r.IntN(60)) * 512,
				CPUOvercommit:    pick(0, 1, 1, 1.5, 2, 4),
				MemoryOvercommit: pick(0, 1, 1, 1, 1.25),
			})
		}
	}
	services := []string{"web", "db", "mail"}
	for i := range 5 + r.IntN(76) {
		h := p.Hosts[r.IntN(len(p.Hosts))] // every guest fits some host
		p.Guests = append(p.Guests, Guest{
			Name:      fmt.Sprintf("g%02d", i),
			Service:   services[r.IntN(len(services))],
			Tier:      Tier(1 + r.IntN(3)),
			Zone:      []Zone{ZoneNone, ZoneA, ZoneB}[r.IntN(3)],
			VCPUs:     1 + r.IntN(min(8, h.UsableVCPUs())),
			MemoryMiB: 256 * (1 + r.Int64N(min(32, h.UsableMemoryMiB()/256))),
		})
	}
	for _, g := range p.Guests {
		switch x := r.IntN(10); {
		case x < 6:
			p.Current[g.Name] = p.Hosts[r.IntN(len(p.Hosts))].Name
		case x < 8:
			p.Preempted = append(p.Preempted, g.Name)
		}
	}
	if r.IntN(2) == 0 {
		p.FailedSites = []string{string(rune('a' + r.IntN(3)))}
	}
	for _, h := range p.Hosts {
		if r.IntN(10) == 0 {
			p.FailedHosts = append(p.FailedHosts, h.Name)
		}
	}
	return p
}

// shuffle returns p with its slices in another order.
func shuffle(p Problem, r *rand.Rand) Problem {
	q := p
	q.Guests = append([]Guest(nil), p.Guests...)
	q.Hosts = append([]Host(nil), p.Hosts...)
	q.Preempted = append([]string(nil), p.Preempted...)
	r.Shuffle(len(q.Guests), func(i, j int) { q.Guests[i], q.Guests[j] = q.Guests[j], q.Guests[i] })
	r.Shuffle(len(q.Hosts), func(i, j int) { q.Hosts[i], q.Hosts[j] = q.Hosts[j], q.Hosts[i] })
	r.Shuffle(len(q.Preempted), func(i, j int) { q.Preempted[i], q.Preempted[j] = q.Preempted[j], q.Preempted[i] })
	return q
}

// outcome is the problem once the plan has been carried out: its running
// guests run where it put them, its preempted guests are remembered, the
// failures last.
func outcome(p Problem, plan Plan) Problem {
	q := p
	q.Current, q.Preempted = map[string]string{}, nil
	for _, d := range plan.Decisions {
		switch d.State {
		case Running:
			q.Current[d.Guest] = d.Host
		case Preempted:
			q.Preempted = append(q.Preempted, d.Guest)
		}
	}
	return q
}

func describe(p Problem) string {
	var b strings.Builder
	for _, h := range p.Hosts {
		fmt.Fprintf(&b, "\n  host %s site %s %d vCPUs x%g, %d MiB x%g", h.Name, h.Site, h.VCPUs, h.CPUOvercommit, h.MemoryMiB, h.MemoryOvercommit)
	}
	for _, g := range p.Guests {
		fmt.Fprintf(&b, "\n  guest %s %s %s zone %q %d vCPUs %d MiB, on %q", g.Name, g.Service, g.Tier, g.Zone, g.VCPUs, g.MemoryMiB, p.Current[g.Name])
	}
	fmt.Fprintf(&b, "\n  preempted %v, failed sites %v, failed hosts %v", p.Preempted, p.FailedSites, p.FailedHosts)
	return b.String()
}

func describePlan(plan Plan) string {
	var b strings.Builder
	for _, d := range plan.Decisions {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", d.Guest, d.State, d.Host, d.Reason)
	}
	return b.String()
}
