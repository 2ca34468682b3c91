package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestLabTotalOutage takes every site of a lab down and brings them back,
// twice, and checks what docs/operations.md says of it ("When every site
// went dark"): the group has a primary again, with the loss recorded.
//
//  1. db is at its preferred site b, whose server is a writable primary;
//     rows written there reach every standby.
//  2. b goes down: it is failed over, db moves to c, whose standby is
//     promoted and takes more rows. a goes down: c is left alone, etcd has
//     no quorum and nothing moves. c fences itself (its controller
//     self-fenced, its server still a primary, read-only), zdt status says
//     it cannot read the cluster, and c's etcd member still assigns db to
//     c. c goes down: nothing of the cluster runs.
//  3. c comes back, then b, which makes a quorum: c's controller starts its
//     server as it was, a read-only primary, and lifts its fence; db keeps
//     the assignment it had before the outage (nobody edits a file) and c
//     holds every row acknowledged before it. b comes back fenced and
//     follows c. a, whose lease outlived the outage, is failed over once
//     that lease runs out a TTL after the quorum returned, and only then
//     comes back: brought back earlier it would race that expiry (back
//     before it, a rejoins unfenced, and its standby comes back without a
//     failover), and the run would depend on who wins. a and b stay
//     fenced, standbys serving nothing, until zdt failback, which then
//     succeeds and moves nothing.
//  4. A second total outage, in which c, the active site, loses its data
//     for good: a and b go down at once (so that neither can be failed over
//     before the quorum is gone), c fences itself alone, goes down, and its
//     PostgreSQL data directory is removed; the three come back together.
//     a and b, back unfenced, start their standbys again by themselves
//     (standbys of c, which never answers: a site that is not active
//     starts a stopped member only as a standby). Nothing is promoted by
//     itself. The documented recovery follows: zdt failover --site c, which
//     moves db only to a standby within db's RPO by c's last report (c's
//     report since it came back gives no WAL position, so how far the
//     standbys are behind is unknown) and otherwise leaves db stranded at
//     c, with a service-stranded event; then zdt switchover --force
//     --service db to the next site of db's order that is up, whose
//     journal records the possible loss (unknown, and why); the group has
//     a writable primary there. Should the coordinator have failed c over
//     before c reported since it came back, and found a standby within the
//     RPO by c's last report from before the outage, the test checks that
//     move instead, and that the op records the lag it judged it by.
//
// Every wait is bounded and follows etcd, the servers or the controllers'
// /healthz; while there is no quorum, nothing is asked of etcd but c's
// own member.
func TestLabTotalOutage(t *testing.T) {
	zdt, l := startLab(t, "127.0.8.0")
	pg := followPostgres(t, zdt, l)
	if pg.group == "" {
		t.Skip("needs PostgreSQL (installed by make test)")
	}
	guests := followGuests(t, zdt, l)
	keys := site.NewKeys(l.Cluster())
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	cli := etcdClient(t, l, "a", "b", "c")
	var acked []string // every row acknowledged so far
	write := func(ctx context.Context, at, value string) {
		t.Helper()
		pg.write(ctx, t, at, value)
		acked = append(acked, value)
	}

	// 1. db at b, its preferred site.
	ctx := stepContext(t, 90*time.Second)
	waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	status(t, zdt, l).wantService(t, "db", "b")
	for i := range 3 {
		write(ctx, "b", fmt.Sprintf("at b %d", i))
	}
	// Asynchronous replication: only what a standby received survives its
	// primary's loss, so the rows must be there before b goes.
	for _, s := range []string{"a", "c"} {
		pg.waitRow(ctx, t, s, acked[len(acked)-1])
	}

	// 2. b goes down and is failed over to c.
	ctx = stepContext(t, 90*time.Second)
	dbRev := waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	downAt := time.Now()
	run(t, zdt, "lab", "site", "b", "down", "--dir", l.Dir())
	bFenced := waitKey(ctx, t, cli, keys.Fence("b"), func(int64) bool { return true })
	dbRev = waitKey(ctx, t, cli, keys.Assignment("db"), func(rev int64) bool { return rev > dbRev })
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby"})
	t.Logf("figures: b down to c a writable primary: %s", time.Since(downAt).Round(time.Millisecond))
	status(t, zdt, l).wantService(t, "db", "c")
	pg.wantRows(ctx, t, "c", acked)
	for i := range 3 {
		write(ctx, "c", fmt.Sprintf("at c %d", i))
	}
	pg.waitRow(ctx, t, "a", acked[len(acked)-1])

	// a goes down: c is alone, without a quorum. It fences itself and
	// nothing moves.
	downAt = time.Now()
	run(t, zdt, "lab", "site", "a", "down", "--dir", l.Dir())
	waitAloneFenced(ctx, t, l, "c")
	t.Logf("figures: a down to c self-fenced, its primary read-only: %s", time.Since(downAt).Round(time.Millisecond))
	wantNoQuorum(ctx, t, zdt, l)
	wantAssignedLocally(ctx, t, l, keys, "c", "db", "c", dbRev)

	// c goes down: a total outage.
	run(t, zdt, "lab", "site", "c", "down", "--dir", l.Dir())
	for _, s := range l.SiteNames() {
		if pid, ok := l.Running(s); ok {
			t.Errorf("site %s's controller still runs (pid %d) after the three went down", s, pid)
		}
		if pid, ok := l.PostgresRunning(s); ok {
			t.Errorf("site %s's PostgreSQL still runs (pid %d) after the three went down", s, pid)
		}
	}

	// 3. c and b come back.
	ctx = stepContext(t, 180*time.Second)
	backAt := time.Now()
	run(t, zdt, "lab", "site", "c", "up", "--dir", l.Dir())
	run(t, zdt, "lab", "site", "b", "up", "--dir", l.Dir()) // a quorum again
	quorumAt := time.Now()
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "b": "standby"})
	t.Logf("figures: quorum back (site b up) to c a writable primary again: %s", time.Since(quorumAt).Round(time.Millisecond))
	if rev := assignmentRev(ctx, t, cli, keys, "db"); rev != dbRev {
		t.Errorf("db's assignment was rewritten during the outage (revision %d, was %d): %s", rev, dbRev, status(t, zdt, l).raw)
	}
	status(t, zdt, l).wantService(t, "db", "c")
	wantEvents(t, zdt, l, "c", backAt, []string{
		"replication-start",   // c's controller started its server, as it was
		"replication-promote", // and lifted the fence of the primary
	}, "lifting the fence of the primary")
	pg.wantRows(ctx, t, "c", acked)
	for _, r := range acked {
		pg.waitRow(ctx, t, "b", r)
	}
	wantServesNothing(ctx, t, cli, zdt, l, guests, "b", bFenced)

	// a's lease, which survived the outage, runs out: a is failed over.
	aFenced := waitKey(ctx, t, cli, keys.Fence("a"), func(int64) bool { return true })
	t.Logf("figures: quorum back to a fenced (its old lease run out): %s", time.Since(quorumAt).Round(time.Millisecond))
	run(t, zdt, "lab", "site", "a", "up", "--dir", l.Dir())
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})
	for _, r := range acked {
		pg.waitRow(ctx, t, "a", r)
	}
	wantServesNothing(ctx, t, cli, zdt, l, guests, "a", aFenced)

	// a and b fail back once they are back clean (an op that still works
	// on a site holds its failback back).
	for _, name := range []string{"a", "b"} {
		asked := time.Now()
		failBack(ctx, t, cli, keys, zdt, l, name)
		t.Logf("figures: failback of %s succeeded %s after it was first asked", name, time.Since(asked).Round(time.Millisecond))
	}
	st := status(t, zdt, l)
	for _, name := range l.SiteNames() {
		st.wantSite(t, name, "up")
	}
	if rev := assignmentRev(ctx, t, cli, keys, "db"); rev != dbRev {
		t.Errorf("db's assignment moved with a failback (revision %d, was %d): %s", rev, dbRev, st.raw)
	}
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})

	// 4. A second total outage, in which c loses its data.
	ctx = stepContext(t, 240*time.Second)
	write(ctx, "c", "before the second outage")
	for _, s := range []string{"a", "b"} {
		pg.waitRow(ctx, t, s, acked[len(acked)-1])
	}
	dataDir := memberDataDir(t, cfg, pg.group, "c")
	sitesAtOnce(t, zdt, l, "down", "a", "b")
	waitAloneFenced(ctx, t, l, "c")
	run(t, zdt, "lab", "site", "c", "down", "--dir", l.Dir())
	if _, err := os.Stat(dataDir); err != nil {
		t.Fatalf("site c's data directory: %v", err)
	}
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	backAt = time.Now()
	sitesAtOnce(t, zdt, l, "up", "a", "b", "c")

	// Back, c cannot start its server, and nothing is promoted by itself.
	// (A site whose lease ran out before it rejoined was failed over: c's
	// failover is then the coordinator's, not the operator's.)
	waitUntil(ctx, t, cli, keys, "site c reports that it cannot start its member, or is fenced", func() ([]string, error) {
		if fenced, err := keyExists(ctx, cli, keys.Fence("c")); err != nil || fenced {
			return nil, err
		}
		m, err := memberReportOf(ctx, cli, keys, "c", pg.group)
		if err != nil {
			return nil, err
		}
		if m.Role != "unknown" || !strings.Contains(m.Detail, "start") {
			return []string{fmt.Sprintf("site c reports its member %s: %s", m.Role, m.Detail)}, nil
		}
		return nil, nil
	})
	// a and b, back unfenced, start their servers again by themselves, as
	// standbys (of c, which does not answer): they can be judged, and one
	// can be taken over.
	waitUntil(ctx, t, cli, keys, "the sites back unfenced report their members standbys again", func() ([]string, error) {
		var wrong []string
		for _, s := range []string{"a", "b"} {
			if fenced, err := keyExists(ctx, cli, keys.Fence(s)); err != nil || fenced {
				if err != nil {
					return nil, err
				}
				t.Logf("site %s was failed over by the coordinator: its old lease ran out before it rejoined", s)
				continue
			}
			m, err := memberReportOf(ctx, cli, keys, s, pg.group)
			if err != nil {
				return nil, err
			}
			if m.Role != "standby" || m.Writable || !m.Observed.After(backAt) {
				wrong = append(wrong, fmt.Sprintf("site %s reports its member %s (writable %t, observed %s): %s",
					s, m.Role, m.Writable, m.Observed.Format(time.RFC3339Nano), m.Detail))
			}
		}
		return wrong, nil
	})
	st = tryStatus(t, zdt, l)
	if g := st.groupNamed(pg.group); g != nil {
		for _, m := range g.Members {
			if m.Writable {
				t.Errorf("site %s's member is writable after the second outage, without c's data and before any operator acted: %s", m.Site, st.raw)
			}
		}
	}
	if rev := assignmentRev(ctx, t, cli, keys, "db"); rev != dbRev {
		t.Errorf("db's assignment moved by itself after c lost its data (revision %d, was %d): %s", rev, dbRev, st.raw)
	}

	// The operator fails c over...
	failedOverAt := time.Now()
	if fenced, err := keyExists(ctx, cli, keys.Fence("c")); err != nil {
		t.Fatal(err)
	} else if fenced {
		t.Logf("site c was failed over by the coordinator: its old lease ran out before it rejoined")
	} else {
		run(t, zdt, "failover", "--site", "c", "--config", l.ConfigPath(), "--reason", "its data is lost")
	}
	waitKey(ctx, t, cli, keys.Fence("c"), func(int64) bool { return true })
	fence := fenceOf(ctx, t, cli, keys, "c")
	failoverOp := *waitOpOutcome(ctx, t, cli, keys, fence.Op)
	t.Logf("the failover of c, op %s, %s after %s: %s", failoverOp.ID, failoverOp.Outcome,
		failoverOp.Ended.Sub(failoverOp.Created).Round(time.Millisecond), failoverOp.Error)
	if failoverOp.Params["declared"] == "true" {
		if s := stepNamed(&failoverOp, "await-self-fence"); s == nil || s.Status != site.StepDone {
			t.Errorf("the declared failover of c did not see c fence itself: %+v", s)
		}
	}
	if s := stepNamed(&failoverOp, "fence-resources"); s == nil || s.Status != site.StepDone {
		t.Errorf("the failover of c has no fence-resources step done: %+v", failoverOp.Steps)
	}
	assign := assignStepOf(t, &failoverOp, "db")
	t.Logf("the failover of c, for db: %s %s", assign.Status, assign.Detail)

	// It moves db only to a standby within db's RPO by c's last report;
	// when none is (c's report since it came back gives no last WAL
	// position, so how far the standbys are behind is unknown), db stays
	// at c, stranded, with a critical event saying why.
	svc, _ := cfg.Service("db")
	movedBy := ""
	switch assign.Status {
	case site.StepDone:
		movedBy = failoverOp.ID
	case site.StepSkipped:
		if !strings.Contains(assign.Detail, "stays at site c") || !strings.Contains(assign.Detail, "may not be promoted") {
			t.Errorf("the failover of c left db at c without saying why each site may not take it: %s", assign.Detail)
		}
		wantStranded(t, zdt, l, "db", failedOverAt)
		movedBy = reassigned(ctx, t, cli, keys, cfg, l, svc, backAt)
	default:
		t.Fatalf("the failover of c did not assign db: %+v", failoverOp.Steps)
	}
	if movedBy != "" {
		// The coordinator moved db by itself: its standby was within the
		// RPO by c's last report, and the op says by which lag.
		moved := *waitOpOutcome(ctx, t, cli, keys, movedBy)
		step := assignStepOf(t, &moved, "db")
		if step.Status != site.StepDone || !strings.Contains(step.Detail, "lag") || !strings.Contains(step.Detail, "last reported WAL position") {
			t.Errorf("op %s (%s) moved db but its assign step does not record the lag it judged the target by: %s %s", moved.ID, moved.Kind, step.Status, step.Detail)
		}
		to := assignmentOf(ctx, t, cli, keys, "db").Site
		pg.waitRoles(ctx, t, cli, map[string]string{to: "primary"})
		status(t, zdt, l).wantService(t, "db", to)
		pg.wantRows(ctx, t, to, acked)
		t.Logf("figures: second outage, sites back to %s a writable primary (op %s, within the RPO): %s", to, moved.ID, time.Since(backAt).Round(time.Millisecond))
		return
	}

	// ... then takes db over, by force, at the next site of db's order
	// that is up.
	st = tryStatus(t, zdt, l)
	to := ""
	for _, s := range svc.Sites {
		if s != "c" && st.site(s).State == "up" {
			to = s
			break
		}
	}
	if to == "" {
		t.Fatalf("no site of db's order %v is up to take db over:\n%s", svc.Sites, st.raw)
	}
	forcedAt := time.Now()
	stdout, stderr, code := runZDT(ctx, t, zdt, "switchover", "--force", "--service", "db", "--to", to,
		"--config", l.ConfigPath(), "-o", "json")
	if code != 0 {
		t.Fatalf("after zdt failover --site c, zdt switchover --force --service db --to %s is refused (exit %d): docs/operations.md says it takes db over\n%s%s\nzdt status says:\n%s",
			to, code, stdout, stderr, statusText(ctx, t, zdt, l))
	}
	var req opRequested
	if err := json.Unmarshal([]byte(stdout), &req); err != nil || req.Op == nil {
		t.Fatalf("zdt switchover --force -o json: %v\n%s", err, stdout)
	}
	pg.waitRoles(ctx, t, cli, map[string]string{to: "primary"})
	t.Logf("figures: forced switchover asked to %s a writable primary: %s", to, time.Since(forcedAt).Round(time.Millisecond))
	waitOpOutcome(ctx, t, cli, keys, req.Op.ID)
	forced := opShown(t, zdt, l, req.Op.ID)
	loss := forced.Params["possible_loss"]
	if !strings.Contains(loss, "behind") || !strings.Contains(loss, "may be lost") {
		t.Errorf("the forced op's possible_loss parameter is %q; want how far behind %s was and what may be lost", loss, to)
	}
	if strings.Contains(assign.Detail, "is unknown") && !strings.Contains(loss, "is unknown") {
		t.Errorf("the failover found how far the standbys were behind unknown (%s), but the forced op's possible_loss does not say so: %q", assign.Detail, loss)
	}
	// The op's check-switchover step judges again, from the reports as
	// they are then (the target's may have been written again since).
	if s := stepNamed(&forced, "check-switchover"); s == nil || !strings.Contains(s.Detail, "forced: group "+pg.group+": ") || !strings.Contains(s.Detail, "may be lost") {
		t.Errorf("the forced op's check-switchover step does not record the possible loss (the op's parameter: %q): %+v", loss, s)
	}
	if s := stepNamed(&forced, "await-primary"); s == nil || s.Status != site.StepDone {
		t.Errorf("the forced op's await-primary step is not done: %+v", s)
	}
	t.Logf("the forced op %s %s: %s; possible loss: %s", forced.ID, forced.Outcome, forced.Error, loss)
	status(t, zdt, l).wantService(t, "db", to)
	pg.wantRows(ctx, t, to, acked)
	t.Logf("figures: second outage, sites back to %s a writable primary: %s", to, time.Since(backAt).Round(time.Millisecond))
}

