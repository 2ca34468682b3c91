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
}

// Member is one member of a replication group, as a driver sees it. It is
// declared here because the replication reconciler consumes it.
//
// Every method is idempotent: calling it on a member already in the wanted
// state succeeds without changing anything, so a journaled op that is resumed
// can repeat the step.
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
