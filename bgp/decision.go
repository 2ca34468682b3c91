package bgp

import (
	"net/netip"
	"strconv"
	"time"
)

// Decision is what one site should announce for one prefix now.
type Decision struct {
	Prefix netip.Prefix
	// Announcement is what to announce now: the wanted announcement, or the
	// current one while the flap guard holds a change back.
	Announcement
	// Wanted is what the policy wants, flap guard aside.
	Wanted Announcement
	// Cause is why the policy wants it; Reason says so in words, with the
	// flap guard's part when it holds the change back or is bypassed.
	Cause  Cause
	Reason string
	// Urgent is true when the change from the current announcement is
	// urgent and bypasses the flap guard.
	Urgent bool
	// HoldUntil is set when the flap guard holds a change to Wanted back:
	// the change is due then.
	HoldUntil time.Time
	// Recheck is the earliest time the decision can change with no new
	// input: a held change becomes due, or a takeover's stale path times
	// out. Zero when it cannot.
	Recheck time.Time
}

func (d Decision) String() string {
	return d.Prefix.String() + ": " + d.Announcement.String() + " (" + d.Cause.String() + "): " + d.Reason
}

// Cause is why the policy wants an announcement: the site's rung on the
// ladder, or why it withdraws.
type Cause int

// The causes.
const (
	// CauseActive: the assigned site, at the headroom.
	CauseActive Cause = iota + 1
	// CauseTakeover: the assigned site at 0 prepends during a takeover,
	// while the dark site's stale path may still be held.
	CauseTakeover
	// CauseMoveIn: the new site of a planned move, ready, at headroom-1.
	CauseMoveIn
	// CauseMoveHold: the old site of a planned move, keeping the headroom
	// until the new site's path is in place.
	CauseMoveHold
	// CauseStandby: a standby at its rank (also the new site of a planned
	// move while it is not ready, and the old one once released).
	CauseStandby
	// CauseFenced: the site is fenced; it withdraws.
	CauseFenced
	// CauseSelfFenced: the site's controller is not up; it withdraws.
	CauseSelfFenced
	// CauseNotServing: the site is not among the service's sites; it
	// withdraws.
	CauseNotServing
	// CauseUnassigned: the service has no assignment; every site withdraws.
	CauseUnassigned
)

func (c Cause) String() string {
	switch c {
	case CauseActive:
		return "active"
	case CauseTakeover:
		return "takeover"
	case CauseMoveIn:
		return "move-in"
	case CauseMoveHold:
		return "move-hold"
	case CauseStandby:
		return "standby"
	case CauseFenced:
		return "fenced"
	case CauseSelfFenced:
		return "self-fenced"
	case CauseNotServing:
		return "not-serving"
	case CauseUnassigned:
		return "unassigned"
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

// carriesBest reports whether a site with this cause is meant to carry the
// service's best path (or to keep carrying it, during a planned move).
func (c Cause) carriesBest() bool {
	switch c {
	case CauseActive, CauseTakeover, CauseMoveIn, CauseMoveHold:
		return true
	}
	return false
}
