package site

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"
)

// OpOutcome is where an op ended, or OpRunning while it has not.
type OpOutcome string

// The outcomes of an op.
const (
	OpRunning   OpOutcome = "running"
	OpSucceeded OpOutcome = "succeeded"
	// OpFailed: a step could not be done; what was done stays done.
	OpFailed OpOutcome = "failed"
	// OpAborted: the op's premise no longer held (for example the dark site
	// came back before it was fenced); nothing harmful was done.
	OpAborted OpOutcome = "aborted"
)

// StepStatus is the progress of one step of an op.
type StepStatus string

// The states of a step.
const (
	StepPending StepStatus = "pending"
	StepRunning StepStatus = "running"
	StepDone    StepStatus = "done"
	StepSkipped StepStatus = "skipped"
	StepFailed  StepStatus = "failed"
)

// Step is one journaled step of an op. Steps are idempotent: a coordinator
// that finds a step running (its predecessor died in it) runs it again.
type Step struct {
	Name    string            `json:"name"`
	Params  map[string]string `json:"params,omitempty"`
	Status  StepStatus        `json:"status"`
	By      string            `json:"by,omitempty"` // the coordinator site that ran it
	Started time.Time         `json:"started,omitzero"`
	Ended   time.Time         `json:"ended,omitzero"`
	Detail  string            `json:"detail,omitempty"`
	// Resources is what a step did to each resource it touched, for the
	// steps that act on several (the outside fence of a failover).
	Resources []ResourceOutcome `json:"resources,omitempty"`

	// The fields below are set by runbooks (package runbooks); the
	// built-in ops leave them empty.

	// ID names the step in its runbook (unique in the op; steps expanded
	// from one runbook step share its ID).
	ID string `json:"id,omitempty"`
	// Group is the runbook group the step belongs to ("databases").
	Group string `json:"group,omitempty"`
	// When, if set, must hold when the step is reached; otherwise the step
	// is skipped.
	When *Condition `json:"when,omitempty"`
	// Until is what a wait step waits for.
	Until *Condition `json:"until,omitempty"`
	// Timeout, if set, fails the step when it has not ended that long
	// after it started (a wait, a confirmation, retries).
	Timeout time.Duration `json:"timeout,omitempty"`
	// OnFailure names the rollback steps to run if this step fails; empty:
	// the op stops.
	OnFailure []string `json:"on_failure,omitempty"`
	// Rollback marks a step of the runbook's rollback section: it runs
	// only when a failed step names it.
	Rollback bool `json:"rollback,omitempty"`
	// Approved is who approved a confirm step, and when.
	Approved *Request `json:"approved,omitempty"`
}

// Condition is a test over the cluster's state, for a runbook step's
// "when", a wait's "until" and a group's readiness gate. Exactly one field
// is set.
type Condition struct {
	SiteUp       string `json:"site_up,omitempty" yaml:"site_up,omitempty"`
	SiteDown     string `json:"site_down,omitempty" yaml:"site_down,omitempty"`
	SiteFenced   string `json:"site_fenced,omitempty" yaml:"site_fenced,omitempty"`
	SiteUnfenced string `json:"site_unfenced,omitempty" yaml:"site_unfenced,omitempty"`
	SiteDrained  string `json:"site_drained,omitempty" yaml:"site_drained,omitempty"`
	// SiteReadyForFailback: the site may be failed back (fenced, back,
	// clean: failover.FailbackBlockers finds nothing).
	SiteReadyForFailback string `json:"site_ready_for_failback,omitempty" yaml:"site_ready_for_failback,omitempty"`
	GroupInSync          string `json:"group_in_sync,omitempty" yaml:"group_in_sync,omitempty"`
	// HostEmpty: no guest runs on the host, by its site's report.
	HostEmpty string      `json:"host_empty,omitempty" yaml:"host_empty,omitempty"`
	ServiceAt *ServiceAt  `json:"service_at,omitempty" yaml:"service_at,omitempty"`
	All       []Condition `json:"all,omitempty" yaml:"all,omitempty"`
	Any       []Condition `json:"any,omitempty" yaml:"any,omitempty"`
	Not       *Condition  `json:"not,omitempty" yaml:"not,omitempty"`
}

