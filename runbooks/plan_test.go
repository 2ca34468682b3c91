package runbooks

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

var planNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// planConfigYAML: sites a, b and c; a postgres group pg with a member at
// each; service db in group pg, preferring a, then b, then c.
const planConfigYAML = `cluster: lab
timings:
  lease_ttl: 3s
  etcd_heartbeat: 100ms
  etcd_election_timeout: 500ms
sites:
  - name: a
    api: 127.0.0.11:7480
    etcd: {client_url: "http://127.0.0.11:2379", peer_url: "http://127.0.0.11:2380"}
  - name: b
    api: 127.0.0.12:7480
    etcd: {client_url: "http://127.0.0.12:2379", peer_url: "http://127.0.0.12:2380"}
  - name: c
    api: 127.0.0.13:7480
    etcd: {client_url: "http://127.0.0.13:2379", peer_url: "http://127.0.0.13:2380"}
services:
  - name: db
    sites: [a, b, c]
    replication_group: pg
replication:
  groups:
    - name: pg
      driver: postgres
      members:
        - {site: a, conn: host=a, replication_conn: host=a}
        - {site: b, conn: host=b, replication_conn: host=b}
        - {site: c, conn: host=c, replication_conn: host=c}
`

func planConfig(t testing.TB) *config.Cluster {
	t.Helper()
	cfg, err := config.Parse("zdt.yaml", []byte(planConfigYAML))
	if err != nil {
		t.Fatalf("the test's config: %v", err)
	}
	return cfg
}

// planSnapshot: every site up, not fenced and reporting itself up; db is
// at a (epoch 7), where pg's member is the writable primary; the members
// at b and c are healthy standbys that acted on epoch 7.
func planSnapshot() *site.Snapshot {
	snap := &site.Snapshot{
		Alive: map[string]site.Alive{}, Registered: map[string]site.Registration{},
		Reports: map[string]site.Report{}, Fences: map[string]site.Fence{}, Drains: map[string]site.Drain{},
		Assignments: map[string]site.Assignment{"db": {Service: "db", Site: "a", Epoch: 7}},
		Replication: map[string]site.ReplicationReport{},
	}
	for _, s := range []string{"a", "b", "c"} {
		snap.Alive[s] = site.Alive{Site: s}
		snap.Registered[s] = site.Registration{Site: s}
		snap.Reports[s] = site.Report{Site: s, State: site.ControllerUp}
		m := site.MemberReport{Group: "pg", Role: "standby", Healthy: true, Epoch: 7}
		if s == "a" {
			m = site.MemberReport{Group: "pg", Role: "primary", Healthy: true, Writable: true, Epoch: 7, Streaming: []string{"b", "c"}}
		}
		snap.Replication[s] = site.ReplicationReport{Site: s, Members: []site.MemberReport{m}}
	}
	return snap
}

