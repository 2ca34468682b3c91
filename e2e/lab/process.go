package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zdt-project/zdt/replication/postgres"
)

const (
	// stopGrace bounds how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// killWait bounds how long a SIGKILLed process may take to go.
	killWait = 5 * time.Second
	// pollInterval paces the checks for a process that is not our child.
	pollInterval = 20 * time.Millisecond
)

// role is what a process of the lab does.
type role int

const (
	controllerRole role = iota // zdt controller, with the site's etcd member
	libvirtdRole               // the libvirtd that serves the site's hypervisor
	observerRole               // zdt observer, the lab's one route observer (no site)
	postgresRole               // the postmaster of the site's PostgreSQL server
	responderRole              // the site's service responder (in namespaces)
	zebraRole                  // the upstream router's zebra (in namespaces; no site)
	bgpdRole                   // the upstream router's bgpd
	switchRole                 // the fabric's switch (in namespaces; no site)
)

// proc is one process of the lab: a site's controller, libvirtd or
// PostgreSQL server, or the lab's route observer.
type proc struct {
	site string
	role role
}

func (p proc) String() string {
	switch p.role {
	case libvirtdRole:
		return "site " + p.site + "'s libvirtd"
	case observerRole:
		return "the route observer"
	case postgresRole:
		return "site " + p.site + "'s PostgreSQL"
	case responderRole:
		return "site " + p.site + "'s service responder"
	case zebraRole:
		return "the upstream router's zebra"
	case bgpdRole:
		return "the upstream router's bgpd"
	case switchRole:
		return "the fabric's switch"
	}
	return "site " + p.site + "'s controller"
}

func controllerOf(site string) proc { return proc{site, controllerRole} }
func libvirtdOf(site string) proc   { return proc{site, libvirtdRole} }
func postgresOf(site string) proc   { return proc{site, postgresRole} }
func responderOf(site string) proc  { return proc{site, responderRole} }

var (
	observerProc = proc{role: observerRole}
	zebraProc    = proc{role: zebraRole}
	bgpdProc     = proc{role: bgpdRole}
)

// pidDir is the directory of the process's pid file: DIR/<site> for the
// controller, DIR/<site>/libvirt for the libvirtd, DIR/observer for the
// observer. A PostgreSQL server has none of ours: its postmaster.pid says
// which process it is, whoever started it (the lab, or the site's
// controller when it rewinds the server).
func (l *Lab) pidDir(p proc) string {
	switch p.role {
	case libvirtdRole:
		return libvirtDir(l.dir, p.site)
	case observerRole:
		return filepath.Join(l.dir, observerDirName)
	case responderRole:
		return filepath.Join(l.dir, p.site, "responder")
	case zebraRole:
		return filepath.Join(l.upstreamDir(), "zebra")
	case bgpdRole:
		return filepath.Join(l.upstreamDir(), "bgpd")
	case switchRole:
		return l.switchDir()
	}
	return filepath.Join(l.dir, p.site)
}

// logPath is the file the process writes its output to.
func (l *Lab) logPath(p proc) string {
	switch p.role {
	case libvirtdRole:
		return l.LibvirtdLogPath(p.site)
	case observerRole:
		return l.ObserverLogPath()
	case postgresRole:
		return l.PostgresLogPath(p.site)
	case responderRole:
		return filepath.Join(l.dir, p.site, "responder.log")
	case zebraRole:
		return filepath.Join(l.upstreamDir(), "zebra.out")
	case bgpdRole:
		return filepath.Join(l.upstreamDir(), "bgpd.out")
	case switchRole:
		return filepath.Join(l.switchDir(), switchLogName)
	}
	return l.LogPath(p.site)
}

// is reports whether pid is a live process playing p in this lab: the
// command line guards against a pid reused by another process.
func (l *Lab) is(p proc, pid int) bool {
	switch p.role {
	case libvirtdRole:
		return isLibvirtd(pid, filepath.Join(libvirtDir(l.dir, p.site), libvirtdConfName))
	case observerRole:
		return isObserver(pid, l.ConfigPath())
	case postgresRole:
		return isPostgres(pid, l.pgDataDir(p.site))
	case responderRole:
		return isResponder(pid, l.dir, p.site)
	case zebraRole:
		return isFRRDaemon(pid, filepath.Join(l.upstreamDir(), "zebra.conf"))
	case bgpdRole:
		return isFRRDaemon(pid, filepath.Join(l.upstreamDir(), "bgpd.conf"))
	case switchRole:
		return isSwitch(pid, l.dir)
	}
	return isController(pid, l.ConfigPath(), p.site)
}

