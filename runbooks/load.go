package runbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zdt-project/zdt/site"
)

// Problems is every problem found in a runbook, each "FILE:LINE: what".
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// Load reads and parses a runbook file, and checks it on its own (Check
// checks it against a cluster's config).
func Load(path string) (*Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook: %w", err)
	}
	return Parse(path, data)
}

// maxRunbookSize bounds what Parse reads: a runbook is a page or two.
const maxRunbookSize = 1 << 20

// Parse parses a runbook from data (file names it in errors) and checks it
// on its own: known fields and actions, each action's arguments, the
// parameters it uses, step IDs, rollbacks, no cycle. The error is Problems.
func Parse(file string, data []byte) (*Runbook, error) {
	p := &parser{file: file}
	if len(data) > maxRunbookSize {
		return nil, Problems{fmt.Sprintf("%s: %d bytes: a runbook may have at most %d", file, len(data), maxRunbookSize)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, Problems{fmt.Sprintf("%s:1: the runbook is empty", file)}
	case err != nil:
		return nil, Problems{syntaxProblem(file, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, Problems{fmt.Sprintf("%s:%d: a runbook file holds one YAML document", file, extra.Line)}
	case !errors.Is(err, io.EOF):
		return nil, Problems{syntaxProblem(file, err)}
	}
	rb := p.runbook(&doc)
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	return rb, nil
}

// yamlLine finds the line in the YAML library's errors ("yaml: line 3:
// ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem says a YAML syntax error as FILE:LINE: what.
func syntaxProblem(file string, err error) string {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s:%s: %s", file, m[1], m[2])
	}
	return fmt.Sprintf("%s:1: %s", file, strings.TrimPrefix(msg, "yaml: "))
}

type parser struct {
	file     string
	problems Problems
}

// errorf adds a problem at a line. A problem is one line: a newline in
// what it quotes (a name, a value) is shown as \n.
func (p *parser) errorf(line int, format string, a ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", `\n`)
	p.problems = append(p.problems, fmt.Sprintf("%s:%d: %s", p.file, line, msg))
}

// fields walks a mapping, calling fn for each key in order; keys not in
// known are problems, as are duplicates.
func (p *parser) fields(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%s: want a mapping, found %s", what, describe(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(known, k.Value):
			p.errorf(k.Line, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(known, ", "))
		case seen[k.Value]:
			p.errorf(k.Line, "%s: field %q given twice", what, k.Value)
		default:
			seen[k.Value] = true
			fn(k.Value, k, v)
		}
	}
	return true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// scalar reads a scalar value.
func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n.Line, "%s: want a value, found %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.errorf(n.Line, "%s: %q is not a positive duration (like 30s or 5m)", what, s)
		return 0
	}
	return d
}

func (p *parser) list(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, "%s: want a list, found %s", what, describe(n))
		return nil
	}
	return n.Content
}

func (p *parser) runbook(doc *yaml.Node) *Runbook {
	rb := &Runbook{File: p.file}
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.errorf(1, "the runbook is empty")
			return rb
		}
		root = root.Content[0]
	}
	var steps, groups *yaml.Node
	ok := p.fields(root, "runbook", []string{"name", "description", "params", "steps", "groups", "rollback"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			rb.Name, _ = p.scalar(v, "name")
			if rb.Name != "" && !nameRE.MatchString(rb.Name) {
				p.errorf(v.Line, "name %q: use lower-case letters, digits and dashes", rb.Name)
			}
		case "description":
			rb.Description, _ = p.scalar(v, "description")
		case "params":
			for i, n := range p.list(v, "params") {
				rb.Params = append(rb.Params, p.param(n, fmt.Sprintf("params[%d]", i)))
			}
		case "steps":
			steps = v
		case "groups":
			groups = v
		case "rollback":
			for i, n := range p.list(v, "rollback") {
				rb.Rollback = append(rb.Rollback, p.step(n, fmt.Sprintf("rollback[%d]", i)))
			}
		}
	})
	if !ok {
		return rb
	}
	if rb.Name == "" {
		p.errorf(root.Line, "runbook: name is required")
	}
	switch {
	case steps != nil && groups != nil:
		p.errorf(groups.Line, "runbook: give steps or groups, not both")
	case steps != nil:
		g := Group{Line: steps.Line}
		for i, n := range p.list(steps, "steps") {
			g.Steps = append(g.Steps, p.step(n, fmt.Sprintf("steps[%d]", i)))
		}
		if steps.Kind == yaml.SequenceNode && len(g.Steps) == 0 {
			p.errorf(steps.Line, "steps: the list is empty: a runbook needs steps")
		}
		rb.Groups = []Group{g}
	case groups != nil:
		for i, n := range p.list(groups, "groups") {
			rb.Groups = append(rb.Groups, p.group(n, fmt.Sprintf("groups[%d]", i)))
		}
		if groups.Kind == yaml.SequenceNode && len(rb.Groups) == 0 {
			p.errorf(groups.Line, "groups: the list is empty: a runbook needs steps")
		}
	default:
		p.errorf(root.Line, "runbook: it has no steps (give steps or groups)")
	}
	p.check(rb)
	return rb
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	paramRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	// refRE finds ${param} in a value.
	refRE = regexp.MustCompile(`\$\{([^}]*)\}`)
)

