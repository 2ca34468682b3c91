package runbooks

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// PlanOptions say who runs a runbook, and how.
type PlanOptions struct {
	Who string
	Now time.Time
	// Yes approves every confirm step in advance (zdt runbook run --yes).
	Yes bool
	// Kind is the op's kind; default failover.KindRunbook. The built-in
	// commands give their own (switchover, evacuate...).
	Kind string
}

// Plan is a runbook planned against the cluster's state as it is.
type Plan struct {
	Runbook *Runbook
	// Args are the parameters' values, defaults filled in.
	Args map[string]string
	// Op is the op to journal. Its first step, when it is a macro (a
	// switchover, an evacuation...), is planned already: it stands in the
	// op as the steps of its op. Later macros are planned when reached.
	Op *site.Op
	// Steps say, for each step as written, what it would act on now.
	Steps []PlannedStep
	// Blockers are why the op may not run now: its first step's op is
	// refused. Empty when it may run.
	Blockers []string
}

// PlannedStep is one step of a plan, as written, with what it would act on
// now.
type PlannedStep struct {
	ID, Group, Action string
	Rollback          bool
	// With are its arguments, parameters resolved.
	With map[string]string
	// When is its condition in words and whether it holds now.
	When string
	// Now is what the step would do, or why it would be refused, if it ran
	// now.
	Now string
}