func shippedByName(t *testing.T, name string) *Runbook {
	t.Helper()
	rb, err := shippedRunbook(name)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

func mustParse(t *testing.T, file, data string) *Runbook {
	t.Helper()
	rb, err := Parse(file, []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rb
}

// wantProblems checks that err is Problems, exactly want.
func wantProblems(t *testing.T, err error, want []string) {
	t.Helper()
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("error %v (%T); want Problems %q", err, err, want)
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems\n%s\nwant\n%s", problems, strings.Join(want, "\n"))
	}
}

func TestResolve(t *testing.T) {
	cfg := planConfig(t)
	optional := mustParse(t, "opt.yaml", "name: opt\nparams:\n  - {name: site, type: site}\n  - {name: n, type: int, default: \"3\"}\nsteps: [{action: place}]\n")
	tests := []struct {
		name  string
		rb    *Runbook
		given map[string]string
		want  map[string]string
		// problems, when set, are the error's lines.
		problems []string
	}{
		{
			name:  "defaults filled in",
			rb:    shippedByName(t, "switchover"),
			given: map[string]string{"service": "db", "to": "b"},
			want:  map[string]string{"service": "db", "site": "", "to": "b", "promote_within": "0s", "force": "false"},
		},
		{
			name:  "a given value wins over the default",
			rb:    shippedByName(t, "switchover"),
			given: map[string]string{"site": "a", "to": "c", "force": "true", "promote_within": "2m"},
			want:  map[string]string{"service": "", "site": "a", "to": "c", "promote_within": "2m", "force": "true"},
		},
		{
			name:  "an optional parameter without default is left out",
			rb:    optional,
			given: nil,
			want:  map[string]string{"n": "3"},
		},
		{
			name:     "unknown parameter",
			rb:       shippedByName(t, "failback"),
			given:    map[string]string{"site": "a", "to": "b"},
			problems: []string{"--param to: runbook failback has no such parameter (params: site)"},
		},
		{
			name:     "missing required parameter",
			rb:       shippedByName(t, "switchover"),
			given:    map[string]string{"service": "db"},
			problems: []string{"--param to: required (the site to move them to)"},
		},
		{
			name:     "unknown site",
			rb:       shippedByName(t, "switchover"),
			given:    map[string]string{"service": "db", "to": "z"},
			problems: []string{"--param to=z: unknown site (sites: a, b, c)"},
		},
		{
			name:     "unknown service and group",
			rb:       shippedByName(t, "failback-after-disaster"),
			given:    map[string]string{"site": "b", "service": "web", "group": "mysql"},
			problems: []string{"--param service=web: unknown service (services: db)", "--param group=mysql: unknown replication group (groups: pg)"},
		},
		{
			name:     "bad int",
			rb:       optional,
			given:    map[string]string{"n": "three"},
			problems: []string{"--param n=three: not a whole number"},
		},
		{
			name:  "every problem at once",
			rb:    shippedByName(t, "switchover"),
			given: map[string]string{"zone": "x", "force": "yes", "promote_within": "soon", "service": "db"},
			problems: []string{
				"--param zone: runbook switchover has no such parameter (params: service, site, to, promote_within, force)",
				"--param to: required (the site to move them to)",
				`--param promote_within=soon: not a duration (like 30s or 5m)`,
				"--param force=yes: want true or false",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := Resolve(tt.rb, cfg, tt.given)
			if tt.problems != nil {
				wantProblems(t, err, tt.problems)
				if args != nil {
					t.Errorf("args %v as well as an error", args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(args, tt.want) {
				t.Errorf("args %v; want %v", args, tt.want)
			}
		})
	}
}

// planRunbook exercises every kind of step MakePlan handles; the lines
// below matter.
const planRunbook = `name: plan-me
description: For TestMakePlan.
params:
  - {name: to, type: site, required: true}
  - {name: group, type: group, default: pg}
  - {name: note, type: string, default: "by the book"}
groups:
  - name: checks
    steps:
      - id: check
        action: check-site
        with: {site: "${to}"}
      - id: ok
        action: confirm
        with: {message: "move to ${to} (${note})?"}
  - name: move
    gate:
      until: {group_in_sync: "${group}"}
      timeout: 2m
    steps:
      - id: back
        action: failback
        with: {site: "${to}"}
        when: {site_fenced: "${to}"}
        on_failure: [undo]
      - id: settle
        action: wait
        until: {service_at: {service: db, site: "${to}"}}
        timeout: 5m
      - id: home
        action: switchover
        with: {service: db, to: "${to}"}
rollback:
  - id: undo
    action: check-site
    with: {site: a}
`

func TestMakePlan(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := mustParse(t, "plan.yaml", planRunbook)
	args, err := Resolve(rb, cfg, map[string]string{"to": "b"})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Who: "operator:ann", Now: planNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Blockers) > 0 {
		t.Errorf("blockers %q; the first step is no macro", plan.Blockers)
	}
	op := plan.Op
	if op.Kind != failover.KindRunbook || op.Runbook != "plan-me" || op.Who != "operator:ann" || !op.Created.Equal(planNow) ||
		op.Outcome != site.OpRunning || !strings.Contains(op.ID, "-"+failover.KindRunbook+"-") {
		t.Errorf("op %+v", op)
	}
	if !maps.Equal(op.Params, args) || !maps.Equal(plan.Args, args) {
		t.Errorf("op params %v, plan args %v; want the arguments %v", op.Params, plan.Args, args)
	}

	inSync := site.Condition{GroupInSync: "pg"}
	want := []site.Step{
		{ID: "check", Name: failover.StepCheckSite, Group: "checks", Params: map[string]string{"site": "b"}, Status: site.StepPending},
		{ID: "ok", Name: failover.StepConfirm, Group: "checks", Params: map[string]string{"message": "move to b (by the book)?"}, Status: site.StepPending},
		{ID: "move-gate", Name: failover.StepWait, Group: "move", Until: &inSync, Timeout: 2 * time.Minute, Status: site.StepPending},
		{ID: "back", Name: failover.MacroFailback, Group: "move", Params: map[string]string{"site": "b"}, Status: site.StepPending,
			When: &site.Condition{SiteFenced: "b"}, OnFailure: []string{"undo"}},
		{ID: "settle", Name: failover.StepWait, Group: "move", Params: map[string]string{}, Status: site.StepPending,
			Until: &site.Condition{ServiceAt: &site.ServiceAt{Service: "db", Site: "b"}}, Timeout: 5 * time.Minute},
		{ID: "home", Name: failover.MacroSwitchover, Group: "move", Params: map[string]string{"service": "db", "to": "b"}, Status: site.StepPending},
		{ID: "undo", Name: failover.StepCheckSite, Params: map[string]string{"site": "a"}, Status: site.StepPending, Rollback: true},
	}
	if !reflect.DeepEqual(op.Steps, want) {
		t.Errorf("op steps:\n%s\nwant\n%s", stepsString(op.Steps), stepsString(want))
	}

	wantNow := []struct{ id, when, now string }{
		{"check", "", "site b is healthy now"},
		{"ok", "", "stops until a person approves: move to b (by the book)?"},
		{"move-gate", "", "holds now: true (group pg is in sync)"},
		{"back", "site b is not fenced (holds now: false)", "would be refused now (checked again when reached): site b is not fenced: there is nothing to fail back"},
		{"settle", "", "holds now: false (service db is at site a, not b)"},
		{"home", "", "as planned now (planned again when reached): check-switchover"},
		{"undo", "", "site a is healthy now"},
	}
	if len(plan.Steps) != len(wantNow) {
		t.Fatalf("%d planned steps; want %d", len(plan.Steps), len(wantNow))
	}
	for i, w := range wantNow {
		ps := plan.Steps[i]
		if ps.ID != w.id || ps.When != w.when || !strings.HasPrefix(ps.Now, w.now) {
			t.Errorf("planned step %d = %+v; want id %s, when %q, now starting %q", i, ps, w.id, w.when, w.now)
		}
		if ps.Rollback != (w.id == "undo") {
			t.Errorf("planned step %s: rollback %t", ps.ID, ps.Rollback)
		}
	}
	if g := plan.Steps[2]; g.Group != "move" || g.Action != failover.StepWait {
		t.Errorf("the gate's planned step %+v", g)
	}
}

func stepsString(steps []site.Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("  ")
		b.WriteString(s.ID + " " + s.Name + " group=" + s.Group)
		for _, k := range slices.Sorted(maps.Keys(s.Params)) {
			b.WriteString(" " + k + "=" + s.Params[k])
		}
		if s.When != nil {
			b.WriteString(" when=" + describeCondition(*s.When))
		}
		if s.Until != nil {
			b.WriteString(" until=" + describeCondition(*s.Until))
		}
		if s.Timeout > 0 {
			b.WriteString(" timeout=" + s.Timeout.String())
		}
		if len(s.OnFailure) > 0 {
			b.WriteString(" on_failure=" + strings.Join(s.OnFailure, ","))
		}
		if s.Rollback {
			b.WriteString(" rollback")
		}
		if s.Approved != nil {
			b.WriteString(" approved-by=" + s.Approved.By)
		}
		b.WriteString(" " + string(s.Status) + "\n")
	}
	return b.String()
}

func TestMakePlanYes(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := mustParse(t, "plan.yaml", planRunbook)
	args := map[string]string{"to": "b", "group": "pg", "note": "n"}
	for _, yes := range []bool{false, true} {
		plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Who: "operator:ann", Now: planNow.In(time.FixedZone("x", 3600)), Yes: yes})
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range plan.Op.Steps {
			switch {
			case st.Name != failover.StepConfirm:
				if st.Approved != nil {
					t.Errorf("yes=%t: step %s approved: %+v", yes, st.ID, st.Approved)
				}
			case !yes:
				if st.Approved != nil {
					t.Errorf("without --yes, confirm step %s is approved: %+v", st.ID, st.Approved)
				}
			default:
				a := st.Approved
				if a == nil || a.By != "operator:ann" || !a.At.Equal(planNow) || a.At.Location() != time.UTC || a.Reason != "approved in advance (--yes)" {
					t.Errorf("with --yes, confirm step %s approved %+v", st.ID, a)
				}
				if now := plan.Steps[i].Now; now != "approved in advance by operator:ann" {
					t.Errorf("with --yes, confirm step %s: now %q", st.ID, now)
				}
			}
		}
	}
}

