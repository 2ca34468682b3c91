package failover

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// errStalled: an action made no progress (no journal write landed) for its
// stall limit; the next pass resumes it.
var errStalled = errors.New("no progress")

// watchdog bounds an action by its progress rather than its length: the
// context it gives ends once progress has not been reported for limit, so
// that a request stuck on an unresponsive etcd member does not hold up the
// coordinator, while an op of any size runs to its end in one action as
// long as its writes land.
type watchdog struct {
	limit time.Duration
	timer *time.Timer
}

// withWatchdog returns a context that ends when parent does or when
// progress was last reported (or the watchdog started) more than limit ago,
// and the watchdog; stop releases it.
func withWatchdog(parent context.Context, limit time.Duration) (ctx context.Context, w *watchdog, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	w = &watchdog{limit: limit}
	w.timer = time.AfterFunc(limit, func() { cancel(fmt.Errorf("%w for %s", errStalled, limit)) })
	return ctx, w, func() {
		w.timer.Stop()
		cancel(nil)
	}
}

// progress says the action got on: the limit runs afresh. A nil watchdog
// ignores it.
func (w *watchdog) progress() {
	if w != nil {
		w.timer.Reset(w.limit)
	}
}

// computing stops the clock while the coordinator computes (solving the
// guests' placement may take seconds at scale, and waits on no one);
// resume starts the limit afresh. A nil watchdog ignores it.
func (w *watchdog) computing() (resume func()) {
	if w == nil {
		return func() {}
	}
	w.timer.Stop()
	return w.progress
}
