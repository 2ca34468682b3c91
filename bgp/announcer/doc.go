// Package announcer keeps one site's BGP announcements, and the service
// addresses on its service interface, in line with the cluster's state.
//
// An Announcer watches the assignments, the fences and the route observer's
// records in etcd, and on every change (and on a resync tick, when a session
// re-establishes, and when a held change falls due) it runs a pass:
//
//  1. If the site's controller is not up (self-fenced, fenced, joining,
//     stopping), it withdraws everything at once and removes the service
//     addresses, without reading etcd: a site cut off from etcd must stop
//     attracting traffic before its lease can expire at the majority.
//  2. Otherwise it reads the assignments and fences at one revision, and for
//     every service the site may serve asks the policy (bgp.Decide) what to
//     announce for each prefix. An assignment written by a failover op is an
//     unplanned takeover from the dark site (Assignment.From): the new
//     active site announces with no prepends until the dark site's stale
//     path is gone (the observer says so, or the hold time of that site's
//     sessions has passed). Any other reassignment is a planned move,
//     make-before-break, in the phases of the service's move record, which
//     the switchover op advances on what the route observer shows (see
//     site.Move): prepare (the old site keeps the headroom, the new one its
//     standby rank), announce (the new site goes below the headroom),
//     release (the old one steps down to its standby rank), done (the new
//     site returns to the headroom); a record past its bound counts as
//     done. A planned move without a record (a rollback) runs on the clock:
//     the new site goes below the headroom at once, the old one keeps the
//     headroom for MoveSettle, then steps down to its standby rank, and
//     after another MoveSettle the new site returns to the headroom.
//  3. It applies only the difference to the speaker (Speaker.Apply is
//     idempotent), sets the service addresses of the services the site is
//     active for, and writes its report (sessions, announcements, error) to
//     etcd when it changed.
//
// The policy's flap guard holds non-urgent changes back; the pass arms a
// timer for the earliest Recheck so a held change is applied when it falls
// due.
package announcer
