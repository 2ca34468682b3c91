package runbooks

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// arg is one argument of an action.
type arg struct {
	name     string
	typ      ParamType
	required bool
}

// action describes a step action: its arguments and what it does.
type action struct {
	args []arg
	// oneOf: exactly one of these arguments is required.
	oneOf []string
	doc   string
}

// actions are the step actions a runbook may use.
var actions = map[string]action{
	failover.StepConfirm: {args: []arg{{"message", TypeString, false}},
		doc: "stop until a person approves (zdt runbook approve OP), showing the message"},
	failover.StepWait: {args: []arg{{"for", TypeDuration, false}},
		doc: "wait for a duration (with: for), or until a condition holds (until:)"},
	failover.StepNotify: {args: []arg{{"url", TypeString, true}, {"message", TypeString, false}},
		doc: "POST the op, the step and the message as JSON to an HTTP webhook (timeout: default 30s)"},
	failover.StepShell: {args: []arg{{"command", TypeString, true}},
		doc: "run a command at the coordinator with /bin/sh, only when the config allows it (runbooks.allow_shell; timeout: default 5m); its output is kept in the journal"},
	failover.StepCheckSite: {args: []arg{{"site", TypeSite, true}},
		doc: "check a site is healthy: up, not fenced, its controller and members reporting well"},
	failover.StepAwaitSync: {args: []arg{{"group", TypeGroup, true}},
		doc: "wait until a replication group is in sync: a writable primary, every member at a site that is up streaming from it"},
	failover.StepDrain: {args: []arg{{"site", TypeSite, true}, {"reason", TypeString, false}},
		doc: "drain a site: no failover, switchover or placement picks it while another will do"},
	failover.StepDrainHost: {args: []arg{{"host", TypeHost, true}, {"reason", TypeString, false}},
		doc: "drain a hypervisor host for maintenance: placement gives it no room, so the next place moves its guests, to hosts of its own site first"},
	failover.StepUndrainHost: {args: []arg{{"host", TypeHost, true}},
		doc: "give a drained host room again (its guests do not move back by themselves)"},
	failover.StepAwaitGuests: {
		doc: "wait until every guest this op placed to run runs on its host (limit: the step's timeout, else ten lease TTLs, at least 30s)"},
	failover.StepPlace: {
		doc: "place the guests again from the state as it is (Gold first, zone rules, preempting Bronze then Silver)"},
	failover.MacroSwitchover: {args: []arg{{"service", TypeService, false}, {"site", TypeSite, false}, {"to", TypeSite, true}, {"promote_within", TypeDuration, false}, {"force", TypeBool, false}},
		oneOf: []string{"service", "site"},
		doc:   "switch a service (with its replication group), or every service of a site, over to another site: the switchover command's op"},
	failover.MacroPromote: {args: []arg{{"group", TypeGroup, true}, {"to", TypeSite, true}},
		doc: "promote a replication group's member at a site: the switchover of the group's services there"},
	failover.MacroEvacuate: {args: []arg{{"site", TypeSite, true}, {"reason", TypeString, false}, {"within", TypeDuration, false}},
		doc: "drain a site and move its services and guests elsewhere: the evacuate command's op"},
	failover.MacroUndrain: {args: []arg{{"site", TypeSite, true}},
		doc: "make a drained site a candidate again"},
	failover.MacroFailback: {args: []arg{{"site", TypeSite, true}},
		doc: "lift the fence of a site that came back clean: the failback command's op"},
	failover.MacroFailover: {args: []arg{{"site", TypeSite, true}, {"reason", TypeString, false}},
		doc: "declare a site dark and fail it over (the failover command's op): it is fenced although it may be alive"},
}

// Actions lists the step actions a runbook may use, each with what it
// does and its arguments, sorted by name.
func Actions() []string {
	var out []string
	for _, name := range actionNames() {
		a := actions[name]
		var args []string
		for _, ar := range a.args {
			s := ar.name + " (" + string(ar.typ)
			if ar.required {
				s += ", required"
			}
			args = append(args, s+")")
		}
		line := name + ": " + a.doc
		if len(args) > 0 {
			line += "; with: " + strings.Join(args, ", ")
		}
		out = append(out, line)
	}
	return out
}

