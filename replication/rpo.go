package replication

import (
	"math"
	"slices"
	"strings"
)

// RPOPolicy is how much data a service may lose when one of its standbys is
// promoted (the recovery point objective).
//
// The lag limits apply to members that replicate asynchronously: a member
// that replicates synchronously holds every acknowledged write, so promoting
// it loses nothing whatever its lag. A limit of 0 allows no lag at all (the
// zero policy is the strictest); a negative limit means that dimension is not
// checked.
type RPOPolicy struct {
	MaxLagBytes   int64   // most bytes an asynchronous standby may be behind
	MaxLagSeconds float64 // most seconds an asynchronous standby may be behind
	RequireSync   bool    // only members replicating synchronously may be promoted
}

// Eligible says whether the member with status s may be promoted under p and
// why, or, when it may not, exactly why not. The reasons are sentences for
// the op journal: "lag 12 MiB exceeds the limit of 8 MiB".
func Eligible(p RPOPolicy, s Status) (ok bool, why string) {
	if !s.Healthy {
		if s.Detail == "" {
			return false, "member is unhealthy"
		}
		return false, "member is unhealthy: " + s.Detail
	}
	switch s.Role {
	case RolePrimary:
		return true, "member is already primary"
	case RoleStandby:
	default:
		return false, "the driver cannot tell the member's role (" + string(s.Role) + ")"
	}
	if s.Sync {
		return true, "member replicates synchronously: no acknowledged write can be lost"
	}
	if p.RequireSync {
		return false, "replication is asynchronous but the service requires synchronous replication"
	}
	return withinLag(p, s)
}

// withinLag checks an asynchronous standby's lag against the policy's limits.
func withinLag(p RPOPolicy, s Status) (bool, string) {
	switch {
	case math.IsNaN(p.MaxLagSeconds):
		return false, "the service's lag limit in seconds is not a number"
	case s.LagBytes < 0:
		return false, "the driver reported a negative lag of " + FormatBytes(s.LagBytes)
	case math.IsNaN(s.LagSeconds) || math.IsInf(s.LagSeconds, 0) || s.LagSeconds < 0:
		return false, "the driver reported an invalid lag in seconds"
	}
	var refusals, within []string
	v, limit := pairBytes(s.LagBytes, p.MaxLagBytes)
	switch {
	case p.MaxLagBytes < 0:
		within = append(within, "lag "+v+" (no limit)")
	case s.LagBytes > p.MaxLagBytes:
		refusals = append(refusals, "lag "+v+" exceeds the limit of "+limit)
	default:
		within = append(within, "lag "+v+" within the limit of "+limit)
	}
	v, limit = pairSeconds(s.LagSeconds, p.MaxLagSeconds)
	switch {
	case p.MaxLagSeconds < 0:
		within = append(within, "lag "+v+" (no limit)")
	case s.LagSeconds > p.MaxLagSeconds:
		refusals = append(refusals, "lag "+v+" exceeds the limit of "+limit)
	default:
		within = append(within, "lag "+v+" within the limit of "+limit)
	}
	if len(refusals) > 0 {
		return false, strings.Join(refusals, "; ")
	}
	return true, "asynchronous replication, " + strings.Join(within, ", ")
}

// Choose picks the member to promote: the first site in the service's site
// order whose member is Eligible. It returns "" when no member is.
//
// why explains every site it was given: for the chosen site why it may be
// promoted, for every other site why it was refused, or that it was eligible
// but comes later in the order. A site in order without a status, and a
// candidate that is not in order, are refused as such. The caller passes only
// the sites that may serve the service now (not fenced, not dark).
func Choose(p RPOPolicy, candidates map[string]Status, order []string) (site string, why map[string]string) {
	why = make(map[string]string, len(candidates))
	var seen []string
	for _, s := range order {
		if slices.Contains(seen, s) {
			continue
		}
		seen = append(seen, s)
		st, found := candidates[s]
		if !found {
			why[s] = "no status observed for this site"
			continue
		}
		ok, reason := Eligible(p, st)
		switch {
		case !ok:
			why[s] = reason
		case site == "":
			site, why[s] = s, reason
		default:
			why[s] = "eligible (" + reason + "), but site " + site + " comes first in the service's order"
		}
	}
	for s := range candidates {
		if !slices.Contains(seen, s) {
			why[s] = "site is not in the service's site order"
		}
	}
	return site, why
}
