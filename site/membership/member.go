package membership

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/ctxsleep"
	"github.com/zdt-project/zdt/site/failstatic"
)

// Config configures a Member.
type Config struct {
	Site  string
	API   string // the controller's API address, published in the alive key
	Store *site.Store
	// Fallback, when set, reaches etcd through the other sites' members,
	// one store (of one member) each: a controller whose Store talks to
	// its own member alone renews through them too, so that losing that
	// member (its peers cut off) does not cost the site its lease (see
	// fallback.go).
	Fallback []*site.Store
	Log      *zap.Logger

	LeaseTTL        time.Duration // whole seconds
	RenewInterval   time.Duration
	SelfFenceMargin time.Duration

	// OnChange is the one hook through which the site's reconcilers learn
	// that the site must stop (or may resume) serving. It is called for
	// every change of state, in order, from the member's own goroutine, and
	// must not block: the self-fence deadline does not wait.
	OnChange func(Change)

	// RevokeOnStop revokes the lease when Run stops cleanly, so the
	// coordinator acts at once. Without it the lease runs out as after a
	// crash.
	RevokeOnStop bool

	// FailStatic, when set, asks the other sites before the self-fence
	// deadline whether etcd itself has failed (package failstatic). A
	// verdict that holds keeps the site serving for a while past the
	// deadline; the member asks again before that runs out, and fences
	// itself as usual once a verdict does not hold. CheckTimeout bounds
	// one round of the check (it has two).
	FailStatic   func(ctx context.Context) failstatic.Verdict
	CheckTimeout time.Duration
	// OnFailStatic, when set, is told when the site starts failing static
	// (on, with why) and when it stops (off, with why). It is called from
	// the member's goroutine and must not block.
	OnFailStatic func(on bool, why string, since time.Time)
}

// Change is one change of the member's state.
type Change struct {
	From, To site.ControllerState
	Reason   string
	At       time.Time
}

// Info is the member's state at one instant.
type Info struct {
	State  site.ControllerState
	Reason string
	Since  time.Time
	// LeaseExpiry is the earliest instant the lease can expire at the
	// majority (last renewal sent + granted TTL); zero without a lease.
	LeaseExpiry time.Time
	// FenceDeadline is when the member fences itself unless it renews
	// first (or a fail-static verdict holds it longer); zero without a
	// lease.
	FenceDeadline time.Time
	// FailStatic, when not empty, says why the site serves on although
	// it cannot renew: etcd itself has failed (package failstatic).
	// FailStaticSince is when that began.
	FailStatic      string
	FailStaticSince time.Time
}

// Member holds one site's membership. Create it with New and run it with
// Run.
type Member struct {
	cfg         Config
	incarnation string
	// keepAlive, when set, sends a renewal instead of the client's
	// KeepAliveOnce: a test puts latency or failures around it.
	keepAlive func(context.Context, clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error)
	// beat, when set, sends a beat instead of the store's Beat.
	beat func(ctx context.Context, site, incarnation string, lease clientv3.LeaseID) error

	mu          sync.Mutex
	info        Info
	coordinator bool
	changed     chan struct{} // closed and replaced on every change
	// beatSent is the send time of the newest beat etcd committed.
	beatSent time.Time
	// othersAnswered is when every fallback member last answered
	// (fallback.go).
	othersAnswered time.Time
}

// New returns a member in state joining.
func New(cfg Config) *Member {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Member{
		cfg:         cfg,
		incarnation: hex.EncodeToString(b[:]),
		info:        Info{State: site.ControllerJoining, Reason: joiningReason, Since: time.Now()},
		changed:     make(chan struct{}),
	}
}

// Info returns the member's state now.
func (m *Member) Info() Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.info
}

// Changed returns a channel that is closed at the next change of state (or
// of the coordinator flag).
func (m *Member) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// SetCoordinator records whether this site's controller coordinates, for
// the site's report.
func (m *Member) SetCoordinator(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.coordinator == on {
		return
	}
	m.coordinator = on
	m.notifyLocked()
}

