package failover

import (
	"fmt"
	"testing"
)

func TestFenceSummary(t *testing.T) {
	hosts := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("host b%d", i+1)
		}
		return out
	}
	for _, tc := range []struct {
		name                string
		n                   int
		fenced, unreachable []string
		want                string
	}{
		{"nothing to fence", 0, nil, nil, "site b has no member or host to fence from outside"},
		{"all answered", 2, nil, nil, "site b answered: nothing to fence (2 resources)"},
		{"few named", 3, []string{"member pg at b"}, hosts(2),
			"site b: fenced from outside: member pg at b; unreachable, presumed dark: host b1, host b2"},
		{"many counted", 101, nil, append([]string{"member pg at b"}, hosts(100)...),
			"site b: unreachable, presumed dark: member pg at b, host b1, host b2, … (101 in all)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fenceSummary("b", tc.n, tc.fenced, tc.unreachable); got != tc.want {
				t.Errorf("fenceSummary = %q, want %q", got, tc.want)
			}
		})
	}
}
