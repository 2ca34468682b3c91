package reconciler

import (
	"fmt"
	"time"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site"
)

// Action is what a pass does to one member.
type Action string

// The actions of a pass.
const (
	ActNone    Action = "none"    // leave the member alone
	ActFence   Action = "fence"   // stop writes on the member
	ActPromote Action = "promote" // make the member primary
	ActFollow  Action = "follow"  // make the member a standby of Input.Active
	// ActFenceFollow fences the member, then makes it a standby of
	// Input.Active; the follow part is skipped while the active site's
	// member is not yet primary (Input.ActiveReady).
	ActFenceFollow Action = "fence+follow"
	ActRefuse      Action = "refuse" // the member should be promoted but may not be
	// ActStart starts the server of a member that does not answer, as it
	// was (a primary comes back a primary), at the active site only
	// (Input.CanStart).
	ActStart Action = "start"
	// ActStartStandby starts the server of a member that does not answer,
	// away from the active site, only if its data is a standby's: it comes
	// back a standby of Input.Active. A former primary's is left down, its
	// data untouched: it comes back only by a follow (rewound) once the
	// active site's member is a writable primary (Input.CanStart).
	ActStartStandby Action = "start-standby"
)

// Input is everything the decision about one member depends on, read at
// one instant.
type Input struct {
	State  site.ControllerState // the site controller's state
	Site   string               // this site
	Fenced bool                 // a fence record names this site

	// Active is the group's active site ("" when no service using the
	// group is assigned); Conflict, when not "", says why the assignment
	// cannot be acted on (the services disagree, it could not be read).
	Active   string
	Conflict string
	// Epoch is the assignment's epoch (the largest of the services');
	// Seen is the largest epoch the reconciler saw for the group before.
	Epoch, Seen int64
	// Failover: the assignment is an unplanned takeover from a dark site
	// (its Kind is "failover").
	Failover bool
	// Force: an operator accepted the loss (Assignment.Force): the member
	// is promoted whatever its lag or health.
	Force bool
	// ActiveReady: the active site reports its member as a writable
	// primary, so following it can succeed.
	ActiveReady bool
	// OtherWritable names another site that holds a lease and reports its
	// member of the group as a writable primary ("" when none does).
	OtherWritable string
	// CatchUp, in a planned move to this site, says what this standby
	// waits for before its promotion loses nothing: the old primary,
	// fenced, reports its last WAL position, and this member has not
	// replayed up to it yet ("" when it has, or in a failover: see
	// catchUp).
	CatchUp string

	// Observed: Status is a fresh observation; false when Observe failed
	// (ObserveErr says why).
	Observed   bool
	Status     replication.Status
	ObserveErr string

	// CanStart: the driver can start the member's server (it has local
	// control of it); StartFailed is when the last start failed (zero: it
	// did not).
	CanStart    bool
	StartFailed time.Time

	Policy replication.RPOPolicy
	// SyncHolder: the group is synchronous and this member is sure to hold
	// every commit the previous primary acknowledged (see syncHolder);
	// SyncWhy says why or why not.
	SyncHolder bool
	SyncWhy    string

	// The last successful Follow: its target and the epoch it was made for;
	// FollowFailed is when the last Follow failed (zero: it did not), and
	// FollowError what it said.
	Followed      string
	FollowedEpoch int64
	FollowFailed  time.Time
	FollowError   string
	// UnhealthyFor is how long the member has been an unhealthy standby.
	UnhealthyFor time.Duration
	Now          time.Time
}

// Decision is what to do, and why, in a sentence for the report.
type Decision struct {
	Action Action
	Reason string
	// Epoch is the assignment epoch the decision follows (0: none).
	Epoch int64
}

// followBackoff is the least time between two failed Follow attempts.
const followBackoff = 3 * time.Second

// unhealthyGrace is how long a standby of the right primary may be
// unhealthy before Follow is called again. A standby reconnects by itself;
// when its primary has just died, the primary's report (written at most an
// Interval later) or lease (a TTL later) may still say it is up, and
// following a dead primary makes the PostgreSQL driver rewind, which stops
// the standby. Longer than a lease TTL.
const unhealthyGrace = 15 * time.Second

