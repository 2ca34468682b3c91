package config

import "time"

// Fencing configures how a failover fences a dark site's resources from
// outside (DESIGN.md, "Fencing that does not need a live controller"):
// before it promotes a member or starts a guest elsewhere, the coordinator
// makes the dark site's old primaries read-only through their own
// connections and destroys its guests through their hypervisors' URIs.
type Fencing struct {
	// Timeout bounds each attempt to reach a dark site's resource: a site
	// that is truly dark does not answer, and must not stall the failover.
	Timeout time.Duration
	// RequireConfirmation makes the takeover wait, when a resource could
	// not be fenced, until an operator confirms that the site is dark
	// (`zdt fence confirm --site S`), as Pacemaker does without a fencing
	// device. Off by default.
	RequireConfirmation bool
}

type fileFencing struct {
	Timeout             *time.Duration `yaml:"timeout"`
	RequireConfirmation bool           `yaml:"require_confirmation"`
}

// The outside fence runs before every promotion of a failover, so a site
// that does not answer adds up to fencing.timeout to the RTO (less when
// its resources were probed since its beats stopped: package outside). By
// default it takes
// a third of lease_ttl (2s with the default lease_ttl), at most half.
const (
	fenceTimeoutPerTTL    = 3 // the default fencing.timeout is lease_ttl/3
	maxFenceTimeoutPerTTL = 2 // fencing.timeout is at most lease_ttl/2
)

// build checks the fencing section; ttl is timings.lease_ttl as checked.
func (f fileFencing) build(c *checker, ttl timing) Fencing {
	t := c.ttlShare("fencing.timeout", f.Timeout, ttl, fenceTimeoutPerTTL)
	c.checkFenceTimeout(t, ttl)
	return Fencing{Timeout: t.value, RequireConfirmation: f.RequireConfirmation}
}

// checkFenceTimeout checks that the outside fence leaves room in the
// coordinator's pass that runs it. The coordinator bounds each pass of a
// failover (read the state, run the next steps, journal each) by lease_ttl
// (failover/coordinator.go, act). A fence that waits on a site that does
// not answer until near the end of the pass leaves no time to journal its
// outcome: the pass is cut off, the fence counts as interrupted, and the
// next pass runs into the same wall, so the failover never gets past it.
// At most half of lease_ttl leaves the other half for etcd, and bounds what
// the fence adds to the RTO by half the time it takes to declare a site
// dark.
func (c *checker) checkFenceTimeout(t, ttl timing) {
	if !t.ok || !ttl.ok {
		return
	}
	if limit := ttl.value / maxFenceTimeoutPerTTL; t.value > limit {
		c.add(t.field, "%s is longer than half of lease_ttl (%s / 2 = %s): the outside fence runs before every promotion of a failover, "+
			"inside a coordinator pass that lease_ttl bounds: a fence that waits longer on a site that does not answer leaves too little of the pass "+
			"to record its outcome (the pass is cut off and the failover retries it without end) and adds more than half of lease_ttl to the RTO; "+
			"lower fencing.timeout to at most %s or raise lease_ttl to at least %s",
			t, ttl, limit, limit, minTTLForFence(t.value))
	}
}

// minTTLForFence is the shortest lease_ttl in whole seconds that allows
// fencing.timeout fence.
func minTTLForFence(fence time.Duration) time.Duration {
	d := times(maxFenceTimeoutPerTTL, fence)
	if rounded := d.Truncate(time.Second); rounded < d && rounded <= maxDuration-time.Second {
		return rounded + time.Second
	}
	return d.Truncate(time.Second)
}