// assignStepOf is the op's assign step of the service; the test fails if
// it has none.
func assignStepOf(t *testing.T, op *site.Op, service string) site.Step {
	t.Helper()
	i := slices.IndexFunc(op.Steps, func(s site.Step) bool { return s.Name == "assign" && s.Params["service"] == service })
	if i < 0 {
		t.Fatalf("op %s (%s) has no assign step for %s: %+v", op.ID, op.Kind, service, op.Steps)
	}
	return op.Steps[i]
}

// assignmentOf is the service's assignment; the test fails if it has none.
func assignmentOf(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, service string) site.Assignment {
	t.Helper()
	return etcdValue[site.Assignment](ctx, t, cli, keys.Assignment(service), "service "+service+"'s assignment")
}

// wantStranded checks that a service-stranded event about the service was
// written since the time.
func wantStranded(t *testing.T, zdt string, l *lab.Lab, service string, since time.Time) {
	t.Helper()
	out := run(t, zdt, "events", "--config", l.ConfigPath(), "--service", service, "--kind", "service-stranded",
		"--since", since.UTC().Format(time.RFC3339Nano), "--limit", "0", "-o", "json")
	var events []site.Event
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("zdt events -o json: %v\n%s", err, out)
	}
	if !slices.ContainsFunc(events, func(e site.Event) bool { return e.Kind == "service-stranded" && e.Subject == service }) {
		t.Errorf("no service-stranded event about %s since %s:\n%s", service, since.Format(time.RFC3339Nano), out)
	}
}