func actionNames() []string {
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// check checks a parsed runbook on its own.
func (p *parser) check(rb *Runbook) {
	params := map[string]Param{}
	for _, pr := range rb.Params {
		if _, dup := params[pr.Name]; dup && pr.Name != "" {
			p.errorf(pr.Line, "param %s is declared twice", pr.Name)
		}
		params[pr.Name] = pr
	}
	ids := map[string]int{}
	rollbacks := map[string]Step{}
	var all []Step
	groups := map[string]bool{}
	for _, g := range rb.Groups {
		if g.Name != "" && groups[g.Name] {
			p.errorf(g.Line, "group %s is named twice", g.Name)
		}
		groups[g.Name] = true
		if g.Gate != nil {
			p.conditionRefs(g.Gate.Line, &g.Gate.Until, params)
		}
		all = append(all, g.Steps...)
	}
	for _, st := range rb.Rollback {
		if st.ID == "" {
			p.errorf(st.Line, "rollback step: id is required (on_failure names it)")
		}
		rollbacks[st.ID] = st
	}
	all = append(all, rb.Rollback...)
	for _, st := range all {
		if st.ID != "" {
			if line, dup := ids[st.ID]; dup {
				p.errorf(st.Line, "step id %s is used twice (also at line %d)", st.ID, line)
			}
			ids[st.ID] = st.Line
		}
		p.checkStep(st, params)
		for _, r := range st.OnFailure {
			if _, ok := rollbacks[r]; !ok {
				p.errorf(st.Line, "step %s: on_failure names %q, which is not a rollback step (rollback steps: %s)", label(st), r, orNothing(sortedKeys(rollbacks)))
			}
		}
	}
	p.checkCycles(rb.Rollback, rollbacks)
}

// checkStep checks a step's action, its arguments and the parameters its
// values use.
func (p *parser) checkStep(st Step, params map[string]Param) {
	a, ok := actions[st.Action]
	if !ok {
		if st.Action != "" {
			p.errorf(st.Line, "step %s: unknown action %q (actions: %s)", label(st), st.Action, strings.Join(actionNames(), ", "))
		}
		return
	}
	for _, k := range sortedKeys(st.With) {
		i := slices.IndexFunc(a.args, func(ar arg) bool { return ar.name == k })
		if i < 0 {
			p.errorf(st.withLines[k], "step %s: action %s has no argument %q (it takes: %s)", label(st), st.Action, k, orNothing(argNames(a)))
			continue
		}
		v := st.With[k]
		p.valueRefs(st.withLines[k], v, params, a.args[i].typ)
		if !strings.Contains(v, "${") {
			if why := typeProblem(a.args[i].typ, v); why != "" {
				p.errorf(st.withLines[k], "step %s: %s %q: %s", label(st), k, v, why)
			}
		}
	}
	for _, ar := range a.args {
		if _, given := st.With[ar.name]; ar.required && !given {
			p.errorf(st.Line, "step %s: action %s needs argument %q", label(st), st.Action, ar.name)
		}
	}
	if len(a.oneOf) > 0 && !slices.ContainsFunc(a.oneOf, func(k string) bool { return strings.Contains(st.With[k], "${") }) {
		// With parameters, it is checked when they are known (resolveStep).
		n := 0
		for _, k := range a.oneOf {
			if st.With[k] != "" {
				n++
			}
		}
		if n != 1 {
			p.errorf(st.Line, "step %s: action %s needs exactly one of %s", label(st), st.Action, strings.Join(a.oneOf, ", "))
		}
	}
	switch {
	case st.Action == failover.StepWait && (st.With["for"] == "") == (st.Until == nil):
		p.errorf(st.Line, "step %s: a wait needs either with: for (a duration) or until (a condition)", label(st))
	case st.Action != failover.StepWait && st.Until != nil:
		p.errorf(st.Line, "step %s: until is only for wait steps", label(st))
	}
	if st.When != nil {
		p.conditionRefs(st.Line, st.When, params)
	}
	if st.Until != nil {
		p.conditionRefs(st.Line, st.Until, params)
	}
}

// valueRefs checks the ${param} references of a value: each names a
// declared parameter, of the type the argument wants when the value is only
// the reference.
func (p *parser) valueRefs(line int, v string, params map[string]Param, want ParamType) {
	for _, m := range refRE.FindAllStringSubmatch(v, -1) {
		pr, ok := params[m[1]]
		switch {
		case !ok:
			p.errorf(line, "${%s}: no such parameter (params: %s)", m[1], orNothing(sortedKeys(params)))
		case v == m[0] && want != TypeString && pr.Type != want && pr.Type != TypeString:
			p.errorf(line, "${%s}: parameter %s is a %s, the argument wants a %s", m[1], m[1], pr.Type, want)
		}
	}
	if strings.Count(v, "${") != len(refRE.FindAllString(v, -1)) {
		p.errorf(line, "%q: an unclosed ${", v)
	}
}

// conditionRefs checks the parameter references in a condition.
func (p *parser) conditionRefs(line int, c *site.Condition, params map[string]Param) {
	walkCondition(c, func(v *string, typ ParamType) { p.valueRefs(line, *v, params, typ) })
}

// walkCondition calls fn with every value of a condition and its type.
func walkCondition(c *site.Condition, fn func(v *string, typ ParamType)) {
	for _, f := range []*string{&c.SiteUp, &c.SiteDown, &c.SiteFenced, &c.SiteUnfenced, &c.SiteDrained, &c.SiteReadyForFailback} {
		if *f != "" {
			fn(f, TypeSite)
		}
	}
	if c.GroupInSync != "" {
		fn(&c.GroupInSync, TypeGroup)
	}
	if c.HostEmpty != "" {
		fn(&c.HostEmpty, TypeHost)
	}
	if c.ServiceAt != nil {
		fn(&c.ServiceAt.Service, TypeService)
		fn(&c.ServiceAt.Site, TypeSite)
	}
	if c.Not != nil {
		walkCondition(c.Not, fn)
	}
	for i := range c.All {
		walkCondition(&c.All[i], fn)
	}
	for i := range c.Any {
		walkCondition(&c.Any[i], fn)
	}
}

// checkCycles refuses rollback steps whose on_failure lead back to
// themselves.
func (p *parser) checkCycles(steps []Step, byID map[string]Step) {
	const (
		unseen = iota
		onPath
		finished
	)
	state := map[string]int{}
	var visit func(id string, path []string)
	visit = func(id string, path []string) {
		switch state[id] {
		case onPath:
			if i := slices.Index(path, id); i >= 0 {
				p.errorf(byID[id].Line, "rollback steps form a cycle: %s", strings.Join(append(slices.Clone(path[i:]), id), " -> "))
			}
			return
		case finished:
			return
		}
		state[id] = onPath
		for _, next := range byID[id].OnFailure {
			if _, ok := byID[next]; ok {
				visit(next, append(path, id))
			}
		}
		state[id] = finished
	}
	for _, st := range steps {
		if st.ID != "" && state[st.ID] == unseen {
			visit(st.ID, nil)
		}
	}
}

// typeProblem says why v is not a value of type t ("" when it is), as far
// as that can be told without a cluster's config.
func typeProblem(t ParamType, v string) string {
	switch t {
	case TypeDuration:
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			return "not a duration (like 30s or 5m)"
		}
	case TypeInt:
		if _, err := strconv.Atoi(v); err != nil {
			return "not a whole number"
		}
	case TypeBool:
		if v != "true" && v != "false" {
			return "want true or false"
		}
	case TypeSite, TypeService, TypeGroup, TypeHost:
		if v == "" {
			return "empty"
		}
	}
	return ""
}

