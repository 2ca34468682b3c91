package bgp

// The rungs of the ladder (see the package doc), in prepends.

// takeoverLevel is the assigned site's rung while a dark site's stale path
// may still be held: below every other rung.
const takeoverLevel = 0

// moveInLevel is the new site's rung during a planned move, once it is
// ready: one below the old site's headroom.
func (c Config) moveInLevel() int { return c.Headroom - 1 }

// activeLevel is the assigned site's rung in steady state.
func (c Config) activeLevel() int { return c.Headroom }

// standbyLevel is the rung of the standby of rank k (from 1).
func (c Config) standbyLevel(k int) int { return c.Headroom + k*c.Step }

// rank returns site's standby rank behind anchor: its place, counting from
// 1, among the sites of order that are neither anchor nor fenced. It is 0
// for anchor, a fenced site and a site not in order.
func rank(order []string, anchor string, fenced map[string]bool, site string) int {
	k := 0
	for _, s := range order {
		if s == anchor || fenced[s] {
			continue
		}
		k++
		if s == site {
			return k
		}
	}
	return 0
}