func (p *parser) param(n *yaml.Node, what string) Param {
	pr := Param{Line: n.Line, Type: TypeString}
	p.fields(n, what, []string{"name", "type", "description", "required", "default"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			pr.Name, _ = p.scalar(v, what+".name")
		case "type":
			t, _ := p.scalar(v, what+".type")
			pr.Type = ParamType(t)
			if !slices.Contains(paramTypes, pr.Type) {
				p.errorf(v.Line, "%s.type: unknown type %q (types: %s)", what, t, joinTypes())
			}
		case "description":
			pr.Description, _ = p.scalar(v, what+".description")
		case "required":
			s, _ := p.scalar(v, what+".required")
			switch s {
			case "true":
				pr.Required = true
			case "false":
			default:
				p.errorf(v.Line, "%s.required: want true or false, found %q", what, s)
			}
		case "default":
			pr.Default, pr.HasDefault = p.scalar(v, what+".default")
		}
	})
	switch {
	case pr.Name == "":
		p.errorf(n.Line, "%s: name is required", what)
	case !paramRE.MatchString(pr.Name):
		p.errorf(n.Line, "%s: name %q: use lower-case letters, digits and underscores, a letter first", what, pr.Name)
	}
	if pr.Required && pr.HasDefault {
		p.errorf(n.Line, "param %s: a required parameter has no default", pr.Name)
	}
	if pr.HasDefault {
		if why := typeProblem(pr.Type, pr.Default); why != "" {
			p.errorf(n.Line, "param %s: default %q: %s", pr.Name, pr.Default, why)
		}
	}
	return pr
}

var paramTypes = []ParamType{TypeString, TypeSite, TypeService, TypeGroup, TypeHost, TypeDuration, TypeInt, TypeBool}

func joinTypes() string {
	s := make([]string, len(paramTypes))
	for i, t := range paramTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func (p *parser) group(n *yaml.Node, what string) Group {
	g := Group{Line: n.Line}
	p.fields(n, what, []string{"name", "gate", "steps"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			g.Name, _ = p.scalar(v, what+".name")
		case "gate":
			gate := &Gate{Line: v.Line}
			var until *yaml.Node
			p.fields(v, what+".gate", []string{"until", "timeout"}, func(key string, k, v *yaml.Node) {
				switch key {
				case "until":
					until = v
				case "timeout":
					gate.Timeout = p.duration(v, what+".gate.timeout")
				}
			})
			if until == nil {
				p.errorf(v.Line, "%s.gate: until is required (the condition the group waits for)", what)
			} else if c := p.condition(until, what+".gate.until"); c != nil {
				gate.Until = *c
			}
			g.Gate = gate
		case "steps":
			for i, s := range p.list(v, what+".steps") {
				g.Steps = append(g.Steps, p.step(s, fmt.Sprintf("%s.steps[%d]", what, i)))
			}
		}
	})
	switch {
	case g.Name == "":
		p.errorf(n.Line, "%s: name is required", what)
	case !nameRE.MatchString(g.Name):
		p.errorf(n.Line, "%s: name %q: use lower-case letters, digits and dashes", what, g.Name)
	}
	if len(g.Steps) == 0 {
		p.errorf(n.Line, "%s: a group needs steps", what)
	}
	return g
}

