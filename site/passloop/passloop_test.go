package passloop

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// within bounds every wait of these tests: none of them waits on the clock
// otherwise, so it is only reached when something is wrong.
const within = 10 * time.Second

// recv waits for a value on ch, and fails the test if none comes.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("no %s within %s", what, within)
		var zero T
		return zero
	}
}

// passer is a pass that tells each start and then waits to be let go (or
// for its context to end).
type passer struct {
	started chan context.Context
	release chan struct{}
}

func newPasser() *passer {
	return &passer{started: make(chan context.Context), release: make(chan struct{})}
}

func (p *passer) pass(ctx context.Context) {
	select {
	case p.started <- ctx:
	case <-ctx.Done():
		return
	}
	select {
	case <-p.release:
	case <-ctx.Done():
	}
}

// next waits for the next pass to start and returns its context.
func (p *passer) next(t *testing.T) context.Context {
	t.Helper()
	return recv(t, p.started, "pass")
}

// let lets the pass under way return.
func (p *passer) let(t *testing.T) {
	t.Helper()
	select {
	case p.release <- struct{}{}:
	case <-time.After(within):
		t.Fatalf("no pass to let go within %s", within)
	}
}

// start runs l until the returned stop is called (or the test ends); stop
// returns once Run has.
func start(t *testing.T, l *Loop, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, cfg)
	}()
	stop = func() {
		cancel()
		recv(t, done, "return of Run")
	}
	t.Cleanup(stop)
	return stop
}

func TestKickRunsPass(t *testing.T) {
	l, p := New(), newPasser()
	start(t, l, Config{Pass: p.pass, Resync: time.Hour})
	p.next(t) // the first pass runs at once
	p.let(t)
	l.Kick()
	p.next(t)
	p.let(t)
}

func TestKickNeverBlocks(t *testing.T) {
	l := New()
	for range 3 {
		l.Kick()
	}
	if n := len(l.kick); n != 1 {
		t.Fatalf("%d kicks pending after three, want them folded into 1", n)
	}
}

func TestResyncRunsPasses(t *testing.T) {
	l, p := New(), newPasser()
	start(t, l, Config{Pass: p.pass, Resync: time.Millisecond})
	for range 3 { // no kick: the ticks alone run them
		p.next(t)
		p.let(t)
	}
}

func TestFollowerKicks(t *testing.T) {
	l, p := New(), newPasser()
	poke := make(chan struct{})
	follower := func(ctx context.Context, kick func()) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-poke:
				kick()
			}
		}
	}
	start(t, l, Config{Pass: p.pass, Resync: time.Hour, Follow: []Follower{follower}})
	p.next(t)
	p.let(t)
	poke <- struct{}{}
	p.next(t)
	p.let(t)
}

func TestCancelPassCancelsRunningPass(t *testing.T) {
	l, p := New(), newPasser()
	start(t, l, Config{Pass: p.pass, Resync: time.Hour})
	first := p.next(t)
	l.CancelPass()
	recv(t, first.Done(), "cancellation of the pass")
	if !errors.Is(first.Err(), context.Canceled) {
		t.Fatalf("pass context ended with %v, want %v", first.Err(), context.Canceled)
	}
	l.Kick()
	if second := p.next(t); second.Err() != nil {
		t.Fatalf("the pass after a cancelled one starts with its context ended: %v", second.Err())
	}
	p.let(t)
}

func TestCancelPassOutsidePass(t *testing.T) {
	l := New()
	l.CancelPass() // no pass under way: nothing to cancel
	l.Pass(t.Context(), func(ctx context.Context) {
		if ctx.Err() != nil {
			t.Errorf("a pass starts with its context ended: %v", ctx.Err())
		}
		l.CancelPass()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("CancelPass left the pass's context %v, want %v", ctx.Err(), context.Canceled)
		}
	})
	l.CancelPass() // after the pass: nothing to cancel either
	l.Pass(t.Context(), func(ctx context.Context) {
		if ctx.Err() != nil {
			t.Errorf("CancelPass between passes ended the next one's context: %v", ctx.Err())
		}
	})
}

func TestPassesNeverOverlap(t *testing.T) {
	l, p := New(), newPasser()
	var active atomic.Int32
	pass := func(ctx context.Context) {
		if n := active.Add(1); n > 1 {
			t.Errorf("%d passes at once", n)
		}
		defer active.Add(-1)
		p.pass(ctx)
	}
	start(t, l, Config{Pass: pass, Resync: time.Hour})
	p.next(t) // Run's first pass holds on
	outside := make(chan struct{})
	go func() {
		defer close(outside)
		l.Pass(t.Context(), pass)
	}()
	l.Kick()
	// The one outside Run and the kicked one both wait for the first,
	// then run one after the other.
	for range 2 {
		p.let(t)
		p.next(t)
	}
	p.let(t)
	recv(t, outside, "return of the pass outside Run")
}