// reassigned says which op moves the stranded service from the fenced site
// c by itself ("" when none will): one does (a reassign op) when a site
// can take it now, judged as the coordinator judges it, once c has reported
// since it came back (back) and so no longer gives the last WAL position
// of its primary from before it lost its data.
func reassigned(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, cfg *config.Cluster, l *lab.Lab, svc config.Service, back time.Time) string {
	t.Helper()
	waitUntil(ctx, t, cli, keys, "site c reports its member since it came back", func() ([]string, error) {
		m, err := memberReportOf(ctx, cli, keys, "c", svc.ReplicationGroup)
		if err != nil {
			return nil, err
		}
		if !m.Observed.After(back) {
			return []string{fmt.Sprintf("site c's last report of its member is from %s", m.Observed.Format(time.RFC3339Nano))}, nil
		}
		return nil, nil
	})
	snap, err := site.NewStore(cli, l.Cluster()).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := snap.Assignments[svc.Name]; a.Site != "c" {
		return a.Op
	}
	to, why := failover.ChooseTarget(cfg, svc, snap, "c")
	if to == "" {
		t.Logf("%s stays stranded at c: %s", svc.Name, why)
		return ""
	}
	t.Logf("%s may move to %s now (%s): waiting for the coordinator to move it", svc.Name, to, why)
	var a site.Assignment
	waitUntil(ctx, t, cli, keys, svc.Name+" moves from c by itself", func() ([]string, error) {
		a = assignmentOf(ctx, t, cli, keys, svc.Name)
		if a.Site == "c" {
			return []string{svc.Name + " is still at c"}, nil
		}
		return nil, nil
	})
	return a.Op
}