func (m *Member) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// set enters a new state; it calls the hook outside the lock. Only the
// member's own goroutine calls it, so hooks see changes in order.
func (m *Member) set(to site.ControllerState, reason string) {
	m.mu.Lock()
	from := m.info.State
	if from == to && m.info.Reason == reason {
		m.mu.Unlock()
		return
	}
	now := time.Now()
	m.info.State, m.info.Reason, m.info.Since = to, reason, now
	m.notifyLocked()
	m.mu.Unlock()
	if from != to {
		m.log().Info("membership state", zap.String("from", string(from)), zap.String("to", string(to)), zap.String("reason", reason))
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(Change{From: from, To: to, Reason: reason, At: now})
		}
	}
}

// joiningReason is why a member that has just started is joining.
const joiningReason = "starting: asking etcd for a lease and registering the site"

// joiningWhy records why a joining member has not joined yet; it changes
// nothing in another state, nor when the member began joining.
func (m *Member) joiningWhy(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.info.State != site.ControllerJoining || m.info.Reason == reason {
		return
	}
	m.info.Reason = reason
	m.notifyLocked()
}

// LastBeat returns the send time of the newest of the site's beats that
// etcd committed (zero before the first).
func (m *Member) LastBeat() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.beatSent
}

func (m *Member) beatCommitted(sent time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sent.After(m.beatSent) {
		m.beatSent = sent
	}
}

// setFailStatic records the start (on) or the end of failing static,
// with why, and tells the hook when that changes anything.
func (m *Member) setFailStatic(on bool, why string) {
	m.mu.Lock()
	was := m.info.FailStatic != ""
	if !on && !was {
		m.mu.Unlock()
		return
	}
	since := m.info.FailStaticSince
	if on && !was {
		since = time.Now()
	}
	if on {
		m.info.FailStatic, m.info.FailStaticSince = why, since
	} else {
		m.info.FailStatic, m.info.FailStaticSince = "", time.Time{}
	}
	m.notifyLocked()
	m.mu.Unlock()
	if on != was && m.cfg.OnFailStatic != nil {
		m.cfg.OnFailStatic(on, why, since)
	}
}

func (m *Member) setLease(expiry, deadline time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.info.LeaseExpiry, m.info.FenceDeadline = expiry, deadline
}

func (m *Member) log() *zap.Logger { return m.cfg.Log.With(zap.String("site", m.cfg.Site)) }

// errLeaseLost: etcd no longer knows the lease; it expired.
var errLeaseLost = errors.New("lease expired")

// Run joins the cluster and holds the site's membership until ctx ends. A
// lost lease is not an error: the member rejoins with a new one (and stays
// fenced if the coordinator fenced the site meanwhile). It returns nil after
// a clean stop.
func (m *Member) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	reportCtx, stopReports := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.reportLoop(reportCtx)
	}()

	var lease clientv3.LeaseID
	for ctx.Err() == nil {
		var grant renewal
		var err error
		lease, grant, err = m.join(ctx)
		if err != nil {
			break // ctx ended
		}
		err = m.hold(ctx, lease, grant)
		if errors.Is(err, errLeaseLost) {
			m.log().Warn("membership lost; rejoining", zap.Int64("lease", int64(lease)), zap.Error(err))
			lease = 0
			if m.Info().State == site.ControllerUp {
				// The deadline always passes first; should it not have,
				// a membership etcd says is over serves no longer.
				m.set(site.ControllerSelfFenced, "membership lost while serving: "+err.Error())
			}
			m.setFailStatic(false, "membership lost: "+err.Error())
		}
	}
	// The report loop ends first: a write of it still under way must not
	// land after the final report and say the site is up.
	stopReports()
	wg.Wait()
	m.stop(lease)
	return nil
}

// join grants a lease and joins under it, retrying until it succeeds or ctx
// ends. It returns the lease, and when the grant was sent with the TTL it
// granted.
func (m *Member) join(ctx context.Context) (clientv3.LeaseID, renewal, error) {
	backoff := ctxsleep.NewBackoff(100*time.Millisecond, m.cfg.LeaseTTL)
	for attempt := 0; ; attempt++ {
		lease, grant, err := m.joinOnce(ctx, m.store(attempt))
		if err == nil {
			return lease, grant, nil
		}
		if ctx.Err() != nil {
			return 0, renewal{}, ctx.Err()
		}
		m.log().Debug("join failed; retrying", zap.Error(err))
		m.joiningWhy("cannot join yet, retrying: " + err.Error())
		if err := backoff.Wait(ctx); err != nil {
			return 0, renewal{}, err
		}
	}
}

