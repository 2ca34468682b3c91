// Package reconciler makes one site's replication members follow the
// cluster's assignments. It runs in every site's controller and touches only
// that site's members (replication.Member drivers: PostgreSQL, DRBD).
//
// A group's active site is the assigned site of the services that use it;
// when they disagree the reconciler reports the conflict and does nothing.
// The group's epoch is the largest of their assignment epochs, and an
// assignment older than one already seen is never acted on. Decide, a pure
// function, turns the site's state, its fence, the assignment and a fresh
// observation into one action, in short:
//
//   - joining: hands off;
//   - self-fenced or stopped: fence a member that is (or might be) a
//     primary, at once and without etcd (SetState cancels the pass under
//     way). A read-only primary is not taken for a fenced one: Fence is
//     called again until one of this reconciler's calls has returned nil
//     since the member was last seen writable, since a fence cut short
//     after the member turned read-only (a cancelled pass, a controller
//     that died) leaves transactions begun before it able to commit;
//   - fenced (its record or its state): fence, then follow the active site
//     once its member is primary — a former primary is rewound and becomes
//     a standby, restoring redundancy without serving;
//   - up and active here: promote a standby when replication.Eligible allows
//     it under the services' RPO on an observation taken right before, and
//     refuse with the reason otherwise (in the report, the event log and
//     zdt_replication_actions_total{action="refuse"}); never while another
//     site that holds a lease reports a writable primary (a planned move
//     waits for the old primary's fence); in a failover a standby that does
//     not stream (its primary is dark) is judged on what it received;
//   - up, another site active: a primary is fenced at once and follows the
//     active site when that one's member is primary; a standby follows it
//     when the epoch or the target changed, or when it has been unhealthy
//     for a while (it reconnects by itself; re-following a primary that just
//     died would have the driver rewind it), with a backoff after a failed
//     follow. Observation failed: no action.
//
// # Synchronous groups
//
// For a synchronous group the primary keeps synchronous_standby_names =
// ANY 1 (every other member), set before a promotion and checked on every
// pass. PostgreSQL does not fall back to asynchronous replication when no
// standby is connected: commits wait. We keep it that way (RPO 0 over
// availability) and say so in the report's Detail ("no synchronous standby
// connected, commits wait"); an operator who prefers availability changes
// the group to asynchronous. With ANY 1 among two standbys, only the
// furthest of them holds every acknowledged commit: choosing it is the
// coordinator's job. A standby cannot tell whether its primary waits for it
// (its report's Sync is the driver's, false for PostgreSQL); the primary's
// report has Sync true when a standby is synchronous and names them in
// Detail.
//
// Members are observed every Interval; the site's replication report in
// etcd is written at once when a role, health, writability, sync, epoch or
// detail changes, and at most every PublishEvery when only lag changed.
package reconciler
