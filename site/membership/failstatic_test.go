package membership

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/failstatic"
)

// fakeVerdicts is a FailStatic hook whose verdict the test sets; it
// records when each check was asked for, relative to the deadline.
type fakeVerdicts struct {
	hold     atomic.Bool
	mu       sync.Mutex
	asks     []time.Time
	lastHold time.Time // Sent of the last verdict that held
}

func (v *fakeVerdicts) check(context.Context) failstatic.Verdict {
	now := time.Now()
	v.mu.Lock()
	v.asks = append(v.asks, now)
	v.mu.Unlock()
	if v.hold.Load() {
		v.mu.Lock()
		v.lastHold = now
		v.mu.Unlock()
		return failstatic.Verdict{Hold: true, Why: "held by the test", Sent: now}
	}
	return failstatic.Verdict{Why: "ruled out by the test"}
}

func (v *fakeVerdicts) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.asks)
}

// TestFailStaticHoldsPastTheDeadline: cut off from etcd, a member whose
// checks hold serves on well past the deadline its lease gave it, says why
// in its info, and keeps asking; once a check no longer holds, it fences
// itself by the time the last verdict allowed. Renewing again ends the
// fail-static state.
func TestFailStaticHoldsPastTheDeadline(t *testing.T) {
	ctx := testCtx(t)
	const ttl, renew, margin, check = 2 * time.Second, 250 * time.Millisecond, 500 * time.Millisecond, 200 * time.Millisecond
	v := &fakeVerdicts{}
	v.hold.Store(true)
	events := make(chan bool, 8)
	f := newFixture(t, ttl, renew, margin, false, func(m *Member) {
		m.cfg.FailStatic, m.cfg.CheckTimeout = v.check, check
		m.cfg.OnFailStatic = func(on bool, why string, since time.Time) { events <- on }
	})
	f.next(ctx, site.ControllerUp)
	f.cut()
	cutAt := time.Now()
	select {
	case on := <-events:
		if !on {
			t.Fatal("fail static ended before it began")
		}
	case <-ctx.Done():
		t.Fatal("never failed static")
	}
	info := f.m.Info()
	if info.State != site.ControllerUp || info.FailStatic == "" {
		t.Fatalf("failing static, the member is %s with reason %q", info.State, info.FailStatic)
	}
	// Serving on past any deadline the lease could have given: two TTLs.
	deadline := time.NewTimer(2 * ttl)
	defer deadline.Stop()
	select {
	case ch := <-f.changes:
		t.Fatalf("while the checks held: %s -> %s (%s)", ch.From, ch.To, ch.Reason)
	case <-deadline.C:
	}
	if n := v.count(); n < 3 {
		t.Errorf("%d checks in %s of failing static; want one before each verdict ran out", n, time.Since(cutAt))
	}
	v.hold.Store(false)
	fenced := f.next(ctx, site.ControllerSelfFenced)
	v.mu.Lock()
	last := v.lastHold.Add(f.m.staticFor())
	v.mu.Unlock()
	if fenced.At.After(last.Add(150 * time.Millisecond)) {
		t.Errorf("self-fenced at %s, %s after the last verdict ran out", fenced.At, fenced.At.Sub(last))
	}
	if on := <-events; on {
		t.Error("fail static did not end with the self-fence")
	}
	t.Logf("served %s after the cut; fenced %s before the last verdict ran out", fenced.At.Sub(cutAt), last.Sub(fenced.At))
}

