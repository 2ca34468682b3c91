package membership

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// fixture is one member of a real three-member etcd cluster, talking to etcd
// through proxies the test can cut, and an observer with a direct line.
type fixture struct {
	t       *testing.T
	cl      *sitetest.Cluster
	m       *Member
	obs     *site.Store
	proxies []*sitetest.Proxy
	changes chan Change
	stop    func()
}

// newFixture starts member a with the given timings; setup, if any, runs
// on the member before it starts.
func newFixture(t *testing.T, ttl, renew, margin time.Duration, revoke bool, setup ...func(*Member)) *fixture {
	t.Helper()
	return newFixtureVia(t, viaAll, ttl, renew, margin, revoke, setup...)
}

// How the fixture's member reaches etcd: through every member's proxy;
// through a's alone, as a controller with its own member does; or that,
// with the other two as its fallback.
type via int

const (
	viaAll via = iota
	viaOwn
	viaOwnAndFallback
)

func newFixtureVia(t *testing.T, how via, ttl, renew, margin time.Duration, revoke bool, setup ...func(*Member)) *fixture {
	t.Helper()
	cl := sitetest.New(t, sitetest.Options{})
	f := &fixture{t: t, cl: cl, obs: site.NewStore(cl.Client(), cl.Config.Name), changes: make(chan Change, 64)}
	var endpoints []string
	for _, s := range cl.Config.Sites {
		p := cl.NewProxy(s.Name)
		f.proxies = append(f.proxies, p)
		endpoints = append(endpoints, p.URL)
	}
	var fallback []*site.Store
	switch how {
	case viaOwnAndFallback:
		for _, ep := range endpoints[1:] {
			fallback = append(fallback, site.NewStore(cl.Client(ep), cl.Config.Name))
		}
		fallthrough
	case viaOwn:
		endpoints = endpoints[:1]
	}
	f.m = New(Config{
		Site:            "a",
		Store:           site.NewStore(cl.Client(endpoints...), cl.Config.Name),
		Fallback:        fallback,
		Log:             zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		LeaseTTL:        ttl,
		RenewInterval:   renew,
		SelfFenceMargin: margin,
		RevokeOnStop:    revoke,
		OnChange:        func(c Change) { f.changes <- c },
	})
	for _, fn := range setup {
		fn(f.m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.m.Run(ctx) }()
	f.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			f.stop()
		}
	})
	return f
}

func (f *fixture) cut() {
	for _, p := range f.proxies {
		p.Cut()
	}
}

func (f *fixture) heal() {
	for _, p := range f.proxies {
		p.Heal()
	}
}

// next waits for the next change and checks its target state.
func (f *fixture) next(ctx context.Context, want site.ControllerState) Change {
	f.t.Helper()
	select {
	case c := <-f.changes:
		if c.To != want {
			f.t.Fatalf("state changed to %s (%s), want %s", c.To, c.Reason, want)
		}
		return c
	case <-ctx.Done():
		f.t.Fatalf("no change to %s: %v (state %+v)", want, ctx.Err(), f.m.Info())
	}
	return Change{}
}

