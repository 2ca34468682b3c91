// Package drill measures drills, the rehearsals that prove a site can be
// left: a planned switchover of a site's services and back, or the loss of
// a whole site (a fault) with its failover, failback and switch back,
// measured by the ops' milestones and by a client that probes the service
// all along, and checked against the services' targets. A Report is written as JSON,
// as Markdown, and as one self-contained HTML page with a timeline.
package drill

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

// Report is one drill: what was done, when each milestone came, what the
// probe saw, and whether every check held.
type Report struct {
	// Kind is the drill's kind: switchover or site-loss.
	Kind    string    `json:"kind"`
	Site    string    `json:"site"`
	Cluster string    `json:"cluster"`
	Who     string    `json:"who"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Passed: every op succeeded and every check held.
	Passed bool `json:"passed"`
	// Phases are the drill's steps in order: away from the site, back.
	Phases []Phase `json:"phases"`
	// Fault is what a site-loss drill did to the site; nil for others.
	Fault *Fault `json:"fault,omitempty"`
	// Probe is what the client saw; nil without one.
	Probe  *ProbeResult `json:"probe,omitempty"`
	Checks []Check      `json:"checks"`
}

// Fault is the fault a drill caused: its kind (down: links cut and
// processes killed; freeze: processes stopped; isolate: cut off from the
// other sites), when, and when the site was restored.
type Fault struct {
	Kind     string    `json:"kind"`
	At       time.Time `json:"at"`
	Restored time.Time `json:"restored,omitzero"`
}

// Detection is how long after the fault the first op began (the failover
// the fault caused): 0 without a fault or an op.
func (r *Report) Detection() time.Duration {
	if r.Fault == nil || len(r.Phases) == 0 || len(r.Phases[0].Ops) == 0 {
		return 0
	}
	return r.Phases[0].Ops[0].Created.Sub(r.Fault.At)
}

// Phase is one step of a drill: the ops it asked for.
type Phase struct {
	Name string     `json:"name"`
	Ops  []OpResult `json:"ops"`
}

// OpResult is one op of a drill, with the timeline of each service it
// moved.
type OpResult struct {
	ID       string                     `json:"id"`
	Kind     string                     `json:"kind"`
	Params   map[string]string          `json:"params,omitempty"`
	Outcome  site.OpOutcome             `json:"outcome"`
	Error    string                     `json:"error,omitempty"`
	Created  time.Time                  `json:"created"`
	Ended    time.Time                  `json:"ended,omitzero"`
	Services []failover.ServiceTimeline `json:"services"`
	// TargetRTOSeconds is the op's services' RTO target, the shortest;
	// 0 without one.
	TargetRTOSeconds float64 `json:"target_rto_seconds,omitempty"`
}

// NewOpResult is the result of an op as it ended.
func NewOpResult(op *site.Op) OpResult {
	return OpResult{ID: op.ID, Kind: op.Kind, Params: op.Params, Outcome: op.Outcome, Error: op.Error,
		Created: op.Created, Ended: op.Ended, Services: failover.Timeline(op)}
}

// RTO is the longest RTO of the op's services: from the op's creation to
// the last milestone reached.
func (o OpResult) RTO() time.Duration {
	var longest float64
	for _, s := range o.Services {
		longest = max(longest, s.RTOSeconds)
	}
	return seconds(longest)
}

// Check is one invariant or target the drill checked.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Failed lists the checks that did not hold.
func (r *Report) Failed() []Check {
	var bad []Check
	for _, c := range r.Checks {
		if !c.OK {
			bad = append(bad, c)
		}
	}
	return bad
}

// CheckRTO adds a check for each op with an RTO target: its RTO is
// within it.
func (r *Report) CheckRTO() {
	for _, op := range r.Ops() {
		if op.TargetRTOSeconds <= 0 {
			continue
		}
		rto, target := op.RTO(), seconds(op.TargetRTOSeconds)
		r.Checks = append(r.Checks, Check{Name: "RTO within target: " + serviceNames(op), OK: rto <= target,
			Detail: fmt.Sprintf("op %s: %s, target %s", op.ID, round(rto), round(target))})
	}
}

// Finish sets Passed: every op succeeded and every check held.
func (r *Report) Finish(ended time.Time) {
	r.Ended = ended
	r.Passed = len(r.Failed()) == 0 && len(r.Phases) > 0
	for _, p := range r.Phases {
		for _, op := range p.Ops {
			r.Passed = r.Passed && op.Outcome == site.OpSucceeded
		}
	}
}

// Record is the report in brief, as etcd keeps a site's last drill.
func (r *Report) Record() site.DrillRecord {
	d := site.DrillRecord{Site: r.Site, Kind: r.Kind, Who: r.Who, Started: r.Started, Ended: r.Ended, Passed: r.Passed, LostWrites: -1}
	for _, op := range r.Ops() {
		d.RTOSeconds = max(d.RTOSeconds, op.RTO().Seconds())
	}
	if pr := r.Probe; pr != nil {
		d.Probed, d.OutageSeconds = true, pr.LongestOutage().Seconds()
		if pr.Writes {
			d.LostWrites = pr.Missing
		}
	}
	var failed []string
	for _, c := range r.Failed() {
		failed = append(failed, c.Name+": "+c.Detail)
	}
	for _, op := range r.Ops() {
		if op.Outcome != site.OpSucceeded {
			failed = append(failed, fmt.Sprintf("op %s %s", op.ID, op.Outcome))
		}
	}
	d.Failed = strings.Join(failed, "; ")
	return d
}

// Ops are every op of the drill, in order.
func (r *Report) Ops() []OpResult {
	var ops []OpResult
	for _, p := range r.Phases {
		ops = append(ops, p.Ops...)
	}
	return ops
}

// Markdown is the report as Markdown, for a change ticket or an audit.
func (r *Report) Markdown() string {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "# Drill: %s of site %s — %s\n\n", r.Kind, r.Site, verdict)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| cluster | %s |\n| run by | %s |\n| started | %s |\n| ended | %s |\n| took | %s |\n\n",
		mdCell(r.Cluster), mdCell(r.Who), stamp(r.Started), stamp(r.Ended), round(r.Ended.Sub(r.Started)))
	if f := r.Fault; f != nil {
		fmt.Fprintf(&b, "## Fault\n\nSite %s: %s at %s", mdCell(r.Site), mdCell(f.Kind), stamp(f.At))
		if d := r.Detection(); d > 0 {
			fmt.Fprintf(&b, "; the failover began %s later (detection)", round(d))
		}
		if !f.Restored.IsZero() {
			fmt.Fprintf(&b, "; restored at %s", stamp(f.Restored))
		}
		b.WriteString(".\n\n")
	}
	b.WriteString("## Figures\n\n| phase | op | services | outcome | RTO | target |\n|---|---|---|---|---|---|\n")
	for _, p := range r.Phases {
		for _, op := range p.Ops {
			target := "-"
			if op.TargetRTOSeconds > 0 {
				target = round(seconds(op.TargetRTOSeconds)).String()
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", mdCell(p.Name), op.ID, mdCell(serviceNames(op)),
				op.Outcome, round(op.RTO()), target)
		}
	}
	if pr := r.Probe; pr != nil {
		b.WriteString("\n## What the client saw\n\n")
		fmt.Fprintf(&b, "Probe `%s`, every %s: %d requests, %d failed; ", mdCell(pr.Target), pr.Interval(), pr.Sent, pr.Failed)
		fmt.Fprintf(&b, "longest outage %s", round(pr.LongestOutage()))
		if pr.Writes {
			fmt.Fprintf(&b, "; %d writes acknowledged, %d of them missing afterwards (RPO)", pr.Acknowledged, pr.Missing)
		}
		b.WriteString(".\n")
		if len(pr.Outages) > 0 {
			b.WriteString("\n| outage from | to | lasted | failed requests | last error |\n|---|---|---|---|---|\n")
			for _, o := range pr.Outages {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n", stamp(o.Start), stamp(o.End), round(o.End.Sub(o.Start)), o.Failures, mdCell(o.LastError))
			}
		}
	}
	b.WriteString("\n## Checks\n\n| check | | detail |\n|---|---|---|\n")
	for _, c := range r.Checks {
		mark := "ok"
		if !c.OK {
			mark = "**FAILED**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(c.Name), mark, mdCell(c.Detail))
	}
	for _, p := range r.Phases {
		for _, op := range p.Ops {
			for _, tl := range op.Services {
				fmt.Fprintf(&b, "\n## %s: service %s (op `%s`)\n\n| milestone | after | status |\n|---|---|---|\n", mdCell(p.Name), tl.Service, op.ID)
				for _, m := range tl.Milestones {
					after := "-"
					if m.Reached {
						after = round(seconds(m.AfterSeconds)).String()
					}
					fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(m.Name), after, m.Status)
				}
			}
		}
	}
	return b.String()
}

func serviceNames(op OpResult) string {
	var names []string
	for _, s := range op.Services {
		names = append(names, s.Service)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// mdCell makes text fit one Markdown table cell.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// round rounds d for people: 340ms, 4.21s, 3m12s.
func round(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}
