package membership

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
)

// TestSweeperEndsASilentMembership: site a goes on renewing its lease but
// its beats stop. It fences itself by its deadline; site b's sweeper ends
// its membership a lease TTL after the last beat it saw, after the self-
// fence and while the lease itself is still alive; a then learns that its
// membership ended and joins again under a new lease. The sweeper tells
// that a is late before it sweeps it, and that it is late no longer once
// it beats again.
func TestSweeperEndsASilentMembership(t *testing.T) {
	ctx := testCtx(t)
	var silent atomic.Bool
	f := newFixture(t, 2*time.Second, 250*time.Millisecond, 500*time.Millisecond, false, func(m *Member) {
		m.beat = func(ctx context.Context, siteName, incarnation string, lease clientv3.LeaseID) error {
			if silent.Load() {
				return errors.New("beat held back by the test")
			}
			return m.cfg.Store.Beat(ctx, siteName, incarnation, lease)
		}
	})
	f.next(ctx, site.ControllerUp)
	lease := f.alive(ctx)

	swept := make(chan time.Time, 1)
	type lateness struct {
		late bool
		at   time.Time
	}
	lates := make(chan lateness, 10)
	sw := NewSweeper(SweeperConfig{Site: "b", Store: f.obs, Log: zaptest.NewLogger(t), LeaseTTL: 2 * time.Second,
		OnSwept: func(name string) {
			if name == "a" {
				swept <- time.Now()
			}
		},
		OnLate: func(name string, late bool) {
			if name == "a" {
				lates <- lateness{late, time.Now()}
			}
		}})
	sctx, stopSweeper := context.WithCancel(ctx)
	sweeperDone := make(chan error, 1)
	go func() { sweeperDone <- sw.Run(sctx) }()
	defer func() {
		stopSweeper()
		if err := <-sweeperDone; err != nil {
			t.Errorf("sweeper: %v", err)
		}
	}()

	silent.Store(true)
	fenced := f.next(ctx, site.ControllerSelfFenced)
	var at time.Time
	select {
	case at = <-swept:
	case <-ctx.Done():
		t.Fatal("the sweeper never ended a's membership")
	}
	if !fenced.At.Before(at) {
		t.Errorf("a fenced itself at %s, after its membership ended at %s", fenced.At, at)
	}
	t.Logf("self-fenced %s before the sweep", at.Sub(fenced.At))
	select {
	case l := <-lates:
		if !l.late || !l.at.Before(at) {
			t.Errorf("told late=%v at %s; want late before the sweep at %s", l.late, l.at, at)
		}
	default:
		t.Error("the sweeper swept a without telling first that it was late")
	}
	ttl, err := f.obs.Client().TimeToLive(ctx, lease)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL <= 0 {
		t.Errorf("a's lease has expired (TTL %d): the test cannot tell the sweep from the expiry", ttl.TTL)
	}
	if got := f.alive(ctx); got != 0 {
		t.Errorf("a's alive key still on lease %x after the sweep", got)
	}

	silent.Store(false)
	up := f.next(ctx, site.ControllerUp)
	if got := f.alive(ctx); got == 0 || got == lease {
		t.Errorf("a up again (%s) with alive key on lease %x; want a new lease, not %x", up.Reason, got, lease)
	}
	select {
	case l := <-lates:
		if l.late {
			t.Error("told a was late again, not that it beats again")
		}
	case <-ctx.Done():
		t.Error("never told that a beats again")
	}
}

// TestSweeperSparesBeatingSites: while every site beats, nothing is swept,
// over several lease TTLs.
func TestSweeperSparesBeatingSites(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, 1*time.Second, 250*time.Millisecond, 250*time.Millisecond, false)
	f.next(ctx, site.ControllerUp)
	swept := make(chan string, 1)
	sw := NewSweeper(SweeperConfig{Site: "b", Store: f.obs, LeaseTTL: time.Second,
		OnSwept: func(name string) { swept <- name }})
	sctx, stop := context.WithTimeout(ctx, 4*time.Second) // four TTLs
	defer stop()
	if err := sw.Run(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-swept:
		t.Errorf("site %s swept while it beat", name)
	default:
	}
	if info := f.m.Info(); info.State != site.ControllerUp {
		t.Errorf("a is %s (%s), want up", info.State, info.Reason)
	}
}