// alive reads the site's alive key: its lease, or 0 when absent.
func (f *fixture) alive(ctx context.Context) clientv3.LeaseID {
	f.t.Helper()
	resp, err := f.obs.Client().Get(ctx, f.obs.Keys().Alive("a"))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// waitAliveGone waits on a watch until the alive key is deleted.
func (f *fixture) waitAliveGone(ctx context.Context) {
	f.t.Helper()
	resp, err := f.obs.Client().Get(ctx, f.obs.Keys().Alive("a"))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return
	}
	for wr := range f.obs.Client().Watch(ctx, f.obs.Keys().Alive("a"), clientv3.WithRev(resp.Header.Revision+1)) {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return
			}
		}
	}
	f.t.Fatalf("alive key never expired: %v", ctx.Err())
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestJoinFenceAndLift(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, 2*time.Second, 500*time.Millisecond, 500*time.Millisecond, true)
	f.next(ctx, site.ControllerUp)
	if f.alive(ctx) == 0 {
		t.Fatal("up without an alive key")
	}
	info := f.m.Info()
	if until := time.Until(info.FenceDeadline); until <= 0 || info.LeaseExpiry.Sub(info.FenceDeadline) != 500*time.Millisecond {
		t.Errorf("deadline %s, expiry %s: want the deadline one margin before the expiry, in the future", info.FenceDeadline, info.LeaseExpiry)
	}

	fence := site.Fence{Site: "a", Op: "op-test", Reason: "test"}
	b, _ := json.Marshal(fence)
	if _, err := f.obs.Client().Put(ctx, f.obs.Keys().Fence("a"), string(b)); err != nil {
		t.Fatal(err)
	}
	c := f.next(ctx, site.ControllerFenced)
	if c.From != site.ControllerUp {
		t.Errorf("fenced from %s, want up", c.From)
	}
	if _, err := f.obs.Client().Delete(ctx, f.obs.Keys().Fence("a")); err != nil {
		t.Fatal(err)
	}
	f.next(ctx, site.ControllerUp)

	// A clean stop gives up the lease at once.
	f.stop()
	f.next(ctx, site.ControllerStopped)
	if lease := f.alive(ctx); lease != 0 {
		t.Errorf("alive key still bound to lease %x after a clean stop with revoke", lease)
	}
	r, err := f.obs.Client().Get(ctx, f.obs.Keys().Report("a"))
	if err != nil || len(r.Kvs) == 0 {
		t.Fatalf("no report: %v", err)
	}
	var rep site.Report
	if err := json.Unmarshal(r.Kvs[0].Value, &rep); err != nil || rep.State != site.ControllerStopped {
		t.Errorf("report %+v (%v); want state stopped", rep, err)
	}
}

// TestSelfFenceThenRecover: a short cut self-fences the site; renewing the
// same lease before it expires brings it back up without a new lease.
func TestSelfFenceThenRecover(t *testing.T) {
	ctx := testCtx(t)
	// Deadline one second after each renewal; the lease lasts two more.
	f := newFixture(t, 3*time.Second, 250*time.Millisecond, 2*time.Second, false)
	f.next(ctx, site.ControllerUp)
	lease := f.alive(ctx)

	f.cut()
	c := f.next(ctx, site.ControllerSelfFenced)
	f.heal()
	up := f.next(ctx, site.ControllerUp)
	t.Logf("self-fenced: %s; back up after %s: %s", c.Reason, up.At.Sub(c.At), up.Reason)
	if up.Reason != "lease renewed before it could expire" {
		t.Errorf("up again because %q; want the renewal of the same lease", up.Reason)
	}
	if got := f.alive(ctx); got != lease {
		t.Errorf("alive key on lease %x, want the original %x", got, lease)
	}
}

// TestLeaseLostRejoins: a cut longer than the TTL loses the lease; after the
// cut the member rejoins with a new lease (no coordinator fenced it here).
func TestLeaseLostRejoins(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, 2*time.Second, 500*time.Millisecond, 500*time.Millisecond, false)
	f.next(ctx, site.ControllerUp)
	lease := f.alive(ctx)

	f.cut()
	f.next(ctx, site.ControllerSelfFenced)
	f.waitAliveGone(ctx)
	f.heal()
	up := f.next(ctx, site.ControllerUp)
	if up.Reason != "joined" {
		t.Errorf("up again because %q, want a new join", up.Reason)
	}
	if got := f.alive(ctx); got == 0 || got == lease {
		t.Errorf("alive key on lease %x after rejoining; want a new lease (old %x)", got, lease)
	}
}

// slowAnswers makes every renewal's answer come back extra later than
// etcd gave it, and sends the send time of each one that succeeded on ok.
func slowAnswers(extra time.Duration, ok chan<- time.Time) func(*Member) {
	return func(m *Member) {
		client := m.cfg.Store.Client()
		m.keepAlive = func(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
			sent := time.Now()
			resp, err := client.KeepAliveOnce(ctx, id)
			if err != nil {
				return nil, err
			}
			t := time.NewTimer(extra)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.C:
			}
			select {
			case ok <- sent:
			default:
			}
			return resp, nil
		}
	}
}

// failing makes all but every n-th renewal fail at once, and sends the send
// time of each one that succeeded on ok.
func failing(n int, ok chan<- time.Time) func(*Member) {
	return func(m *Member) {
		client := m.cfg.Store.Client()
		var calls atomic.Int64
		m.keepAlive = func(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
			if calls.Add(1)%int64(n) != 0 {
				return nil, errors.New("injected failure")
			}
			sent := time.Now()
			resp, err := client.KeepAliveOnce(ctx, id)
			if err == nil {
				select {
				case ok <- sent:
				default:
				}
			}
			return resp, err
		}
	}
}

