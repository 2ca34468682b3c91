package bgp

import (
	"fmt"
	"slices"
	"time"
)

// Decide returns what in.Site should announce now for each of in.Prefixes,
// in their order. It is a pure function of cfg and in: it reads no clock
// and keeps no state, so the reconciler calls it on every pass (and again
// at the earliest Recheck of its answer) and applies what it returns.
//
// The error wraps ErrInput if the input contradicts itself, and ErrConfig
// if cfg does not fit the service's sites; there are no decisions then.
func Decide(cfg Config, in Input) ([]Decision, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(len(in.Order)); err != nil {
		return nil, err
	}
	t := cfg.target(in)
	out := make([]Decision, len(in.Prefixes))
	for i, p := range in.Prefixes {
		out[i] = cfg.guard(in, p, t)
	}
	return out, nil
}

// target is what the policy wants at the site for every prefix of the
// service, flap guard aside.
type target struct {
	want   Announcement
	cause  Cause
	reason string
	// recheck is when want changes on its own (a takeover's stale path
	// times out); zero if it does not.
	recheck time.Time
}

func (c Config) target(in Input) target {
	switch {
	case in.SelfFenced:
		return target{want: withdrawn, cause: CauseSelfFenced,
			reason: fmt.Sprintf("site %s is self-fenced or its controller is not up: withdraw", in.Site)}
	case in.Fenced[in.Site]:
		return target{want: withdrawn, cause: CauseFenced,
			reason: fmt.Sprintf("site %s is fenced: withdraw until a failback lifts the fence", in.Site)}
	case !slices.Contains(in.Order, in.Site):
		return target{want: withdrawn, cause: CauseNotServing,
			reason: fmt.Sprintf("site %s is not among the sites %v of %s: withdraw", in.Site, in.Order, in.service())}
	case in.Active == "":
		return target{want: withdrawn, cause: CauseUnassigned,
			reason: fmt.Sprintf("%s has no assignment yet, so no site serves it: withdraw", in.service())}
	case in.Site == in.Active:
		return c.activeTarget(in)
	case in.Move != nil && in.Site == in.Move.From && in.moveHolds():
		return c.moveHoldTarget(in)
	}
	return c.standbyTarget(in)
}

// service names the service in reasons.
func (in Input) service() string {
	if in.Service == "" {
		return "the service"
	}
	return "service " + in.Service
}

// moveHolds reports whether the old site of the planned move keeps the
// headroom: until the new site's path is in place, or while the new site is
// fenced (it can carry nothing, whatever the phase says).
func (in Input) moveHolds() bool {
	return in.Move.Phase < MoveRelease || in.Fenced[in.Active]
}

// anchor is the site on the headroom rung, behind which the standbys are
// ranked: the old site of a planned move while it holds, else the assigned
// site.
func (in Input) anchor() string {
	if in.Move != nil && in.moveHolds() {
		return in.Move.From
	}
	return in.Active
}

// activeTarget is the assigned site's rung.
func (c Config) activeTarget(in Input) target {
	if t := in.Takeover; t != nil && t.stale(in.Now) {
		return target{
			want:  Announced(takeoverLevel),
			cause: CauseTakeover,
			reason: fmt.Sprintf("%s took %s over from dark site %s (epoch %d): announce 0 prepends, so this path beats the stale path %s may have left "+
				"(at the headroom, %s, or above) until it is gone: the upstream observer reports it, or its hold time of %s ends at %s",
				in.Site, in.service(), t.From, in.Epoch, t.From, Announced(c.activeLevel()), t.HoldTime, stamp(t.staleUntil())),
			recheck: t.staleUntil(),
		}
	}
	if m := in.Move; m != nil {
		move := fmt.Sprintf("planned move of %s from %s to %s (epoch %d), %s", in.service(), m.From, in.Site, in.Epoch, m.Phase)
		switch m.Phase {
		case MovePrepare:
			return c.standbyTarget(in)
		case MoveAnnounce:
			return target{want: Announced(c.moveInLevel()), cause: CauseMoveIn,
				reason: fmt.Sprintf("%s: %s is ready and announces %s, beating %s at the headroom of %s, which keeps its path until this one is in place at the upstream",
					move, in.Site, Announced(c.moveInLevel()), m.From, Announced(c.activeLevel()))}
		case MoveRelease:
			return target{want: Announced(c.moveInLevel()), cause: CauseMoveIn,
				reason: fmt.Sprintf("%s: this path is in place at the upstream and %s goes up to its standby rank; stay at %s, below the headroom, until the move ends",
					move, m.From, Announced(c.moveInLevel()))}
		}
	}
	reason := fmt.Sprintf("%s is the assigned site of %s (epoch %d): announce at the headroom, %s", in.Site, in.service(), in.Epoch, Announced(c.activeLevel()))
	if t := in.Takeover; t != nil {
		if t.PathGone {
			reason += fmt.Sprintf("; the takeover from %s is over: the upstream observer reports no path from %s", t.From, t.From)
		} else {
			reason += fmt.Sprintf("; the takeover from %s is over: its hold time of %s ended at %s", t.From, t.HoldTime, stamp(t.staleUntil()))
		}
	}
	return target{want: Announced(c.activeLevel()), cause: CauseActive, reason: reason}
}

// moveHoldTarget is the old site's rung while it holds during a planned move.
func (c Config) moveHoldTarget(in Input) target {
	m := in.Move
	why := fmt.Sprintf("%s's path is not in place at the upstream yet", in.Active)
	switch {
	case in.Fenced[in.Active]:
		why = fmt.Sprintf("%s is fenced and can carry nothing", in.Active)
	case m.Phase == MovePrepare:
		why = fmt.Sprintf("%s is not ready yet", in.Active)
	}
	return target{want: Announced(c.activeLevel()), cause: CauseMoveHold,
		reason: fmt.Sprintf("planned move of %s from %s to %s (epoch %d), %s: %s, so %s keeps the headroom, %s",
			in.service(), m.From, in.Active, in.Epoch, m.Phase, why, in.Site, Announced(c.activeLevel()))}
}

// standbyTarget is a standby's rung behind the anchor.
func (c Config) standbyTarget(in Input) target {
	a := in.anchor()
	k := rank(in.Order, a, in.Fenced, in.Site)
	n := c.standbyLevel(k)
	reason := fmt.Sprintf("standby rank %d behind %s in %v: headroom %d + %d × step %d = %s",
		k, a, in.Order, c.Headroom, k, c.Step, Announced(n))
	if m := in.Move; m != nil {
		move := fmt.Sprintf("planned move of %s from %s to %s (epoch %d), %s: ", in.service(), m.From, in.Active, in.Epoch, m.Phase)
		switch in.Site {
		case in.Active:
			reason = move + in.Site + " is not ready yet and stays a standby; " + reason
		case m.From:
			reason = move + in.Active + "'s path is in place at the upstream, so " + in.Site + " goes up; " + reason
		}
	}
	return target{want: Announced(n), cause: CauseStandby, reason: reason}
}

// stamp formats a time for reasons.
func stamp(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z07:00") }
