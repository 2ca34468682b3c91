package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newFakeLab creates a lab on 127.0.<net>.11-13 whose controllers are this
// test binary in the given fake mode, and stops it when the test ends.
func newFakeLab(t *testing.T, net byte, mode string) *Lab {
	t.Helper()
	top := testTopology(net)
	l, err := Create(t.TempDir(), Options{Env: []string{fakeEnv + "=" + mode}, Topology: &top})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopFakeLab(t, l) })
	return l
}

func stopFakeLab(t *testing.T, l *Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Errorf("stop the lab: %v", err)
	}
}

func waitHealthy(t *testing.T, l *Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

// pids returns the pid of every running site.
func pids(t *testing.T, l *Lab) map[string]int {
	t.Helper()
	out := make(map[string]int)
	for _, name := range l.SiteNames() {
		if pid, ok := l.Running(name); ok {
			out[name] = pid
		}
	}
	return out
}

// checkGone checks that no process is left of the site's process group, not
// even a zombie: where the lab is the parent it must have reaped it.
func checkGone(t *testing.T, site string, pid int) {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		t.Errorf("site %s: process %d is still there: %s", site, pid, stat)
	}
}

func TestSiteLifecycle(t *testing.T) {
	t.Parallel()
	l := newFakeLab(t, 31, "up")
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, l)
	before := pids(t, l)
	if len(before) != 3 {
		t.Fatalf("running sites: %v; want a, b, c", before)
	}

	// a goes dark: killed, reaped, its pid file gone; the others stay healthy.
	if err := l.KillSite("a"); err != nil {
		t.Fatal(err)
	}
	checkGone(t, "a", before["a"])
	if _, err := os.Stat(filepath.Join(l.Dir(), "a", pidFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a's pid file after KillSite: %v; want it removed", err)
	}
	if err := l.KillSite("a"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("KillSite of a dead site = %v; want ErrNotRunning", err)
	}
	waitHealthy(t, l) // b and c

	// a comes back, with a new process; a second start is refused.
	if err := l.StartSite("a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.WaitAnswering(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	pid, ok := l.Running("a")
	if !ok || pid == before["a"] {
		t.Errorf("a after restart: pid %d, running %v; want a new process", pid, ok)
	}
	if err := l.StartSite("a"); !errors.Is(err, ErrRunning) {
		t.Errorf("StartSite of a running site = %v; want ErrRunning", err)
	}
	if err := l.StartSite("x"); err == nil || !strings.Contains(err.Error(), "a, b, c") {
		t.Errorf("StartSite(x) = %v; want an error that lists the sites", err)
	}

	// Stop: every process gone, every pid file removed.
	after := pids(t, l)
	stopFakeLab(t, l)
	for site, pid := range after {
		checkGone(t, site, pid)
		if _, err := os.Stat(filepath.Join(l.Dir(), site, pidFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("site %s's pid file after Stop: %v; want it removed", site, err)
		}
	}
	log, err := os.ReadFile(l.LogPath("a"))
	if err != nil || strings.Count(string(log), "fake controller a: mode up") != 2 {
		t.Errorf("a's controller.log (%v) should show both runs:\n%s", err, log)
	}
}

// TestOpenTakesOverRunningLab drives a lab another Lab value started, as
// `zdt lab site` and `zdt lab stop` do with a detached lab.
func TestOpenTakesOverRunningLab(t *testing.T) {
	t.Parallel()
	started := newFakeLab(t, 32, "up")
	if err := started.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, started)
	before := pids(t, started)

	l, err := Open(started.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(t, l); len(got) != 3 {
		t.Fatalf("Open sees running sites %v; want a, b, c", got)
	}
	if err := l.KillSite("b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := started.Running("b"); ok {
		t.Error("b still runs after KillSite")
	}
	stopFakeLab(t, l)
	for site, pid := range before {
		if _, ok := started.Running(site); ok {
			t.Errorf("site %s (pid %d) still runs after Stop", site, pid)
		}
	}
	// started is their parent: it reaps them.
	stopFakeLab(t, started)
	for site, pid := range before {
		checkGone(t, site, pid)
	}
}

func TestCreateRefusesRunningLab(t *testing.T) {
	t.Parallel()
	l := newFakeLab(t, 33, "up")
	if err := l.StartSite("b"); err != nil {
		t.Fatal(err)
	}
	pid, _ := l.Running("b")
	stale := filepath.Join(l.Dir(), "b", "etcd", "member")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}

	_, err := Create(l.Dir(), Options{Topology: ptr(testTopology(33))})
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("Create over a running lab = %v; want ErrRunning", err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", pid), "zdt lab stop --dir " + l.Dir()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Create's error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("the refused Create touched b's etcd data: %v", err)
	}

	// Once stopped, the lab is created afresh: new etcd data, old logs kept.
	stopFakeLab(t, l)
	if _, err := Create(l.Dir(), Options{Topology: ptr(testTopology(33))}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b's old etcd data after Create: %v; want it wiped", err)
	}
	if _, err := os.Stat(l.LogPath("b")); err != nil {
		t.Errorf("b's log after Create: %v; want it kept", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateRefusesOtherDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, Options{}); err == nil || !strings.Contains(err.Error(), "holds no zdt lab") {
		t.Errorf("Create in a directory of other files = %v; want a refusal", err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a zdt lab") {
		t.Errorf("Open of a directory of other files = %v; want a refusal", err)
	}
}

// TestRunningGuardsAgainstPIDReuse: a pid file that names some other
// process (the pid was reused) or garbage does not make a site run.
func TestRunningGuardsAgainstPIDReuse(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), Options{Binary: "unused", Topology: ptr(testTopology(34))})
	if err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleep.Process.Kill()
		_ = sleep.Wait()
	})
	siteDir := filepath.Join(l.Dir(), "a")
	if err := os.MkdirAll(siteDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{fmt.Sprint(sleep.Process.Pid), fmt.Sprint(os.Getpid()), "nonsense", "-1"} {
		if err := os.WriteFile(filepath.Join(siteDir, pidFileName), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if pid, ok := l.Running("a"); ok {
			t.Errorf("pid file %q: site a runs as pid %d; want not running", content, pid)
		}
		if err := l.KillSite("a"); !errors.Is(err, ErrNotRunning) {
			t.Errorf("pid file %q: KillSite = %v; want ErrNotRunning", content, err)
		}
	}
	if hasExited(sleep.Process.Pid) {
		t.Error("KillSite killed a process that is not the site's controller")
	}
}

func TestFlagValue(t *testing.T) {
	t.Parallel()
	args := []string{"controller", "--config", "/x/zdt.yaml", "--site=b"}
	if got := flagValue(args, "--config"); got != "/x/zdt.yaml" {
		t.Errorf("--config = %q", got)
	}
	if got := flagValue(args, "--site"); got != "b" {
		t.Errorf("--site = %q", got)
	}
	if got := flagValue(args, "--embed-etcd"); got != "" {
		t.Errorf("--embed-etcd = %q; want none", got)
	}
}

func TestWaitHealthyNamesDeadSite(t *testing.T) {
	t.Parallel()
	l := newFakeLab(t, 35, "up,b=die")
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := l.WaitHealthy(ctx)
	if err == nil {
		t.Fatal("WaitHealthy = nil with site b dead")
	}
	for _, want := range []string{"site b", "exit status 3", l.LogPath("b"), "cannot open the etcd data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHealthy's error does not say %q:\n%v", want, err)
		}
	}
	if ctx.Err() != nil {
		t.Error("WaitHealthy waited for its deadline; it should fail as soon as b dies")
	}
}

func TestWaitHealthyTimesOut(t *testing.T) {
	t.Parallel()
	l := newFakeLab(t, 36, "up,c=joining")
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	started, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range l.SiteNames() {
		if err := l.WaitAnswering(started, name); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := l.WaitHealthy(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHealthy = %v; want a deadline error", err)
	}
	for _, want := range []string{"site c", "503", `"state":"joining"`, "fake controller c"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHealthy's error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "site a") {
		t.Errorf("WaitHealthy's error blames healthy site a:\n%v", err)
	}
}

// TestStopKillsStubbornSites: a controller that ignores SIGTERM is killed
// once Stop's context ends.
func TestStopKillsStubbornSites(t *testing.T) {
	t.Parallel()
	l := newFakeLab(t, 37, "stubborn")
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, l)
	before := pids(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop took %s; its context allowed 300ms of grace", took)
	}
	for site, pid := range before {
		checkGone(t, site, pid)
	}
}