// statusText is what `zdt status` shows people.
func statusText(ctx context.Context, t *testing.T, zdt string, l *lab.Lab) string {
	t.Helper()
	stdout, stderr, _ := runZDT(ctx, t, zdt, "status", "--config", l.ConfigPath())
	return stdout + stderr
}

// stepContext bounds one step of a test.
func stepContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// pollUntil checks every 100 ms, until check finds nothing wrong or ctx ends:
// for what is not in etcd (a server, a controller's /healthz), or while etcd
// has no quorum.
func pollUntil(ctx context.Context, t *testing.T, what string, check func() (wrong string)) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		wrong := check()
		if wrong == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v; still: %s", what, ctx.Err(), wrong)
		case <-tick.C:
		}
	}
}

// waitAloneFenced waits until the site, left without a quorum, has fenced
// itself: its controller says self-fenced, and its server, still a
// primary, refuses a write.
func waitAloneFenced(ctx context.Context, t *testing.T, l *lab.Lab, name string) {
	t.Helper()
	pollUntil(ctx, t, "site "+name+" fences itself", func() string {
		h, err := l.Health(ctx, name)
		if err != nil {
			return err.Error()
		}
		if h.State != string(site.ControllerSelfFenced) {
			return fmt.Sprintf("its controller is %s", h.State)
		}
		return ""
	})
	conn, err := l.PostgresConnString(name)
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "site "+name+"'s primary refuses writes", func() string {
		return readOnlyPrimary(ctx, conn)
	})
}