func TestMakePlanProblems(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	tests := []struct {
		name string
		yaml string
		args map[string]string
		want []string
		// bug, when set, is a known bug that makes the case fail.
		bug string
	}{
		{
			name: "a step naming an unknown site",
			yaml: "name: x\nsteps:\n  - id: check\n    action: check-site\n    with:\n      site: z\n",
			want: []string{`x.yaml:6: step check: site "z": unknown site (sites: a, b, c)`},
		},
		{
			name: "a string parameter naming an unknown service",
			yaml: "name: x\nparams:\n  - {name: svc, type: string}\nsteps:\n  - action: switchover\n    with: {service: \"${svc}\", to: b}\n",
			args: map[string]string{"svc": "web"},
			want: []string{`x.yaml:6: step at line 5 (switchover): service "web": unknown service (services: db)`},
			bug: `plan.go resolveStep: an argument refused against the config is left out of the step's params, so the oneOf check adds ` +
				`"action switchover needs exactly one of service, site" although service was given`,
		},
		{
			name: "conditions naming unknown things",
			yaml: "name: x\ngroups:\n  - name: g\n    gate:\n      until: {group_in_sync: mysql}\n    steps:\n      - action: place\n        when: {service_at: {service: web, site: z}}\n",
			want: []string{
				`x.yaml:5: condition: group "mysql": unknown replication group (groups: pg)`,
				`x.yaml:7: condition: service "web": unknown service (services: db)`,
				`x.yaml:7: condition: site "z": unknown site (sites: a, b, c)`,
			},
		},
		{
			name: "a switchover given neither service nor site",
			yaml: "name: x\nparams:\n  - {name: svc, type: string, default: \"\"}\nsteps:\n  - action: switchover\n    with: {service: \"${svc}\", to: b}\n",
			args: map[string]string{"svc": ""},
			want: []string{"x.yaml:5: step at line 5 (switchover): action switchover needs exactly one of service, site"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := mustParse(t, "x.yaml", tt.yaml)
			plan, err := MakePlan(rb, cfg, snap, tt.args, PlanOptions{Who: "operator:ann", Now: planNow})
			var problems Problems
			if tt.bug != "" && errors.As(err, &problems) && !slices.Equal(problems, tt.want) {
				t.Errorf("regression of a fixed bug: %s:\n%s", tt.bug, problems)
			}
			wantProblems(t, err, tt.want)
			if plan != nil {
				t.Errorf("a plan as well as an error: %+v", plan)
			}
		})
	}
}

