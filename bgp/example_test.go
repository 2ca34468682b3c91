package bgp_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/zdt-project/zdt/bgp"
)

// A takeover: site a went dark, the coordinator fenced it and assigned the
// service to b 5 seconds ago; the upstream may still hold a's last path.
func ExampleDecide() {
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, site := range []string{"a", "b", "c"} {
		ds, err := bgp.Decide(bgp.DefaultConfig(), bgp.Input{
			Site:     site,
			Service:  "web",
			Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/26"), netip.MustParsePrefix("2001:db8:100::/48")},
			Order:    []string{"a", "b", "c"},
			Active:   "b",
			Epoch:    8,
			Fenced:   map[string]bool{"a": true},
			Takeover: &bgp.Takeover{From: "a", Started: start, HoldTime: 90 * time.Second},
			Now:      start.Add(5 * time.Second),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, d := range ds {
			fmt.Printf("%s %s: %s (%s)\n", site, d.Prefix, d.Announcement, d.Cause)
		}
	}
	// Output:
	// a 203.0.113.0/26: withdrawn (fenced)
	// a 2001:db8:100::/48: withdrawn (fenced)
	// b 203.0.113.0/26: 0 prepends (takeover)
	// b 2001:db8:100::/48: 0 prepends (takeover)
	// c 203.0.113.0/26: 2 prepends (standby)
	// c 2001:db8:100::/48: 2 prepends (standby)
}