// readOnlyPrimary says how the server is not a primary that refuses writes,
// "" when it is one.
func readOnlyPrimary(ctx context.Context, conn string) string {
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := pgx.Connect(qctx, conn)
	if err != nil {
		return err.Error()
	}
	defer c.Close(context.WithoutCancel(ctx))
	var recovery bool
	if err := c.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&recovery); err != nil {
		return err.Error()
	}
	if recovery {
		return "it is a standby, not a fenced primary"
	}
	_, err = c.Exec(qctx, "INSERT INTO lab_probe VALUES ('written while alone')")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return "it took a write"
	case errors.As(err, &pgErr) && pgErr.Code == "25006": // read_only_sql_transaction
		return ""
	}
	return "a write failed otherwise: " + err.Error()
}

// wantNoQuorum checks that zdt status, which needs a quorum of sites,
// fails and says why.
func wantNoQuorum(ctx context.Context, t *testing.T, zdt string, l *lab.Lab) {
	t.Helper()
	stdout, stderr, code := runZDT(ctx, t, zdt, "status", "--config", l.ConfigPath())
	if code != 1 || !strings.Contains(stderr, "quorum") {
		t.Errorf("zdt status without a quorum: exit %d; want 1, saying a quorum of sites is needed\n%s%s", code, stdout, stderr)
	}
}