// stayUp waits for n renewals to succeed and fails the test if the member
// changed state meanwhile (it is up when called).
func (f *fixture) stayUp(ctx context.Context, renewed <-chan time.Time, n int) {
	f.t.Helper()
	for i := 0; i < n; {
		select {
		case <-renewed:
			i++
		case c := <-f.changes:
			f.t.Fatalf("after %d renewals: state changed to %s: %s", i, c.To, c.Reason)
		case <-ctx.Done():
			f.t.Fatalf("%d of %d renewals: %v", i, n, ctx.Err())
		}
	}
	if st := f.m.Info().State; st != site.ControllerUp {
		f.t.Errorf("state %s after %d renewals, want up", st, n)
	}
}

// TestSlowRenewalsKeepSiteUp: renewals whose answers take longer than the
// renew interval (a raft round to a leader at another site, a starved CPU)
// but less than the window (TTL - margin - interval) keep the site up: a
// renewal goes out on every tick while slow ones are under way, and each
// may take until the lease could expire.
func TestSlowRenewalsKeepSiteUp(t *testing.T) {
	ctx := testCtx(t)
	renewed := make(chan time.Time, 64)
	// The lab's timings: a window of 1s; answers 0.7s late.
	f := newFixture(t, 2*time.Second, 500*time.Millisecond, 500*time.Millisecond, false,
		slowAnswers(700*time.Millisecond, renewed))
	f.next(ctx, site.ControllerUp)
	f.stayUp(ctx, renewed, 8)
}

// TestSlowBeatsKeepSiteUp: beats that take longer than half a renew
// interval (four one-way trips between sites 100ms apart, for a member
// that follows a leader elsewhere) still land: the attempts that go out
// every half interval do not cut short the ones still under way, nor does
// the first to land (an attempt cut short in etcd counts as a failed
// proposal). The site joins and stays up.
func TestSlowBeatsKeepSiteUp(t *testing.T) {
	ctx := testCtx(t)
	landed := make(chan time.Time, 64)
	var cut atomic.Int64
	// The lab's timings: a new attempt every 250ms; beats take 400ms.
	f := newFixture(t, 2*time.Second, 500*time.Millisecond, 500*time.Millisecond, false, func(m *Member) {
		m.beat = func(ctx context.Context, siteName, incarnation string, lease clientv3.LeaseID) error {
			sent := time.Now()
			t := time.NewTimer(400 * time.Millisecond)
			defer t.Stop()
			select {
			case <-ctx.Done():
				cut.Add(1)
				return ctx.Err()
			case <-t.C:
			}
			if err := m.cfg.Store.Beat(ctx, siteName, incarnation, lease); err != nil {
				return err
			}
			select {
			case landed <- sent:
			default:
			}
			return nil
		}
	})
	f.next(ctx, site.ControllerUp)
	f.stayUp(ctx, landed, 8)
	if n := cut.Load(); n > 0 {
		t.Errorf("%d beat attempts cut short while the site was up; want none", n)
	}
}

// TestFailedRenewalsRetriedAtOnce: a renewal that fails goes out again at
// once, not at the next tick, so that failures in a row do not use up the
// window: here three of every four fail, which at one renewal a tick would
// leave 2s between successes.
func TestFailedRenewalsRetriedAtOnce(t *testing.T) {
	ctx := testCtx(t)
	renewed := make(chan time.Time, 64)
	f := newFixture(t, 2*time.Second, 500*time.Millisecond, 500*time.Millisecond, false,
		failing(4, renewed))
	f.next(ctx, site.ControllerUp)
	f.stayUp(ctx, renewed, 8)
}

