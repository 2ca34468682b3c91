// Package runbooks loads, checks, plans and renders runbooks: written
// procedures for the NOC (a planned switch-over, an evacuation, a failback,
// a drill) as YAML files of typed parameters and ordered, grouped steps.
//
// A runbook runs as an op in the same journal as the automatic failover:
// Plan turns it, with its parameters, into a site.Op whose steps the
// coordinator carries out (package failover), one by one, journaling each,
// resuming after a coordinator crash. The step actions are the op engine's
// (check a site, wait for a group to be in sync, drain, switch over,
// promote, evacuate, fail back, place guests...), plus confirm (stop until a
// person approves), wait, notify (an HTTP webhook) and shell (only when the
// config allows it), which Outside runs at the coordinator.
//
// The built-in switchover, evacuate and failback commands run the shipped
// runbooks of the same names (Shipped): one implementation.
package runbooks

import (
	"time"

	"github.com/zdt-project/zdt/site"
)

// Runbook is a loaded runbook.
type Runbook struct {
	// File is where it was loaded from: a path, or "shipped:NAME".
	File        string
	Name        string
	Description string
	Params      []Param
	// Groups are run in order; a runbook with a plain list of steps has one
	// group with no name.
	Groups []Group
	// Rollback steps run only when a failed step names them.
	Rollback []Step
}

// Param is a typed parameter.
type Param struct {
	Name        string
	Type        ParamType
	Description string
	Required    bool
	// Default is the value when none is given; "" with HasDefault false
	// means none.
	Default    string
	HasDefault bool
	Line       int
}

// ParamType is the type of a parameter's value.
type ParamType string

// The parameter types. Site, service, group and host values must name one
// in the cluster's config.
const (
	TypeString   ParamType = "string"
	TypeSite     ParamType = "site"
	TypeService  ParamType = "service"
	TypeGroup    ParamType = "group"
	TypeHost     ParamType = "host"
	TypeDuration ParamType = "duration"
	TypeInt      ParamType = "int"
	TypeBool     ParamType = "bool"
)

// Group is a priority group: its steps run in order after its readiness
// gate holds.
type Group struct {
	Name  string
	Gate  *Gate
	Steps []Step
	Line  int
}

// Gate is a group's readiness gate: the group starts once the condition
// holds, and the op fails if it does not within the timeout.
type Gate struct {
	Until   site.Condition
	Timeout time.Duration
	Line    int
}

// Step is one step as written. Values may use ${param}.
type Step struct {
	ID     string
	Action string
	// With are the action's arguments.
	With    map[string]string
	When    *site.Condition
	Until   *site.Condition
	Timeout time.Duration
	// OnFailure names the rollback steps to run if the step fails; empty:
	// the op stops.
	OnFailure []string
	Line      int
	// withLines are the lines of With's keys, for errors about them.
	withLines map[string]int
}
