package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// rewindMarker is the file in the data directory that says a pg_rewind
// began and has not finished. pg_rewind cut half-way leaves a data
// directory that PostgreSQL cannot be trusted to start from and that no
// later rewind repairs (pg_rewind's documentation: take a fresh copy), so
// a member whose data directory holds it is never started.
const rewindMarker = "zdt-rewind-unfinished"

// rewindTimeout bounds pg_rewind. Its caller's context does not: see
// rewind.
const rewindTimeout = time.Hour

// ErrRewindUnfinished says the member's data directory holds a pg_rewind
// that began and did not finish: the server is not started from it. Only a
// fresh copy of the primary's data directory (pg_basebackup) repairs it.
var ErrRewindUnfinished = errors.New("pg_rewind began to change the data directory and did not finish: the server is not started from it; " +
	"copy the data directory afresh from the primary (pg_basebackup), without " + rewindMarker)

// ErrRewindRunning says a pg_rewind that an earlier call began runs on: the
// data directory is left to it.
var ErrRewindRunning = errors.New("a pg_rewind begun by an earlier call still runs; the data directory is left to it")

// rewindRun is one pg_rewind and what happens right after it.
type rewindRun struct {
	done chan struct{} // closed once it ended and the files were put back
	out  string
	err  error
}

// rewind runs pg_rewind with args and then puts back the saved files, the
// marker among them. The marker is removed when pg_rewind finished, or
// failed before it began to rewind (what it says just before it reads the
// file lists and changes the data directory: "rewinding from last common
// checkpoint"; the crash recovery it may run before that is harmless to
// cut); once it finished, then runs.
//
// Neither ctx nor the caller's deadline cut pg_rewind: a self-fence cancels
// a pass at once, and a rewind killed half-way would leave a data directory
// only a fresh copy repairs. When ctx ends first, rewind returns ctx's
// error and pg_rewind runs on, bounded by rewindTimeout; until it ends the
// member refuses to start the server or rewind again (ErrRewindRunning),
// and afterwards its data directory is a stopped standby's, ready for the
// next Follow.
func (m *Member) rewind(ctx context.Context, saved savedFiles, then func() error, env []string, args ...string) (string, error) {
	run := &rewindRun{done: make(chan struct{})}
	m.rewindMu.Lock()
	m.rewinding = run
	m.rewindMu.Unlock()
	go func() {
		defer close(run.done)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rewindTimeout)
		defer cancel()
		out, err := m.command(rctx, env, "pg_rewind", args...)
		if rerr := saved.restore(); rerr != nil {
			run.out, run.err = out, errors.Join(err, fmt.Errorf("put back the configuration after pg_rewind: %w", rerr))
			return
		}
		if err == nil || !strings.Contains(out, "rewinding from last common checkpoint") {
			err = errors.Join(err, os.Remove(filepath.Join(m.dataDir, rewindMarker)))
		}
		if err == nil {
			err = then()
		}
		run.out, run.err = out, err
		if ctx.Err() != nil {
			m.log.Info("pg_rewind that ran on past its call has ended", zap.String("op", "rejoin"), zap.Error(err))
		}
	}()
	select {
	case <-run.done:
		return run.out, run.err
	case <-ctx.Done():
		m.log.Warn("the call ended while pg_rewind runs: it runs on to its end", zap.String("op", "rejoin"))
		return "", fmt.Errorf("%w while pg_rewind ran; it runs on to its end, then the member is a stopped standby", ctx.Err())
	}
}

// rewindRunning says whether a pg_rewind begun by an earlier call runs on.
func (m *Member) rewindRunning() bool {
	m.rewindMu.Lock()
	run := m.rewinding
	m.rewindMu.Unlock()
	if run == nil {
		return false
	}
	select {
	case <-run.done:
		return false
	default:
		return true
	}
}

// waitRewind waits until a pg_rewind that runs on has ended.
func (m *Member) waitRewind() {
	m.rewindMu.Lock()
	run := m.rewinding
	m.rewindMu.Unlock()
	if run != nil {
		<-run.done
	}
}

// usable says why the data directory must not be started from or rewound
// now, or nil: a pg_rewind runs on it (ErrRewindRunning), or one began and
// did not finish (ErrRewindUnfinished, with the marker's word of when).
func (m *Member) usable() error {
	if m.rewindRunning() {
		return ErrRewindRunning
	}
	b, err := os.ReadFile(filepath.Join(m.dataDir, rewindMarker))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", rewindMarker, err)
	}
	return fmt.Errorf("%w (%s)", ErrRewindUnfinished, strings.TrimSpace(string(b)))
}
