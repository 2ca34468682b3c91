package outside

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Probing a site whose beats stopped, before any failover of it.
//
// A failover fences a dark site's resources with one attempt each, bounded
// by fencing.timeout: a site whose links are cut, or whose processes are
// frozen, answers none, and the whole bound is added to the outage. Yet
// the coordinator knows a site may be dark well before its lease expires:
// its beats stop. From then on (Suspect) the fencer tries each resource of
// the site again and again, with harmless read-only attempts (a PostgreSQL
// member is observed, a host's hypervisor connected to), each bounded by
// fencing.timeout, and remembers since when none has answered.
//
// When the failover's fence comes, a resource that has answered no attempt
// for a whole fencing.timeout is unreachable at once: it is the same
// evidence a fresh attempt would give, an unanswered fencing.timeout,
// only gathered earlier. A resource that answered its last attempt, or has
// been silent for less, is fenced as before: a fresh attempt, or a wait
// for the rest of the silent fencing.timeout, whichever ends first. A
// probe's answer is never taken for a fence: a resource that answers is
// always fenced by a real attempt.

// probeGap is the least time between the starts of two attempts of a
// probe whose last attempt failed: one refused at once does not spin.
const probeGap = 50 * time.Millisecond

// probeFor bounds how long a site is probed after Suspect, in lease TTLs:
// longer than its lease can take to expire and its failover to reach the
// fence, short enough that a site that was only slow is not probed on.
const probeFor = 4

// siteProbe is the probing of one site's resources.
type siteProbe struct {
	cancel context.CancelFunc
	res    map[string]*probeState // by resource
}

// probeState is what the probe of one resource learnt.
type probeState struct {
	mu sync.Mutex
	// quietSince is the start of the first attempt after the last one that
	// answered (zero: the last attempt answered, or none started yet).
	quietSince time.Time
	stopped    bool          // the probe ended: what it learnt grows stale
	changed    chan struct{} // closed and replaced on every change
}

func newProbeState() *probeState { return &probeState{changed: make(chan struct{})} }

// update changes the state under its lock and tells the waiters.
func (p *probeState) update(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn()
	close(p.changed)
	p.changed = make(chan struct{})
}

// silentFor waits until the resource has answered no attempt for limit
// (true, and since when), or until the probe has nothing to tell: its last
// attempt answered, or it ended, or ctx ended (false).
func (p *probeState) silentFor(ctx context.Context, limit time.Duration) (time.Time, bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		since, stopped, changed := p.quietSince, p.stopped, p.changed
		p.mu.Unlock()
		if stopped || since.IsZero() {
			return time.Time{}, false
		}
		left := time.Until(since.Add(limit))
		if left <= 0 {
			return since, true
		}
		timer.Reset(left)
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-changed:
		case <-timer.C:
		}
	}
}

// Suspect starts probing the site's resources (see above), unless they are
// being probed already. The probing ends with Clear, Close, or probeFor
// lease TTLs after it started.
func (f *Fencer) Suspect(siteName string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if sp, ok := f.probes[siteName]; ok && !sp.ended() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeFor*f.leaseTTL)
	sp := &siteProbe{cancel: cancel, res: map[string]*probeState{}}
	for _, a := range f.attempts(siteName) {
		if a.probe == nil {
			continue
		}
		ps := newProbeState()
		sp.res[a.resource] = ps
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.probe(ctx, a, ps)
		}()
	}
	f.probes[siteName] = sp
	f.log.Info("outside fence: probing a site whose beats stopped", zap.String("site", siteName), zap.Int("resources", len(sp.res)))
}

// ended reports whether every probe of the site has ended.
func (sp *siteProbe) ended() bool {
	for _, ps := range sp.res {
		ps.mu.Lock()
		stopped := ps.stopped
		ps.mu.Unlock()
		if !stopped {
			return false
		}
	}
	return true
}

// Clear stops probing the site: it beats again, or it was fenced.
func (f *Fencer) Clear(siteName string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sp, ok := f.probes[siteName]; ok {
		sp.cancel()
		delete(f.probes, siteName)
	}
}

// Close stops every probe and waits until they have ended.
func (f *Fencer) Close() {
	f.mu.Lock()
	f.closed = true
	for name, sp := range f.probes {
		sp.cancel()
		delete(f.probes, name)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// probeOf is the probe of the site's resource (nil: none).
func (f *Fencer) probeOf(siteName, resource string) *probeState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sp, ok := f.probes[siteName]; ok {
		return sp.res[resource]
	}
	return nil
}

// probe tries the resource until ctx ends: at once again after an attempt
// that failed (at most every probeGap), a quarter of the limit after one
// that answered.
func (f *Fencer) probe(ctx context.Context, a attempt, ps *probeState) {
	defer ps.update(func() { ps.stopped = true })
	for {
		start := time.Now()
		ps.update(func() {
			if ps.quietSince.IsZero() {
				ps.quietSince = start
			}
		})
		actx, cancel := context.WithTimeout(ctx, f.timeout)
		err := a.probe(actx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		pause := probeGap - time.Since(start)
		if err == nil {
			ps.update(func() { ps.quietSince = time.Time{} })
			pause = f.timeout / 4
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(pause, 0)):
		}
	}
}

// silentVerdict is the outcome's detail for a resource its probe found
// silent for the whole limit.
func silentVerdict(since time.Time, limit time.Duration) string {
	return fmt.Sprintf("no answer to any attempt since %s (%s, probed since the site's beats stopped; the limit is %s)",
		since.UTC().Format("15:04:05.000Z"), time.Since(since).Round(time.Millisecond), limit)
}
