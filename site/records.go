package site

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Alive is the value of a site's lease-bound alive key.
type Alive struct {
	Site string `json:"site"`
	// Incarnation tells one run of a controller from the next.
	Incarnation string    `json:"incarnation"`
	Since       time.Time `json:"since"`
	API         string    `json:"api,omitempty"`

	// Lease is the lease the key is bound to (not stored in the value).
	Lease clientv3.LeaseID `json:"-"`
}

// Registration is written once, the first time a site joins. A site that
// never registered is not failed over: it never served anything.
type Registration struct {
	Site  string    `json:"site"`
	First time.Time `json:"first"`
}

// ControllerState is what a site's controller says about itself.
type ControllerState string

// The states of a site's controller.
const (
	// ControllerJoining: starting, no lease yet.
	ControllerJoining ControllerState = "joining"
	// ControllerUp: holds its lease, not fenced, serves what it is assigned.
	ControllerUp ControllerState = "up"
	// ControllerSelfFenced: could not renew its lease in time and stopped
	// serving on its own, before the lease could expire at the majority.
	ControllerSelfFenced ControllerState = "self-fenced"
	// ControllerFenced: a fence record names its site; it serves nothing
	// until a failback lifts the fence.
	ControllerFenced ControllerState = "fenced"
	// ControllerStopped: shut down on purpose.
	ControllerStopped ControllerState = "stopped"
)

// Serving reports whether a controller in this state may serve.
func (s ControllerState) Serving() bool { return s == ControllerUp }

// Report is what a site's controller observes about itself. It is written on
// change, not on every heartbeat.
type Report struct {
	Site        string          `json:"site"`
	Incarnation string          `json:"incarnation"`
	State       ControllerState `json:"state"`
	Reason      string          `json:"reason,omitempty"`
	Coordinator bool            `json:"coordinator"`
	Updated     time.Time       `json:"updated"`
}

// Fence records that a site was declared dark. A fenced site serves nothing
// until an explicit failback removes the record.
type Fence struct {
	Site   string    `json:"site"`
	Op     string    `json:"op"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	// Confirmed is set when an operator confirmed that the site is dark
	// (`zdt fence confirm`): a takeover that waits for a fence it could not
	// carry out from outside (fencing.require_confirmation) may go on.
	Confirmed *Confirmation `json:"confirmed,omitempty"`
}

// Confirmation records who confirmed a fence, and when.
type Confirmation struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Assignment is a service's desired active site.
type Assignment struct {
	Service string    `json:"service"`
	Site    string    `json:"site"`
	Op      string    `json:"op"`
	At      time.Time `json:"at"`
	// From is the site that held the service before, "" for the first
	// assignment; Kind is the kind of the op that wrote it ("failover": an
	// unplanned takeover from a dark site; anything else is planned).
	From string `json:"from,omitempty"`
	Kind string `json:"kind,omitempty"`
	// Force: an operator accepted that the promotion at Site may lose
	// data (zdt switchover --force): its member is promoted whatever its
	// lag or health, once no other site reports a writable primary.
	Force bool `json:"force,omitempty"`

	// Epoch is the etcd revision at which this assignment was written (the
	// key's mod revision; not stored in the value). Later assignments have
	// larger epochs; 0 means the service has never been assigned.
	Epoch int64 `json:"-"`
}

// Event is one entry of the append-only event log.
type Event struct {
	At      time.Time `json:"at"`
	Site    string    `json:"site"` // the controller that wrote it
	Kind    string    `json:"kind"`
	Op      string    `json:"op,omitempty"`
	Subject string    `json:"subject,omitempty"` // the site or service it is about
	Message string    `json:"message"`

	// Rev is the revision the event was written at (not stored).
	Rev int64 `json:"-"`
}
