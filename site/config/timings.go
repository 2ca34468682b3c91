package config

import (
	"fmt"
	"math"
	"strconv"
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

// The defaults suit a stretched etcd with tens of milliseconds between
// sites: etcd's own heartbeat and election timeout (100ms, 1s: ten round
// trips of up to 100ms), and a lease_ttl that leaves an etcd leader election
// (up to 2 x 1s) room in lease_ttl - self_fence_margin - renew_interval
// (6s - 1.5s - 2s = 2.5s), with 500ms to spare for the vote and the renewal
// to cross between sites. 5s would leave 2.08s, too close: the spare 80ms
// are two or three round trips.
const (
	defaultLeaseTTL            = 6 * time.Second
	defaultEtcdHeartbeat       = 100 * time.Millisecond
	defaultEtcdElectionTimeout = time.Second
	defaultBootstrapGrace      = 10 * time.Second
	defaultHostFailAfter       = 10 * time.Second

	maxEtcdElectionTimeout = 50 * time.Second // etcd refuses longer ones
	maxDuration            = time.Duration(math.MaxInt64)
)

// The timings that default to a share of lease_ttl: lease_ttl/N.
const (
	renewPerTTL  = 3 // renew_interval
	marginPerTTL = 4 // self_fence_margin
)

// timing is one duration with what the checks need to know about it.
type timing struct {
	field   string
	value   time.Duration
	ok      bool          // usable in checks that relate it to other timings
	isDflt  bool          // not set in the file
	derived string        // for a default derived from another timing: how
	perTTL  time.Duration // for a default of lease_ttl/N: N
}

// at returns the timing's value if lease_ttl were ttl: a default that is a
// share of lease_ttl changes with it.
func (t timing) at(ttl time.Duration) time.Duration {
	if t.perTTL > 0 {
		return ttl / t.perTTL
	}
	return t.value
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

// build checks the timings and returns them, and lease_ttl as checked, for
// the timings of other sections that are bounded by it.
func (f fileTimings) build(c *checker) (Timings, timing) {
	ttl := c.timing("timings.lease_ttl", f.LeaseTTL, defaultLeaseTTL, "", true)
	renew := c.ttlShare("timings.renew_interval", f.RenewInterval, ttl, renewPerTTL)
	margin := c.ttlShare("timings.self_fence_margin", f.SelfFenceMargin, ttl, marginPerTTL)
	hb := c.timing("timings.etcd_heartbeat", f.EtcdHeartbeat, defaultEtcdHeartbeat, "", true)
	election := c.timing("timings.etcd_election_timeout", f.EtcdElectionTimeout, defaultEtcdElectionTimeout, "", true)
	grace := c.timing("timings.bootstrap_grace", f.BootstrapGrace, defaultBootstrapGrace, "", true)
	hostFail := c.timing("timings.host_fail_after", f.HostFailAfter, defaultHostFailAfter, "", true)

	ttlOK := c.checkLeaseTTL(ttl, election)
	c.checkEtcdTimings(hb, election)
	if c.checkSelfFence(ttl, renew, margin) && ttlOK && election.ok && election.value <= maxEtcdElectionTimeout {
		c.checkElectionFits(ttl, renew, margin, hb, election)
	}
	return Timings{
		LeaseTTL:            ttl.value,
		RenewInterval:       renew.value,
		SelfFenceMargin:     margin.value,
		EtcdHeartbeat:       hb.value,
		EtcdElectionTimeout: election.value,
		BootstrapGrace:      grace.value,
		HostFailAfter:       hostFail.value,
	}, ttl
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

// ttlShare is a timing whose default is a share of lease_ttl: lease_ttl/n.
func (c *checker) ttlShare(field string, set *time.Duration, ttl timing, n time.Duration) timing {
	t := c.timing(field, set, ttl.value/n, "lease_ttl/"+strconv.FormatInt(int64(n), 10), ttl.ok)
	if t.isDflt {
		t.perTTL = n
	}
	return t
}

// checkSelfFence checks that the controller can renew its lease before it
// must fence itself; it reports whether all three timings are usable and
// fit.
func (c *checker) checkSelfFence(ttl, renew, margin timing) bool {
	switch {
	case !ttl.ok || !margin.ok:
		return false
	case margin.value >= ttl.value:
		c.add(margin.field, "%s must be smaller than lease_ttl (%s): the controller must fence itself before its lease can expire", margin, ttl)
		return false
	case !renew.ok:
		return false
	case renew.value >= ttl.value-margin.value:
		c.add(renew.field, "%s must be smaller than lease_ttl - self_fence_margin (%s - %s = %s), otherwise the controller self-fences between two renewals",
			renew, ttl.value, margin.value, ttl.value-margin.value)
		return false
	}
	return true
}

// checkLeaseTTL checks lease_ttl against what etcd grants; it reports
// whether lease_ttl is usable and passed.
func (c *checker) checkLeaseTTL(ttl, election timing) bool {
	if !ttl.ok {
		return false
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
		return false
	}
	if !election.ok {
		return true
	}
	if minTTL := minLeaseTTL(election.value); ttl.value < minTTL {
		c.add(ttl.field, "%s is shorter than etcd's minimum lease TTL of %s for etcd_election_timeout %s (1.5 x the election timeout, rounded up to whole seconds): "+
			"etcd would silently grant %s and the self-fence timing would be wrong; raise lease_ttl to at least %s or lower etcd_election_timeout",
			ttl, minTTL, election, minTTL, minTTL)
		return false
	}
	return true
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

// checkElectionFits checks that an etcd leader election fits in what is
// left of a lease between the last renewal before a site holding the etcd
// leader is lost and the self-fence deadline (DESIGN.md, "Timing and
// self-fencing"): lease_ttl - self_fence_margin - renew_interval. An
// election takes up to about two election timeouts; if it does not fit,
// losing that one site makes the surviving sites self-fence too.
func (c *checker) checkElectionFits(ttl, renew, margin, hb, election timing) {
	need := times(2, election.value)
	left := electionRoom(ttl.value, renew, margin)
	if left >= need {
		return
	}
	c.add(ttl.field, "%s leaves too little time for an etcd leader election: lease_ttl - self_fence_margin - renew_interval (%s - %s - %s = %s) "+
		"must be at least 2 x etcd_election_timeout (2 x %s = %s), or losing the site that holds the etcd leader makes the surviving sites self-fence too; %s",
		ttl, ttl.value, margin, renew, left, election, need, electionFix(ttl, renew, margin, hb, election))
}

// electionRoom is lease_ttl - self_fence_margin - renew_interval with
// lease_ttl at ttl: the time an etcd leader election may take.
func electionRoom(ttl time.Duration, renew, margin timing) time.Duration {
	return ttl - margin.at(ttl) - renew.at(ttl)
}

// electionFix says what to change so that an etcd leader election fits:
// the shortest lease_ttl, or the longest etcd_election_timeout (with the
// etcd_heartbeat that etcd needs for it, if the current one is too long).
func electionFix(ttl, renew, margin, hb, election timing) string {
	fix := "raise lease_ttl to at least " + minTTLForElection(ttl, renew, margin, election).String()
	longest := (electionRoom(ttl.value, renew, margin) / 2).Truncate(time.Millisecond)
	switch {
	case longest < 5*time.Millisecond: // no heartbeat of whole milliseconds fits
	case hb.ok && longest < times(5, hb.value):
		fix += fmt.Sprintf(" or lower etcd_election_timeout to at most %s and etcd_heartbeat to at most %s", longest, (longest / 5).Truncate(time.Millisecond))
	default:
		fix += " or lower etcd_election_timeout to at most " + longest.String()
	}
	return fix
}

// minTTLForElection returns the shortest lease_ttl in whole seconds, longer
// than ttl, that leaves room for an etcd leader election, with the defaults
// of renew_interval and self_fence_margin growing with it.
func minTTLForElection(ttl, renew, margin, election timing) time.Duration {
	need := times(2, election.value)
	fits := func(secs int64) bool { return electionRoom(time.Duration(secs)*time.Second, renew, margin) >= need }
	// lease_ttl - lease_ttl/3 - lease_ttl/4 is 5/12 of it: three times what
	// the election and the fixed timings need is always enough.
	fixed := plus(need, plus(renew.at(0), margin.at(0)))
	lo, hi := int64(ttl.value/time.Second)+1, int64(times(3, fixed)/time.Second)+1
	hi = min(max(hi, lo), int64(maxDuration/time.Second))
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.Duration(lo) * time.Second
}

// plus adds a and b, which are not negative, saturating instead of
// overflowing.
func plus(a, b time.Duration) time.Duration {
	if a > maxDuration-b {
		return maxDuration
	}
	return a + b
}
