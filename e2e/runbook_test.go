package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// TestLabRunbooks runs the shipped NOC runbooks against a lab, each with
// --yes (the confirm steps approved in advance), as zdt runbook run does:
// a planned site switch-over of b to c, the evacuation of c and its return,
// and a declared site-loss drill of the site db is at, which fails it
// over, fails it back and switches db home. Each op succeeds and leaves
// PostgreSQL with one primary where db is assigned, nothing lost.
func TestLabRunbooks(t *testing.T) {
	zdt, l := startLab(t, "127.0.16.0")
	pg := followPostgres(t, zdt, l)
	if pg.group == "" {
		t.Skip("needs PostgreSQL (installed by make test)")
	}
	keys := site.NewKeys(l.Cluster())
	cli := etcdClient(t, l, "a", "b", "c")
	ctx, cancel := context.WithTimeout(t.Context(), 420*time.Second)
	defer cancel()
	waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	pg.write(ctx, t, "b", "before the runbooks")

	runbook := func(name string, params ...string) string {
		t.Helper()
		args := []string{"runbook", "run", name, "--yes", "--config", l.ConfigPath(), "--timeout", "150s"}
		for _, p := range params {
			args = append(args, "--param", p)
		}
		rctx, cancel := context.WithTimeout(ctx, 160*time.Second)
		defer cancel()
		out, err := exec.CommandContext(rctx, zdt, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "succeeded") {
			t.Fatalf("zdt %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	// Plan first: it says what each step would act on, and changes nothing.
	plan := run(t, zdt, "runbook", "plan", "site-switchover", "--param", "site=b", "--param", "to=c", "--param", "group="+pg.group, "--config", l.ConfigPath())
	for _, want := range []string{"check-target", "site c is healthy now", "stops until a person approves", "nothing was changed"} {
		if !strings.Contains(plan, want) {
			t.Errorf("zdt runbook plan site-switchover lacks %q:\n%s", want, plan)
		}
	}
	if stdout, stderr, code := runZDT(ctx, t, zdt, "runbook", "plan", "site-switchover", "--param", "site=b", "--param", "to=z",
		"--config", l.ConfigPath()); code != 2 || !strings.Contains(stderr, "--param to=z: unknown site (sites: a, b, c)") || !strings.Contains(stderr, "--param group: required") {
		t.Errorf("zdt runbook plan with a bad site and a missing param: exit %d, want 2 naming both\n%s%s", code, stdout, stderr)
	}
	out := runbook("site-switchover", "site=b", "to=c", "group="+pg.group)
	for _, want := range []string{"check-target", "go-ahead", "approved by", "in-sync-at-target"} {
		if !strings.Contains(out, want) {
			t.Errorf("site-switchover output lacks %q:\n%s", want, out)
		}
	}
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})
	pg.waitRow(ctx, t, "c", "before the runbooks")
	status(t, zdt, l).wantService(t, "db", "c")

	runbook("site-evacuation", "site=c", "reason=runbook test")
	st := status(t, zdt, l)
	if d := st.site("c").Drain; d != nil {
		t.Errorf("site c still drained after its evacuation runbook: %+v", d)
	}
	var at string
	for _, s := range st.Services {
		if s.Name == "db" {
			at = s.Active
		}
	}
	if at != "a" && at != "b" {
		t.Fatalf("db is at %q after the evacuation of c, want a or b:\n%s", at, st.raw)
	}
	pg.waitRoles(ctx, t, cli, roles(l.SiteNames(), at))
	pg.write(ctx, t, at, "after the evacuation")

	out = runbook("site-loss-drill", "site="+at, "service=db", "group="+pg.group)
	for _, want := range []string{"declare", "back-clean", "failback", "switch-home"} {
		if !strings.Contains(out, want) {
			t.Errorf("site-loss-drill output lacks %q:\n%s", want, out)
		}
	}
	pg.waitRoles(ctx, t, cli, roles(l.SiteNames(), at))
	pg.waitRow(ctx, t, at, "after the evacuation")
	st = status(t, zdt, l)
	st.wantService(t, "db", at)
	st.wantSite(t, at, "up")

	// Rolling maintenance of the host of a site: its guests move (the lab
	// has one host a site: to other sites), it runs none, it is given
	// room again.
	out = runbook("host-maintenance", "host="+at+"1")
	for _, want := range []string{"drain-host", "move-guests", "host-empty", "runs no guest", "undrain-host"} {
		if !strings.Contains(out, want) {
			t.Errorf("host-maintenance output lacks %q:\n%s", want, out)
		}
	}

	// A disaster: c goes dark and is failed over; it comes back fenced,
	// and the failback runbook waits until it is back clean, lifts its
	// fence, and brings db home to c.
	cli = etcdClient(t, l, "a", "b")
	run(t, zdt, "lab", "site", "c", "down", "--dir", l.Dir())
	waitKey(ctx, t, cli, keys.Fence("c"), func(int64) bool { return true })
	run(t, zdt, "lab", "site", "c", "up", "--dir", l.Dir())
	out = runbook("failback-after-disaster", "site=c", "service=db", "group="+pg.group)
	for _, want := range []string{"unfence-gate", "failback", "in-sync", "switch-home"} {
		if !strings.Contains(out, want) {
			t.Errorf("failback-after-disaster output lacks %q:\n%s", want, out)
		}
	}
	pg.waitRoles(ctx, t, cli, roles(l.SiteNames(), "c"))
	pg.waitRow(ctx, t, "c", "after the evacuation")
	st = status(t, zdt, l)
	st.wantService(t, "db", "c")
	st.wantSite(t, "c", "up")

	// A run waiting at a confirmation outlives its coordinator, killed
	// (SIGKILL): the next coordinator waits on, and after the approval
	// switches db over, between two sites neither of which is the dead
	// coordinator's.
	coord, err := site.NewStore(cli, l.Cluster()).Coordinator(ctx)
	if err != nil || coord == "" {
		t.Fatalf("the coordinator: %q, %v", coord, err)
	}
	to := "a"
	if coord == "a" {
		to = "b"
	}
	file := filepath.Join(t.TempDir(), "confirm-then-move.yaml")
	if err := os.WriteFile(file, []byte(confirmThenMove), 0o644); err != nil {
		t.Fatal(err)
	}
	out = run(t, zdt, "runbook", "run", file, "--param", "to="+to, "--detach", "-o", "json", "--config", l.ConfigPath())
	var req struct{ Op *site.Op }
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.Op == nil {
		t.Fatalf("zdt runbook run -o json: %v\n%s", err, out)
	}
	id := req.Op.ID
	waitUntil(ctx, t, cli, keys, "op "+id+" waits at go-ahead", func() ([]string, error) {
		op, err := readOp(ctx, cli, keys, id)
		if err != nil {
			return nil, err
		}
		if st := op.Steps[0]; st.Status != site.StepRunning || !strings.Contains(st.Detail, "waiting for a person") {
			return []string{fmt.Sprintf("step go-ahead is %s: %s", st.Status, st.Detail)}, nil
		}
		return nil, nil
	})
	run(t, zdt, "lab", "site", coord, "crash", "--dir", l.Dir())
	others := slices.DeleteFunc(l.SiteNames(), func(s string) bool { return s == coord })
	cli = etcdClient(t, l, others...)
	out = run(t, zdt, "runbook", "approve", id, "--reason", "CHG-42", "--config", l.ConfigPath())
	if !strings.Contains(out, "approved step go-ahead") {
		t.Errorf("zdt runbook approve: %s", out)
	}
	op := waitOpOutcome(ctx, t, cli, keys, id)
	if op.Outcome != site.OpSucceeded || len(op.Coordinators) < 2 || op.Coordinators[0] != coord {
		t.Fatalf("op %s %s (%s), coordinators %v; want succeeded, by %s and then another", id, op.Outcome, op.Error, op.Coordinators, coord)
	}
	if a := op.Steps[0].Approved; a == nil || a.Reason != "CHG-42" {
		t.Errorf("go-ahead approved %+v; want with reason CHG-42", a)
	}
	pg.waitRoles(ctx, t, cli, map[string]string{to: "primary"})
	pg.waitRow(ctx, t, to, "after the evacuation")
}

// confirmThenMove stops for a person, then moves db.
const confirmThenMove = `
name: confirm-then-move
params:
  - {name: to, type: site, required: true}
steps:
  - id: go-ahead
    action: confirm
    with: {message: "move db to ${to}?"}
  - id: move
    action: switchover
    with: {service: db, to: "${to}"}
`
