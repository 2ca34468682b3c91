package config

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestPrefixOverlapsAsAllPairs: the sweep reports what comparing every
// pair reports, in the same order, for random sets of nested, equal and
// disjoint prefixes of both families.
func TestPrefixOverlapsAsAllPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var seen []seenPrefix
		for i := range 1 + rng.IntN(40) {
			var p netip.Prefix
			if rng.IntN(3) == 0 {
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(4)), byte(rng.IntN(256))})
				p = netip.PrefixFrom(a, 32+rng.IntN(17)).Masked()
			} else {
				a := netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(256))})
				p = netip.PrefixFrom(a, 24+rng.IntN(9)).Masked()
			}
			seen = append(seen, seenPrefix{prefix: p, field: fmt.Sprintf("services[%d].prefixes[0]", i), service: fmt.Sprint("s", i)})
		}
		got := newTestChecker()
		checkPrefixOverlaps(got, seen)
		want := newTestChecker()
		for j, p := range seen {
			for _, o := range seen[:j] {
				switch {
				case o.prefix == p.prefix:
					want.add(p.field, "duplicate prefix %s (also in service %q, line %d)", p.prefix, o.service, want.line(o.field))
				case o.prefix.Overlaps(p.prefix):
					want.add(p.field, "%s overlaps %s of service %q (line %d)", p.prefix, o.prefix, o.service, want.line(o.field))
				}
			}
		}
		sortProblems(got.problems)
		sortProblems(want.problems)
		if !slices.Equal(got.problems, want.problems) {
			t.Fatalf("round %d, prefixes %v:\n got %v\nwant %v", round, seen, got.problems, want.problems)
		}
	}
}

func newTestChecker() *checker {
	return &checker{file: "test.yaml", lines: newLineIndex(), broken: map[string]bool{}, reported: map[Problem]bool{}}
}

// BenchmarkPrefixOverlaps checks 10,000 prefixes of one provider (1,000
// services with 10 IPv6 prefixes each), none overlapping.
func BenchmarkPrefixOverlaps(b *testing.B) {
	var seen []seenPrefix
	for s := range 1000 {
		for i := range 10 {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(s >> 8), byte(s), byte(i)})
			seen = append(seen, seenPrefix{prefix: netip.PrefixFrom(a, 56), field: fmt.Sprintf("services[%d].prefixes[%d]", s, i), service: fmt.Sprint("svc", s)})
		}
	}
	for b.Loop() {
		c := newTestChecker()
		checkPrefixOverlaps(c, seen)
		if len(c.problems) != 0 {
			b.Fatal(c.problems)
		}
	}
}