// TestFailStaticEndsWhenEtcdWorks: a member failing static renews again
// once etcd works: the state ends, no self-fence, and the checks stop.
func TestFailStaticEndsWhenEtcdWorks(t *testing.T) {
	ctx := testCtx(t)
	v := &fakeVerdicts{}
	v.hold.Store(true)
	events := make(chan bool, 8)
	f := newFixture(t, 2*time.Second, 250*time.Millisecond, 500*time.Millisecond, false, func(m *Member) {
		m.cfg.FailStatic, m.cfg.CheckTimeout = v.check, 200*time.Millisecond
		m.cfg.OnFailStatic = func(on bool, why string, since time.Time) { events <- on }
	})
	f.next(ctx, site.ControllerUp)
	f.cut()
	if on := <-events; !on {
		t.Fatal("fail static ended before it began")
	}
	f.heal()
	select {
	case on := <-events:
		if on {
			t.Fatal("failed static twice")
		}
	case ch := <-f.changes:
		t.Fatalf("healing: %s -> %s (%s)", ch.From, ch.To, ch.Reason)
	case <-ctx.Done():
		t.Fatal("fail static never ended after etcd came back")
	}
	if info := f.m.Info(); info.State != site.ControllerUp || info.FailStatic != "" {
		t.Errorf("after etcd came back: %s, fail static %q", info.State, info.FailStatic)
	}
}

// TestFailStaticRuledOutFencesOnTime: when the check does not hold, the
// member fences itself at its lease's deadline, as without the check,
// and says why it did not fail static.
func TestFailStaticRuledOutFencesOnTime(t *testing.T) {
	ctx := testCtx(t)
	v := &fakeVerdicts{}
	f := newFixture(t, 2*time.Second, 250*time.Millisecond, 500*time.Millisecond, false, func(m *Member) {
		m.cfg.FailStatic, m.cfg.CheckTimeout = v.check, 200*time.Millisecond
	})
	f.next(ctx, site.ControllerUp)
	f.cut()
	fenced := f.next(ctx, site.ControllerSelfFenced)
	if v.count() == 0 {
		t.Error("fenced without asking the other sites")
	}
	if lease := f.m.Info().LeaseExpiry; !fenced.At.Before(lease) {
		t.Errorf("fenced at %s, not before the lease could expire at %s", fenced.At, lease)
	}
	if !strings.Contains(fenced.Reason, "ruled out by the test") {
		t.Errorf("self-fence reason %q does not say why it did not fail static", fenced.Reason)
	}
}

// TestSweeperPausedUntilItsSiteBeats: a paused sweeper ends nobody's
// membership, however long a site is silent, until its own site beats
// after the pause; it then times every site afresh, a whole TTL from that
// beat.
func TestSweeperPausedUntilItsSiteBeats(t *testing.T) {
	ctx := testCtx(t)
	const ttl = 2 * time.Second
	var silent atomic.Bool
	f := newFixture(t, ttl, 250*time.Millisecond, 500*time.Millisecond, false, func(m *Member) {
		m.beat = func(ctx context.Context, siteName, incarnation string, lease clientv3.LeaseID) error {
			if silent.Load() {
				return errors.New("beat held back by the test")
			}
			return m.cfg.Store.Beat(ctx, siteName, incarnation, lease)
		}
	})
	f.next(ctx, site.ControllerUp)
	var ownBeat atomic.Int64 // unix nanoseconds; 0: none yet
	swept := make(chan time.Time, 1)
	sw := NewSweeper(SweeperConfig{Site: "b", Store: f.obs, Log: zaptest.NewLogger(t), LeaseTTL: ttl,
		OwnBeat: func() time.Time {
			if n := ownBeat.Load(); n != 0 {
				return time.Unix(0, n)
			}
			return time.Time{}
		},
		OnSwept: func(string) { swept <- time.Now() }})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sw.Run(sctx) }()
	defer func() {
		stop()
		<-done
	}()
	silent.Store(true)
	fenced := f.next(ctx, site.ControllerSelfFenced)
	quiet := time.NewTimer(time.Until(fenced.At.Add(ttl)))
	defer quiet.Stop()
	select {
	case at := <-swept:
		t.Fatalf("a paused sweeper swept at %s", at)
	case <-quiet.C:
	}
	beat := time.Now()
	ownBeat.Store(beat.UnixNano())
	var at time.Time
	select {
	case at = <-swept:
	case <-ctx.Done():
		t.Fatal("the sweeper never resumed")
	}
	if at.Before(beat.Add(ttl)) {
		t.Errorf("swept %s after its own site beat again; want a whole TTL (%s)", at.Sub(beat), ttl)
	}
	if !sw.Pause() {
		t.Error("Pause with OwnBeat set did nothing")
	}
}