// ServiceAt is the condition that a service is assigned to a site.
type ServiceAt struct {
	Service string `json:"service" yaml:"service"`
	Site    string `json:"site" yaml:"site"`
}

// ResourceOutcome is what one step did to one resource: a replication
// member or a hypervisor host of a site.
type ResourceOutcome struct {
	// Resource names it: "member pg at b", "host b1".
	Resource string `json:"resource"`
	// Outcome is one of the Fence* outcomes for the outside fence.
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// The outcomes of fencing one resource of a dark site from outside.
const (
	// FenceDone: the resource answered and is fenced (a member read-only
	// with its sessions cut, a host's guests destroyed).
	FenceDone = "fenced"
	// FenceNothing: the resource answered and had nothing to fence (a
	// standby, a host running none of our guests).
	FenceNothing = "nothing to fence"
	// FenceUnreachable: the resource did not answer within the limit; the
	// site is presumed dark.
	FenceUnreachable = "unreachable, presumed dark"
	// FenceUnsupported: the resource cannot be fenced from outside (a DRBD
	// member is only reachable through its own site's tools).
	FenceUnsupported = "not fenceable from outside"
	// FenceInterrupted: the attempt was cut short by the coordinator's own
	// context, not by the resource; the step runs again.
	FenceInterrupted = "interrupted"
)

// Op is one journaled operation: a failover, switchover, failback, drill...
type Op struct {
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`
	Params  map[string]string `json:"params,omitempty"`
	Who     string            `json:"who"` // who asked: a coordinator site or an operator
	Created time.Time         `json:"created"`
	// Coordinators lists, in order, every coordinator site that worked on
	// the op; more than one means it was resumed after a coordinator loss.
	Coordinators []string  `json:"coordinators"`
	Steps        []Step    `json:"steps"`
	Outcome      OpOutcome `json:"outcome"`
	Ended        time.Time `json:"ended,omitzero"`
	Error        string    `json:"error,omitempty"`
	// AbortRequested is set when a person asked for the op to be aborted
	// (zdt ops abort); the coordinator ends the op, aborted, before it
	// runs its next step.
	AbortRequested *Request `json:"abort_requested,omitempty"`
	// Runbook is the runbook the op runs, "" for the built-in ops.
	Runbook string `json:"runbook,omitempty"`
	// RollingBack is the ID of the failed step whose rollback steps run.
	RollingBack string `json:"rolling_back,omitempty"`

	// Rev is the mod revision the op was read or last written at (not
	// stored); updates compare it.
	Rev int64 `json:"-"`
	// CreateRev orders ops by creation (not stored).
	CreateRev int64 `json:"-"`
}

// Request is a person's request about a running op: who made it, when, and
// why.
type Request struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Clone returns a copy of the op that shares nothing a coordinator changes
// with it: only the steps' conditions (When, Until), which nothing
// changes once the op is made, are shared.
func (op *Op) Clone() *Op {
	c := *op
	c.Params = maps.Clone(op.Params)
	c.Coordinators = slices.Clone(op.Coordinators)
	c.AbortRequested = clonePtr(op.AbortRequested)
	c.Steps = slices.Clone(op.Steps)
	for i := range c.Steps {
		st := &c.Steps[i]
		st.Params = maps.Clone(st.Params)
		st.Resources = slices.Clone(st.Resources)
		st.OnFailure = slices.Clone(st.OnFailure)
		st.Approved = clonePtr(st.Approved)
	}
	return &c
}

// clonePtr returns a pointer to a copy of *p, nil for nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// Finished reports whether the op has an outcome.
func (op *Op) Finished() bool { return op.Outcome != OpRunning }

// NewOpID returns a new op id: sortable by time, readable, unique.
func NewOpID(now time.Time, kind string) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%s-%s", now.UTC().Format("20060102T150405.000Z"), kind, hex.EncodeToString(b[:]))
}
