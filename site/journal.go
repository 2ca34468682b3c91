package site

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
}

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

	// Rev is the mod revision the op was read or last written at (not
	// stored); updates compare it.
	Rev int64 `json:"-"`
	// CreateRev orders ops by creation (not stored).
	CreateRev int64 `json:"-"`
}

// Finished reports whether the op has an outcome.
func (op *Op) Finished() bool { return op.Outcome != OpRunning }

// NewOpID returns a new op id: sortable by time, readable, unique.
func NewOpID(now time.Time, kind string) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%s-%s", now.UTC().Format("20060102T150405.000Z"), kind, hex.EncodeToString(b[:]))
}