// wantAssignedLocally checks, with a serializable read of the site's own
// etcd member (it needs no quorum), that the service is assigned where it
// was at the revision it was.
func wantAssignedLocally(ctx context.Context, t *testing.T, l *lab.Lab, keys site.Keys, member, service, at string, rev int64) {
	t.Helper()
	cli := etcdClient(t, l, member)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Get(rctx, keys.Assignment(service), clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("read %s's assignment from site %s's etcd member: %v", service, member, err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("site %s's etcd member has no assignment of %s", member, service)
	}
	var a site.Assignment
	if err := json.Unmarshal(resp.Kvs[0].Value, &a); err != nil {
		t.Fatal(err)
	}
	if a.Site != at || resp.Kvs[0].ModRevision != rev {
		t.Errorf("site %s's etcd member assigns %s to %s at revision %d; want %s at revision %d",
			member, service, a.Site, resp.Kvs[0].ModRevision, at, rev)
	}
}

// assignmentRev is the mod revision (the epoch) of the service's assignment.
func assignmentRev(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, service string) int64 {
	t.Helper()
	resp, err := cli.Get(ctx, keys.Assignment(service))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("service %s has no assignment", service)
	}
	return resp.Kvs[0].ModRevision
}

// keyExists says whether etcd holds the key.
func keyExists(ctx context.Context, cli *clientv3.Client, key string) (bool, error) {
	resp, err := cli.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, err
	}
	return resp.Count > 0, nil
}