// Resolve checks the arguments against the runbook's parameters and the
// cluster's config and fills in defaults. Every problem is reported.
func Resolve(rb *Runbook, cfg *config.Cluster, given map[string]string) (map[string]string, error) {
	var problems Problems
	args := map[string]string{}
	for _, k := range sortedKeys(given) {
		if !slices.ContainsFunc(rb.Params, func(p Param) bool { return p.Name == k }) {
			var names []string
			for _, p := range rb.Params {
				names = append(names, p.Name)
			}
			problems = append(problems, fmt.Sprintf("--param %s: runbook %s has no such parameter (params: %s)", k, rb.Name, orNothing(names)))
		}
	}
	for _, p := range rb.Params {
		v, ok := given[p.Name]
		switch {
		case !ok && p.HasDefault:
			v = p.Default
		case !ok && p.Required:
			problems = append(problems, fmt.Sprintf("--param %s: required (%s)", p.Name, cmp.Or(p.Description, string(p.Type))))
			continue
		case !ok:
			continue
		}
		if why := configProblem(cfg, p.Type, v); why != "" {
			problems = append(problems, fmt.Sprintf("--param %s=%s: %s", p.Name, v, why))
			continue
		}
		args[p.Name] = v
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return args, nil
}

// substitute replaces ${param} in v with its value ("" for a parameter
// that has none).
func substitute(v string, args map[string]string) string {
	return refRE.ReplaceAllStringFunc(v, func(ref string) string {
		return args[ref[2:len(ref)-1]]
	})
}

// MakePlan plans a runbook with its arguments (from Resolve) against the
// cluster's state. Every value is checked against the config: a step that
// names an unknown site or service is an error (Problems), with its line.
func MakePlan(rb *Runbook, cfg *config.Cluster, snap *site.Snapshot, args map[string]string, opts PlanOptions) (*Plan, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	kind := cmp.Or(opts.Kind, failover.KindRunbook)
	plan := &Plan{Runbook: rb, Args: args}
	var problems Problems
	var steps []site.Step
	add := func(st Step, group string, rollback bool) {
		s, why := resolveStep(rb, cfg, st, args)
		problems = append(problems, why...)
		s.Group, s.Rollback = group, rollback
		if s.Name == failover.StepConfirm && opts.Yes {
			s.Approved = &site.Request{By: opts.Who, At: opts.Now.UTC(), Reason: "approved in advance (--yes)"}
		}
		steps = append(steps, s)
	}
	for _, g := range rb.Groups {
		if g.Gate != nil {
			until := resolveCondition(g.Gate.Until, args)
			problems = append(problems, conditionProblems(rb, cfg, g.Gate.Line, until)...)
			steps = append(steps, site.Step{ID: g.Name + "-gate", Name: failover.StepWait, Group: g.Name, Until: &until, Timeout: g.Gate.Timeout, Status: site.StepPending})
		}
		for _, st := range g.Steps {
			add(st, g.Name, false)
		}
	}
	for _, st := range rb.Rollback {
		add(st, "", true)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	params := maps.Clone(args)
	if params == nil {
		params = map[string]string{}
	}
	op := &site.Op{
		ID:      site.NewOpID(opts.Now, kind),
		Kind:    kind,
		Runbook: rb.Name,
		Params:  params,
		Who:     opts.Who,
		Created: opts.Now,
		Outcome: site.OpRunning,
	}
	for i, st := range steps {
		ps := PlannedStep{ID: st.ID, Group: st.Group, Action: st.Name, Rollback: st.Rollback, With: st.Params}
		if st.When != nil {
			ok, why := failover.Holds(cfg, snap, *st.When)
			ps.When = fmt.Sprintf("%s (holds now: %t)", why, ok)
		}
		ps.Now = describeNow(cfg, snap, st)
		if failover.IsMacro(st.Name) {
			inner, why := failover.Expand(cfg, snap, st, "", opts.Who, opts.Now)
			var expanded []site.Step
			if inner != nil {
				expanded = inner.Steps
			}
			switch {
			case st.When != nil:
				// Whether it runs is known only when it is reached.
				if len(why) > 0 {
					ps.Now = "would be refused now (checked again when reached): " + strings.Join(why, "; ")
				} else {
					ps.Now = "as planned now (planned again when reached): " + summarize(expanded)
				}
			case len(why) > 0 && i == 0:
				plan.Blockers = why
				ps.Now = "refused now: " + strings.Join(why, "; ")
			case len(why) > 0:
				ps.Now = "would be refused now (checked again when reached): " + strings.Join(why, "; ")
			case i == 0:
				ps.Now = summarize(expanded)
				// The first step's op, planned now: the op has its params
				// (what other ops see it touch, what a forced takeover may
				// lose), with the arguments.
				for k, v := range inner.Params {
					if op.Params[k] == "" {
						op.Params[k] = v
					}
				}
				op.Steps = append(op.Steps, expanded...)
				plan.Steps = append(plan.Steps, ps)
				continue
			default:
				ps.Now = "as planned now (planned again when reached): " + summarize(expanded)
			}
		}
		op.Steps = append(op.Steps, st)
		plan.Steps = append(plan.Steps, ps)
	}
	plan.Op = op
	return plan, nil
}

// resolveStep turns a step as written into a journal step, its values
// resolved and checked against the config.
func resolveStep(rb *Runbook, cfg *config.Cluster, st Step, args map[string]string) (site.Step, Problems) {
	var problems Problems
	out := site.Step{ID: st.ID, Name: st.Action, Params: map[string]string{}, Timeout: st.Timeout, OnFailure: st.OnFailure, Status: site.StepPending}
	a := actions[st.Action]
	for _, ar := range a.args {
		raw, given := st.With[ar.name]
		if !given {
			continue
		}
		v := substitute(raw, args)
		if v == "" && !ar.required {
			continue
		}
		if why := configProblem(cfg, ar.typ, v); why != "" {
			problems = append(problems, fmt.Sprintf("%s:%d: step %s: %s %q: %s", rb.File, st.withLines[ar.name], label(st), ar.name, v, why))
			continue
		}
		out.Params[ar.name] = v
	}
	if len(a.oneOf) > 0 {
		n := 0
		for _, k := range a.oneOf {
			if substitute(st.With[k], args) != "" {
				n++
			}
		}
		if n != 1 {
			problems = append(problems, fmt.Sprintf("%s:%d: step %s: action %s needs exactly one of %s", rb.File, st.Line, label(st), st.Action, strings.Join(a.oneOf, ", ")))
		}
	}
	if st.Action == failover.StepShell && !cfg.Runbooks.AllowShell {
		problems = append(problems, fmt.Sprintf("%s:%d: step %s: shell steps are refused: this cluster's config does not allow them (runbooks: {allow_shell: true})", rb.File, st.Line, label(st)))
	}
	if st.Action == failover.StepNotify || st.Action == failover.StepShell {
		if st.Timeout > 0 {
			out.Params["timeout"] = st.Timeout.String()
		}
	}
	if st.When != nil {
		c := resolveCondition(*st.When, args)
		problems = append(problems, conditionProblems(rb, cfg, st.Line, c)...)
		out.When = &c
	}
	if st.Until != nil {
		c := resolveCondition(*st.Until, args)
		problems = append(problems, conditionProblems(rb, cfg, st.Line, c)...)
		out.Until = &c
	}
	return out, problems
}

// resolveCondition is a deep copy of c with its parameters resolved.
func resolveCondition(c site.Condition, args map[string]string) site.Condition {
	out := cloneCondition(c)
	walkCondition(&out, func(v *string, _ ParamType) { *v = substitute(*v, args) })
	return out
}

// cloneCondition is a deep copy of c.
func cloneCondition(c site.Condition) site.Condition {
	out := c
	if c.ServiceAt != nil {
		sa := *c.ServiceAt
		out.ServiceAt = &sa
	}
	if c.Not != nil {
		n := cloneCondition(*c.Not)
		out.Not = &n
	}
	out.All, out.Any = nil, nil
	for _, sub := range c.All {
		out.All = append(out.All, cloneCondition(sub))
	}
	for _, sub := range c.Any {
		out.Any = append(out.Any, cloneCondition(sub))
	}
	return out
}

// conditionProblems checks the values of a resolved condition against the
// config.
func conditionProblems(rb *Runbook, cfg *config.Cluster, line int, c site.Condition) Problems {
	var problems Problems
	walkCondition(&c, func(v *string, typ ParamType) {
		if why := configProblem(cfg, typ, *v); why != "" {
			problems = append(problems, fmt.Sprintf("%s:%d: condition: %s %q: %s", rb.File, line, typ, *v, why))
		}
	})
	return problems
}

// describeNow says what a step would act on if it ran now.
func describeNow(cfg *config.Cluster, snap *site.Snapshot, st site.Step) string {
	switch st.Name {
	case failover.StepCheckSite:
		if why := failover.SiteProblems(cfg, snap, st.Params["site"]); len(why) > 0 {
			return fmt.Sprintf("would fail now: site %s: %s", st.Params["site"], strings.Join(why, "; "))
		}
		return fmt.Sprintf("site %s is healthy now", st.Params["site"])
	case failover.StepAwaitSync:
		ok, why := failover.Holds(cfg, snap, site.Condition{GroupInSync: st.Params["group"]})
		if ok {
			return why + " now"
		}
		return "would wait: " + why
	case failover.StepWait:
		if st.Until != nil {
			ok, why := failover.Holds(cfg, snap, *st.Until)
			return fmt.Sprintf("holds now: %t (%s)", ok, why)
		}
		return "waits " + st.Params["for"]
	case failover.StepConfirm:
		if st.Approved != nil {
			return "approved in advance by " + st.Approved.By
		}
		return "stops until a person approves: " + cmp.Or(st.Params["message"], "continue?")
	case failover.StepNotify:
		return "posts to " + st.Params["url"]
	case failover.StepShell:
		return "runs at the coordinator: " + st.Params["command"]
	case failover.StepDrain:
		return fmt.Sprintf("site %s (drained now: %t)", st.Params["site"], snap.Drained(st.Params["site"]))
	case failover.StepPlace:
		return "places the guests from the state as it is then"
	}
	return ""
}

// summarize says in a line what a macro's steps do.
func summarize(steps []site.Step) string {
	var parts []string
	for _, s := range steps {
		words := []string{s.Name}
		if what := cmp.Or(s.Params["service"], s.Params["group"], s.Params["site"]); what != "" {
			words = append(words, what)
		}
		if from, to := s.Params["from"], s.Params["to"]; from != "" && to != "" {
			words = append(words, from+"->"+to)
		}
		parts = append(parts, strings.Join(words, " "))
	}
	return strings.Join(parts, ", ")
}