// procs lists every process the lab may run, in the order they stop:
// the controllers first, which stop serving, then the others.
func (l *Lab) procs() [][]proc {
	var controllers, others []proc
	for _, s := range l.sites {
		controllers = append(controllers, controllerOf(s.Name))
		others = append(others, libvirtdOf(s.Name))
		if l.hasPostgres(s.Name) {
			others = append(others, postgresOf(s.Name))
		}
		if l.fab != nil {
			others = append(others, responderOf(s.Name))
		}
	}
	if l.observer {
		others = append(others, observerProc)
	}
	if l.fab != nil {
		others = append(others, bgpdProc, zebraProc, switchProc)
	}
	return [][]proc{controllers, others}
}

// forget removes the pid file of a process that no longer runs.
func (l *Lab) forget(p proc) error {
	if p.role == postgresRole {
		return nil // postmaster.pid is the server's own
	}
	return removePIDFile(l.pidDir(p))
}

// pgid is the process group the process leads: every process the lab
// starts, and a postmaster, which pg_ctl starts in a session of its own.
// A postmaster started otherwise is signalled alone; its children follow
// it.
func (p proc) group(pid int) int {
	if p.role == postgresRole {
		if g, err := syscall.Getpgid(pid); err != nil || g != pid {
			return pid
		}
	}
	return -pid
}

// stopSignal asks the process to stop, and whom to send it to: a
// postmaster alone, with SIGINT (a fast shutdown: SIGTERM would wait for
// its clients, and its children have their own meaning for signals);
// everything else as a process group, with SIGTERM.
func (p proc) stopSignal(pid int) (target int, sig syscall.Signal) {
	if p.role == postgresRole {
		return pid, syscall.SIGINT
	}
	return -pid, syscall.SIGTERM
}