// TestJoiningSaysWhy: a member that cannot join yet says why in its state's
// reason, keeping when it began joining, and joins once etcd answers.
func TestJoiningSaysWhy(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	var endpoints []string
	var proxies []*sitetest.Proxy
	for _, s := range cl.Config.Sites {
		p := cl.NewProxy(s.Name)
		p.Cut()
		proxies = append(proxies, p)
		endpoints = append(endpoints, p.URL)
	}
	changes := make(chan Change, 8)
	m := New(Config{
		Site: "a", Store: site.NewStore(cl.Client(endpoints...), cl.Config.Name),
		Log:      zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		LeaseTTL: time.Second, RenewInterval: 250 * time.Millisecond, SelfFenceMargin: 250 * time.Millisecond,
		OnChange: func(c Change) { changes <- c },
	})
	start := m.Info()
	if start.State != site.ControllerJoining || start.Reason != joiningReason {
		t.Fatalf("a new member: %s (%q); want joining, %q", start.State, start.Reason, joiningReason)
	}
	ctx := testCtx(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for info := m.Info(); !strings.HasPrefix(info.Reason, "cannot join yet, retrying: grant lease: "); info = m.Info() {
		select {
		case <-m.Changed():
		case <-ctx.Done():
			t.Fatalf("the member never said why it cannot join: %s (%q)", info.State, info.Reason)
		}
	}
	if info := m.Info(); info.State != site.ControllerJoining || !info.Since.Equal(start.Since) {
		t.Errorf("while etcd does not answer: %s since %s; want joining since %s", info.State, info.Since, start.Since)
	}
	// etcd answers: it joins.
	for _, p := range proxies {
		p.Heal()
	}
	select {
	case c := <-changes:
		if c.From != site.ControllerJoining || c.To != site.ControllerUp {
			t.Errorf("change %s -> %s (%s); want joining -> up", c.From, c.To, c.Reason)
		}
	case <-ctx.Done():
		t.Fatalf("never joined once etcd answered: %+v", m.Info())
	}
}

// TestOwnMemberLost: the member talks to its site's etcd member alone, as a
// controller that runs one does. When that member is lost while the other
// two keep their quorum (its client port hangs, or it dies), the renewals
// go through the fallback and the site stays up for three lease TTLs and
// more. Without a fallback it fences itself and its lease runs out, and so
// when another site's member does not answer either (one inter-site link
// down).
func TestOwnMemberLost(t *testing.T) {
	const ttl = 2 * time.Second
	for _, tc := range []struct {
		name   string
		stayUp bool
		lose   func(f *fixture)
	}{
		{"hangs", true, func(f *fixture) { f.proxies[0].Cut() }},
		{"dies", true, func(f *fixture) { f.cl.KillMember("a") }},
		{"hangs, no fallback", false, func(f *fixture) { f.proxies[0].Cut() }},
		// One inter-site link down as well: the loss is the network's.
		{"hangs, b unreachable", false, func(f *fixture) { f.proxies[0].Cut(); f.proxies[1].Cut() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			how := viaOwnAndFallback
			if tc.name == "hangs, no fallback" {
				how = viaOwn
			}
			f := newFixtureVia(t, how, ttl, 250*time.Millisecond, 500*time.Millisecond, false)
			f.next(ctx, site.ControllerUp)
			// The loss of a's member alone, not an election too.
			if err := f.cl.MoveLeader(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			beats := f.beats(ctx)
			lost := time.Now()
			tc.lose(f)
			if !tc.stayUp {
				// And its lease runs out, so that the others can fail it
				// over: nothing renewed it behind the self-fence.
				f.next(ctx, site.ControllerSelfFenced)
				f.waitAliveGone(ctx)
				return
			}
			for {
				select {
				case at := <-beats:
					if at.Sub(lost) < 3*ttl {
						continue
					}
					if st := f.m.Info().State; st != site.ControllerUp {
						t.Errorf("state %s after beats for %s through the fallback, want up", st, at.Sub(lost).Round(time.Millisecond))
					}
					return
				case c := <-f.changes:
					t.Fatalf("%s after a's member was lost: state changed to %s: %s", time.Since(lost).Round(time.Millisecond), c.To, c.Reason)
				case <-ctx.Done():
					t.Fatalf("no beat for %s after a's member was lost", time.Since(lost).Round(time.Millisecond))
				}
			}
		})
	}
}

// beats sends the time each beat of site a lands, as the observer sees it.
func (f *fixture) beats(ctx context.Context) <-chan time.Time {
	out := make(chan time.Time, 256)
	w := f.obs.Client().Watch(ctx, f.obs.Keys().Beat("a"))
	go func() {
		for resp := range w {
			for range resp.Events {
				select {
				case out <- time.Now():
				default:
				}
			}
		}
	}()
	return out
}
