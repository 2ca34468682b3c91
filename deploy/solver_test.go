package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// line shows a decision as the tables state it: "g1: stays on host a1",
// "b1 preempted: preempted to make room ...". The reason of a running guest
// names its host, which the line checks.
func line(d Decision) string {
	if d.State == Running {
		if !strings.Contains(d.Reason, " "+d.Host) {
			return fmt.Sprintf("%s on %s: %s", d.Guest, d.Host, d.Reason)
		}
		return fmt.Sprintf("%s: %s", d.Guest, d.Reason)
	}
	return fmt.Sprintf("%s %s: %s", d.Guest, d.State, d.Reason)
}

func TestSolve(t *testing.T) {
	const G = 1024 // MiB per GiB
	tests := []struct {
		name string
		p    Problem
		want []string // every decision, in plan order
		// moves and preemptions the plan counts
		moves, preemptions int
	}{
		{
			name: "a running guest on a healthy host stays",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 16, 32*G)},
				Guests:  []Guest{guestOf("g1", Gold, ZoneNone, 4, 8*G)},
				Current: map[string]string{"g1": "a2"},
			},
			want: []string{"g1: stays on host a2"},
		},
		{
			name: "a new guest goes to the tightest host with room",
			p: Problem{
				Hosts:  []Host{hostOf("a1", "a", 16, 32*G), hostOf("b1", "b", 8, 16*G), hostOf("c1", "c", 4, 4*G)},
				Guests: []Guest{guestOf("g1", Silver, ZoneNone, 4, 8*G)},
			},
			want: []string{"g1: placed on b1 (site b): was not running"},
		},
		{
			name: "a guest of a failed host goes to its own site first",
			p: Problem{
				Hosts:       []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 16, 32*G), hostOf("b1", "b", 8, 16*G)},
				Guests:      []Guest{guestOf("g1", Gold, ZoneNone, 8, 16*G)},
				Current:     map[string]string{"g1": "a1"},
				FailedHosts: []string{"a1"},
			},
			want:  []string{"g1: placed on a2 (site a): host a1 failed"},
			moves: 1,
		},
		{
			name: "a guest of a drained host goes to its own site first, saying so",
			p: Problem{
				Hosts:        []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 16, 32*G), hostOf("b1", "b", 8, 16*G)},
				Guests:       []Guest{guestOf("g1", Gold, ZoneNone, 8, 16*G)},
				Current:      map[string]string{"g1": "a1"},
				DrainedHosts: []string{"a1"},
			},
			want:  []string{"g1: placed on a2 (site a): host a1 is drained"},
			moves: 1,
		},
		{
			name: "a guest of a failed host goes elsewhere when its site is full",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G),
					hostOf("b1", "b", 8, 16*G), hostOf("b2", "b", 16, 32*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 8, 16*G),
					guestOf("g2", Gold, ZoneNone, 4, 8*G),
					guestOf("g3", Gold, ZoneNone, 6, 8*G),
				},
				Current:     map[string]string{"g1": "a1", "g2": "a2", "g3": "b1"},
				FailedHosts: []string{"a1"},
			},
			want: []string{
				"g1: placed on b2 (site b): host a1 failed; same site had no room",
				"g2: stays on host a2",
				"g3: stays on host b1",
			},
			moves: 1,
		},
		{
			name: "the guests of a failed site go to the other sites",
			p: Problem{
				Hosts:       []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests:      []Guest{guestOf("g1", Gold, ZoneNone, 4, 8*G), guestOf("s1", Silver, ZoneNone, 4, 8*G)},
				Current:     map[string]string{"g1": "a1", "s1": "a2"},
				FailedSites: []string{"a"},
			},
			want: []string{
				"g1: placed on b1 (site b): site a failed",
				"s1: placed on b1 (site b): site a failed",
			},
			moves: 2,
		},
		{
			name: "Gold-Zone-A and Gold-Zone-B never at one site",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G), hostOf("b1", "b", 64, 128*G)},
				Guests:  []Guest{guestOf("ga", Gold, ZoneA, 4, 8*G), guestOf("gb", Gold, ZoneB, 4, 8*G)},
				Current: map[string]string{"ga": "a1"},
			},
			want: []string{
				"ga: stays on host a1",
				"gb: placed on b1 (site b): was not running",
			},
		},
		{
			name: "under ScopeService only the same service's gold zones exclude each other",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G), hostOf("b1", "b", 64, 128*G)},
				Guests: []Guest{
					{Name: "ga", Service: "web", Tier: Gold, Zone: ZoneA, VCPUs: 4, MemoryMiB: 8 * G},
					{Name: "gb", Service: "db", Tier: Gold, Zone: ZoneB, VCPUs: 4, MemoryMiB: 8 * G},
				},
				Current: map[string]string{"ga": "a1"},
				Scope:   ScopeService,
			},
			want: []string{
				"ga: stays on host a1",
				"gb: placed on a1 (site a): was not running",
			},
		},
		{
			name: "a gold guest cannot go where the other gold zone runs",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G), hostOf("c1", "c", 2, 2*G)},
				Guests:  []Guest{guestOf("ga1", Gold, ZoneA, 4, 8*G), guestOf("ga2", Gold, ZoneA, 4, 8*G), guestOf("gb", Gold, ZoneB, 4, 8*G)},
				Current: map[string]string{"ga1": "a1", "ga2": "b1"},
			},
			want: []string{
				"ga1: stays on host a1",
				"ga2: stays on host b1",
				"gb unplaced: cannot place: every site with room runs a Gold-Zone-A guest",
			},
		},
		{
			name: "the zone text names the service under ScopeService",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G)},
				Guests: []Guest{
					{Name: "ga", Service: "web", Tier: Gold, Zone: ZoneA, VCPUs: 4, MemoryMiB: 8 * G},
					{Name: "gb", Service: "web", Tier: Gold, Zone: ZoneB, VCPUs: 4, MemoryMiB: 8 * G},
				},
				Current: map[string]string{"ga": "a1"},
				Scope:   ScopeService,
			},
			want: []string{
				"ga: stays on host a1",
				`gb unplaced: cannot place: every site with room runs a Gold-Zone-A guest of service "web"`,
			},
		},
		{
			name: "Silver-Zone-A and Silver-Zone-B never on one host, but may share a site",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 32, 64*G)},
				Guests:  []Guest{guestOf("sa", Silver, ZoneA, 4, 8*G), guestOf("sb", Silver, ZoneB, 4, 8*G)},
				Current: map[string]string{"sa": "a1"},
			},
			want: []string{
				"sa: stays on host a1",
				"sb: placed on a2 (site a): was not running",
			},
		},
		{
			name: "a silver guest cannot go where the other silver zone runs",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 4, 4*G)},
				Guests:  []Guest{guestOf("sa", Silver, ZoneA, 2, 2*G), guestOf("sb", Silver, ZoneB, 4, 8*G)},
				Current: map[string]string{"sa": "a1"},
			},
			want: []string{
				"sa: stays on host a1",
				"sb unplaced: cannot place: every host with room runs a Silver-Zone-A guest",
			},
		},
		{
			name: "bronze guests with a zone are free of the zone rules",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G)},
				Guests:  []Guest{guestOf("ba", Bronze, ZoneA, 2, 2*G), guestOf("bb", Bronze, ZoneB, 2, 2*G)},
				Current: map[string]string{"ba": "a1"},
			},
			want: []string{
				"ba: stays on host a1",
				"bb: placed on a1 (site a): was not running",
			},
		},
		{
			name: "a gold guest of a failed site preempts a bronze guest",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g7", Gold, ZoneNone, 8, 8*G),
					guestOf("b1", Bronze, ZoneNone, 2, 2*G),
				},
				Current:     map[string]string{"g7": "a1", "b1": "b1"},
				FailedSites: []string{"a"},
			},
			want: []string{
				"g7: placed on b1 (site b): site a failed; preempted bronze guest b1",
				"b1 preempted: preempted to make room for gold guest g7 on b1",
			},
			moves: 1, preemptions: 1,
		},
		{
			name: "bronze guests stop before a silver one, even if more of them",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G), hostOf("b2", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 6, 8*G),
					guestOf("s1", Silver, ZoneNone, 6, 8*G),
					guestOf("b1", Bronze, ZoneNone, 3, 4*G),
					guestOf("b2", Bronze, ZoneNone, 3, 4*G),
					guestOf("b3", Bronze, ZoneNone, 2, 2*G),
				},
				Current:     map[string]string{"g1": "a1", "s1": "b1", "b1": "b2", "b2": "b2", "b3": "b2"},
				FailedHosts: []string{"a1"},
			},
			want: []string{
				"g1: placed on b2 (site b): host a1 failed; same site had no room; preempted bronze guests b1, b2",
				"s1: stays on host b1",
				"b1 preempted: preempted to make room for gold guest g1 on b2",
				"b2 preempted: preempted to make room for gold guest g1 on b2",
				"b3: stays on host b2",
			},
			moves: 1, preemptions: 2,
		},
		{
			name: "the host that needs the fewest stops wins, then the smallest guest",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 4, 4*G),
					guestOf("b1", Bronze, ZoneNone, 2, 2*G),
					guestOf("b2", Bronze, ZoneNone, 2, 2*G),
					guestOf("b3", Bronze, ZoneNone, 2, 2*G),
					guestOf("b4", Bronze, ZoneNone, 2, 2*G),
					guestOf("b5", Bronze, ZoneNone, 6, 6*G),
					guestOf("b6", Bronze, ZoneNone, 4, 4*G),
				},
				Current:     map[string]string{"g1": "a1", "b1": "a2", "b2": "a2", "b3": "a2", "b4": "a2", "b5": "b1"},
				FailedHosts: []string{"a1"},
			},
			// a2 needs two stops; b1 one: b5 rather than the smaller b6, which is new.
			want: []string{
				"g1: placed on b1 (site b): host a1 failed; same site had no room; preempted bronze guest b5",
				"b1: stays on host a2",
				"b2: stays on host a2",
				"b3: stays on host a2",
				"b4: stays on host a2",
				"b5 preempted: preempted to make room for gold guest g1 on b1",
				"b6: placed on b1 (site b): was not running",
			},
			moves: 1, preemptions: 1,
		},
		{
			name: "of two guests that each make room, the smaller stops",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 4, 8*G),
					guestOf("big", Bronze, ZoneNone, 4, 4*G),
					guestOf("small", Bronze, ZoneNone, 2, 4*G),
				},
				Current:     map[string]string{"g1": "a1", "big": "b1", "small": "b1"},
				FailedSites: []string{"a"},
			},
			want: []string{
				"g1: placed on b1 (site b): site a failed; preempted bronze guest small",
				"big: stays on host b1",
				"small preempted: preempted to make room for gold guest g1 on b1",
			},
			moves: 1, preemptions: 1,
		},
		{
			name: "silver stops when bronze is not enough",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 8, 16*G),
					guestOf("s1", Silver, ZoneNone, 4, 8*G),
					guestOf("b1", Bronze, ZoneNone, 4, 8*G),
				},
				Current:     map[string]string{"g1": "a1", "s1": "b1", "b1": "b1"},
				FailedSites: []string{"a"},
			},
			want: []string{
				"g1: placed on b1 (site b): site a failed; preempted bronze guest b1 and silver guest s1",
				"s1 preempted: preempted to make room for gold guest g1 on b1",
				"b1 preempted: preempted to make room for gold guest g1 on b1",
			},
			moves: 1, preemptions: 2,
		},
		{
			name: "a preempted guest moves to free room elsewhere",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G), hostOf("c1", "c", 4, 8*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 8, 16*G),
					guestOf("s1", Silver, ZoneNone, 4, 8*G),
				},
				Current:     map[string]string{"g1": "a1", "s1": "b1"},
				FailedSites: []string{"a"},
			},
			want: []string{
				"g1: placed on b1 (site b): site a failed; preempted silver guest s1",
				"s1: placed on c1 (site c): moved off b1 to make room for gold guest g1",
			},
			moves: 2,
		},
		{
			name: "silver preempts bronze",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G)},
				Guests:  []Guest{guestOf("s1", Silver, ZoneNone, 4, 8*G), guestOf("b1", Bronze, ZoneNone, 6, 8*G)},
				Current: map[string]string{"b1": "a1"},
			},
			want: []string{
				"s1: placed on a1 (site a): was not running; preempted bronze guest b1",
				"b1 preempted: preempted to make room for silver guest s1 on a1",
			},
			preemptions: 1,
		},
		{
			name: "gold guests never stop",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 6, 8*G),
					guestOf("g7", Gold, ZoneNone, 8, 16*G),
				},
				Current:     map[string]string{"g1": "b1", "g7": "a1"},
				FailedSites: []string{"a"},
			},
			want: []string{
				"g1: stays on host b1",
				"g7 unplaced: cannot place: needs 8 vCPUs / 16384 MiB; no host has room and only gold guests run where it would fit (site a failed)",
			},
		},
		{
			name: "gold cannot place even by stopping lower tiers",
			p: Problem{
				Hosts: []Host{hostOf("b1", "b", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 4, 8*G),
					guestOf("g7", Gold, ZoneNone, 8, 16*G),
					guestOf("b1", Bronze, ZoneNone, 2, 2*G),
				},
				Current: map[string]string{"g1": "b1", "b1": "b1"},
			},
			want: []string{
				"g1: stays on host b1",
				"g7 unplaced: cannot place: needs 8 vCPUs / 16384 MiB; no host has room, not even by stopping silver and bronze guests",
				"b1: stays on host b1",
			},
		},
		{
			name: "silver cannot place where only gold and silver run",
			p: Problem{
				Hosts:   []Host{hostOf("b1", "b", 8, 16*G)},
				Guests:  []Guest{guestOf("g1", Gold, ZoneNone, 4, 8*G), guestOf("s1", Silver, ZoneNone, 4, 8*G), guestOf("s2", Silver, ZoneNone, 2, 2*G)},
				Current: map[string]string{"g1": "b1", "s1": "b1"},
			},
			want: []string{
				"g1: stays on host b1",
				"s1: stays on host b1",
				"s2 unplaced: cannot place: needs 2 vCPUs / 2048 MiB; no host has room and only gold and silver guests run where it would fit",
			},
		},
		{
			name: "bronze cannot place when there is no room",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 4, 4*G)},
				Guests:  []Guest{guestOf("b1", Bronze, ZoneNone, 4, 4*G), guestOf("b2", Bronze, ZoneNone, 2, 2*G)},
				Current: map[string]string{"b1": "a1"},
			},
			want: []string{
				"b1: stays on host a1",
				"b2 unplaced: cannot place: needs 2 vCPUs / 2048 MiB; no host has room",
			},
		},
		{
			name: "a preempted guest comes back before a new one, even a bigger one",
			p: Problem{
				Hosts:     []Host{hostOf("a1", "a", 4, 8*G)},
				Guests:    []Guest{guestOf("new", Bronze, ZoneNone, 4, 8*G), guestOf("old", Bronze, ZoneNone, 2, 2*G)},
				Preempted: []string{"old"},
			},
			want: []string{
				"new unplaced: cannot place: needs 4 vCPUs / 8192 MiB; no host has room",
				"old: placed on a1 (site a): back from preemption",
			},
		},
		{
			name: "a preempted guest stays preempted while there is no room",
			p: Problem{
				Hosts:     []Host{hostOf("a1", "a", 4, 8*G)},
				Guests:    []Guest{guestOf("g1", Gold, ZoneNone, 4, 8*G), guestOf("old", Silver, ZoneNone, 2, 2*G)},
				Current:   map[string]string{"g1": "a1"},
				Preempted: []string{"old"},
			},
			want: []string{
				"g1: stays on host a1",
				"old preempted: stays preempted: needs 2 vCPUs / 2048 MiB; no host has room and only gold and silver guests run where it would fit",
			},
		},
		{
			name: "a preempted guest made gold since is unplaced, not preempted",
			p: Problem{
				Hosts:     []Host{hostOf("a1", "a", 4, 4*G)},
				Guests:    []Guest{guestOf("g1", Gold, ZoneNone, 4, 4*G), guestOf("g2", Gold, ZoneNone, 2, 2*G)},
				Current:   map[string]string{"g1": "a1"},
				Preempted: []string{"g2"},
			},
			want: []string{
				"g1: stays on host a1",
				"g2 unplaced: cannot place: needs 2 vCPUs / 2048 MiB; no host has room and only gold guests run where it would fit",
			},
		},
		{
			name: "a guest both running and remembered as preempted counts as running",
			p: Problem{
				Hosts:     []Host{hostOf("a1", "a", 4, 4*G)},
				Guests:    []Guest{guestOf("s1", Silver, ZoneNone, 2, 2*G)},
				Current:   map[string]string{"s1": "a1"},
				Preempted: []string{"s1"},
			},
			want: []string{"s1: stays on host a1"},
		},
		{
			name: "overcommit multiplies the usable size, rounded down",
			p: Problem{
				Hosts: []Host{
					{Name: "a1", Site: "a", VCPUs: 3, MemoryMiB: 4 * G, CPUOvercommit: 1.5, MemoryOvercommit: 1},
					{Name: "a2", Site: "a", VCPUs: 4, MemoryMiB: 4 * G, CPUOvercommit: 2, MemoryOvercommit: 1.5},
				},
				Guests: []Guest{guestOf("g1", Gold, ZoneNone, 5, 5*G), guestOf("g2", Gold, ZoneNone, 4, 4*G), guestOf("g3", Gold, ZoneNone, 1, 1*G)},
			},
			want: []string{
				"g1: placed on a2 (site a): was not running",
				"g2: placed on a1 (site a): was not running",
				"g3: placed on a2 (site a): was not running",
			},
		},
		{
			name: "a host over capacity keeps its higher tiers and moves the rest",
			p: Problem{
				Hosts: []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G)},
				Guests: []Guest{
					guestOf("g1", Gold, ZoneNone, 6, 8*G),
					guestOf("b1", Bronze, ZoneNone, 4, 4*G),
				},
				Current: map[string]string{"g1": "a1", "b1": "a1"},
			},
			want: []string{
				"g1: stays on host a1",
				"b1: placed on a2 (site a): host a1 is over capacity",
			},
			moves: 1,
		},
		{
			name: "of two gold zones running at one site, the second by name moves",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G), hostOf("b1", "b", 8, 16*G)},
				Guests:  []Guest{guestOf("ga", Gold, ZoneA, 2, 2*G), guestOf("gb", Gold, ZoneB, 2, 2*G)},
				Current: map[string]string{"ga": "a1", "gb": "a2"},
			},
			want: []string{
				"ga: stays on host a1",
				"gb: placed on b1 (site b): Gold-Zone-A guest ga runs at site a",
			},
			moves: 1,
		},
		{
			name: "of two silver zones running on one host, the second by name moves",
			p: Problem{
				Hosts:   []Host{hostOf("a1", "a", 8, 16*G), hostOf("a2", "a", 8, 16*G)},
				Guests:  []Guest{guestOf("sa", Silver, ZoneB, 2, 2*G), guestOf("sb", Silver, ZoneA, 2, 2*G)},
				Current: map[string]string{"sa": "a1", "sb": "a1"},
			},
			want: []string{
				"sa: stays on host a1",
				"sb: placed on a2 (site a): Silver-Zone-B guest sa runs on a1",
			},
			moves: 1,
		},
		{
			name: "no healthy host",
			p: Problem{
				Hosts:       []Host{hostOf("a1", "a", 8, 16*G)},
				Guests:      []Guest{guestOf("g1", Gold, ZoneNone, 2, 2*G)},
				Current:     map[string]string{"g1": "a1"},
				FailedSites: []string{"a"},
			},
			want: []string{"g1 unplaced: cannot place: no healthy host (site a failed)"},
		},
		{
			name: "no healthy host is big enough",
			p: Problem{
				Hosts:       []Host{hostOf("a1", "a", 32, 64*G), hostOf("b1", "b", 8, 16*G)},
				Guests:      []Guest{guestOf("g1", Gold, ZoneNone, 16, 32*G)},
				Current:     map[string]string{"g1": "a1"},
				FailedHosts: []string{"a1"},
			},
			want: []string{"g1 unplaced: cannot place: needs 16 vCPUs / 32768 MiB; no healthy host is that big (host a1 failed)"},
		},
		{
			name: "a failed site need not have hosts",
			p: Problem{
				Hosts:       []Host{hostOf("a1", "a", 8, 16*G)},
				Guests:      []Guest{guestOf("g1", Gold, ZoneNone, 2, 2*G)},
				Current:     map[string]string{"g1": "a1"},
				FailedSites: []string{"c"},
			},
			want: []string{"g1: stays on host a1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Solve(tt.p)
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			var got []string
			for _, d := range plan.Decisions {
				got = append(got, line(d))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("decisions:\n got  %q\n want %q", got, tt.want)
			}
			if m, p := plan.Moves(), plan.Preemptions(); m != tt.moves || p != tt.preemptions {
				t.Errorf("moves, preemptions = %d, %d; want %d, %d", m, p, tt.moves, tt.preemptions)
			}
			if bad := violations(tt.p, plan); len(bad) > 0 {
				t.Errorf("rules broken:\n%s", bad)
			}
		})
	}
}