func TestMakePlanShippedSwitchoverNeedsServiceOrSite(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := shippedByName(t, "switchover")
	for _, given := range []map[string]string{{"to": "b"}, {"to": "b", "service": "db", "site": "a"}} {
		args, err := Resolve(rb, cfg, given)
		if err != nil {
			t.Fatal(err)
		}
		_, err = MakePlan(rb, cfg, snap, args, PlanOptions{Now: planNow})
		wantProblems(t, err, []string{"shipped:switchover:30: step at line 30 (switchover): action switchover needs exactly one of service, site"})
	}
}

func TestMakePlanExpandsFirstMacro(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := shippedByName(t, "switchover")
	args, err := Resolve(rb, cfg, map[string]string{"service": "db", "to": "b"})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Who: "operator:ann", Now: planNow, Kind: failover.KindSwitchover})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Blockers) > 0 {
		t.Fatalf("blockers %q", plan.Blockers)
	}
	op := plan.Op
	if op.Kind != failover.KindSwitchover || op.Runbook != "switchover" || !strings.Contains(op.ID, "-switchover-") {
		t.Errorf("op kind %q, runbook %q, id %q", op.Kind, op.Runbook, op.ID)
	}
	// The op's params: the arguments, with what the switchover touches.
	for k, v := range map[string]string{"service": "db", "to": "b", "services": "db", "from": "a", "force": "false", "promote_within": "0s"} {
		if op.Params[k] != v {
			t.Errorf("op param %s = %q; want %q (params %v)", k, op.Params[k], v, op.Params)
		}
	}
	// The switchover's op stands in the runbook's op, step for step.
	direct, why := failover.PlanSwitchover(cfg, snap, failover.SwitchoverRequest{Service: "db", To: "b"}, "operator:ann", planNow)
	if len(why) > 0 {
		t.Fatalf("PlanSwitchover refuses: %q", why)
	}
	// Every param of the switchover's own op is the runbook op's (zdt
	// switchover --force records possible_loss there).
	for k, v := range direct.Params {
		if op.Params[k] != v {
			t.Errorf("op param %s = %q; the switchover's op has %q", k, op.Params[k], v)
		}
	}
	var got, wantNames []string
	for _, st := range op.Steps {
		got = append(got, st.Name)
		if st.Params["kind"] != failover.KindSwitchover || st.Status != site.StepPending {
			t.Errorf("expanded step %+v", st)
		}
	}
	for _, st := range direct.Steps {
		wantNames = append(wantNames, st.Name)
	}
	if !slices.Equal(got, wantNames) || got[0] != "check-switchover" {
		t.Errorf("op steps %q; want the switchover's %q", got, wantNames)
	}
	if len(plan.Steps) != 1 || plan.Steps[0].Action != failover.MacroSwitchover || !strings.Contains(plan.Steps[0].Now, ", assign db a->b, await-primary pg a->b") {
		t.Errorf("planned steps %+v", plan.Steps)
	}
}