func (m *Member) joinOnce(ctx context.Context, store *site.Store) (clientv3.LeaseID, renewal, error) {
	c := store.Client()
	tctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL)
	defer cancel()
	if store != m.cfg.Store {
		// Through the other sites' members only when the site lost its
		// own member alone (fallback.go).
		if err := m.othersAnswer(tctx); err != nil {
			return 0, renewal{}, err
		}
	}
	sent := time.Now()
	grant, err := c.Grant(tctx, int64(math.Ceil(m.cfg.LeaseTTL.Seconds())))
	if err != nil {
		return 0, renewal{}, fmt.Errorf("grant lease: %w", err)
	}
	g := renewal{sent: sent, ttl: time.Duration(grant.TTL) * time.Second}
	expiry := sent.Add(g.ttl)
	deadline := expiry.Add(-m.cfg.SelfFenceMargin)
	now := time.Now()
	res, err := store.Join(tctx, grant.ID,
		site.Alive{Site: m.cfg.Site, Incarnation: m.incarnation, Since: now, API: m.cfg.API},
		site.Registration{Site: m.cfg.Site, First: now})
	if err != nil {
		return 0, renewal{}, err
	}
	m.beatCommitted(sent) // the join writes the first beat
	m.setLease(expiry, deadline)
	switch {
	case res.Fence != nil:
		m.set(site.ControllerFenced, fenceReason(res.Fence))
	case time.Until(deadline) > m.cfg.RenewInterval:
		m.set(site.ControllerUp, "joined")
	default:
		// The grant waited long (for a quorum, say): too little of the
		// lease is left to serve on. hold renews at once and settles.
	}
	return grant.ID, g, nil
}

func fenceReason(f *site.Fence) string {
	return fmt.Sprintf("fenced by op %s at %s: %s", f.Op, f.At.UTC().Format(time.RFC3339), f.Reason)
}

// renewal is one renewal's (or the grant's) answer: when it was sent, and
// the TTL the leader granted or why it failed.
type renewal struct {
	sent time.Time
	ttl  time.Duration
	err  error
	// kaTTL is the TTL the keep-alive alone got (on kept): it bounds a
	// fail-static verdict held at etcd's quota.
	kaTTL time.Duration
}

