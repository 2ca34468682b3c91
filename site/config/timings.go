package config

import (
	"math"
	"time"
)

// Timings are the lease, self-fencing and etcd timings; see DESIGN.md,
// "Timing and self-fencing".
type Timings struct {
	LeaseTTL            time.Duration // TTL of each site's heartbeat lease; whole seconds
	RenewInterval       time.Duration // how often a site renews its lease
	SelfFenceMargin     time.Duration // a site fences itself this long before its lease could expire
	EtcdHeartbeat       time.Duration // heartbeat interval of embedded etcd members
	EtcdElectionTimeout time.Duration // election timeout of embedded etcd members
	BootstrapGrace      time.Duration // how long a new coordinator waits for a service's preferred site
	HostFailAfter       time.Duration // how long a hypervisor may not answer before it is reported failed
}

type fileTimings struct {
	LeaseTTL            *time.Duration `yaml:"lease_ttl"`
	RenewInterval       *time.Duration `yaml:"renew_interval"`
	SelfFenceMargin     *time.Duration `yaml:"self_fence_margin"`
	EtcdHeartbeat       *time.Duration `yaml:"etcd_heartbeat"`
	EtcdElectionTimeout *time.Duration `yaml:"etcd_election_timeout"`
	BootstrapGrace      *time.Duration `yaml:"bootstrap_grace"`
	HostFailAfter       *time.Duration `yaml:"host_fail_after"`
}

const (
	defaultLeaseTTL            = 3 * time.Second
	defaultEtcdHeartbeat       = 100 * time.Millisecond
	defaultEtcdElectionTimeout = time.Second
	defaultBootstrapGrace      = 10 * time.Second
	defaultHostFailAfter       = 10 * time.Second

	maxEtcdElectionTimeout = 50 * time.Second // etcd refuses longer ones
	maxDuration            = time.Duration(math.MaxInt64)
)

// timing is one duration with what the checks need to know about it.
type timing struct {
	field   string
	value   time.Duration
	ok      bool   // usable in checks that relate it to other timings
	isDflt  bool   // not set in the file
	derived string // for a default derived from another timing: how
}

// String is the value, saying so if it is a default: a problem with a
// default is easy to misread otherwise.
func (t timing) String() string {
	switch {
	case t.isDflt && t.derived != "":
		return t.value.String() + " (the default, " + t.derived + ")"
	case t.isDflt:
		return t.value.String() + " (the default)"
	}
	return t.value.String()
}

func (f fileTimings) build(c *checker) Timings {
	ttl := c.timing("timings.lease_ttl", f.LeaseTTL, defaultLeaseTTL, "", true)
	renew := c.timing("timings.renew_interval", f.RenewInterval, ttl.value/3, "lease_ttl/3", ttl.ok)
	margin := c.timing("timings.self_fence_margin", f.SelfFenceMargin, ttl.value/4, "lease_ttl/4", ttl.ok)
	hb := c.timing("timings.etcd_heartbeat", f.EtcdHeartbeat, defaultEtcdHeartbeat, "", true)
	election := c.timing("timings.etcd_election_timeout", f.EtcdElectionTimeout, defaultEtcdElectionTimeout, "", true)
	grace := c.timing("timings.bootstrap_grace", f.BootstrapGrace, defaultBootstrapGrace, "", true)
	hostFail := c.timing("timings.host_fail_after", f.HostFailAfter, defaultHostFailAfter, "", true)

	c.checkLeaseTTL(ttl, election)
	c.checkEtcdTimings(hb, election)
	if margin.ok && ttl.ok && margin.value >= ttl.value {
		c.add(margin.field, "%s must be smaller than lease_ttl (%s): the controller must fence itself before its lease can expire", margin, ttl)
	} else if renew.ok && margin.ok && ttl.ok && renew.value >= ttl.value-margin.value {
		c.add(renew.field, "%s must be smaller than lease_ttl - self_fence_margin (%s - %s = %s), otherwise the controller self-fences between two renewals",
			renew, ttl.value, margin.value, ttl.value-margin.value)
	}
	return Timings{
		LeaseTTL:            ttl.value,
		RenewInterval:       renew.value,
		SelfFenceMargin:     margin.value,
		EtcdHeartbeat:       hb.value,
		EtcdElectionTimeout: election.value,
		BootstrapGrace:      grace.value,
		HostFailAfter:       hostFail.value,
	}
}

// timing returns the duration set at field, or dflt if it is not set
// (derived says how dflt was derived from another timing, which must have
// been usable: from). A duration that is set must be greater than 0. The
// result is usable in further checks only if it was decoded and is
// positive.
func (c *checker) timing(field string, set *time.Duration, dflt time.Duration, derived string, from bool) timing {
	switch {
	case c.isBroken(field):
		return timing{field: field, value: dflt}
	case set == nil:
		return timing{field: field, value: dflt, ok: from && dflt > 0, isDflt: true, derived: derived}
	case *set <= 0:
		c.add(field, "must be greater than 0, not %s", *set)
		return timing{field: field, value: *set}
	}
	return timing{field: field, value: *set, ok: true}
}

func (c *checker) checkLeaseTTL(ttl, election timing) {
	if !ttl.ok {
		return
	}
	if ttl.value%time.Second != 0 {
		lower := ttl.value.Truncate(time.Second)
		suggest := lower.String()
		switch {
		case lower == 0:
			suggest = time.Second.String()
		case lower <= maxDuration-time.Second:
			suggest += " or " + (lower + time.Second).String()
		}
		c.add(ttl.field, "%s is not a whole number of seconds: etcd lease TTLs are whole seconds; use %s", ttl, suggest)
		return
	}
	if !election.ok {
		return
	}
	if minTTL := minLeaseTTL(election.value); ttl.value < minTTL {
		c.add(ttl.field, "%s is shorter than etcd's minimum lease TTL of %s for etcd_election_timeout %s (1.5 x the election timeout, rounded up to whole seconds): "+
			"etcd would silently grant %s and the self-fence timing would be wrong; raise lease_ttl to at least %s or lower etcd_election_timeout",
			ttl, minTTL, election, minTTL, minTTL)
	}
}

// checkEtcdTimings applies etcd's own rules for its heartbeat and election
// timeout, so that an embedded member does not refuse to start.
func (c *checker) checkEtcdTimings(hb, election timing) {
	for _, t := range []timing{hb, election} {
		if t.ok && t.value%time.Millisecond != 0 {
			c.add(t.field, "%s is not a whole number of milliseconds, which is what etcd counts in", t)
		}
	}
	if election.ok && election.value > maxEtcdElectionTimeout {
		c.add(election.field, "%s is longer than etcd allows (%s)", election, maxEtcdElectionTimeout)
	} else if hb.ok && election.ok && election.value < times(5, hb.value) {
		c.add(election.field, "%s must be at least 5 x etcd_heartbeat (5 x %s = %s), or etcd refuses to start",
			election, hb.value, times(5, hb.value))
	}
}

// minLeaseTTL is the shortest TTL etcd grants a lease: 1.5 times the
// election timeout, rounded up to whole seconds.
func minLeaseTTL(election time.Duration) time.Duration {
	if election <= 0 {
		return 0
	}
	if election > maxDuration/3 {
		return maxDuration.Truncate(time.Second)
	}
	ceil15 := (3*election + 1) / 2
	return (ceil15 + time.Second - 1) / time.Second * time.Second
}

// times multiplies d by n, saturating instead of overflowing.
func times(n, d time.Duration) time.Duration {
	if d > maxDuration/n {
		return maxDuration
	}
	return n * d
}
