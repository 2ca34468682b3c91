package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site/ctxsleep"
)

var (
	// ErrUnavailable says the host cannot be asked now: it is not
	// connected, its connection broke during the call, or it was closed.
	// Retry later; Watch tells when it answers again.
	ErrUnavailable = errors.New("host unavailable")
	// ErrNoDomain says the host has no domain of that name.
	ErrNoDomain = errors.New("domain not defined")
	// ErrConflict says a domain stands in the way: another domain of the
	// same name or UUID, or an active domain that was to be undefined.
	ErrConflict = errors.New("conflicting domain")
)

// errClosed is the reason given after Close.
var errClosed = errors.New("host closed")

// Defaults for the zero Options.
const (
	DefaultFailAfter  = 10 * time.Second
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
)

// Options shapes a Host. The zero value is usable.
type Options struct {
	// Name is how errors and logs name the host (the inventory's host
	// name); empty means the URI.
	Name string
	// FailAfter is how long the host may go without answering before it
	// reports Failed (default DefaultFailAfter). The connection is probed
	// once the host has been silent for FailAfter/2; a probe, or a new
	// connection, that gets no answer within FailAfter/2 counts as a
	// broken connection.
	FailAfter time.Duration
	// BackoffMin and BackoffMax bound the wait between connection
	// attempts, which doubles from min to max while the host is down
	// (defaults DefaultBackoffMin and DefaultBackoffMax).
	BackoffMin, BackoffMax time.Duration
	// Log receives connection changes; nil logs nothing.
	Log *zap.Logger
}

// Health is what the Host knows about its connection.
type Health struct {
	// Connected says a connection is open and has answered.
	Connected bool
	// Failed says the host has not answered for longer than FailAfter. It
	// is cleared as soon as a new connection answers.
	Failed bool
	// LastAnswer is when the host last answered (when Dial was called, if
	// it never did). A failed host has been silent since then.
	LastAnswer time.Time
	// Err is why the host is not connected; nil while it is.
	Err error
}

// Host is one hypervisor: one libvirt connection that is kept open and
// re-established with backoff when it breaks. Its methods are safe for
// concurrent use. Close it when done.
type Host struct {
	name   string
	target Target
	log    *zap.Logger

	failAfter   time.Duration
	probeEvery  time.Duration
	answerLimit time.Duration // for a probe or a new connection
	backoffMin  time.Duration
	backoffMax  time.Duration

	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	first  chan struct{} // closed after the first connection attempt
	calls  sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	conn      *conn     // nil while disconnected
	everUp    bool      // a connection was up before
	lostAt    time.Time // LastAnswer when the connection was lost
	health    Health
	changed   chan struct{} // closed and replaced when Connected or Failed change
	failTimer *time.Timer
	// sizes holds each domain's size as List last read it, with the
	// state it was in then (see sizeOf).
	sizes map[libvirt.UUID]domainInfo
}

// Dial parses uri (see ParseURI), starts keeping a connection to the host
// and waits until the first connection attempt ends or ctx does. It fails
// only for a URI or Options it cannot use: a host that does not answer is
// returned all the same, disconnected, and is tried again with backoff;
// Health, Watch and Failed tell how it fares.
func Dial(ctx context.Context, uri string, opts Options) (*Host, error) {
	t, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if opts.FailAfter < 0 || opts.BackoffMin < 0 || opts.BackoffMax < 0 {
		return nil, fmt.Errorf("host %s: negative FailAfter or backoff", uri)
	}
	if opts.FailAfter == 0 {
		opts.FailAfter = DefaultFailAfter
	}
	if opts.BackoffMin == 0 {
		opts.BackoffMin = DefaultBackoffMin
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = max(DefaultBackoffMax, opts.BackoffMin)
	}
	if opts.BackoffMax < opts.BackoffMin {
		return nil, fmt.Errorf("host %s: BackoffMax %s is below BackoffMin %s", uri, opts.BackoffMax, opts.BackoffMin)
	}
	if opts.Name == "" {
		opts.Name = uri
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	runCtx, cancel := context.WithCancel(context.Background())
	h := &Host{
		name:        opts.Name,
		target:      t,
		log:         opts.Log.With(zap.String("host", opts.Name)),
		failAfter:   opts.FailAfter,
		probeEvery:  max(opts.FailAfter/2, time.Millisecond),
		answerLimit: max(opts.FailAfter/2, time.Millisecond),
		backoffMin:  opts.BackoffMin,
		backoffMax:  opts.BackoffMax,
		cancel:      cancel,
		done:        make(chan struct{}),
		first:       make(chan struct{}),
		changed:     make(chan struct{}),
		health:      Health{LastAnswer: time.Now(), Err: errors.New("not connected yet")},
	}
	h.mu.Lock()
	h.lostAt = h.health.LastAnswer
	h.armFailTimerLocked()
	h.mu.Unlock()
	go h.run(runCtx)
	select {
	case <-h.first:
	case <-ctx.Done():
	}
	return h, nil
}

// Name is the host's name in errors and logs.
func (h *Host) Name() string { return h.name }

// Target is where the host's URI leads.
func (h *Host) Target() Target { return h.target }

// Health is the host's connection state now.
func (h *Host) Health() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health
}

