package lab

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// The faults of one site's controller alone: its PostgreSQL server and its
// libvirtd live on, as they do on their own hosts in production. A crashed
// or frozen controller fences nothing itself, so these are what the
// coordinator's outside fence is for.

// CrashController kills the site's controller (and the etcd member inside
// it) with SIGKILL: no graceful path runs, nothing is fenced or stopped on
// the way out. The site's PostgreSQL server and libvirtd keep running.
// ErrNotRunning if the controller does not run.
func (l *Lab) CrashController(site string) (pid int, err error) {
	if _, err := l.Site(site); err != nil {
		return 0, err
	}
	p := controllerOf(site)
	pid, ok := l.running(p)
	if !ok {
		return 0, fmt.Errorf("the controller of site %s is %w", site, ErrNotRunning)
	}
	if err := syscall.Kill(p.group(pid), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return pid, fmt.Errorf("kill %s (process group %d): %w", p, pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if left := l.waitGone(ctx, []victim{{p, pid}}); len(left) > 0 {
		return pid, fmt.Errorf("%s (pid %d) is still there %s after SIGKILL: look at it with `ps -o pid,pgid,stat,cmd -p %d`", p, pid, killWait, pid)
	}
	return pid, l.forget(p)
}

// FreezeController stops the site's controller with SIGSTOP, as a hung
// kernel call or a stalled VM would: it answers nothing and renews nothing,
// and its BGP sessions and etcd member freeze with it. ThawController lets
// it go on.
func (l *Lab) FreezeController(site string) (pid int, err error) {
	return l.signalController(site, syscall.SIGSTOP)
}

// ThawController continues a frozen controller with SIGCONT.
func (l *Lab) ThawController(site string) (pid int, err error) {
	return l.signalController(site, syscall.SIGCONT)
}

func (l *Lab) signalController(site string, sig syscall.Signal) (int, error) {
	if _, err := l.Site(site); err != nil {
		return 0, err
	}
	p := controllerOf(site)
	pid, ok := l.running(p)
	if !ok {
		return 0, fmt.Errorf("the controller of site %s is %w", site, ErrNotRunning)
	}
	if err := syscall.Kill(p.group(pid), sig); err != nil {
		return pid, fmt.Errorf("signal %v to %s (process group %d): %w", sig, p, pid, err)
	}
	return pid, nil
}
