package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needLibvirtd skips the test when libvirtd is not installed, or fails it
// when CI=true.
func needLibvirtd(t *testing.T) {
	t.Helper()
	if _, err := FindLibvirtd(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skipf("%v; skipping", err)
	}
}

// newFakeLabWith is newFakeLab with the given libvirtd.
func newFakeLabWith(t *testing.T, net byte, mode, libvirtd string) *Lab {
	t.Helper()
	top := testTopology(net)
	l, err := Create(t.TempDir(), Options{Env: []string{fakeEnv + "=" + mode}, Topology: &top, Libvirtd: libvirtd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopFakeLab(t, l) })
	return l
}

// fakeLibvirtd writes a shell script that stands in for libvirtd.
func fakeLibvirtd(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "libvirtd")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func libvirtdPIDs(l *Lab) map[string]int {
	out := make(map[string]int)
	for _, name := range l.SiteNames() {
		if pid, ok := l.LibvirtdRunning(name); ok {
			out[name] = pid
		}
	}
	return out
}

// TestLibvirtdLifecycle runs real libvirtds with fake controllers: one per
// site, in its own process group, answering on the socket the config
// names; killed with its site, started again with it, stopped with the lab.
func TestLibvirtdLifecycle(t *testing.T) {
	t.Parallel()
	needLibvirtd(t)
	l := newFakeLab(t, 38, "up")
	if !l.HasHypervisors() {
		t.Fatal("a lab created with libvirtd installed has no hypervisors")
	}
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, l) // waits for the libvirtds too
	before := libvirtdPIDs(l)
	if len(before) != 3 {
		t.Fatalf("running libvirtds: %v; want one per site", before)
	}
	for site, pid := range before {
		if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
			t.Errorf("site %s's libvirtd (pid %d) is in process group %d (%v); want its own", site, pid, pgid, err)
		}
		if err := handshake(t.Context(), l.libvirtdSocket(site)); err != nil {
			t.Errorf("site %s's libvirtd does not answer: %v", site, err)
		}
	}

	// a goes dark: its libvirtd dies with its controller.
	if err := l.KillSite("a"); err != nil {
		t.Fatal(err)
	}
	checkGone(t, "a", before["a"])
	if _, ok := l.LibvirtdRunning("a"); ok {
		t.Error("a's libvirtd runs after KillSite")
	}
	if _, err := os.Stat(filepath.Join(libvirtDir(l.Dir(), "a"), pidFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a's libvirtd pid file after KillSite: %v; want it removed", err)
	}
	if err := handshake(t.Context(), l.libvirtdSocket("b")); err != nil {
		t.Errorf("b's libvirtd after a went dark: %v", err)
	}

	// a comes back with a new libvirtd.
	if err := l.StartSite("a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := l.WaitAnswering(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if pid, ok := l.LibvirtdRunning("a"); !ok || pid == before["a"] {
		t.Errorf("a's libvirtd after restart: pid %d, running %v; want a new process", pid, ok)
	}
	if err := handshake(t.Context(), l.libvirtdSocket("a")); err != nil {
		t.Errorf("a's new libvirtd does not answer: %v", err)
	}

	// Stop: no libvirtd left, no pid file.
	after := libvirtdPIDs(l)
	stopFakeLab(t, l)
	for site, pid := range after {
		checkGone(t, site, pid)
		if _, err := os.Stat(filepath.Join(libvirtDir(l.Dir(), site), pidFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("site %s's libvirtd pid file after Stop: %v; want it removed", site, err)
		}
	}
	log, err := os.ReadFile(l.LibvirtdLogPath("a"))
	if err != nil || strings.Count(string(log), "=== zdt lab") != 2 {
		t.Errorf("a's libvirtd.log (%v) should show both runs:\n%s", err, log)
	}
}

func TestWaitHealthyNamesDeadLibvirtd(t *testing.T) {
	t.Parallel()
	l := newFakeLabWith(t, 39, "up", fakeLibvirtd(t, `echo "fake libvirtd: cannot bind $2" >&2; exit 4`))
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := l.WaitHealthy(ctx)
	if err == nil {
		t.Fatal("WaitHealthy = nil with every libvirtd dead")
	}
	for _, want := range []string{"its libvirtd", "exit status 4", "libvirtd.log", "fake libvirtd: cannot bind"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHealthy's error does not say %q:\n%v", want, err)
		}
	}
	if ctx.Err() != nil {
		t.Error("WaitHealthy waited for its deadline; it should fail as soon as a libvirtd dies")
	}
}

func TestWaitHealthyWaitsForLibvirtd(t *testing.T) {
	t.Parallel()
	l := newFakeLabWith(t, 40, "up", fakeLibvirtd(t, `echo "fake libvirtd: not answering"; exec sleep 600`))
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	// Each wait runs out; the first ones may while the fake controllers
	// are not listening yet (a loaded machine), and then name them: wait
	// again, bounded, until what is left is the libvirtd.
	var err error
	for start := time.Now(); ; {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err = l.WaitHealthy(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitHealthy = %v; want a deadline error", err)
		}
		if strings.Contains(err.Error(), "libvirtd does not answer") || time.Since(start) > 30*time.Second {
			break
		}
	}
	for _, want := range []string{"site a's libvirtd does not answer", l.libvirtdSocket("a"), l.LibvirtdLogPath("a"), "fake libvirtd: not answering"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitHealthy's error does not say %q:\n%v", want, err)
		}
	}
	// Stop takes the libvirtds, which never answered, too.
	pids := libvirtdPIDs(l)
	if len(pids) != 3 {
		t.Fatalf("running libvirtds: %v; want 3", pids)
	}
	stopFakeLab(t, l)
	for site, pid := range pids {
		checkGone(t, site, pid)
	}
}

func TestStartSiteWithoutLibvirtd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Create(dir, withLibvirtd(t)); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, withoutLibvirtd(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartSite("a"); !errors.Is(err, ErrNoLibvirtd) || !strings.Contains(err.Error(), InstallLibvirtd) {
		t.Errorf("StartSite without libvirtd = %v; want an error that says %q", err, InstallLibvirtd)
	}
	if _, ok := l.Running("a"); ok {
		t.Error("the controller of a was started without its libvirtd")
	}
}