func (p *parser) step(n *yaml.Node, what string) Step {
	st := Step{Line: n.Line, With: map[string]string{}, withLines: map[string]int{}}
	p.fields(n, what, []string{"id", "action", "with", "when", "until", "timeout", "on_failure"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "id":
			st.ID, _ = p.scalar(v, what+".id")
			if st.ID != "" && !nameRE.MatchString(st.ID) {
				p.errorf(v.Line, "%s.id %q: use lower-case letters, digits and dashes", what, st.ID)
			}
		case "action":
			st.Action, _ = p.scalar(v, what+".action")
		case "with":
			p.fields(v, what+".with", withKeys(v), func(key string, k, v *yaml.Node) {
				if s, ok := p.scalar(v, what+".with."+key); ok {
					st.With[key], st.withLines[key] = s, k.Line
				}
			})
		case "when":
			st.When = p.condition(v, what+".when")
		case "until":
			st.Until = p.condition(v, what+".until")
		case "timeout":
			st.Timeout = p.duration(v, what+".timeout")
		case "on_failure":
			if v.Kind == yaml.ScalarNode {
				if v.Value != "stop" {
					p.errorf(v.Line, "%s.on_failure: want stop or a list of rollback step ids, found %q", what, v.Value)
				}
				return
			}
			for _, r := range p.list(v, what+".on_failure") {
				if s, ok := p.scalar(r, what+".on_failure"); ok {
					st.OnFailure = append(st.OnFailure, s)
				}
			}
		}
	})
	if st.Action == "" {
		p.errorf(n.Line, "%s: action is required (actions: %s)", what, strings.Join(actionNames(), ", "))
	}
	return st
}

// withKeys lists a with mapping's own keys: which are allowed is the
// action's business (check), not the parser's.
func withKeys(n *yaml.Node) []string {
	var keys []string
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
	}
	return keys
}

// The condition keys, each with how its value is read.
var conditionKeys = []string{"site_up", "site_down", "site_fenced", "site_unfenced", "site_drained", "site_ready_for_failback", "group_in_sync", "host_empty", "service_at", "all", "any", "not"}

// maxConditionDepth bounds nested conditions.
const maxConditionDepth = 8

func (p *parser) condition(n *yaml.Node, what string) *site.Condition {
	return p.conditionAt(n, what, 0)
}

func (p *parser) conditionAt(n *yaml.Node, what string, depth int) *site.Condition {
	if depth > maxConditionDepth {
		p.errorf(n.Line, "%s: conditions nest at most %d deep", what, maxConditionDepth)
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.errorf(n.Line, "%s: want a condition with exactly one of %s", what, strings.Join(conditionKeys, ", "))
		return nil
	}
	c := &site.Condition{}
	ok := true
	p.fields(n, what, conditionKeys, func(key string, k, v *yaml.Node) {
		sub := what + "." + key
		str := func(dst *string) {
			s, good := p.scalar(v, sub)
			if good && s == "" {
				p.errorf(v.Line, "%s: empty", sub)
			}
			*dst, ok = s, good && s != ""
		}
		switch key {
		case "site_up":
			str(&c.SiteUp)
		case "site_down":
			str(&c.SiteDown)
		case "site_fenced":
			str(&c.SiteFenced)
		case "site_unfenced":
			str(&c.SiteUnfenced)
		case "site_drained":
			str(&c.SiteDrained)
		case "site_ready_for_failback":
			str(&c.SiteReadyForFailback)
		case "group_in_sync":
			str(&c.GroupInSync)
		case "host_empty":
			str(&c.HostEmpty)
		case "service_at":
			sa := &site.ServiceAt{}
			p.fields(v, sub, []string{"service", "site"}, func(key string, k, v *yaml.Node) {
				if key == "service" {
					sa.Service, _ = p.scalar(v, sub+".service")
				} else {
					sa.Site, _ = p.scalar(v, sub+".site")
				}
			})
			if sa.Service == "" || sa.Site == "" {
				p.errorf(v.Line, "%s: give both service and site", sub)
				ok = false
			}
			c.ServiceAt = sa
		case "not":
			c.Not = p.conditionAt(v, sub, depth+1)
			ok = c.Not != nil
		case "all", "any":
			items := p.list(v, sub)
			if len(items) == 0 {
				p.errorf(v.Line, "%s: give at least one condition", sub)
				ok = false
			}
			var subs []site.Condition
			for i, item := range items {
				sc := p.conditionAt(item, fmt.Sprintf("%s[%d]", sub, i), depth+1)
				if sc == nil {
					ok = false
					continue
				}
				subs = append(subs, *sc)
			}
			if key == "all" {
				c.All = subs
			} else {
				c.Any = subs
			}
		}
	})
	if !ok {
		return nil
	}
	return c
}
