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

// defaultFenceTimeout is short: the outside fence runs before every
// promotion of a failover, so it adds to the RTO when the site is dark.
const defaultFenceTimeout = 2 * time.Second

func (f fileFencing) build(c *checker) Fencing {
	t := c.timing("fencing.timeout", f.Timeout, defaultFenceTimeout, "", true)
	return Fencing{Timeout: t.value, RequireConfirmation: f.RequireConfirmation}
}
