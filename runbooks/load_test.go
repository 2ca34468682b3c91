package runbooks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// parseSafely is Parse with a panic turned into an error, so that a table
// of cases reports a crash as a failed (or skipped) case.
func parseSafely(file string, data []byte) (rb *Runbook, err error) {
	defer func() {
		if r := recover(); r != nil {
			rb, err = nil, fmt.Errorf("Parse panicked: %v", r)
		}
	}()
	return Parse(file, data)
}

// problemsMismatch says how err differs from the problems wanted: every
// line of want starts one problem, in any order, and there are no others.
// It returns "" when they match.
func problemsMismatch(err error, want []string) string {
	var problems Problems
	if !errors.As(err, &problems) {
		return fmt.Sprintf("error %v (%T); want Problems starting %q", err, err, want)
	}
	used := make([]bool, len(problems))
	var missing []string
	for _, w := range want {
		found := false
		for i, p := range problems {
			if !used[i] && strings.HasPrefix(p, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	var extra []string
	for i, p := range problems {
		if !used[i] {
			extra = append(extra, p)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	return fmt.Sprintf("problems:\n%s\nmissing (by prefix): %q\nunexpected: %q", problems, missing, extra)
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// want are the problems' starts, FILE:LINE: what; contains are
		// more substrings of the whole error.
		want     []string
		contains []string
		// bug, when set, is a known bug that makes the case fail: it is
		// skipped then, with what it found.
		bug string
	}{
		{
			name: "YAML syntax error",
			yaml: "name: x\ndescription: a: b\nsteps: [{action: place}]\n",
			want: []string{"rb.yaml:2: mapping values are not allowed in this context"},
			bug:  `load.go Parse: a YAML syntax error is reported as "FILE: line N: ..." (yaml.v3's text), not "FILE:N: ..."`,
		},
		{
			name: "unknown top-level field",
			yaml: "name: x\nstep: []\nsteps: [{action: place}]\n",
			want: []string{`rb.yaml:2: runbook: unknown field "step" (known: name, description, params, steps, groups, rollback`},
		},
		{
			name: "missing name",
			yaml: "description: d\nsteps: [{action: place}]\n",
			want: []string{"rb.yaml:1: runbook: name is required"},
		},
		{
			name: "bad name",
			yaml: "name: Move DB\nsteps: [{action: place}]\n",
			want: []string{`rb.yaml:1: name "Move DB": use lower-case letters, digits and dashes`},
		},
		{
			name: "no steps",
			yaml: "name: x\ndescription: d\n",
			want: []string{"rb.yaml:1: runbook: it has no steps (give steps or groups)"},
		},
		{
			name: "steps and groups both",
			// The line is the groups' value's: its first item.
			yaml: "name: x\nsteps: [{action: place}]\ngroups:\n  - name: g\n    steps: [{action: place}]\n",
			want: []string{"rb.yaml:4: runbook: give steps or groups, not both"},
		},
		{
			name:     "unknown action",
			yaml:     "name: x\nsteps:\n  - action: place\n  - id: boot\n    action: reboot\n",
			want:     []string{`rb.yaml:4: step boot: unknown action "reboot" (actions: `},
			contains: []string{"check-site", "confirm", "switchover", "wait"},
		},
		{
			name:     "step missing action",
			yaml:     "name: x\nsteps:\n  - action: place\n  - id: s\n    with: {site: a}\n",
			want:     []string{"rb.yaml:4: steps[1]: action is required (actions: "},
			contains: []string{"drain", "evacuate"},
		},
		{
			name: "unknown argument",
			yaml: "name: x\nsteps:\n  - action: drain\n    with:\n      site: a\n      sites: b\n",
			want: []string{`rb.yaml:6: step at line 3 (drain): action drain has no argument "sites" (it takes: site, reason)`},
		},
		{
			name: "an argument to an action that takes none",
			yaml: "name: x\nsteps:\n  - action: place\n    with: {site: a}\n",
			want: []string{`rb.yaml:4: step at line 3 (place): action place has no argument "site" (it takes: none)`},
		},
		{
			name: "missing required argument",
			yaml: "name: x\nsteps:\n  - id: d\n    action: drain\n    with: {reason: r}\n",
			want: []string{`rb.yaml:3: step d: action drain needs argument "site"`},
		},
		{
			name: "switchover with service and site",
			yaml: "name: x\nsteps:\n  - id: sw\n    action: switchover\n    with: {service: db, site: a, to: b}\n",
			want: []string{"rb.yaml:3: step sw: action switchover needs exactly one of service, site"},
		},
		{
			name: "switchover with neither service nor site",
			yaml: "name: x\nsteps:\n  - id: sw\n    action: switchover\n    with: {to: b}\n",
			want: []string{"rb.yaml:3: step sw: action switchover needs exactly one of service, site"},
		},
		{
			name: "wait without for or until",
			yaml: "name: x\nsteps:\n  - id: w\n    action: wait\n",
			want: []string{"rb.yaml:3: step w: a wait needs either with: for (a duration) or until (a condition)"},
		},
		{
			name: "wait with for and until",
			yaml: "name: x\nsteps:\n  - id: w\n    action: wait\n    with: {for: 1m}\n    until: {site_up: a}\n",
			want: []string{"rb.yaml:3: step w: a wait needs either with: for (a duration) or until (a condition)"},
		},
		{
			name: "wait for a bad duration",
			yaml: "name: x\nsteps:\n  - id: w\n    action: wait\n    with:\n      for: soon\n",
			want: []string{`rb.yaml:6: step w: for "soon": not a duration (like 30s or 5m)`},
		},
		{
			name: "until on a step that is no wait",
			yaml: "name: x\nsteps:\n  - id: s\n    action: place\n    until: {site_up: a}\n",
			want: []string{"rb.yaml:3: step s: until is only for wait steps"},
		},
		{
			name: "reference to an undeclared parameter",
			yaml: "name: x\nparams:\n  - {name: to, type: site}\nsteps:\n  - action: drain\n    with:\n      site: ${nope}\n",
			want: []string{"rb.yaml:7: ${nope}: no such parameter (params: to)"},
		},
		{
			name: "reference to an undeclared parameter in a condition",
			yaml: "name: x\nsteps:\n  - action: place\n    when: {site_up: \"${nope}\"}\n",
			want: []string{"rb.yaml:3: ${nope}: no such parameter (params: none)"},
		},
		{
			name: "a duration parameter where a site is wanted",
			yaml: "name: x\nparams:\n  - {name: p, type: duration}\nsteps:\n  - action: drain\n    with:\n      site: ${p}\n",
			want: []string{"rb.yaml:7: ${p}: parameter p is a duration, the argument wants a site"},
		},
		{
			name: "an unclosed ${",
			yaml: "name: x\nparams:\n  - {name: p, type: site}\nsteps:\n  - action: drain\n    with:\n      site: ${p\n",
			want: []string{`rb.yaml:7: "${p": an unclosed ${`},
		},
		{
			name:     "bad parameter type",
			yaml:     "name: x\nparams:\n  - name: p\n    type: ip\nsteps: [{action: place}]\n",
			want:     []string{`rb.yaml:4: params[0].type: unknown type "ip" (types: string, site, service, group, `},
			contains: []string{"duration, int, bool)"},
		},
		{
			name: "bad parameter name",
			yaml: "name: x\nparams:\n  - name: To\nsteps: [{action: place}]\n",
			want: []string{`rb.yaml:3: params[0]: name "To": use lower-case letters, digits and underscores, a letter first`},
		},
		{
			name: "required parameter with a default",
			yaml: "name: x\nparams:\n  - name: p\n    type: site\n    required: true\n    default: a\nsteps: [{action: place}]\n",
			want: []string{"rb.yaml:3: param p: a required parameter has no default"},
		},
		{
			name: "default of the wrong type",
			yaml: "name: x\nparams:\n  - name: p\n    type: duration\n    default: soon\nsteps: [{action: place}]\n",
			want: []string{`rb.yaml:3: param p: default "soon": not a duration (like 30s or 5m)`},
		},
		{
			name: "required neither true nor false",
			yaml: "name: x\nparams:\n  - name: p\n    required: yes\nsteps: [{action: place}]\n",
			want: []string{`rb.yaml:4: params[0].required: want true or false, found "yes"`},
		},
		{
			name: "duplicate parameter",
			yaml: "name: x\nparams:\n  - name: p\n  - name: q\n  - name: p\nsteps: [{action: place}]\n",
			want: []string{"rb.yaml:5: param p is declared twice"},
		},
		{
			name: "duplicate step id",
			yaml: "name: x\nsteps:\n  - id: s\n    action: place\n  - id: s\n    action: place\n",
			want: []string{"rb.yaml:5: step id s is used twice (also at line 3)"},
		},
		{
			name: "a step id used again by a rollback step",
			yaml: "name: x\nsteps:\n  - id: s\n    action: place\n    on_failure: [s]\nrollback:\n  - id: s\n    action: place\n",
			want: []string{"rb.yaml:7: step id s is used twice (also at line 3)"},
		},
		{
			name: "on_failure naming a step that is not a rollback step",
			yaml: "name: x\nsteps:\n  - id: s\n    action: place\n  - id: t\n    action: place\n    on_failure: [s]\nrollback:\n  - id: r\n    action: place\n",
			want: []string{`rb.yaml:5: step t: on_failure names "s", which is not a rollback step (rollback steps: r)`},
		},
		{
			name: "on_failure neither stop nor a list",
			yaml: "name: x\nsteps:\n  - id: s\n    action: place\n    on_failure: retry\n",
			want: []string{`rb.yaml:5: steps[0].on_failure: want stop or a list of rollback step ids, found "retry"`},
		},
		{
			name: "rollback step without id",
			yaml: "name: x\nsteps: [{action: place}]\nrollback:\n  - action: place\n",
			want: []string{"rb.yaml:4: rollback step: id is required (on_failure names it)"},
		},
		{
			name: "rollback cycle",
			yaml: "name: x\nsteps:\n  - action: place\n    on_failure: [a]\nrollback:\n  - id: a\n    action: place\n    on_failure: [b]\n  - id: b\n    action: place\n    on_failure: [a]\n",
			want: []string{"rb.yaml:6: rollback steps form a cycle: a -> b -> a"},
		},
		{
			name: "rollback step failing over to itself",
			yaml: "name: x\nsteps:\n  - action: place\n    on_failure: [a]\nrollback:\n  - id: a\n    action: place\n    on_failure: [a]\n",
			want: []string{"rb.yaml:6: rollback steps form a cycle: a -> a"},
		},
		{
			// c leads into the cycle a -> b -> a, which an earlier
			// walk found and left its steps marked as on its path.
			name: "rollback cycle reached again from another rollback step",
			yaml: "name: x\nsteps:\n  - action: place\n    on_failure: [a]\nrollback:\n  - id: a\n    action: place\n    on_failure: [b]\n  - id: b\n    action: place\n    on_failure: [a]\n  - id: c\n    action: place\n    on_failure: [a]\n",
			want: []string{"rb.yaml:6: rollback steps form a cycle: a -> b -> a"},
			bug:  "check.go checkCycles: a rollback step that leads into a cycle found from an earlier rollback step panics (slices.Index returns -1, path[-1:])",
		},
		{
			name:     "condition with two keys",
			yaml:     "name: x\nsteps:\n  - action: place\n    when: {site_up: a, site_down: b}\n",
			want:     []string{"rb.yaml:4: steps[0].when: want a condition with exactly one of site_up, site_down, "},
			contains: []string{"group_in_sync", "service_at", "not"},
		},
		{
			name: "unknown condition key",
			yaml: "name: x\nsteps:\n  - action: place\n    when:\n      site_alive: a\n",
			want: []string{`rb.yaml:5: steps[0].when: unknown field "site_alive" (known: site_up, site_down, `},
		},
		{
			name: "service_at without its site",
			yaml: "name: x\nsteps:\n  - action: place\n    when:\n      service_at: {service: db}\n",
			want: []string{"rb.yaml:5: steps[0].when.service_at: give both service and site"},
		},
		{
			name: "an empty all",
			yaml: "name: x\nsteps:\n  - action: place\n    when:\n      all: []\n",
			want: []string{"rb.yaml:5: steps[0].when.all: give at least one condition"},
		},
		{
			name: "conditions nested too deep",
			yaml: "name: x\nsteps:\n  - action: place\n    when: " + strings.Repeat("{not: ", 10) + "{site_up: a}" + strings.Repeat("}", 10) + "\n",
			want: []string{"rb.yaml:4: steps[0].when" + strings.Repeat(".not", 9) + ": conditions nest at most 8 deep"},
		},
		{
			name: "gate without until",
			yaml: "name: x\ngroups:\n  - name: g\n    gate:\n      timeout: 1m\n    steps: [{action: place}]\n",
			want: []string{"rb.yaml:5: groups[0].gate: until is required (the condition the group waits for)"},
		},
		{
			name: "group without name or steps",
			yaml: "name: x\ngroups:\n  - gate: {until: {site_up: a}}\n",
			want: []string{"rb.yaml:3: groups[0]: name is required", "rb.yaml:3: groups[0]: a group needs steps"},
		},
		{
			name: "group named twice",
			yaml: "name: x\ngroups:\n  - name: g\n    steps: [{action: place}]\n  - name: g\n    steps: [{action: place}]\n",
			want: []string{"rb.yaml:5: group g is named twice"},
		},
		{
			name: "bad timeout",
			yaml: "name: x\nsteps:\n  - action: place\n    timeout: 5 minutes\n",
			want: []string{`rb.yaml:4: steps[0].timeout: "5 minutes" is not a positive duration (like 30s or 5m)`},
		},
		{
			name: "field given twice",
			yaml: "name: x\nsteps:\n  - action: place\n    timeout: 1m\n    timeout: 2m\n",
			want: []string{`rb.yaml:5: steps[0]: field "timeout" given twice`},
		},
		{
			name: "steps not a list",
			yaml: "name: x\nsteps:\n  action: place\n",
			want: []string{"rb.yaml:3: steps: want a list, found a mapping"},
		},
		{
			name: "two YAML documents",
			yaml: "name: x\nsteps: [{action: place}]\n---\nname: y\n",
			want: []string{"rb.yaml:3: a runbook file holds one YAML document"},
		},
		{
			name: "a second YAML document that is not valid YAML",
			yaml: "name: x\nsteps: [{action: place}]\n---\nname: [y\n",
			want: []string{"rb.yaml:"},
			bug:  "load.go Parse: a syntax error in a second YAML document is ignored (dec.Decode(&extra) returns an error, which is taken for the end of the file), so the runbook is accepted",
		},
		{
			name: "empty file",
			yaml: "",
			want: []string{"rb.yaml:1: the runbook is empty"},
			bug:  `load.go Parse: an empty (or comments-only) file gives "FILE: EOF" (the decoder's io.EOF), with no line and no word of what is wrong`,
		},
		{
			name: "an empty list of steps",
			yaml: "name: x\nsteps: []\n",
			want: []string{"rb.yaml:2: "},
			bug:  "load.go runbook: steps: [] is accepted as a runbook with no step at all (only a missing steps/groups key is refused)",
		},
		{
			name: "an empty list of groups",
			yaml: "name: x\ngroups: []\n",
			want: []string{"rb.yaml:2: "},
			bug:  "load.go runbook: groups: [] is accepted as a runbook with no step at all",
		},
		{
			name: "every problem at once",
			yaml: "name: x\nfoo: 1\nsteps:\n  - action: reboot\n  - action: place\n    timeout: soon\n",
			want: []string{
				`rb.yaml:2: runbook: unknown field "foo"`,
				`rb.yaml:4: step at line 4 (reboot): unknown action "reboot"`,
				`rb.yaml:6: steps[1].timeout: "soon" is not a positive duration`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb, err := parseSafely("rb.yaml", []byte(tt.yaml))
			msg := problemsMismatch(err, tt.want)
			if msg == "" && rb != nil {
				msg = fmt.Sprintf("a runbook as well as the error: %+v", rb)
			}
			for _, s := range tt.contains {
				if msg == "" && !strings.Contains(err.Error(), s) {
					msg = fmt.Sprintf("error %q; want it to mention %q", err, s)
				}
			}
			if msg == "" {
				return
			}
			if tt.bug != "" {
				t.Errorf("regression of a fixed bug: %s\n%s", tt.bug, msg)
			}
			t.Error(msg)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte("name: x\nsteps: [{action: place}]\ndescription: " + strings.Repeat("x", maxRunbookSize) + "\n")
	_, err := Parse("big.yaml", data)
	if msg := problemsMismatch(err, []string{fmt.Sprintf("big.yaml: %d bytes: a runbook may have at most %d", len(data), maxRunbookSize)}); msg != "" {
		t.Error(msg)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "move.yaml")
	if err := os.WriteFile(path, []byte("name: move\nsteps:\n  - action: drain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if msg := problemsMismatch(err, []string{path + `:3: step at line 3 (drain): action drain needs argument "site"`}); msg != "" {
		t.Error(msg)
	}
	if _, err := Load(filepath.Join(dir, "none.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v; want os.ErrNotExist", err)
	}
}

func TestShippedParseAndRender(t *testing.T) {
	all, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, rb := range all {
		if len(rb.Groups) == 0 || len(rb.Groups[0].Steps) == 0 {
			t.Errorf("%s: no steps", rb.File)
		}
		md := Markdown(rb)
		if !strings.HasPrefix(md, "# Runbook "+rb.Name+"\n") {
			t.Errorf("%s: Markdown starts %q", rb.File, md[:min(len(md), 40)])
		}
		// Find gives the same runbook by name.
		byName, err := Find(rb.Name)
		if err != nil || !reflect.DeepEqual(byName, rb) {
			t.Errorf("Find(%q) = %v, %v; want the shipped runbook", rb.Name, byName, err)
		}
	}
}

// fullRunbook uses every part of the format; TestParseStructure expects
// the lines below.
const fullRunbook = `name: move-db
description: Move the database.
params:
  - name: to
    type: site
    required: true
    description: where it goes
  - name: pause
    type: duration
    default: 1m
groups:
  - name: prepare
    steps:
      - id: ok
        action: confirm
        with: {message: "move db to ${to}?"}
      - id: settle
        action: wait
        until:
          all:
            - site_up: "${to}"
            - not: {site_drained: "${to}"}
        timeout: 10m
      - action: wait
        with:
          for: ${pause}
  - name: move
    gate:
      until: {service_at: {service: db, site: a}}
      timeout: 2m
    steps:
      - id: switch
        action: switchover
        with:
          service: db
          to: ${to}
        when: {any: [{site_up: "${to}"}, {group_in_sync: pg}]}
        on_failure: [recheck]
rollback:
  - id: recheck
    action: check-site
    with: {site: a}
    on_failure: stop
`

func TestParseStructure(t *testing.T) {
	rb, err := Parse("move-db.yaml", []byte(fullRunbook))
	if err != nil {
		t.Fatal(err)
	}
	want := &Runbook{
		File:        "move-db.yaml",
		Name:        "move-db",
		Description: "Move the database.",
		Params: []Param{
			{Name: "to", Type: TypeSite, Description: "where it goes", Required: true, Line: 4},
			{Name: "pause", Type: TypeDuration, Default: "1m", HasDefault: true, Line: 8},
		},
		Groups: []Group{
			{Name: "prepare", Line: 12, Steps: []Step{
				{ID: "ok", Action: "confirm", Line: 14,
					With: map[string]string{"message": "move db to ${to}?"}, withLines: map[string]int{"message": 16}},
				{ID: "settle", Action: "wait", Line: 17, Timeout: 10 * time.Minute,
					With: map[string]string{}, withLines: map[string]int{},
					Until: &site.Condition{All: []site.Condition{
						{SiteUp: "${to}"},
						{Not: &site.Condition{SiteDrained: "${to}"}},
					}}},
				{Action: "wait", Line: 24,
					With: map[string]string{"for": "${pause}"}, withLines: map[string]int{"for": 26}},
			}},
			{Name: "move", Line: 27,
				Gate: &Gate{Line: 29, Timeout: 2 * time.Minute,
					Until: site.Condition{ServiceAt: &site.ServiceAt{Service: "db", Site: "a"}}},
				Steps: []Step{
					{ID: "switch", Action: "switchover", Line: 32,
						With:      map[string]string{"service": "db", "to": "${to}"},
						withLines: map[string]int{"service": 35, "to": 36},
						When: &site.Condition{Any: []site.Condition{
							{SiteUp: "${to}"}, {GroupInSync: "pg"},
						}},
						OnFailure: []string{"recheck"}},
				}},
		},
		Rollback: []Step{
			{ID: "recheck", Action: "check-site", Line: 40,
				With: map[string]string{"site": "a"}, withLines: map[string]int{"site": 42}},
		},
	}
	if !reflect.DeepEqual(rb, want) {
		t.Errorf("Parse =\n%#v\nwant\n%#v", rb, want)
	}
	md := Markdown(rb)
	for _, s := range []string{
		"# Runbook move-db\n",
		"Move the database.",
		"Source: `move-db.yaml`",
		"| to | site | yes | - | where it goes |",
		"| pause | duration | no | `1m` | - |",
		"## Group prepare",
		"1. **confirm** `ok`: message=`move db to ${to}?`",
		"2. **wait** `settle` (until (site ${to} is up and not (site ${to} is drained)); timeout 10m0s)",
		"## Group move",
		"Starts once service db is at site a (the op fails if not within 2m0s).",
		"4. **switchover** `switch`: service=`db`, to=`${to}` (only when (site ${to} is up or group pg is in sync); on failure: rollback recheck)",
		"## Rollback",
		"5. **check-site** `recheck`: site=`a`",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("Markdown lacks %q:\n%s", s, md)
		}
	}
}
