package runbooks

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; it returns a runbook or Problems, one of
// the two; every problem starts with the file name; a runbook it returns
// renders as Markdown, and plans with its defaults, without a panic.
func FuzzParse(f *testing.F) {
	entries, err := fs.ReadDir(shipped, ".")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := shipped.ReadFile(e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		fullRunbook,
		planRunbook,
		"",
		"# only a comment\n",
		"name: x\ndescription: a: b\n",
		"name: x\nsteps: [{action: place}]\n---\nname: y\n",
		"- name: x\n",
		"name: x\nsteps:\n  - action: drain\n    with: {site: \"${nope\", reason: \"${}\"}\n",
		"name: x\nparams:\n  - {name: p, type: duration, required: true, default: soon}\n  - {name: p}\nsteps:\n  - action: wait\n",
		"name: x\nsteps:\n  - action: place\n    on_failure: [a]\nrollback:\n  - id: a\n    action: place\n    on_failure: [b]\n  - id: b\n    action: place\n    on_failure: [a]\n  - id: c\n    action: place\n    on_failure: [a]\n",
		"name: x\nsteps:\n  - action: place\n    when: {all: [{not: {any: [{site_up: a}, {service_at: {service: db}}]}}]}\n",
		"name: &n x\nsteps: [{action: place, with: *n}]\nrollback: *n\n",
	} {
		f.Add([]byte(s))
	}
	cfg := planConfig(f)
	snap := planSnapshot()
	const file = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, stack, err := parseWithStack(file, data)
		if stack != "" {
			t.Fatalf("Parse panicked: %v\n%s\ninput:\n%s", err, stack, data)
		}
		if rb == nil && err == nil {
			t.Fatalf("Parse returned neither a runbook nor an error; input:\n%s", data)
		}
		if rb != nil && err != nil {
			t.Fatalf("Parse returned a runbook and %v", err)
		}
		if err != nil {
			var problems Problems
			if !errors.As(err, &problems) || len(problems) == 0 {
				t.Fatalf("error %v (%T): want Problems", err, err)
			}
			for _, p := range problems {
				if !strings.HasPrefix(p, file+":") {
					t.Errorf("problem %q does not start with %s:", p, file)
				}
				if strings.Contains(p, "\n") {
					t.Errorf("problem %q spans lines", p)
				}
			}
			return
		}
		_ = Markdown(rb)
		args, err := Resolve(rb, cfg, nil)
		if err != nil {
			return
		}
		if plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Who: "fuzz", Now: planNow}); err == nil {
			_ = PlanMarkdown(plan)
		}
	})
}

// parseWithStack is Parse, with a panic turned into an error and the
// stack where it happened.
func parseWithStack(file string, data []byte) (rb *Runbook, stack string, err error) {
	defer func() {
		if r := recover(); r != nil {
			rb, stack, err = nil, string(debug.Stack()), fmt.Errorf("%v", r)
		}
	}()
	rb, err = Parse(file, data)
	return rb, "", err
}