// child is a process this Lab started. Its goroutine waits for the
// process, so it never lingers as a zombie; it ends when the process does.
type child struct {
	pid  int
	done chan struct{}
	err  error // how the process ended; read only after done is closed
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Running returns the pid of the site's controller and whether it runs: its
// pid file names a live process whose command line is this lab's controller
// for this site.
func (l *Lab) Running(site string) (pid int, ok bool) { return l.running(controllerOf(site)) }

// LibvirtdRunning returns the pid of the site's libvirtd and whether it
// runs, as Running does for its controller.
func (l *Lab) LibvirtdRunning(site string) (pid int, ok bool) { return l.running(libvirtdOf(site)) }

// ObserverRunning returns the pid of the lab's route observer and whether
// it runs.
func (l *Lab) ObserverRunning() (pid int, ok bool) { return l.running(observerProc) }

// PostgresRunning returns the pid of the postmaster of the site's
// PostgreSQL server and whether it runs, whoever started it.
func (l *Lab) PostgresRunning(site string) (pid int, ok bool) { return l.running(postgresOf(site)) }

func (l *Lab) running(p proc) (pid int, ok bool) {
	var err error
	if p.role == postgresRole {
		pid, err = postmasterPID(l.pgDataDir(p.site))
	} else {
		pid, err = readPIDFile(l.pidDir(p))
	}
	if err != nil {
		return 0, false
	}
	if c := l.child(p); c != nil && c.pid == pid {
		// Ours: trust the wait, not /proc, which shows no command line for
		// a moment while the process execs.
		return pid, !c.exited()
	}
	return pid, l.is(p, pid)
}

func (l *Lab) child(p proc) *child {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.children[p]
}

// StartAll starts what does not run yet: the route observer, the
// PostgreSQL servers (made first, when the lab is new), then every site.
func (l *Lab) StartAll() error {
	if l.fab != nil {
		if err := l.ensureFabric(); err != nil {
			return err
		}
		if err := l.startSwitch(); err != nil {
			return err
		}
		if err := l.startFRR(); err != nil {
			return err
		}
	}
	if _, ok := l.ObserverRunning(); l.observer && !ok {
		if err := l.startObserver(); err != nil {
			return err
		}
	}
	if l.pg != nil {
		if err := l.startPostgres(); err != nil {
			return err
		}
	}
	for _, s := range l.sites {
		if _, ok := l.Running(s.Name); ok {
			continue
		}
		if err := l.StartSite(s.Name); err != nil {
			return err
		}
	}
	return nil
}

// StartSite starts the site: its libvirtd, if it has hypervisors and the
// libvirtd does not run, then its controller, with the etcd data the site
// has. Each runs in its own process group, its output appended to its log.
// It refuses (ErrRunning) if the site's controller already runs. It does
// not start the site's PostgreSQL server: StartAll starts it with the lab;
// a site that comes back finds it dead, and its controller rewinds it and
// starts it as a standby.
func (l *Lab) StartSite(site string) error {
	if _, err := l.Site(site); err != nil {
		return err
	}
	if pid, ok := l.Running(site); ok {
		return fmt.Errorf("site %s is %w as pid %d: take it down first with `zdt lab site %s down --dir %s`",
			site, ErrRunning, pid, site, l.dir)
	}
	if l.fab != nil {
		if err := l.ensureFabric(); err != nil {
			return fmt.Errorf("start site %s: %w", site, err)
		}
		if err := l.startSwitch(); err != nil {
			return fmt.Errorf("start site %s: %w", site, err)
		}
		if err := l.HealSite(site); err != nil {
			return fmt.Errorf("start site %s: %w", site, err)
		}
	}
	if l.hasLibvirtd(site) {
		if _, ok := l.LibvirtdRunning(site); !ok {
			if err := l.startLibvirtd(site); err != nil {
				return err
			}
		}
	}
	siteDir := filepath.Join(l.dir, site)
	if err := os.MkdirAll(siteDir, 0o755); err != nil {
		return fmt.Errorf("start site %s: %w", site, err)
	}
	if _, ok := l.running(responderOf(site)); l.fab != nil && !ok {
		if err := l.startResponder(site); err != nil {
			return err
		}
	}
	args := []string{"controller", "--config", l.ConfigPath(), "--site", site, "--embed-etcd", filepath.Join(siteDir, "etcd")}
	args = append(args, l.ctlArgs...)
	return l.start(controllerOf(site), l.binary, args, l.env)
}

// startLibvirtd starts the site's libvirtd with its sockets where the
// config's host URI says. It does not wait for it to answer: WaitHealthy
// does, and the controller connects when it does.
func (l *Lab) startLibvirtd(site string) error {
	bin, err := (Options{Libvirtd: l.libvirtdOption}).libvirtdBinary()
	if err != nil {
		return fmt.Errorf("start the libvirtd of site %s: %w", site, err)
	}
	dir := libvirtDir(l.dir, site)
	args, err := prepareLibvirtd(dir, l.sockDirs[site])
	if err != nil {
		return fmt.Errorf("start the libvirtd of site %s: %w", site, err)
	}
	return l.start(libvirtdOf(site), bin, args, libvirtdEnv(dir))
}

// start runs a process in its own process group, its output appended to
// its log, and writes its pid file. Its own group: Ctrl-C on the terminal
// does not reach it, it outlives a detached `zdt lab`, and it is killed as
// a whole.
func (l *Lab) start(p proc, bin string, args, env []string) error {
	logFile, err := os.OpenFile(l.logPath(p), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p, err)
	}
	defer logFile.Close() // the process has its own copy

	fmt.Fprintf(logFile, "\n=== zdt lab %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = l.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := os.MkdirAll(l.pidDir(p), 0o755); err != nil {
		return fmt.Errorf("start %s: %w", p, err)
	}
	if err := l.inNS(p, cmd.Start); err != nil {
		return fmt.Errorf("start %s with %s: %w", p, bin, err)
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	l.mu.Lock()
	l.children[p] = c
	l.mu.Unlock()

	if err := writePIDFile(l.pidDir(p), c.pid); err != nil {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("start %s: %w", p, err)
	}
	return nil
}

// KillSite makes a site go dark: SIGKILL to its controller's process
// group, its libvirtd's and its PostgreSQL server's (and its responder's),
// without warning; the site's guests die with its libvirtd. In network
// namespaces its links are cut first. The route observer and the upstream
// router stay. It fails with ErrNotRunning if none of them runs.
func (l *Lab) KillSite(site string) error {
	if _, err := l.Site(site); err != nil {
		return err
	}
	if l.fab != nil && l.fab.Exists() {
		if err := l.CutSite(site); err != nil {
			return err
		}
	}
	var victims []victim
	for _, p := range []proc{controllerOf(site), libvirtdOf(site), postgresOf(site), responderOf(site)} {
		pid, ok := l.running(p)
		if !ok {
			if err := l.forget(p); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			continue
		}
		if err := syscall.Kill(p.group(pid), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %s (process group %d): %w", p, pid, err)
		}
		victims = append(victims, victim{p, pid})
	}
	if len(victims) == 0 {
		return fmt.Errorf("site %s is %w", site, ErrNotRunning)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if left := l.waitGone(ctx, victims); len(left) > 0 {
		return fmt.Errorf("%s (pid %d) is still there %s after SIGKILL: look at it with `ps -o pid,pgid,stat,cmd -p %d`",
			left[0].proc, left[0].pid, killWait, left[0].pid)
	}
	l.afterKill(victims)
	var errs []error
	for _, v := range victims {
		errs = append(errs, l.forget(v.proc))
	}
	return errors.Join(errs...)
}

// afterKill cleans up after killed PostgreSQL servers: it waits, for a
// moment, until each is reaped (pg_ctl takes a zombie for a running
// server, and a controller would not rewind it), and removes the shared
// memory segment a killed postmaster leaves behind.
func (l *Lab) afterKill(victims []victim) {
	for _, v := range victims {
		if v.proc.role != postgresRole {
			continue
		}
		waitReaped(v.pid, killWait)
		postgres.RemoveSharedMemory(l.pgDataDir(v.proc.site))
	}
}

// Stop stops the whole lab: first the controllers, which stop their
// guests and fence their PostgreSQL servers as they go, then the
// libvirtds, the PostgreSQL servers and the route observer. Each gets
// SIGTERM to its process group (a postmaster SIGINT, a fast shutdown), a
// wait bounded by ctx and 10 s, then SIGKILL. It removes the pid files.
func (l *Lab) Stop(ctx context.Context) error {
	var errs []error
	for _, procs := range l.procs() {
		errs = append(errs, l.stop(ctx, procs))
	}
	killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	l.reapChildren(killCtx)

	for _, procs := range l.procs() {
		for _, p := range procs {
			if pid, ok := l.running(p); ok {
				errs = append(errs, fmt.Errorf("%s (pid %d) is still running after SIGKILL: look at it with `ps -o pid,pgid,stat,cmd -p %d`", p, pid, pid))
				continue
			}
			if err := l.forget(p); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
			}
		}
	}
	for _, s := range l.sites {
		if _, ok := l.LibvirtdRunning(s.Name); !ok {
			errs = append(errs, removeSocketDir(l.dir, l.sockDirs[s.Name]))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return l.removeFabric()
}

// stop stops the processes that run: SIGTERM, a wait bounded by ctx and
// stopGrace, SIGKILL, a wait bounded by killWait.
func (l *Lab) stop(ctx context.Context, procs []proc) error {
	var victims []victim
	for _, p := range procs {
		pid, ok := l.running(p)
		if !ok {
			continue
		}
		target, sig := p.stopSignal(pid)
		if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop %s (pid %d): %w", p, pid, err)
		}
		victims = append(victims, victim{p, pid})
	}
	graceCtx, cancel := context.WithTimeout(ctx, stopGrace)
	left := l.waitGone(graceCtx, victims)
	cancel()
	for _, v := range left {
		if err := syscall.Kill(v.proc.group(v.pid), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %s (process group %d): %w", v.proc, v.pid, err)
		}
	}
	killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	l.waitGone(killCtx, left)
	l.afterKill(left)
	return nil
}

// reapChildren waits, bounded by ctx, until every process this Lab started
// that no longer runs has been reaped, even one another Lab (a `zdt lab
// stop`) stopped.
func (l *Lab) reapChildren(ctx context.Context) {
	l.mu.Lock()
	var dead []*child
	for _, c := range l.children {
		if hasExited(c.pid) {
			dead = append(dead, c)
		}
	}
	l.mu.Unlock()
	for _, c := range dead {
		select {
		case <-c.done:
		case <-ctx.Done():
			return
		}
	}
}

// victim is a process being stopped.
type victim struct {
	proc proc
	pid  int
}

// waitGone waits until every victim has gone (and is reaped, if it is our
// child) or ctx ends, and returns those still there.
func (l *Lab) waitGone(ctx context.Context, victims []victim) []victim {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		var left []victim
		for _, v := range victims {
			if l.alive(v) {
				left = append(left, v)
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return left
		case <-ticker.C:
		}
		victims = left
	}
}

// alive tells whether the victim still runs. For our own children that is
// until they are reaped; for others, until they die (a zombie no longer
// counts: its parent reaps it).
func (l *Lab) alive(v victim) bool {
	if c := l.child(v.proc); c != nil && c.pid == v.pid {
		return !c.exited()
	}
	return l.is(v.proc, v.pid)
}

// exitStatus describes how a process ended, if this Lab started it and
// knows. It gives a child that just died a moment to be reaped.
func (l *Lab) exitStatus(p proc, pid int) string {
	c := l.child(p)
	if c == nil || c.pid != pid {
		return "exited"
	}
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		return "exited"
	}
	if c.err == nil {
		return "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return "ended: " + ee.String()
	}
	return "ended: " + c.err.Error()
}
