package bgp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The defaults of Config.
const (
	DefaultHeadroom          = 1
	DefaultStep              = 1
	DefaultMaxPrepends       = 10
	DefaultMinChangeInterval = 30 * time.Second
)

// ErrConfig is wrapped by the errors of Config.Validate (and of Decide for a
// bad config): check with errors.Is.
var ErrConfig = errors.New("bad BGP announcement policy config")

// Config tunes the announcement policy. Prepends count the copies of the
// local AS that zdt adds; GoBGP adds one more on eBGP export. Start from
// DefaultConfig.
type Config struct {
	// Headroom is the prepends of the active site in steady state: the room
	// below it for the paths that must beat it (a takeover at 0, the new site
	// of a planned move at Headroom-1). At least 1.
	Headroom int
	// Step is the prepends between two standby ranks, and between the active
	// site and the first standby. At least 1.
	Step int
	// MaxPrepends caps the prepends of any announcement. The ladder's top
	// rung, Headroom + (sites-1)*Step, must fit under it.
	MaxPrepends int
	// MinChangeInterval is the flap guard: the least time between two
	// non-urgent changes of one prefix at one site. 0 turns the guard off.
	MinChangeInterval time.Duration
}

// DefaultConfig returns the defaults: headroom 1, step 1, at most 10
// prepends, 30s between non-urgent changes.
func DefaultConfig() Config {
	return Config{
		Headroom:          DefaultHeadroom,
		Step:              DefaultStep,
		MaxPrepends:       DefaultMaxPrepends,
		MinChangeInterval: DefaultMinChangeInterval,
	}
}

// TopPrepends is the highest rung of the ladder for a service of sites
// sites: the last standby's.
func (c Config) TopPrepends(sites int) int {
	return c.standbyLevel(sites - 1)
}

// Validate checks the config for services of up to sites sites. The error,
// if any, wraps ErrConfig and lists every problem with what to do about it.
func (c Config) Validate(sites int) error {
	var problems []string
	if c.Headroom < 1 {
		problems = append(problems, fmt.Sprintf("headroom is %d, must be at least 1: a takeover announces 0 prepends and must beat the active site's path", c.Headroom))
	}
	if c.Step < 1 {
		problems = append(problems, fmt.Sprintf("prepend step is %d, must be at least 1: with less, standbys would tie the active site and each other", c.Step))
	}
	if c.MinChangeInterval < 0 {
		problems = append(problems, fmt.Sprintf("min change interval is %s, must be 0 (no flap guard) or more", c.MinChangeInterval))
	}
	if sites < 1 {
		problems = append(problems, fmt.Sprintf("a service needs at least 1 site, not %d", sites))
	}
	if len(problems) == 0 && c.TopPrepends(sites) > c.MaxPrepends {
		problems = append(problems, fmt.Sprintf(
			"the ladder for %d sites needs up to headroom %d + (%d-1) × step %d = %d prepends, above max prepends %d: raise max prepends to %d, or lower the step or the headroom",
			sites, c.Headroom, sites, c.Step, c.TopPrepends(sites), c.MaxPrepends, c.TopPrepends(sites)))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
}
