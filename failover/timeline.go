package failover

import (
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/site"
)

// ServiceTimeline is what an op did for one service, milestone by
// milestone.
type ServiceTimeline struct {
	Service    string      `json:"service"`
	Milestones []Milestone `json:"milestones"`
	// RTO runs from the op's creation to the last milestone reached.
	RTOSeconds float64 `json:"rto_seconds"`
	// Complete: every milestone was reached; the RTO is final.
	Complete bool `json:"complete"`
}

// Milestone is one point of a service's timeline: the op's creation, or the
// end of a step that acts on the service or on the whole op.
type Milestone struct {
	Name string `json:"name"`
	// Step is the step whose end marks it (none for the op's creation).
	Step   string          `json:"step,omitempty"`
	Status site.StepStatus `json:"status"`
	// Reached: the step ended done, or had nothing to do.
	Reached bool      `json:"reached"`
	At      time.Time `json:"at,omitzero"`
	// AfterSeconds is the time from the op's creation to At.
	AfterSeconds float64 `json:"after_seconds"`
}

// milestoneName names the milestone a step marks; a step of another
// name marks one of its own name.
func milestoneName(step string) string {
	switch step {
	case StepFence, StepDeclare:
		return "fenced"
	case StepAwaitSelfFence:
		return "fenced itself"
	case StepFenceResources:
		return "fenced from outside"
	case StepAssign:
		return "assigned"
	case StepPlace:
		return "guests placed"
	case StepAwaitPrimary:
		return "promoted"
	case StepAwaitFollowers:
		return "others following"
	case StepAwaitGuests:
		return "guests running"
	case StepAwaitPrefixes, StepMovePrefixes:
		return "prefix moved"
	}
	return step
}

// Timeline derives a timeline for each service the op moves (its steps
// with a "service" parameter), in the order of its steps: first the op's
// creation ("detected", for a failover; "declared", for one an operator
// declared), then the end of each step that
// acts on that service or on the whole op (no "service" parameter). A step
// that ended done or skipped marks a milestone reached; one not run yet, or
// not at all, or failed, does not. The RTO so far runs to the last
// milestone reached.
func Timeline(op *site.Op) []ServiceTimeline {
	var services []string
	for _, st := range op.Steps {
		if s := st.Params["service"]; s != "" && !slices.Contains(services, s) {
			services = append(services, s)
		}
	}
	first := "started"
	switch {
	case op.Kind == KindFailover && op.Params["declared"] == "true":
		first = "declared"
	case op.Kind == KindFailover:
		first = "detected"
	}
	timelines := make([]ServiceTimeline, 0, len(services))
	for _, svc := range services {
		tl := ServiceTimeline{Service: svc, Complete: true, Milestones: []Milestone{
			{Name: first, Status: site.StepDone, Reached: true, At: op.Created},
		}}
		var last time.Time
		for _, st := range op.Steps {
			if !stepActsOn(st, svc) {
				continue
			}
			m := Milestone{Name: milestoneName(st.Name), Step: st.Name, Status: st.Status}
			m.Reached = (st.Status == site.StepDone || st.Status == site.StepSkipped) && !st.Ended.IsZero()
			if m.Reached || st.Status == site.StepFailed {
				m.At = st.Ended
			}
			if !m.At.IsZero() {
				m.AfterSeconds = m.At.Sub(op.Created).Seconds()
			}
			if m.Reached && m.At.After(last) {
				last = m.At
			}
			tl.Complete = tl.Complete && m.Reached
			tl.Milestones = append(tl.Milestones, m)
		}
		if !last.IsZero() {
			tl.RTOSeconds = last.Sub(op.Created).Seconds()
		}
		timelines = append(timelines, tl)
	}
	return timelines
}

// stepActsOn says whether a step acts on the service: it names it (as its
// "service", or among its "services"), or names no service at all. A
// runbook's own steps (a confirmation, a wait, a webhook...) and its
// rollback steps that did not run mark no milestone.
func stepActsOn(st site.Step, svc string) bool {
	switch {
	case st.Rollback && st.Status == site.StepSkipped:
		return false
	case st.Name == StepConfirm, st.Name == StepWait, st.Name == StepNotify, st.Name == StepShell,
		st.Name == StepCheckSite, st.Name == StepAwaitSync:
		return false
	}
	if s := st.Params["service"]; s != "" {
		return s == svc
	}
	if list := st.Params["services"]; list != "" {
		return slices.Contains(strings.Split(list, ","), svc)
	}
	return true
}
