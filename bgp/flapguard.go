package bgp

import (
	"fmt"
	"net/netip"
	"time"
)

// guard turns the target into the decision for prefix p: it holds a
// non-urgent change back until cfg.MinChangeInterval has passed since the
// prefix's last change at this site.
func (c Config) guard(in Input, p netip.Prefix, t target) Decision {
	d := Decision{Prefix: p, Announcement: t.want, Wanted: t.want, Cause: t.cause, Reason: t.reason, Recheck: t.recheck}
	cur, known := in.Current[p]
	if !cur.Announce {
		cur.Prepends = 0
	}
	if !known || cur.Announcement == t.want {
		return d
	}
	d.Urgent = c.urgent(t, cur.Announcement)
	due := cur.Since.Add(c.MinChangeInterval)
	if c.MinChangeInterval == 0 || cur.Since.IsZero() || !in.Now.Before(due) {
		return d
	}
	if d.Urgent {
		d.Reason += fmt.Sprintf(" (urgent, so not held for the flap guard's %s since the last change)", c.MinChangeInterval)
		return d
	}
	d.Announcement = cur.Announcement
	d.HoldUntil = due
	d.Recheck = earliest(d.Recheck, due)
	d.Reason = fmt.Sprintf("flap guard: keep %s until %s (last change at %s, min interval %s), then %s: %s",
		cur.Announcement, stamp(due), stamp(cur.Since), c.MinChangeInterval, t.want, t.reason)
	return d
}

// urgent reports whether the change from cur to the target may bypass the
// flap guard: a withdrawal because the site is fenced or self-fenced, a
// takeover, the site that must carry the best path getting down to its rung
// (not going back up to the headroom), and a site that must not carry it
// leaving a rung at or below the headroom, where it could.
func (c Config) urgent(t target, cur Announcement) bool {
	switch {
	case t.cause == CauseFenced || t.cause == CauseSelfFenced || t.cause == CauseTakeover:
		return true
	case t.cause.carriesBest():
		return !cur.Announce || cur.Prepends > t.want.Prepends
	}
	return cur.Announce && cur.Prepends <= c.activeLevel()
}

// earliest is the earlier of two times, a zero time counting as never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