// Decide is the reconciler's decision for one member of one group. It is a
// pure function of its input; the reconciler gathers the input, calls it,
// and carries out the action.
//
//	state / record         observation              assignment           action
//	joining                any                      any                  none
//	self-fenced, stopped   primary, unknown, failed any                  fence
//	self-fenced, stopped   standby                  any                  none
//	fenced (state/record)  any                      other site, ready    fence+follow
//	fenced                 any                      none, here, stale    fence
//	up                     any                      conflict             none
//	up                     any                      none                 none
//	up                     any                      epoch < seen         none (stale)
//	up                     failed                   here, local control  start its server as it was (if
//	                                                                     it runs not)
//	up                     failed                   other site, ready,   follow it (a stopped standby is
//	                                                local control        started as its standby, a stopped
//	                                                                     former primary rewound to it)
//	up                     failed                   other site, not      start-standby (a standby is
//	                                                ready, local control started; a former primary stays
//	                                                                     down)
//	up                     failed                   any                  none (no action on stale data)
//	up                     primary, writable        here                 none
//	up                     primary, read-only       here                 promote (lifts the fence),
//	                                                                     once no other site reports
//	                                                                     a writable primary
//	up                     standby, other site      here                 none (wait until it is fenced)
//	                       reports a writable primary
//	up                     standby, behind the      here, planned        none (wait until it has
//	                       fenced old primary                            replayed all of it)
//	up                     standby, eligible        here                 promote
//	                       (in a failover a standby that does not stream
//	                       is not refused for that: its primary is dark)
//	up                     standby, not eligible    here                 refuse (promote when forced)
//	up                     primary                  other site           fence+follow
//	up                     standby                  other site, ready,   follow
//	                                                new epoch or target,
//	                                                or member unhealthy
//	                                                for unhealthyGrace
//	up                     standby                  other site, else     none
//
// A fence never waits for anything; a follow waits until the active site's
// member is primary (following a standby that is about to be promoted, or
// a primary that is down, only makes the driver rewind for nothing), and
// for the backoff after a failed follow.
//
// A member that does not answer (its server does not run: it died with
// its host, or every site went dark) is started again only by a site that
// is up, has local control of it and acts on the current assignment, and
// not within followBackoff of a failed start (away from the active site,
// of a failed follow either). How depends on whose it is:
//
//   - at the active site it is started as it was: a primary comes back a
//     primary (read-only if it was fenced, its fence lifted only once no
//     other site reports a writable primary), a standby a standby to be
//     promoted;
//   - anywhere else it comes back only as a standby of the active site,
//     never as it was: while the active site's member is a writable
//     primary it is made to follow it (a stopped standby is started as
//     its standby, a stopped former primary is rewound to it); while it
//     is not (it is down too, or not promoted yet), only a member whose
//     data is a standby's is started, and a former primary stays down,
//     its data kept: rewound to a member that may never be promoted, it
//     would lose what only it holds.
//
// So a stopped member comes back writable only at the active site, and
// only as the primary it was there. A fenced site's member follows as any
// other of its members (fence+follow, or fence while there is nothing to
// follow); a self-fenced or stopped site starts nothing.
func Decide(in Input) Decision {
	mightWrite := !in.Observed || in.Status.Role != replication.RoleStandby
	switch in.State {
	case site.ControllerJoining:
		return Decision{ActNone, "site is joining: hands off until it knows whether it is fenced", 0}
	case site.ControllerSelfFenced, site.ControllerStopped:
		if mightWrite {
			return Decision{ActFence, fmt.Sprintf("site is %s: no writes here", in.State), 0}
		}
		return Decision{ActNone, fmt.Sprintf("site is %s; the member is a standby", in.State), 0}
	}
	stale := in.Epoch < in.Seen
	if in.State == site.ControllerFenced || in.Fenced {
		why := "site is fenced"
		switch {
		case in.Conflict != "" || stale || in.Active == "" || in.Active == in.Site:
			return Decision{ActFence, why + ": no writes here", 0}
		case !in.ActiveReady:
			return Decision{ActFence, fmt.Sprintf("%s: no writes here; will follow site %s once it is primary", why, in.Active), 0}
		}
		if !mightWrite && following(in) {
			return Decision{ActNone, fmt.Sprintf("%s; following site %s", why, in.Active), in.Epoch}
		}
		if d, wait := backoff(in); wait {
			return d
		}
		return Decision{ActFenceFollow, fmt.Sprintf("%s: following site %s as a standby", why, in.Active), in.Epoch}
	}
	if in.State != site.ControllerUp {
		return Decision{ActFence, fmt.Sprintf("unknown site state %q: no writes here", in.State), 0}
	}
	switch {
	case in.Conflict != "":
		return Decision{ActNone, in.Conflict, 0}
	case in.Active == "":
		return Decision{ActNone, "no service using the group is assigned", 0}
	case stale:
		return Decision{ActNone, fmt.Sprintf("stale assignment: epoch %d is older than epoch %d already seen; not acted on", in.Epoch, in.Seen), 0}
	}
	if !in.Observed {
		return unobserved(in)
	}
	if in.Active == in.Site {
		switch {
		case in.Status.Role == replication.RolePrimary && in.Status.Writable:
			return Decision{ActNone, "active here: primary", in.Epoch}
		case in.OtherWritable != "":
			// Also before a fenced primary lifts its fence: a switchover
			// rolled back while its target was being promoted.
			return Decision{ActNone, fmt.Sprintf("active here, but site %s still reports a writable primary: waiting until it is fenced", in.OtherWritable), in.Epoch}
		case in.Status.Role == replication.RolePrimary:
			return Decision{ActPromote, "active here: lifting the fence of the primary", in.Epoch}
		}
		if in.CatchUp != "" && !in.Failover && in.Status.Role == replication.RoleStandby {
			return Decision{ActNone, "active here, planned move: " + in.CatchUp, in.Epoch}
		}
		st := in.Status
		if in.Failover && st.Role == replication.RoleStandby && !st.Healthy {
			// The former primary is dark, so no standby streams: what
			// matters is that the member answers as a standby, and its lag
			// against what it received.
			st.Healthy = true
		}
		if in.SyncHolder {
			st.Sync = true // a standby cannot see it; the reports can
		}
		if ok, why := replication.Eligible(in.Policy, st); !ok {
			if in.Policy.RequireSync && in.SyncWhy != "" {
				why += " (" + in.SyncWhy + ")"
			}
			if in.Force && st.Role == replication.RoleStandby {
				return Decision{ActPromote, "active here: promoting, forced by an operator, although " + why, in.Epoch}
			}
			return Decision{ActRefuse, "promotion refused: " + why, in.Epoch}
		} else {
			return Decision{ActPromote, "active here: promoting (" + why + ")", in.Epoch}
		}
	}
	if mightWrite {
		why := fmt.Sprintf("member is %s but site %s is active", role(in), in.Active)
		if !in.ActiveReady {
			return Decision{ActFence, why + ": fenced; will follow it once it is primary", in.Epoch}
		}
		if d, wait := backoff(in); wait {
			d.Action = ActFence
			return d
		}
		return Decision{ActFenceFollow, why + ": fencing and following it", in.Epoch}
	}
	switch {
	case !in.ActiveReady:
		return Decision{ActNone, fmt.Sprintf("site %s is active but not yet primary: waiting to follow it", in.Active), in.Epoch}
	case following(in):
		return Decision{ActNone, fmt.Sprintf("following site %s", in.Active), in.Epoch}
	}
	if d, wait := backoff(in); wait {
		return d
	}
	return Decision{ActFollow, fmt.Sprintf("following site %s", in.Active), in.Epoch}
}

