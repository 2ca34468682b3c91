// Package bgp moves a service's prefixes between sites at the upstream.
//
// Every site that may serve a service has a BGP speaker that announces the
// service's prefixes to the upstream routers, and the upstream prefers the
// shortest AS path. zdt moves a service by changing those announcements: the
// site that must carry the traffic announces with the fewest copies of the
// local AS prepended, the others with more, and a site that must not serve
// withdraws. GoBGP adds one more copy of the local AS on eBGP export, so an
// announcement with N prepends reaches the upstream with an AS path of N+1.
//
// These files are the announcement policy: Decide, a pure function from one
// service's state at one site (assignment, fences, site order, an unplanned
// takeover or a planned move in progress, what the site announces now and
// since when) to what the site should announce for each of the service's
// prefixes, each Decision with a typed Cause and a Reason in words. It knows
// nothing of etcd or GoBGP and reads no clock: the reconciler gathers the
// inputs, calls Decide on every pass and applies the answer.
//
// # The ladder
//
// With headroom H and step S (Config), the prepends of one service are:
//
//	0          takeover: the assigned site while a dark site's stale path
//	           may still be held at the upstream
//	H-1        move-in: the new site of a planned move, once it is ready
//	H          the assigned (active) site; during a planned move, the old
//	           site until the new site's path is in place at the upstream
//	H+k*S      the standby of rank k = 1, 2, ...: the sites of the service's
//	           order that are neither the anchor (the site holding H) nor
//	           fenced, in that order
//	withdrawn  a fenced site, a self-fenced site (or one whose controller is
//	           not up), a site not in the service's order, every site of a
//	           service that has no assignment
//
// Why the right site always wins:
//
//   - At most one site stands on each rung, so live paths never tie.
//   - Steady state: the active site's H is below every standby's H+k*S
//     (S >= 1), and the standbys are ranked in the service's order, so when
//     the active path disappears the upstream falls back to the site the
//     coordinator would choose next.
//   - Planned move X to Y (make-before-break, see Move): while Y is made
//     ready, X keeps H and Y its standby rank; when Y is ready it goes to
//     H-1 and beats X, which keeps H; only when Y's path is in place at the
//     upstream does X go up to its standby rank. X is never withdrawn or
//     raised before then, so the prefix always has a path and its best path
//     is X until Y's path is in place, then Y.
//   - Takeover (see Takeover): every rung but the takeover's and the
//     move-in's is at least H >= 1, so the new active site's 0 prepends
//     strictly beat any stale path the dark site left as the active site, as
//     the old site of a move or as a standby, whatever tie-break the
//     upstream uses. With H >= 2 the move-in rung is at least 1 too. With
//     H = 1 it is 0: a site that goes dark in the short window of a planned
//     move when it is the new site at H-1 leaves a stale path that a
//     takeover can only tie; so can a site that goes dark while itself
//     taking over (two sites dark within one hold time, which three sites
//     cannot survive anyway: etcd loses its quorum). Prepends cannot beat a
//     path of 0; a headroom of 2 closes the first case.
//   - Config.Validate refuses a ladder whose top rung, H+(sites-1)*S, is
//     above MaxPrepends, a headroom below 1 (a takeover could not beat the
//     active path) and a step below 1 (standbys would tie the active site).
//
// # Urgency and the flap guard
//
// A change of one prefix at one site waits until Config.MinChangeInterval
// has passed since its last change, so the upstream does not damp the
// prefix, unless it is urgent: a withdrawal because the site is fenced or
// self-fenced, a takeover, the site that must carry the best path getting
// down to its rung, and a site that must not carry it leaving a rung at or
// below the headroom (where it could). A held change is reported with
// HoldUntil; Recheck says when to call Decide again even if nothing else
// changes.
package bgp