func TestSummarize(t *testing.T) {
	got := summarize([]site.Step{
		{Name: "check-switchover", Params: map[string]string{"services": "db", "from": "a", "to": "b"}},
		{Name: "assign", Params: map[string]string{"service": "db", "from": "a", "to": "b"}},
		{Name: "place"},
	})
	if want := "check-switchover a->b, assign db a->b, place"; got != want {
		t.Errorf("regression of a fixed bug: plan.go summarize: a step with from and to but no service, group or site gets two spaces after its name: %q; want %q", got, want)
	}
}

func TestMakePlanFirstMacroRefused(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := shippedByName(t, "failback")
	plan, err := MakePlan(rb, cfg, snap, map[string]string{"site": "b"}, PlanOptions{Who: "operator:ann", Now: planNow, Kind: failover.KindFailback})
	if err != nil {
		t.Fatal(err)
	}
	const why = "site b is not fenced: there is nothing to fail back"
	if !slices.Equal(plan.Blockers, []string{why}) {
		t.Errorf("blockers %q; want %q", plan.Blockers, why)
	}
	if len(plan.Steps) != 1 || plan.Steps[0].Now != "refused now: "+why {
		t.Errorf("planned steps %+v", plan.Steps)
	}
	if len(plan.Op.Steps) != 1 || plan.Op.Steps[0].Name != failover.MacroFailback || plan.Op.Steps[0].Params["site"] != "b" {
		t.Errorf("op steps %+v; want the failback step as written", plan.Op.Steps)
	}
	if md := PlanMarkdown(plan); !strings.Contains(md, "**Refused now:**\n\n- "+why+"\n") {
		t.Errorf("PlanMarkdown does not say why it is refused:\n%s", md)
	}
}

