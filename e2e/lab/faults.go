package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	p, pid, err := l.runningController(site)
	if err != nil {
		return 0, err
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

// HangSite stops the whole site with SIGSTOP: its controller, its libvirtd
// and its PostgreSQL server. They keep their sockets, so connections are
// accepted and then nothing answers, as at a site whose hosts hang or whose
// network blackholes: what the outside fence must give up on within its
// limit. ThawSite continues them all.
func (l *Lab) HangSite(site string) (pids []int, err error) {
	return l.signalSite(site, syscall.SIGSTOP, controllerOf(site), libvirtdOf(site), postgresOf(site), responderOf(site))
}

// ThawSite continues whatever of the site was stopped (HangSite,
// FreezeController) with SIGCONT: its controller first, so that it finds
// its fence and fences its members as soon as they answer again, then its
// libvirtd and its PostgreSQL server.
func (l *Lab) ThawSite(site string) (pids []int, err error) {
	return l.signalSite(site, syscall.SIGCONT, controllerOf(site), libvirtdOf(site), postgresOf(site), responderOf(site))
}

func (l *Lab) signalController(site string, sig syscall.Signal) (int, error) {
	pids, err := l.signalSite(site, sig, controllerOf(site))
	if len(pids) == 0 {
		return 0, err
	}
	return pids[0], err
}

// signalSite sends sig to each of the site's processes that runs (a
// process group each); ErrNotRunning if none does.
func (l *Lab) signalSite(site string, sig syscall.Signal, procs ...proc) ([]int, error) {
	if _, err := l.Site(site); err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		pid, ok := l.running(p)
		if !ok {
			continue
		}
		if err := syscall.Kill(p.group(pid), sig); err != nil {
			return pids, fmt.Errorf("signal %v to %s (process group %d): %w", sig, p, pid, err)
		}
		pids = append(pids, pid)
		if p.role != postgresRole {
			continue
		}
		// A postmaster's backends, which serve the sessions, are its
		// children, each in a process group of its own.
		for _, child := range childrenOf(pid) {
			if err := syscall.Kill(child, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return pids, fmt.Errorf("signal %v to %s's child %d: %w", sig, p, child, err)
			}
		}
	}
	if len(pids) == 0 {
		if len(procs) == 1 {
			return nil, fmt.Errorf("the controller of site %s is %w", site, ErrNotRunning)
		}
		return nil, fmt.Errorf("site %s is %w", site, ErrNotRunning)
	}
	return pids, nil
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) >= 2 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// DumpController ends the site's controller with SIGQUIT, on which the Go
// runtime writes every goroutine's stack to the controller's log before it
// exits: what a test that failed shows of a controller that may be stuck.
// It returns the log's size before the signal, where the stacks begin.
// ErrNotRunning if the controller does not run; a controller that is
// stopped (SIGSTOP) is continued first.
func (l *Lab) DumpController(site string) (from int64, err error) {
	p, pid, err := l.runningController(site)
	if err != nil {
		return 0, err
	}
	if fi, err := os.Stat(l.LogPath(site)); err == nil {
		from = fi.Size()
	}
	// To the controller alone: a SIGQUIT to its group would end the
	// processes it started the same way.
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGCONT} {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return from, fmt.Errorf("signal %v to %s (pid %d): %w", sig, p, pid, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if left := l.waitGone(ctx, []victim{{p, pid}}); len(left) > 0 {
		return from, fmt.Errorf("%s (pid %d) is still there %s after SIGQUIT", p, pid, killWait)
	}
	return from, l.forget(p)
}

// runningController is the site's controller and its pid; ErrNotRunning
// if it does not run.
func (l *Lab) runningController(site string) (proc, int, error) {
	if _, err := l.Site(site); err != nil {
		return proc{}, 0, err
	}
	p := controllerOf(site)
	pid, ok := l.running(p)
	if !ok {
		return p, 0, fmt.Errorf("the controller of site %s is %w", site, ErrNotRunning)
	}
	return p, pid, nil
}