// hold renews the lease and follows the site's fence record until the lease
// is lost or ctx ends. It self-fences when the deadline passes unrenewed.
// The renewals follow renewPlan: one on every tick, overlapping when slow,
// again at once after a failure.
func (m *Member) hold(ctx context.Context, lease clientv3.LeaseID, grant renewal) error {
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	fences := m.followFence(hctx, &wg)

	plan := newRenewPlan(m.cfg.RenewInterval, m.cfg.SelfFenceMargin, grant.sent, grant.ttl)
	st := &staticHold{kaExpiry: plan.expiry}
	deadline := func() time.Time { return later(plan.deadline(), st.until) }
	fenceTimer := time.NewTimer(time.Until(deadline()))
	defer fenceTimer.Stop()
	checkTimer := time.NewTimer(time.Hour)
	checkTimer.Stop()
	defer checkTimer.Stop()
	// armCheck sets the check to start checkLead before the deadline. A
	// check that did not hold is tried again while a whole one still fits
	// before the deadline; none runs while the site does not serve.
	armCheck := func(again bool) {
		checkTimer.Stop()
		if m.cfg.FailStatic == nil || m.Info().State != site.ControllerUp {
			return
		}
		wait := time.Until(deadline().Add(-m.checkLead()))
		if again && wait <= 0 {
			if time.Until(deadline()) <= 2*m.cfg.CheckTimeout {
				return
			}
			wait = m.cfg.CheckTimeout / 4
		}
		checkTimer.Reset(max(wait, 0))
	}
	armCheck(false)
	checked := make(chan failstatic.Verdict, 1)
	checking := false
	var checkStarted time.Time
	ticker := time.NewTicker(m.cfg.RenewInterval)
	defer ticker.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// Every renewal under way has room to answer without blocking, so
	// none outlives hold.
	renewed := make(chan renewal, maxInFlight)
	// kept has the keep-alives' answers as they come, before their beats:
	// etcd at its quota refuses beats, and a beat retried until it times
	// out must not hold back what the keep-alive proved.
	kept := make(chan renewal, maxInFlight)
	var lastErr error
	send := func() {
		timeout, ok := plan.send(time.Now())
		if !ok {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			renewed <- m.renew(hctx, lease, timeout, kept)
		}()
	}
	send() // the first renewal goes out at once
	var fence *site.Fence
	fenceKnown := false

	for {
		select {
		case <-hctx.Done():
			return hctx.Err()

		case <-fenceTimer.C:
			if left := time.Until(deadline()); left > 0 {
				fenceTimer.Reset(left) // a verdict moved it meanwhile
				continue
			}
			if m.Info().State == site.ControllerUp {
				m.set(site.ControllerSelfFenced, m.selfFenceReason(plan, lastErr, st))
			}
			if !st.until.IsZero() {
				st.until = time.Time{}
				m.setFailStatic(false, "self-fenced: "+st.why)
			}

		case <-checkTimer.C:
			if checking || m.Info().State != site.ControllerUp {
				continue
			}
			checking, checkStarted = true, time.Now()
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(hctx, 2*m.cfg.CheckTimeout)
				defer cancel()
				checked <- m.cfg.FailStatic(cctx)
			}()

		case v := <-checked:
			checking = false
			if plan.lastSent.After(checkStarted) {
				armCheck(false) // a renewal counted meanwhile: moot
				continue
			}
			if v.Hold && (m.Info().State != site.ControllerUp || !time.Now().Before(deadline())) {
				// Too late: the pledges must be in before the deadline,
				// when a sweep of this site may start to be due.
				m.log().Warn("fail-static verdict came after the deadline; not acting on it", zap.String("why", v.Why))
				continue
			}
			moved := m.judge(st, v, plan)
			if moved {
				m.setLease(plan.expiry, deadline())
				fenceTimer.Reset(time.Until(deadline()))
			}
			armCheck(!moved)

		case <-ticker.C:
			send()

		case <-retry.C:
			send()

		case r := <-renewed:
			switch {
			case errors.Is(r.err, errLeaseLost):
				return r.err
			case errors.Is(r.err, rpctypes.ErrLeaseNotFound):
				return errLeaseLost
			}
			before := plan.deadline()
			now := time.Now()
			moved, retryIn := plan.done(r.sent, r.ttl, r.err)
			m.log().Debug("lease renewal", zap.Duration("rtt", now.Sub(r.sent)), zap.Bool("ok", r.err == nil),
				zap.Duration("headroom", before.Sub(now)), zap.Int("in_flight", plan.inFlight), zap.NamedError("renew_error", r.err))
			if retryIn > 0 {
				retry.Reset(retryIn)
			}
			if r.err != nil {
				lastErr = r.err
				continue
			}
			if left := before.Sub(now); left < m.cfg.RenewInterval && moved && m.Info().State == site.ControllerUp && st.until.IsZero() {
				// A close call: operators should know before it becomes
				// a self-fence.
				m.log().Warn("lease renewed late", zap.Duration("rtt", now.Sub(r.sent)),
					zap.Duration("headroom", left), zap.Int("in_flight", plan.inFlight))
			}
			if moved {
				if !st.until.IsZero() {
					m.log().Warn("etcd works again: fail static ended", zap.Duration("after", now.Sub(m.Info().FailStaticSince)))
					st.until = time.Time{}
					m.setFailStatic(false, "the lease was renewed: etcd works again")
				}
				m.setLease(plan.expiry, deadline())
				fenceTimer.Reset(time.Until(deadline()))
			}
			// The lease was still alive at the leader, so no coordinator
			// can have fenced the site under it: serving may resume.
			m.settle(fence, fenceKnown, plan.deadline())
			if moved && !checking {
				armCheck(false)
			}

		case k := <-kept:
			st.kaExpiry = later(st.kaExpiry, k.sent.Add(k.kaTTL))

		case f := <-fences:
			fence, fenceKnown = f, true
			m.settle(fence, fenceKnown, plan.deadline())
		}
	}
}

