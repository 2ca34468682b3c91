// Package passloop runs a site reconciler's passes: one at a time, at once on
// a kick, on a resync tick and on what a follower (an etcd watch, a host's
// health) reports, each pass in a context that CancelPass ends, so that a
// change of the site's state never waits behind a pass stuck on etcd.
//
// A reconciler makes its Loop in its constructor (a state hook may Kick or
// CancelPass before Run starts) and hands its pass, its resync interval and
// its followers to Run.
package passloop

import (
	"context"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Loop runs one reconciler's passes. Create it with New; its methods are
// safe for concurrent use.
type Loop struct {
	kick    chan struct{} // buffered 1: a pass is due
	passing sync.Mutex    // held through a pass: passes never overlap

	mu     sync.Mutex
	cancel context.CancelFunc // ends the pass under way; nil between passes
}

// New returns a Loop with no pass due.
func New() *Loop {
	return &Loop{kick: make(chan struct{}, 1)}
}

// Kick asks for a pass soon. It never blocks: kicks that come while one is
// pending make one pass, which sees everything that changed before it.
func (l *Loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// CancelPass cancels the context of the pass under way, if any; the next
// pass gets a fresh one. It does not wait for the pass to return.
func (l *Loop) CancelPass() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
}

// Pass runs pass once, now, in a context derived from ctx that CancelPass
// ends, after any pass under way has returned. Run calls it for each pass;
// a reconciler calls it itself for a last pass once Run's context ended.
// pass must not call Pass.
func (l *Loop) Pass(ctx context.Context, pass func(ctx context.Context)) {
	l.passing.Lock()
	defer l.passing.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.mu.Lock()
	l.cancel = cancel
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.cancel = nil
		l.mu.Unlock()
	}()
	pass(ctx)
}

// Follower follows something for as long as its context lasts and calls
// kick on each change that calls for a pass.
type Follower func(ctx context.Context, kick func())

// Config is what Run runs.
type Config struct {
	// Pass converges once (see Loop.Pass for its context).
	Pass func(ctx context.Context)
	// Resync is how often a pass runs, kicked or not, so that a missed
	// change heals. It must be positive.
	Resync time.Duration
	// Follow are run each in its own goroutine for as long as Run runs;
	// their kicks run passes.
	Follow []Follower
	// Finish, when set, runs once when Run's context has ended, before Run
	// waits for its followers: a stopping controller acts at once even
	// when a follower is slow to end.
	Finish func()
}

// Run starts cfg's followers and runs a pass at once, then one on every
// kick and every resync tick, until ctx ends. It returns once Finish has
// returned and every follower has ended.
func (l *Loop) Run(ctx context.Context, cfg Config) {
	var wg sync.WaitGroup
	fctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, f := range cfg.Follow {
		wg.Go(func() { f(fctx, l.Kick) })
	}
	resync := time.NewTicker(cfg.Resync)
	defer resync.Stop()
	for {
		l.Pass(ctx, cfg.Pass)
		select {
		case <-ctx.Done():
			if cfg.Finish != nil {
				cfg.Finish()
			}
			return
		case <-l.kick:
		case <-resync.C:
		}
	}
}

// Watcher watches etcd (*site.Store is one).
type Watcher interface {
	WatchKey(ctx context.Context, key string, prefix bool, rev int64) clientv3.WatchChan
}

// watchRetry is how long a broken watch waits before it is made again; the
// resync covers the gap.
const watchRetry = time.Second

// Watch follows every key under prefix and kicks on each watch response
// with an event that relevant accepts (nil: on every response). A watch
// that breaks (an error, or its channel closed) is made again a second
// later.
func Watch(w Watcher, prefix string, relevant func(*clientv3.Event) bool) Follower {
	return watch(w, prefix, relevant, watchRetry)
}

func watch(w Watcher, prefix string, relevant func(*clientv3.Event) bool, retry time.Duration) Follower {
	return func(ctx context.Context, kick func()) {
		for ctx.Err() == nil {
			follow(ctx, w, prefix, relevant, kick)
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
		}
	}
}

// follow kicks on one watch's responses until it breaks or ctx ends, and
// then ends the watch.
func follow(ctx context.Context, w Watcher, prefix string, relevant func(*clientv3.Event) bool, kick func()) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range w.WatchKey(ctx, prefix, true, 0) {
		if resp.Err() != nil {
			return
		}
		if relevant == nil || slices.ContainsFunc(resp.Events, relevant) {
			kick()
		}
	}
}