// fenceOf is the site's fence record; the test fails if there is none.
func fenceOf(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, name string) site.Fence {
	t.Helper()
	return etcdValue[site.Fence](ctx, t, cli, keys.Fence(name), "site "+name+"'s fence")
}

// memberReportOf is the site's last report of its member of the group.
func memberReportOf(ctx context.Context, cli *clientv3.Client, keys site.Keys, name, group string) (site.MemberReport, error) {
	resp, err := cli.Get(ctx, keys.SiteReplication(name))
	if err != nil || len(resp.Kvs) == 0 {
		return site.MemberReport{}, errors.Join(err, fmt.Errorf("no replication report of site %s", name))
	}
	var r site.ReplicationReport
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return site.MemberReport{}, err
	}
	for _, m := range r.Members {
		if m.Group == group {
			return m, nil
		}
	}
	return site.MemberReport{}, fmt.Errorf("site %s does not report its member of group %s", name, group)
}

// opShown is the op as `zdt ops show ID -o json` shows it.
func opShown(t *testing.T, zdt string, l *lab.Lab, id string) site.Op {
	t.Helper()
	out := run(t, zdt, "ops", "show", id, "--config", l.ConfigPath(), "-o", "json")
	var v struct {
		Op *site.Op `json:"op"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Op == nil {
		t.Fatalf("zdt ops show %s -o json: %v\n%s", id, err, out)
	}
	return *v.Op
}

// opRequested is the part of what `zdt failover|failback|switchover -o json`
// prints that the test reads.
type opRequested struct {
	Blockers []string `json:"blockers"`
	Op       *site.Op `json:"op"`
}

// runZDT runs zdt and returns what it printed on stdout and stderr and its
// exit status, without judging them.
func runZDT(ctx context.Context, t *testing.T, zdt string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	cmd := exec.CommandContext(cctx, zdt, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("zdt %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// sitesAtOnce runs `zdt lab site NAME action` for every site at once.
func sitesAtOnce(t *testing.T, zdt string, l *lab.Lab, action string, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			out, err := exec.CommandContext(ctx, zdt, "lab", "site", name, action, "--dir", l.Dir()).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("zdt lab site %s %s: %w\n%s", name, action, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// memberDataDir is the data directory of the site's member of the group.
func memberDataDir(t *testing.T, cfg *config.Cluster, group, name string) string {
	t.Helper()
	i := slices.IndexFunc(cfg.Replication, func(g config.ReplicationGroup) bool { return g.Name == group })
	if i < 0 {
		t.Fatalf("no replication group %s in the config", group)
	}
	m, ok := cfg.Replication[i].Member(name)
	if !ok || m.DataDir == "" {
		t.Fatalf("group %s has no member with a data directory at site %s", group, name)
	}
	return m.DataDir
}

// wantRows checks that the site's server holds every row.
func (p *labPostgres) wantRows(ctx context.Context, t *testing.T, at string, rows []string) {
	t.Helper()
	for _, r := range rows {
		if n, err := p.count(ctx, at, r); err != nil || n != 1 {
			t.Errorf("site %s's server has %d rows %q (%v); want the acknowledged row", at, n, r, err)
		}
	}
}

// groupNamed is the status of the replication group, nil if not listed.
func (st labStatus) groupNamed(name string) *groupStatus {
	i := slices.IndexFunc(st.Replication, func(g groupStatus) bool { return g.Group == name })
	if i < 0 {
		return nil
	}
	return &st.Replication[i]
}

// wantServesNothing waits until the fenced site serves nothing: zdt
// status shows it fenced, announcing no prefix, its member a standby that
// takes no write, and (with libvirtd) its hosts report since revision
// fenced (its fence's: it was down from before then until it came back)
// lists no guest running.
func wantServesNothing(ctx context.Context, t *testing.T, cli *clientv3.Client, zdt string, l *lab.Lab, guests *labGuests, name string, fenced int64) {
	t.Helper()
	waitStatus(ctx, t, cli, zdt, l, "fenced site "+name+" serves nothing", func(st labStatus) []string {
		var wrong []string
		if s := st.site(name); s.State != "fenced" {
			wrong = append(wrong, fmt.Sprintf("site %s is %s", name, s.State))
		}
		var ann struct {
			Announcements []struct {
				Site   string `json:"site"`
				Prefix string `json:"prefix"`
			} `json:"announcements"`
		}
		if err := json.Unmarshal([]byte(st.raw), &ann); err != nil {
			return []string{err.Error()}
		}
		for _, a := range ann.Announcements {
			if a.Site == name {
				wrong = append(wrong, fmt.Sprintf("site %s announces %s", name, a.Prefix))
			}
		}
		for _, g := range st.Replication {
			for _, m := range g.Members {
				if m.Site == name && (m.Role != "standby" || m.Writable) {
					wrong = append(wrong, fmt.Sprintf("site %s's member of group %s is %s (writable %t): %s", name, g.Group, m.Role, m.Writable, m.Detail))
				}
			}
		}
		return wrong
	})
	guests.waitNoneRunningAt(ctx, t, cli, name, fenced)
}

// failBack fails the site back once it may be: until then zdt failback is
// refused, with the reasons, and asked again.
func failBack(ctx context.Context, t *testing.T, cli *clientv3.Client, keys site.Keys, zdt string, l *lab.Lab, name string) {
	t.Helper()
	status(t, zdt, l).wantSite(t, name, "fenced")
	waitUntil(ctx, t, cli, keys, "site "+name+" fails back", func() ([]string, error) {
		stdout, stderr, code := runZDT(ctx, t, zdt, "failback", "--site", name, "--config", l.ConfigPath(), "--wait", "--timeout", "30s")
		if code != 0 {
			return []string{fmt.Sprintf("zdt failback --site %s: exit %d\n%s%s", name, code, stdout, stderr)}, nil
		}
		return nil, nil
	})
}

// wantEvents checks that the site's controller wrote events of the kinds,
// in order, since the time, the last one's message holding last.
func wantEvents(t *testing.T, zdt string, l *lab.Lab, name string, since time.Time, kinds []string, last string) {
	t.Helper()
	out := run(t, zdt, "events", "--config", l.ConfigPath(), "--site", name, "--kind", strings.Join(kinds, ","),
		"--since", since.UTC().Format(time.RFC3339Nano), "--limit", "0", "-o", "json")
	var events []site.Event
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("zdt events -o json: %v\n%s", err, out)
	}
	next := 0
	for _, e := range events {
		if e.Site == name && next < len(kinds) && e.Kind == kinds[next] && (next < len(kinds)-1 || strings.Contains(e.Message, last)) {
			next++
		}
	}
	if next < len(kinds) {
		t.Errorf("site %s's events since %s lack %v (the last with %q):\n%s", name, since.Format(time.RFC3339Nano), kinds[next:], last, out)
	}
}
