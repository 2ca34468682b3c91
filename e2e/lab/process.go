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
)

const (
	// stopGrace bounds how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// killWait bounds how long a SIGKILLed process may take to go.
	killWait = 5 * time.Second
	// pollInterval paces the checks for a process that is not our child.
	pollInterval = 20 * time.Millisecond
)

// child is a controller this Lab started. Its goroutine waits for the
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
func (l *Lab) Running(site string) (pid int, ok bool) {
	pid, err := readPIDFile(filepath.Join(l.dir, site))
	if err != nil {
		return 0, false
	}
	if c := l.child(site); c != nil && c.pid == pid {
		// Ours: trust the wait, not /proc, which shows no command line for
		// a moment while the process execs.
		return pid, !c.exited()
	}
	return pid, isController(pid, l.ConfigPath(), site)
}

func (l *Lab) child(site string) *child {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.children[site]
}

// StartAll starts every site that does not run yet.
func (l *Lab) StartAll() error {
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

// StartSite starts the site's controller, with the etcd data the site has,
// in its own process group, its output appended to its controller.log. It
// refuses (ErrRunning) if the site already runs.
func (l *Lab) StartSite(site string) error {
	if _, err := l.Site(site); err != nil {
		return err
	}
	if pid, ok := l.Running(site); ok {
		return fmt.Errorf("site %s is %w as pid %d: take it down first with `zdt lab site %s down --dir %s`",
			site, ErrRunning, pid, site, l.dir)
	}
	siteDir := filepath.Join(l.dir, site)
	if err := os.MkdirAll(siteDir, 0o755); err != nil {
		return fmt.Errorf("start site %s: %w", site, err)
	}
	logFile, err := os.OpenFile(l.LogPath(site), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("start site %s: %w", site, err)
	}
	defer logFile.Close() // the controller has its own copy

	args := []string{"controller", "--config", l.ConfigPath(), "--site", site, "--embed-etcd", filepath.Join(siteDir, "etcd")}
	fmt.Fprintf(logFile, "\n=== zdt lab %s: %s %s\n", time.Now().Format(time.RFC3339), l.binary, strings.Join(args, " "))
	cmd := exec.Command(l.binary, args...)
	cmd.Dir = l.dir
	cmd.Env = append(os.Environ(), l.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: Ctrl-C on the terminal does not reach it, it
	// outlives a detached `zdt lab`, and it is killed as a whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start site %s with %s: %w", site, l.binary, err)
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	l.mu.Lock()
	l.children[site] = c
	l.mu.Unlock()

	if err := writePIDFile(siteDir, c.pid); err != nil {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-c.done
		return fmt.Errorf("start site %s: %w", site, err)
	}
	return nil
}

// KillSite makes a site go dark: SIGKILL to its controller's process
// group, without warning. It fails with ErrNotRunning if the site does not
// run.
func (l *Lab) KillSite(site string) error {
	if _, err := l.Site(site); err != nil {
		return err
	}
	siteDir := filepath.Join(l.dir, site)
	pid, ok := l.Running(site)
	if !ok {
		if err := removePIDFile(siteDir); err != nil {
			return fmt.Errorf("site %s: %w", site, err)
		}
		return fmt.Errorf("site %s is %w", site, ErrNotRunning)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill site %s (process group %d): %w", site, pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if left := l.waitGone(ctx, []victim{{site, pid}}); len(left) > 0 {
		return fmt.Errorf("site %s (pid %d) is still there %s after SIGKILL: look at it with `ps -o pid,pgid,stat,cmd -p %d`",
			site, pid, killWait, pid)
	}
	return removePIDFile(siteDir)
}

// Stop stops every site: SIGTERM to each process group, a wait bounded by
// ctx and 10 s, then SIGKILL to what is left. It removes the pid files.
func (l *Lab) Stop(ctx context.Context) error {
	var victims []victim
	for _, s := range l.sites {
		pid, ok := l.Running(s.Name)
		if !ok {
			continue
		}
		if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("stop site %s (process group %d): %w", s.Name, pid, err)
		}
		victims = append(victims, victim{s.Name, pid})
	}
	graceCtx, cancel := context.WithTimeout(ctx, stopGrace)
	left := l.waitGone(graceCtx, victims)
	cancel()
	for _, v := range left {
		if err := syscall.Kill(-v.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill site %s (process group %d): %w", v.site, v.pid, err)
		}
	}
	killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	l.waitGone(killCtx, left)
	l.reapChildren(killCtx)

	var errs []error
	for _, s := range l.sites {
		if pid, ok := l.Running(s.Name); ok {
			errs = append(errs, fmt.Errorf("site %s (pid %d) is still running after SIGKILL: look at it with `ps -o pid,pgid,stat,cmd -p %d`", s.Name, pid, pid))
			continue
		}
		if err := removePIDFile(filepath.Join(l.dir, s.Name)); err != nil {
			errs = append(errs, fmt.Errorf("site %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reapChildren waits, bounded by ctx, until every controller this Lab
// started that no longer runs has been reaped, even one another Lab (a
// `zdt lab stop`) stopped.
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

// victim is a controller being stopped.
type victim struct {
	site string
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
	if c := l.child(v.site); c != nil && c.pid == v.pid {
		return !c.exited()
	}
	return isController(v.pid, l.ConfigPath(), v.site)
}

// exitStatus describes how a site's controller ended, if this Lab started
// it and knows. It gives a child that just died a moment to be reaped.
func (l *Lab) exitStatus(site string, pid int) string {
	c := l.child(site)
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