// configProblem says why v is not a value of type t in the cluster's
// config ("" when it is).
func configProblem(cfg *config.Cluster, t ParamType, v string) string {
	switch t {
	case TypeSite:
		if _, ok := cfg.Site(v); !ok {
			return fmt.Sprintf("unknown site (sites: %s)", strings.Join(cfg.SiteNames(), ", "))
		}
	case TypeService:
		if _, ok := cfg.Service(v); !ok {
			var names []string
			for _, s := range cfg.Services {
				names = append(names, s.Name)
			}
			return fmt.Sprintf("unknown service (services: %s)", strings.Join(names, ", "))
		}
	case TypeGroup:
		var names []string
		for _, g := range cfg.Replication {
			if g.Name == v {
				return ""
			}
			names = append(names, g.Name)
		}
		return fmt.Sprintf("unknown replication group (groups: %s)", orNothing(names))
	case TypeHost:
		var names []string
		for _, h := range cfg.Hosts() {
			if h.Name == v {
				return ""
			}
			names = append(names, h.Name)
		}
		return fmt.Sprintf("unknown host (hosts: %s)", orNothing(names))
	}
	return typeProblem(t, v)
}

func label(st Step) string {
	if st.ID != "" {
		return st.ID
	}
	return fmt.Sprintf("at line %d (%s)", st.Line, st.Action)
}

func argNames(a action) []string {
	var names []string
	for _, ar := range a.args {
		names = append(names, ar.name)
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
