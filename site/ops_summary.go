package site

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ListOps picks the ops `zdt ops list` shows from the journal (oldest
// first), newest first: those of the kind (every kind when ""), running or
// among the newest limit finished ones (limit 0: all). left is how many
// finished ops of the kind it left out.
func ListOps(journal []*Op, kind string, limit int) (shown []*Op, left int) {
	finished := 0
	for _, op := range slices.Backward(journal) {
		switch {
		case kind != "" && op.Kind != kind:
		case !op.Finished():
			shown = append(shown, op)
		case limit > 0 && finished >= limit:
			left++
		default:
			finished++
			shown = append(shown, op)
		}
	}
	return shown, left
}

// OpSummary is one op in a list: one line of `zdt ops list`, one entry of
// the API's /ops.
type OpSummary struct {
	ID              string            `json:"id"`
	Kind            string            `json:"kind"`
	Params          map[string]string `json:"params,omitempty"`
	Who             string            `json:"who"`
	Created         time.Time         `json:"created"`
	Ended           time.Time         `json:"ended,omitzero"`
	DurationSeconds float64           `json:"duration_seconds"`
	Outcome         OpOutcome         `json:"outcome"`
	// Step is the step a running op is at ("2/4 fence-resources site=c").
	Step           string   `json:"step,omitempty"`
	Error          string   `json:"error,omitempty"`
	AbortRequested *Request `json:"abort_requested,omitempty"`
	// Summary is what the table shows: the step a running op is at, why a
	// failed or aborted op ended so, the parameters of one that succeeded.
	Summary string `json:"summary"`
}

func Summarize(op *Op, now time.Time) OpSummary {
	s := OpSummary{
		ID: op.ID, Kind: op.Kind, Params: op.Params, Who: op.Who, Created: op.Created, Ended: op.Ended,
		DurationSeconds: OpDuration(op, now).Seconds(), Outcome: op.Outcome, Error: op.Error, AbortRequested: op.AbortRequested,
	}
	if i := CurrentStep(op); i >= 0 && !op.Finished() {
		s.Step = fmt.Sprintf("%d/%d %s", i+1, len(op.Steps), StepLabel(op.Steps[i]))
	}
	switch {
	case !op.Finished():
		s.Summary = "step " + s.Step
		if s.Step == "" {
			s.Summary = "no step left to run"
		}
		if i := CurrentStep(op); i >= 0 && op.Steps[i].Detail != "" {
			s.Summary += ": " + op.Steps[i].Detail
		}
		if r := op.AbortRequested; r != nil {
			s.Summary += "; abort requested by " + r.By
		}
	case op.Error != "":
		s.Summary = op.Error
	default:
		s.Summary = ParamString(op.Params)
	}
	return s
}

// CurrentStep is the index of the op's first step not run yet, or being
// run; -1 when there is none.
func CurrentStep(op *Op) int {
	for i, st := range op.Steps {
		if st.Status == StepPending || st.Status == StepRunning {
			return i
		}
	}
	return -1
}

// StepLabel names a step with its parameters: "assign service=web from=c".
// A parameter that lists many things shows the first few and how many in
// all (see shortList).
func StepLabel(st Step) string {
	params := maps.Clone(st.Params)
	delete(params, "kind") // the kind of op a runbook's macro step planned
	for k, v := range params {
		params[k] = shortList(v)
	}
	if p := ParamString(params); p != "" {
		return st.Name + " " + p
	}
	return st.Name
}

// fewMax is how many items of a long list a person is shown.
const fewMax = 3

// Few joins items with sep, but a list of more than fewMax+1 (a step for
// 334 services) shows only its first fewMax and the count:
// "db,svc-0002,svc-0005,… (334 in all)". For labels and summaries; the
// record keeps every item.
func Few(items []string, sep string) string {
	if len(items) <= fewMax+1 {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s%s… (%d in all)", strings.Join(items[:fewMax], sep), sep, len(items))
}

// shortList shortens a comma-separated list as Few does.
func shortList(v string) string {
	if strings.Count(v, ",") <= fewMax {
		return v
	}
	return Few(strings.Split(v, ","), ",")
}

// ParamString is "k=v k=v", sorted by key, without empty values.
func ParamString(params map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if params[k] != "" {
			parts = append(parts, k+"="+params[k])
		}
	}
	return strings.Join(parts, " ")
}

// OpDuration is how long the op took, or has been running.
func OpDuration(op *Op, now time.Time) time.Duration {
	if op.Finished() && !op.Ended.IsZero() {
		return op.Ended.Sub(op.Created)
	}
	return now.Sub(op.Created)
}
