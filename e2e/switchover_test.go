package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site"
)

// TestLabPlannedOps runs the planned ops against a lab.
//
// A switchover whose target cannot be promoted rolls back. Site c's standby
// keeps streaming but its WAL replay is stopped (SIGSTOP of its startup
// process), so after b's primary is fenced c never reaches b's last
// position and is not promoted; when --promote-within runs out the op
// assigns db to b again, b's primary lifts its fence and takes writes, and
// the op fails saying why. Nothing b committed is lost, and c catches up
// once its replay resumes.
//
// Then b is evacuated: db moves to c (its standby promoted), b's guests move
// off it (with libvirtd), and b is shown drained; undrain makes it a
// candidate again and moves nothing. Last, db is switched over four times
// under a write every 10 ms, each losing nothing.
func TestLabPlannedOps(t *testing.T) {
	zdt, l := startLab(t, "127.0.4.0")
	pg := followPostgres(t, zdt, l)
	if pg.group == "" {
		t.Skip("needs PostgreSQL (installed by make test)")
	}
	guests := followGuests(t, zdt, l)
	keys := site.NewKeys(l.Cluster())
	cli := etcdClient(t, l, "a", "b", "c")
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()
	waitKey(ctx, t, cli, keys.Assignment("db"), func(int64) bool { return true })
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	pg.write(ctx, t, "b", "before")
	pg.waitRow(ctx, t, "c", "before")

	resume := stopLabReplay(t, l, "c")
	out, err := exec.CommandContext(ctx, zdt, "switchover", "--service", "db", "--to", "c", "--promote-within", "5s",
		"--config", l.ConfigPath(), "--wait", "--timeout", "60s").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("zdt switchover to a site that cannot promote: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"await-primary", "failed", "is not a writable primary after 5s", "rolled back, db assigned to site b again"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("zdt switchover output lacks %q:\n%s", want, out)
		}
	}
	st := status(t, zdt, l)
	st.wantService(t, "db", "b")
	pg.waitRoles(ctx, t, cli, map[string]string{"b": "primary", "a": "standby", "c": "standby"})
	pg.write(ctx, t, "b", "after the rollback")
	resume()
	pg.waitRow(ctx, t, "c", "before")
	pg.waitRow(ctx, t, "c", "after the rollback")
	pg.waitRow(ctx, t, "a", "after the rollback")

	// Evacuate b.
	guests.waitAllRunning(ctx, t, cli)
	before, err := revision(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	out = []byte(run(t, zdt, "evacuate", "--site", "b", "--reason", "test", "--config", l.ConfigPath(), "--wait", "--timeout", "90s"))
	if !strings.Contains(string(out), "succeeded") {
		t.Fatalf("zdt evacuate --site b:\n%s", out)
	}
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})
	pg.waitRow(ctx, t, "c", "after the rollback")
	guests.waitGoldElsewhere(ctx, t, cli, "b")
	guests.waitNoneRunningAt(ctx, t, cli, "b", before)
	st = status(t, zdt, l)
	st.wantService(t, "db", "c")
	st.wantSite(t, "b", "up")
	if d := st.site("b").Drain; d == nil || d.Reason != "test" {
		t.Errorf("site b's drain in zdt status = %+v; want drained for test", d)
	}
	if out, err := exec.CommandContext(ctx, zdt, "switchover", "--service", "db", "--to", "b", "--config", l.ConfigPath(), "--dry-run").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "site b is drained for maintenance: undrain it first") {
		t.Errorf("a switchover to a drained site: %v, want it refused as drained\n%s", err, out)
	}
	// A drill cannot switch over to a drained site until someone undrains
	// it: it says so at once, not after its --timeout.
	if stdout, stderr, code := runZDT(ctx, t, zdt, "drill", "switchover", "--site", "c", "--to", "b", "--config", l.ConfigPath(), "--timeout", "3m"); code != 1 ||
		!strings.Contains(stderr, "site b is drained for maintenance: undrain it first (zdt undrain --site b)") {
		t.Errorf("a switchover drill to a drained site: exit %d, want 1 and that it is drained\n%s%s", code, stdout, stderr)
	}
	run(t, zdt, "undrain", "--site", "b", "--config", l.ConfigPath(), "--wait", "--timeout", "30s")
	st = status(t, zdt, l)
	if d := st.site("b").Drain; d != nil {
		t.Errorf("site b still drained after zdt undrain: %+v", d)
	}
	st.wantService(t, "db", "c")

	// Switchovers under a write load, back and forth: each loses nothing
	// and logs its figures (scripts/soak-switchover sums them up).
	pg.waitRoles(ctx, t, cli, map[string]string{"c": "primary", "a": "standby", "b": "standby"})
	for _, to := range []string{"b", "c", "b", "c"} {
		pg.switchBack(ctx, t, cli, "db", to)
		pg.waitRoles(ctx, t, cli, roles(l.SiteNames(), to))
	}
}

// stopLabReplay stops the WAL replay of a lab site's PostgreSQL standby
// (SIGSTOP to its startup process; its WAL receiver goes on streaming)
// until the returned function or the test's end resumes it.
func stopLabReplay(t *testing.T, l *lab.Lab, siteName string) func() {
	t.Helper()
	postmaster, ok := l.PostgresRunning(siteName)
	if !ok {
		t.Fatalf("site %s's PostgreSQL does not run", siteName)
	}
	// "postgres: startup …", or "postgres: NAME: startup …" with a
	// cluster_name.
	pid := childNamed(t, postmaster, "postgres: ", " startup")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume := func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

// childNamed finds the child of parent whose command line starts with
// prefix and holds word.
func childNamed(t *testing.T, parent int, prefix, word string) int {
	t.Helper()
	found := 0
	err := eachProcess(func(pid int, _ string, fields []string) {
		if found != 0 || len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			return
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if strings.HasPrefix(string(cmd), prefix) && strings.Contains(string(cmd), word) {
			found = pid
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatalf("no process %q…%q under pid %d", prefix, word, parent)
	}
	return found
}