// Watch returns the host's connection state and a channel that is closed at
// the next change of Connected or Failed. Call it again after each change.
func (h *Host) Watch() (Health, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health, h.changed
}

// Failed says whether the host has not answered for longer than FailAfter,
// and since when it has been silent (its last answer).
func (h *Host) Failed() (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health.Failed, h.health.LastAnswer
}

// Await waits until cond holds for the host's Health, or ctx ends.
func (h *Host) Await(ctx context.Context, cond func(Health) bool) (Health, error) {
	for {
		hl, changed := h.Watch()
		if cond(hl) {
			return hl, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return hl, fmt.Errorf("host %s: %w", h.name, ctx.Err())
		}
	}
}

// Close drops the connection, stops reconnecting and waits for the host's
// goroutines and calls in flight to end. Calls after Close fail with
// ErrUnavailable. It always returns nil.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	if h.failTimer != nil {
		h.failTimer.Stop()
	}
	h.mu.Unlock()
	h.cancel()
	<-h.done
	h.calls.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.health.Err != errClosed {
		h.health.Connected = false
		h.health.Err = errClosed
		h.notifyLocked()
	}
	return nil
}

// run keeps one connection open until ctx ends.
func (h *Host) run(ctx context.Context) {
	defer close(h.done)
	var once sync.Once
	firstAttempt := func() { once.Do(func() { close(h.first) }) }
	defer firstAttempt()
	b := ctxsleep.NewBackoff(h.backoffMin, h.backoffMax)
	for {
		c, err := h.connect(ctx)
		if ctx.Err() != nil {
			if c != nil {
				c.close()
			}
			return
		}
		if err != nil {
			h.down(err)
			firstAttempt()
			if b.Wait(ctx) != nil {
				return
			}
			continue
		}
		b.Reset()
		if !h.up(c) {
			c.close()
			return
		}
		firstAttempt()
		err = h.serve(ctx, c)
		c.close()
		if ctx.Err() != nil {
			return
		}
		h.down(err)
	}
}

// serve probes the connection whenever the host has been silent for
// probeEvery, until it breaks (its error) or ctx ends (nil). A probe that
// gets no answer within answerLimit breaks it: a hung host is noticed
// probeEvery+answerLimit (FailAfter) after its last answer.
func (h *Host) serve(ctx context.Context, c *conn) error {
	t := time.NewTimer(h.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.raw.dead:
			return c.raw.cause()
		case <-t.C:
			if silent := time.Since(h.lastAnswer()); silent < h.probeEvery {
				t.Reset(h.probeEvery - silent) // another call answered
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, h.answerLimit)
			_, err := callOn(pctx, h, c, probe)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("probe (answer limit %s): %w", h.answerLimit, err)
			}
			t.Reset(h.probeEvery)
		}
	}
}

func (h *Host) lastAnswer() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.health.LastAnswer
}

// up records a new connection; false when the host was closed meanwhile.
func (h *Host) up(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	wasFailed := h.health.Failed
	if h.failTimer != nil {
		h.failTimer.Stop()
		h.failTimer = nil
	}
	h.conn = c
	h.health = Health{Connected: true, LastAnswer: time.Now()}
	h.notifyLocked()
	if h.everUp || wasFailed {
		h.log.Info("host answers again", zap.Duration("silent", time.Since(h.lostAt)), zap.String("version", c.version))
	} else {
		h.log.Debug("host connected", zap.String("version", c.version))
	}
	h.everUp = true
	return true
}

// down records that the host is not connected, and why.
func (h *Host) down(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	wasConnected := h.conn != nil
	h.conn = nil
	h.health.Connected = false
	h.health.Err = err
	if wasConnected {
		h.lostAt = h.health.LastAnswer
		h.log.Warn("connection to host lost", zap.Error(err))
		h.notifyLocked()
		h.armFailTimerLocked()
	} else {
		h.log.Debug("host does not answer", zap.Error(err))
	}
}

// armFailTimerLocked makes the host report Failed once FailAfter has passed
// since its last answer.
func (h *Host) armFailTimerLocked() {
	if h.health.Failed || h.closed {
		return
	}
	if h.failTimer != nil {
		h.failTimer.Stop()
	}
	h.failTimer = time.AfterFunc(time.Until(h.health.LastAnswer.Add(h.failAfter)), h.checkFailed)
}

func (h *Host) checkFailed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.conn != nil || h.health.Failed {
		return
	}
	if time.Since(h.health.LastAnswer) < h.failAfter { // a late answer came in
		h.armFailTimerLocked()
		return
	}
	h.failTimer = nil
	h.health.Failed = true
	h.notifyLocked()
	h.log.Warn("host failed", zap.Duration("silent", time.Since(h.health.LastAnswer)), zap.Error(h.health.Err))
}

func (h *Host) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// answered notes that the host answered a call.
func (h *Host) answered() {
	now := time.Now()
	h.mu.Lock()
	if now.After(h.health.LastAnswer) {
		h.health.LastAnswer = now
	}
	h.mu.Unlock()
}

// acquire returns the open connection and counts a call on it.
func (h *Host) acquire() (*conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, errClosed)
	case h.conn == nil:
		return nil, fmt.Errorf("%w: not connected: %w", ErrUnavailable, h.health.Err)
	}
	h.calls.Add(1)
	return h.conn, nil
}