func TestMakePlanLaterMacroRefused(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := mustParse(t, "later.yaml", "name: later\nsteps:\n  - action: check-site\n    with: {site: b}\n  - action: failback\n    with: {site: b}\n")
	plan, err := MakePlan(rb, cfg, snap, nil, PlanOptions{Who: "operator:ann", Now: planNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Blockers) > 0 {
		t.Errorf("blockers %q; a later macro is checked again when reached", plan.Blockers)
	}
	want := "would be refused now (checked again when reached): site b is not fenced: there is nothing to fail back"
	if len(plan.Steps) != 2 || plan.Steps[1].Now != want {
		t.Errorf("planned steps %+v; want the second %q", plan.Steps, want)
	}
	if len(plan.Op.Steps) != 2 || plan.Op.Steps[1].Name != failover.MacroFailback {
		t.Errorf("op steps %+v; want the failback step as written, second", plan.Op.Steps)
	}
}

// A first step that is a macro with a condition: it runs only when the
// condition holds then (the engine checks when before it expands a
// macro).
func TestMakePlanFirstMacroWithCondition(t *testing.T) {
	const bug = "plan.go MakePlan: the first step, a macro, is expanded at plan time whatever its when: " +
		"a refusal blocks the op although the step would be skipped, and the expanded steps lose the condition " +
		"(failover.Expand does not copy When), so they run even when it does not hold"
	cfg, snap := planConfig(t), planSnapshot()
	t.Run("condition does not hold, macro refused", func(t *testing.T) {
		rb := mustParse(t, "fb.yaml", "name: fb\nsteps:\n  - action: failback\n    with: {site: b}\n    when: {site_fenced: b}\n")
		plan, err := MakePlan(rb, cfg, snap, nil, PlanOptions{Now: planNow})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Blockers) > 0 {
			t.Errorf("regression of a fixed bug: %s: blockers %q", bug, plan.Blockers)
		}
		if st := plan.Op.Steps[0]; st.When == nil || st.When.SiteFenced != "b" {
			t.Errorf("op step %+v; want its condition kept", st)
		}
	})
	t.Run("macro planned", func(t *testing.T) {
		rb := mustParse(t, "sw.yaml", "name: sw\nsteps:\n  - action: switchover\n    with: {service: db, to: b}\n    when: {site_drained: a}\n")
		plan, err := MakePlan(rb, cfg, snap, nil, PlanOptions{Now: planNow})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range plan.Op.Steps {
			if st.When == nil || st.When.SiteDrained != "a" {
				t.Errorf("regression of a fixed bug: %s: op step %s %v has no condition", bug, st.Name, st.Params)
			}
		}
	})
}

// tableMismatch checks the Markdown tables in md: every row has as many
// unescaped | as its header, and a blank line (or the end) follows the
// table. It returns what is wrong, "" when nothing is.
func tableMismatch(md string) string {
	lines := strings.Split(md, "\n")
	pipes := func(s string) int {
		n := 0
		for i := range len(s) {
			if s[i] == '|' && (i == 0 || s[i-1] != '\\') {
				n++
			}
		}
		return n
	}
	tables := 0
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "|") || !strings.HasPrefix(lines[i+1], "|---") {
			continue
		}
		tables++
		want := pipes(lines[i])
		if got := pipes(lines[i+1]); got != want {
			return "delimiter row " + lines[i+1] + " does not match header " + lines[i]
		}
		j := i + 2
		for ; j < len(lines) && strings.HasPrefix(lines[j], "|"); j++ {
			if got := pipes(lines[j]); got != want {
				return "row " + lines[j] + " does not match header " + lines[i]
			}
		}
		if j < len(lines) && lines[j] != "" {
			return "the table under " + lines[i] + " is followed by " + lines[j] + " (a row broken over lines?)"
		}
		i = j
	}
	if tables == 0 {
		return "no table in:\n" + md
	}
	return ""
}

func TestPlanMarkdownTables(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := mustParse(t, "plan.yaml", planRunbook)
	args, err := Resolve(rb, cfg, map[string]string{"to": "b", "note": "a | b\r\nc|d\\"})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Who: "operator:ann", Now: planNow})
	if err != nil {
		t.Fatal(err)
	}
	md := PlanMarkdown(plan)
	if why := tableMismatch(md); why != "" {
		t.Errorf("PlanMarkdown: %s\n%s", why, md)
	}
	for _, s := range []string{
		"# Plan of runbook plan-me\n",
		"| note | a \\| b<br>c\\|d\\ |",
		"| 3 | move | move-gate | wait | - | holds now: true (group pg is in sync) |",
		"| 4 | move | back | failback | site=b | when site b is not fenced (holds now: false); would be refused now",
		"| 7 | - | undo (rollback) | check-site | site=a | site a is healthy now |",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("PlanMarkdown lacks %q:\n%s", s, md)
		}
	}
}