// unobserved decides for a member that does not answer, at a site that is
// up and acts on the assignment (see Decide). A member that cannot be
// observed cannot be fenced either (the same session does both), so
// nothing but starting its server, if it does not run, is tried; it is
// judged when it answers.
func unobserved(in Input) Decision {
	switch {
	case !in.CanStart:
		return Decision{ActNone, "cannot observe the member: no action on stale data", in.Epoch}
	case !in.StartFailed.IsZero() && in.Now.Sub(in.StartFailed) < followBackoff:
		return Decision{ActNone, fmt.Sprintf("cannot observe the member; starting its server failed, retrying after %s", followBackoff), in.Epoch}
	case in.Active == in.Site:
		return Decision{ActStart, "active here, but the member does not answer: starting its server if it does not run", in.Epoch}
	}
	if d, wait := backoff(in); wait {
		return d
	}
	if in.ActiveReady {
		return Decision{ActFollow, fmt.Sprintf("the member does not answer: following site %s, a writable primary (a stopped standby is started as its standby, a stopped former primary rewound to it)", in.Active), in.Epoch}
	}
	return Decision{ActStartStandby, fmt.Sprintf("the member does not answer and site %s is not a writable primary yet: starting it only if it was a standby, as a standby of site %s (a former primary stays down until it can follow a writable primary)", in.Active, in.Active), in.Epoch}
}

// following: a standby already made to follow the active site for this
// epoch, healthy or not for long.
func following(in Input) bool {
	return in.Observed && in.Followed == in.Active && in.FollowedEpoch == in.Epoch &&
		(in.Status.Healthy || in.UnhealthyFor < unhealthyGrace)
}

// backoff holds a follow back for a while after one failed.
func backoff(in Input) (Decision, bool) {
	if in.FollowFailed.IsZero() || in.Now.Sub(in.FollowFailed) >= followBackoff {
		return Decision{}, false
	}
	why := ""
	if in.FollowError != "" {
		why = " (" + in.FollowError + ")"
	}
	return Decision{ActNone, fmt.Sprintf("following site %s failed%s; retrying after %s", in.Active, why, followBackoff), in.Epoch}, true
}

func role(in Input) string {
	if in.Status.Role == replication.RolePrimary {
		if in.Status.Writable {
			return "a writable primary"
		}
		return "a fenced primary"
	}
	return "of unknown role"
}