func TestRunEndsWithItsContext(t *testing.T) {
	l, p := New(), newPasser()
	finishDone := make(chan struct{}) // closed by Finish: a second call panics
	followerEnded := make(chan struct{})
	follower := func(ctx context.Context, _ func()) {
		defer close(followerEnded)
		<-ctx.Done()
		<-finishDone // Run waits for its followers only after Finish
	}
	stop := start(t, l, Config{Pass: p.pass, Resync: time.Hour, Follow: []Follower{follower},
		Finish: func() { close(finishDone) }})
	pctx := p.next(t)
	stop()
	if pctx.Err() == nil {
		t.Error("the pass under way when Run's context ended kept its context")
	}
	select {
	case <-followerEnded:
	default:
		t.Error("Run returned before its follower ended")
	}
	select {
	case <-finishDone:
	default:
		t.Error("Run returned without calling Finish")
	}
}

// fakeWatcher hands each watch it is asked for to the test.
type fakeWatcher struct {
	watches chan *fakeWatch
}

// fakeWatch is one watch: the test sends its responses, and it closes, as
// an etcd watch does, when its context ends.
type fakeWatch struct {
	ctx    context.Context
	key    string
	prefix bool
	ch     chan clientv3.WatchResponse
	once   sync.Once
}

func (w *fakeWatch) close() { w.once.Do(func() { close(w.ch) }) }

func (f *fakeWatcher) WatchKey(ctx context.Context, key string, prefix bool, _ int64) clientv3.WatchChan {
	w := &fakeWatch{ctx: ctx, key: key, prefix: prefix, ch: make(chan clientv3.WatchResponse)}
	go func() {
		<-ctx.Done()
		w.close()
	}()
	select {
	case f.watches <- w:
	case <-ctx.Done():
	}
	return w.ch
}

func events(keys ...string) clientv3.WatchResponse {
	var resp clientv3.WatchResponse
	for _, k := range keys {
		resp.Events = append(resp.Events, &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(k)}})
	}
	return resp
}

func TestWatch(t *testing.T) {
	underA := func(ev *clientv3.Event) bool { return strings.HasPrefix(string(ev.Kv.Key), "/a/") }
	tests := []struct {
		name      string
		relevant  func(*clientv3.Event) bool
		responses []clientv3.WatchResponse
		kicks     int32
		// breakWatch ends the first watch as etcd may.
		breakWatch func(*fakeWatch)
	}{
		{name: "every response kicks", responses: []clientv3.WatchResponse{events(), events("/b/x")}, kicks: 2,
			breakWatch: func(w *fakeWatch) { w.ch <- clientv3.WatchResponse{CompactRevision: 7} }},
		{name: "relevant events kick", relevant: underA,
			responses: []clientv3.WatchResponse{events("/b/x"), events("/a/x"), events("/b/y", "/a/y"), events()}, kicks: 2,
			breakWatch: func(w *fakeWatch) { w.close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWatcher{watches: make(chan *fakeWatch)}
			var kicks atomic.Int32
			ctx, cancel := context.WithCancel(t.Context())
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				watch(w, "/a/", tt.relevant, time.Millisecond)(ctx, func() { kicks.Add(1) })
			}()
			defer func() {
				cancel()
				recv(t, ended, "end of the follower")
			}()

			first := recv(t, w.watches, "watch")
			if first.key != "/a/" || !first.prefix {
				t.Fatalf("watching %q (prefix %t), want the prefix /a/", first.key, first.prefix)
			}
			for _, resp := range tt.responses {
				first.ch <- resp
			}
			tt.breakWatch(first)
			// Every response was handled before the watch is made again.
			again := recv(t, w.watches, "watch made again")
			if n := kicks.Load(); n != tt.kicks {
				t.Errorf("%d kicks, want %d", n, tt.kicks)
			}
			if first.ctx.Err() == nil {
				t.Error("the broken watch's context still runs")
			}
			again.ch <- events("/a/z")
			again.close()
			recv(t, w.watches, "watch made once more")
			if n := kicks.Load(); n != tt.kicks+1 {
				t.Errorf("the watch made again: %d kicks, want %d", n, tt.kicks+1)
			}
		})
	}
}

func TestWatchEndsWithItsContext(t *testing.T) {
	w := &fakeWatcher{watches: make(chan *fakeWatch)}
	ctx, cancel := context.WithCancel(t.Context())
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		Watch(w, "/a/", nil)(ctx, func() {})
	}()
	wt := recv(t, w.watches, "watch")
	cancel()
	recv(t, ended, "end of the follower")
	if wt.ctx.Err() == nil {
		t.Error("the watch's context outlives the follower")
	}
}