func TestMarkdownTables(t *testing.T) {
	all, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, rb := range all {
		if why := tableMismatch(Markdown(rb)); why != "" {
			t.Errorf("Markdown(%s): %s", rb.Name, why)
		}
	}
	rb := mustParse(t, "pipes.yaml", `name: pipes
params:
  - name: note
    description: "a | b\nc"
    default: "x"
steps: [{action: place}]
`)
	if why := tableMismatch(Markdown(rb)); why != "" {
		t.Errorf("Markdown: %s\n%s", why, Markdown(rb))
	}
	rb = mustParse(t, "pipes.yaml", `name: pipes
params:
  - name: note
    default: "x | y\nz"
steps: [{action: place}]
`)
	if why := tableMismatch(Markdown(rb)); why != "" {
		t.Errorf("regression of a fixed bug: markdown.go Markdown: a parameter's default goes into the table unescaped (no cell()), so a | or a newline in it breaks the row: %s\n%s", why, Markdown(rb))
	}
}

// An argument's value is put in as it is, once: a ${...} in it is text.
func TestMakePlanSubstitutesOnce(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	rb := mustParse(t, "x.yaml", `name: x
params:
  - {name: s, type: string}
  - {name: t, type: string}
steps:
  - id: ask
    action: confirm
    with: {message: "${s}"}
  - id: top
    action: place
    when: {site_up: "${s}"}
  - id: nested
    action: place
    when: {not: {site_up: "${s}"}}
`)
	args := map[string]string{"s": "${t}", "t": "a"}
	plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Now: planNow})
	want := []string{
		`x.yaml:9: condition: site "${t}": unknown site (sites: a, b, c)`,
		`x.yaml:12: condition: site "${t}": unknown site (sites: a, b, c)`,
	}
	var problems Problems
	if errors.As(err, &problems) && len(problems) == 1 && problems[0] == want[0] {
		t.Errorf("regression of a fixed bug: plan.go resolveCondition: the values of a condition nested in not/all/any are substituted twice "+
			"(once by the recursive call, again by walkCondition on the copy), so ${t} in an argument becomes t's value: "+
			"only %q is reported", problems[0])
	}
	wantProblems(t, err, want)
	if plan != nil {
		t.Errorf("a plan as well as an error")
	}
	// The message is substituted once.
	args = map[string]string{"s": "${t}", "t": "a"}
	rb.Groups[0].Steps = rb.Groups[0].Steps[:1]
	plan, err = MakePlan(rb, cfg, snap, args, PlanOptions{Now: planNow})
	if err != nil {
		t.Fatal(err)
	}
	if m := plan.Op.Steps[0].Params["message"]; m != "${t}" {
		t.Errorf("message %q; want ${t} as given", m)
	}
}

// TestMakePlanForcedSwitchoverKeepsPossibleLoss: zdt switchover --force
// plans the shipped runbook; its op records what may be lost, as the
// switchover's own op does.
func TestMakePlanForcedSwitchoverKeepsPossibleLoss(t *testing.T) {
	cfg, snap := planConfig(t), planSnapshot()
	snap.Fences["a"] = site.Fence{Site: "a", Op: "earlier-failover"}
	delete(snap.Alive, "a")
	rb := shippedByName(t, "switchover")
	args, err := Resolve(rb, cfg, map[string]string{"service": "db", "to": "b", "force": "true"})
	if err != nil {
		t.Fatal(err)
	}
	direct, why := failover.PlanSwitchover(cfg, snap, failover.SwitchoverRequest{Service: "db", To: "b", Force: true}, "operator:ann", planNow)
	if len(why) > 0 {
		t.Fatalf("PlanSwitchover --force refuses: %q", why)
	}
	plan, err := MakePlan(rb, cfg, snap, args, PlanOptions{Who: "operator:ann", Now: planNow, Kind: failover.KindSwitchover})
	if err != nil || len(plan.Blockers) > 0 {
		t.Fatalf("MakePlan: %v, blockers %q", err, plan.Blockers)
	}
	if loss := direct.Params["possible_loss"]; loss == "" || plan.Op.Params["possible_loss"] != loss {
		t.Errorf("possible_loss %q; the switchover's own op has %q", plan.Op.Params["possible_loss"], loss)
	}
}
