package config

import "time"

// Retention says how much of the op journal and the event log the
// coordinator keeps: a year of flapping must not grow etcd without bound
// (etcd's own history is compacted by the embedded members, every hour).
// A zero limit is no limit by that measure. Unfinished ops are always
// kept.
type Retention struct {
	OpsMaxAge      time.Duration // finished ops that ended longer ago are deleted
	OpsMaxCount    int           // of the finished ops, only the newest are kept
	EventsMaxAge   time.Duration
	EventsMaxCount int
}

// The defaults: three months of ops, a month of events.
const (
	DefaultOpsMaxAge      = 90 * 24 * time.Hour
	DefaultOpsMaxCount    = 1000
	DefaultEventsMaxAge   = 30 * 24 * time.Hour
	DefaultEventsMaxCount = 100000
)

type fileRetention struct {
	Ops    fileKeep `yaml:"ops"`
	Events fileKeep `yaml:"events"`
}

type fileKeep struct {
	MaxAge   *time.Duration `yaml:"max_age"`
	MaxCount *int           `yaml:"max_count"`
}

func (f fileRetention) build(c *checker) Retention {
	var r Retention
	r.OpsMaxAge, r.OpsMaxCount = f.Ops.build(c, "retention.ops", "finished ops", DefaultOpsMaxAge, DefaultOpsMaxCount)
	r.EventsMaxAge, r.EventsMaxCount = f.Events.build(c, "retention.events", "events", DefaultEventsMaxAge, DefaultEventsMaxCount)
	return r
}

func (f fileKeep) build(c *checker, field, what string, age time.Duration, count int) (time.Duration, int) {
	if f.MaxAge != nil {
		if *f.MaxAge < 0 {
			c.add(field+".max_age", "%s is negative: give how long to keep %s (default %s, %d days), or 0 to keep them whatever their age",
				*f.MaxAge, what, age, age/(24*time.Hour))
		}
		age = *f.MaxAge
	}
	if f.MaxCount != nil {
		if *f.MaxCount < 0 {
			c.add(field+".max_count", "%d is negative: give how many %s to keep (default %d), or 0 to keep any number", *f.MaxCount, what, count)
		}
		count = *f.MaxCount
	}
	return age, count
}