// staticHold is what the fail-static checks of one lease have decided.
type staticHold struct {
	// until is how long the last verdict that held lets the site serve
	// (zero: none holds).
	until time.Time
	// kaExpiry is the earliest the lease can expire, by the keep-alives
	// alone (the beats may fail while they succeed).
	kaExpiry time.Time
	// why is the last verdict's reason, for the self-fence's.
	why string
}

// checkLead is how long before the deadline the fail-static check starts:
// its two rounds, and room to act on the verdict.
func (m *Member) checkLead() time.Duration { return 2*m.cfg.CheckTimeout + m.cfg.CheckTimeout/2 }

// staticFor is how long a verdict that holds keeps the site serving,
// counted from when the pledges were asked for: lease_ttl -
// self_fence_margin - the check timeout. A working majority that forms
// after the pledges can end this site's membership no sooner than a lease
// TTL after it formed (the pledged sweepers wait for their own beat, the
// new leader extends every lease), and the next check, which starts within
// the check timeout of it forming, no longer holds (docs/design.md, "Fail
// static").
func (m *Member) staticFor() time.Duration {
	return m.cfg.LeaseTTL - m.cfg.SelfFenceMargin - m.cfg.CheckTimeout
}

// judge acts on a verdict: it reports whether the deadline moved.
func (m *Member) judge(st *staticHold, v failstatic.Verdict, plan *renewPlan) bool {
	st.why = v.Why
	if !v.Hold {
		level := m.log().Info
		if !st.until.IsZero() {
			level = m.log().Warn
		}
		level("fail static ruled out", zap.String("why", v.Why), zap.Duration("after_last_renewal", time.Since(plan.lastSent)),
			zap.Duration("decided_before_deadline", time.Until(later(plan.deadline(), st.until))))
		return false
	}
	until := v.Sent.Add(m.staticFor())
	if v.NoSpace {
		// A leader still expires leases whose keep-alives stop.
		until = earlier(until, st.kaExpiry.Add(-m.cfg.SelfFenceMargin))
	}
	if !until.After(later(plan.deadline(), st.until)) {
		m.log().Info("fail static holds, but for no longer than the lease", zap.String("why", v.Why),
			zap.Time("until", until), zap.Time("deadline", later(plan.deadline(), st.until)), zap.Time("keep_alive_expiry", st.kaExpiry))
		return false
	}
	if st.until.IsZero() {
		m.log().Warn("etcd has failed for every site: failing static (serving on, automation frozen)",
			zap.String("why", v.Why), zap.Duration("after_last_renewal", time.Since(plan.lastSent)),
			zap.Duration("decided_before_deadline", time.Until(plan.deadline())))
	}
	st.until = until
	m.setFailStatic(true, v.Why)
	return true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// selfFenceReason says why the member fences itself: when the last
// renewal that worked was sent, when the lease can expire, and what the
// renewals since are doing.
func (m *Member) selfFenceReason(plan *renewPlan, lastErr error, st *staticHold) string {
	why := fmt.Sprintf("lease not renewed: the last renewal was sent at %s and the lease can expire at %s; %d renewals under way",
		plan.lastSent.Format(time.RFC3339Nano), plan.expiry.Format(time.RFC3339Nano), plan.inFlight)
	if lastErr != nil && plan.failures > 0 {
		why += fmt.Sprintf(", %d failed since, the last with: %v", plan.failures, lastErr)
	}
	if st.why != "" {
		why += "; not failing static: " + st.why
	}
	return why
}

// settle derives the state from the fence record and the lease: fenced
// whenever a fence names the site; up only while the lease is renewed and the
// fence record is known to be absent; otherwise unchanged (joining or
// self-fenced).
func (m *Member) settle(fence *site.Fence, fenceKnown bool, deadline time.Time) {
	st := m.Info().State
	switch {
	case fence != nil:
		m.set(site.ControllerFenced, fenceReason(fence))
	case fenceKnown && st != site.ControllerUp && time.Now().Before(deadline):
		why := "joined"
		switch st {
		case site.ControllerSelfFenced:
			why = "lease renewed before it could expire"
		case site.ControllerFenced:
			why = "fence lifted"
		}
		m.set(site.ControllerUp, why)
	}
}

// renew sends one keep-alive and one beat at once, waiting at most timeout
// for their answers, and returns when they were sent and the TTL the
// leader granted. It counts only if both succeed: the beat is what lets
// the other sites time the renewals themselves (see Sweeper).
//
// The keep-alive's own answer, when it succeeds, also goes to kept at
// once, unless kept is full.
func (m *Member) renew(ctx context.Context, lease clientv3.LeaseID, timeout time.Duration, kept chan<- renewal) renewal {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sent := time.Now()
	// The beats' attempts end at the renewal's deadline, or when the
	// renewal failed, but not when one of them landed: an attempt cut
	// short while its write was under way counts as a failed proposal at
	// the member (etcd_server_proposals_failed_total, which operators
	// alert on), and between distant sites there is one such duplicate
	// most renewals. Left to run, it lands as well, harmlessly.
	attempts, stopBeats := context.WithTimeout(ctx, timeout)
	context.AfterFunc(attempts, stopBeats) // released at the deadline at the latest
	beaten := make(chan error, 1)
	go func() { beaten <- m.beatRetrying(attempts, lease) }()
	resp, err := m.keepAliveOnce(tctx, lease)
	if err != nil {
		stopBeats() // the renewal failed anyway: retry it whole, at once
	} else {
		select {
		case kept <- renewal{sent: sent, kaTTL: time.Duration(resp.TTL) * time.Second}:
		default: // dropped: the keep-alive expiry only errs on the early side
		}
	}
	berr := <-beaten
	if err == nil && berr != nil {
		stopBeats()
		if errors.Is(berr, site.ErrNotMember) {
			// Another site ended the membership: it saw no beat for a
			// lease TTL. The lease may live on; it no longer counts.
			berr = fmt.Errorf("%w: %w", errLeaseLost, berr)
		}
		err = berr
	}
	if err != nil {
		return renewal{sent: sent, err: err}
	}
	return renewal{sent: sent, ttl: time.Duration(resp.TTL) * time.Second}
}

// beatRetrying sends beats until one succeeds, the membership has ended
// or ctx ends. A keep-alive sent to a leader that died is forwarded to the
// next one, but a write is not: it would wait for ctx while the new
// leader, elected within an election timeout, could take it at once. So a
// new attempt goes out every half renew interval while the earlier ones
// still wait, and the first to land counts; an attempt is not cut short,
// because between sites 100ms apart a beat from a member that follows a
// leader elsewhere takes four one-way trips (the forward, the append and
// its answer, the commit), more than half a lab renew interval. (Cutting
// attempts at half an interval, none landed there; cutting them later,
// a beat sent just before a new leader was elected waited too long.) The
// renewal still counts from its own send time, before any attempt. A beat
// is idempotent: the attempts still under way when one lands do no harm,
// and end with ctx, which may outlive the call (see renew). With a
// fallback, the attempts take the site's own member and the others in turn
// (fallback.go).
func (m *Member) beatRetrying(ctx context.Context, lease clientv3.LeaseID) error {
	type result struct {
		sent time.Time
		err  error
	}
	results := make(chan result)
	returned := make(chan struct{}) // the attempts still under way go on
	defer close(returned)
	inFlight, attempts := 0, 0
	attempt := func() {
		beat := m.beatVia(m.store(attempts))
		inFlight++
		attempts++
		sent := time.Now()
		go func() {
			err := beat(ctx, m.cfg.Site, m.incarnation, lease)
			select {
			case results <- result{sent, err}:
			case <-returned:
			}
		}()
	}
	attempt()
	every := time.NewTicker(m.retryEvery())
	defer every.Stop()
	var again <-chan time.Time // after an error at once, with none under way
	var err error
	for {
		select {
		case <-ctx.Done():
			return cmp.Or(err, ctx.Err())
		case <-every.C:
			attempt()
		case <-again:
			again = nil
			attempt()
		case r := <-results:
			inFlight--
			if r.err == nil {
				m.beatCommitted(r.sent)
				return nil
			}
			if errors.Is(r.err, site.ErrNotMember) || errors.Is(r.err, rpctypes.ErrNoSpace) {
				return r.err // refused writes stay refused: the renewal as a whole retries
			}
			err = r.err
			if inFlight == 0 && again == nil { // an error at once (no connection) must not spin
				again = time.After(retryMin)
			}
		}
	}
}

// followFence sends the site's fence record (nil: none) on the returned
// channel whenever it may have changed, keeping only the latest value. It
// re-reads after every broken watch, so it heals from any missed event.
func (m *Member) followFence(ctx context.Context, wg *sync.WaitGroup) <-chan *site.Fence {
	out := make(chan *site.Fence, 1)
	send := func(f *site.Fence) {
		select {
		case <-out:
		default:
		}
		out <- f
	}
	key := m.cfg.Store.Keys().Fence(m.cfg.Site)
	wg.Add(1)
	go func() {
		defer wg.Done()
		backoff := ctxsleep.NewBackoff(100*time.Millisecond, time.Second)
		// A read that failed is made again through the next member; a
		// broken watch, from the site's own member again.
		for failed := 0; ctx.Err() == nil; {
			store := m.store(failed)
			f, rev, err := m.readFence(ctx, store)
			if err != nil {
				failed++
				if backoff.Wait(ctx) != nil {
					return
				}
				continue
			}
			failed = 0
			send(f)
			for resp := range store.WatchKey(ctx, key, false, rev+1) {
				if resp.Err() != nil {
					break
				}
				backoff.Reset()
				for _, ev := range resp.Events {
					var f *site.Fence
					if ev.Type == clientv3.EventTypePut {
						if v, err := decodeFence(ev.Kv.Value); err == nil {
							f = &v
						}
					}
					send(f)
				}
			}
			if backoff.Wait(ctx) != nil {
				return
			}
		}
	}()
	return out
}

// requestTimeout bounds one etcd request other than a renewal. A write or
// a linearizable read from a site whose member follows a leader elsewhere
// takes two round trips to it (the forward, then the commit or the read
// index), more on a new connection: a renew interval is too short once
// sites are 100ms apart, and a request that always times out never lands.
func (m *Member) requestTimeout() time.Duration {
	return max(m.cfg.LeaseTTL, 4*m.cfg.RenewInterval)
}

func (m *Member) readFence(ctx context.Context, store *site.Store) (*site.Fence, int64, error) {
	tctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
	defer cancel()
	resp, err := store.Client().Get(tctx, store.Keys().Fence(m.cfg.Site))
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, resp.Header.Revision, nil
	}
	f, err := decodeFence(resp.Kvs[0].Value)
	if err != nil {
		return nil, 0, err
	}
	return &f, resp.Header.Revision, nil
}

// stop leaves the cluster: the site stops serving, says so in its report and
// (with RevokeOnStop) gives up its lease.
func (m *Member) stop(lease clientv3.LeaseID) {
	m.set(site.ControllerStopped, "controller stopped")
	// Each through the site's own member, then through the others: the
	// lease is given up at once even when the member lost its peers.
	err := m.eachStore(time.Second, func(ctx context.Context, s *site.Store) error { return s.PutReport(ctx, m.report()) })
	if err != nil {
		m.log().Debug("final report not written", zap.Error(err))
	}
	if m.cfg.RevokeOnStop && lease != 0 {
		err := m.eachStore(time.Second, func(ctx context.Context, s *site.Store) error {
			_, err := s.Client().Revoke(ctx, lease)
			return err
		})
		if err != nil {
			m.log().Warn("lease not revoked; it will expire", zap.Error(err))
		}
	}
	m.setLease(time.Time{}, time.Time{})
}
