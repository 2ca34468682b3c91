package replication

import (
	"context"
	"time"
)

// Role is a member's role in its replication group.
type Role string

// The roles a member can have.
const (
	RolePrimary Role = "primary" // accepts writes; the others follow it
	RoleStandby Role = "standby" // follows a primary
	RoleUnknown Role = "unknown" // the driver cannot tell
)

// Status is what a driver observes about one member at one instant.
type Status struct {
	Role    Role
	Healthy bool
	// Sync: replicating synchronously, so no acknowledged write can be lost
	// if this member is promoted.
	Sync bool
	// Position is the driver's position in the data stream (an LSN, a DRBD
	// generation), for people; compare Lag*, not Position.
	Position string
	// LagBytes is how far the member is behind the primary; 0 on the primary.
	LagBytes int64
	// LagSeconds is the time since the last replayed change, only while the
	// member is behind; 0 when it is caught up or the driver cannot tell.
	LagSeconds float64
	Writable   bool   // accepts writes now
	Detail     string // what a person needs to know (disk state, why unhealthy)
	ObservedAt time.Time

	// What a primary reports about its standbys, for drivers whose primary
	// knows them (PostgreSQL); empty elsewhere. A standby often cannot tell
	// whether it replicates synchronously (its Sync is then false): the
	// reconciler joins its primary's Standbys by name to learn it.

	// Standbys are the standbys streaming from this primary now.
	Standbys []StandbyStatus
	// SyncConfigured: this primary is configured to wait for standbys
	// before it acknowledges a commit.
	SyncConfigured bool
	// SyncStandbys is that configuration as the driver reports it, for
	// people (PostgreSQL's synchronous_standby_names: "ANY 1 (b, c)").
	SyncStandbys string
}

// StandbyStatus is one standby as its primary sees it.
type StandbyStatus struct {
	Name  string // the standby's member name (PostgreSQL's application_name)
	State string // the driver's replication state ("streaming", "catchup")
	// SyncState says whether the primary waits for this standby, in the
	// driver's words (PostgreSQL: "async", "potential", "sync", "quorum").
	SyncState string
	// Synchronous: the primary waits for this standby (alone or as one of
	// a quorum) before it acknowledges a commit.
	Synchronous bool
	// The bytes the primary has that the standby has not yet received
	// (sent), made durable (flushed) or applied (replayed).
	SentLagBytes, FlushLagBytes, ReplayLagBytes int64
	Position                                    string // the standby's replay position, for people
}

// Member is one member of a replication group, as a driver sees it. It is
// declared here because the replication reconciler consumes it.
//
// Every method is idempotent: calling it on a member already in the wanted
// state succeeds without changing anything, so a journaled op that is resumed
// can repeat the step.
// Starter is a Member whose driver can start its stopped server, when it
// has local control of it.
type Starter interface {
	// Start starts the member's server unless it runs; it changes nothing
	// else (its role is what its data says).
	Start(ctx context.Context) error
}

type Member interface {
	// Observe reports the member's current status.
	Observe(ctx context.Context) (Status, error)
	// Promote makes the member the primary.
	Promote(ctx context.Context) error
	// Fence makes the member stop accepting writes at once.
	Fence(ctx context.Context) error
	// Follow makes the member follow the given primary (a driver-specific
	// address), rejoining or rewinding as needed.
	Follow(ctx context.Context, primary string) error
}
