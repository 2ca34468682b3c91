package failover

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// Config configures a Coordinator.
type Config struct {
	Cluster *config.Cluster
	Site    string // the site whose controller this is
	Store   *site.Store
	Log     *zap.Logger
	// View, when set, is the controller's view of the cluster's state,
	// kept by its caller (View.Run); else the coordinator keeps one of its
	// own while it leads.
	View *site.View

	// OnLeading is told when this controller becomes, and stops being, the
	// coordinator.
	OnLeading func(bool)
	// Fencer fences a dark site's resources from outside before a
	// failover takes them over (package outside); nil skips that step.
	Fencer Fencer
	// BeforeStep, when set, is called before each step runs, after the
	// step is journaled as running. Tests use it to stop a coordinator in
	// the middle of an op.
	BeforeStep func(ctx context.Context, op *site.Op, step int) error
	// Outside runs runbooks' notify and shell steps; nil fails them.
	Outside Outside
}

// Coordinator campaigns for the election and, while it holds it, decides and
// carries out ops.
// Fencer fences the resources of a site from outside it, each attempt
// bounded, and says per resource what it did.
type Fencer interface {
	Fence(ctx context.Context, site string) []site.ResourceOutcome
}

type Coordinator struct {
	cfg Config
	log *zap.Logger
	now func() time.Time

	// running is the ID of the op this coordinator is carrying out, ""
	// when none.
	running atomic.Value

	pruned time.Time // when the journal and the event log were last pruned
	// placements is the last solve of the guests' placement of a pass
	// that started no op.
	placements placementMemo
	// view is the state the coordinator works from while it leads, nil
	// otherwise. Only the goroutine of Run uses it.
	view *site.View
	// quiet: the last pass found nothing to do, and only a change of the
	// state can give it something (see isQuiet). Only the goroutine of Run
	// uses it.
	quiet bool
}

// pruneEvery is how often the coordinator prunes the op journal and the
// event log (config: retention).
const pruneEvery = 10 * time.Minute

// OpRunning returns the ID of the op this coordinator is carrying out at
// this instant, "" when none.
func (c *Coordinator) OpRunning() string {
	id, _ := c.running.Load().(string)
	return id
}

// New returns a coordinator; Run it.
func New(cfg Config) *Coordinator {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Coordinator{cfg: cfg, log: cfg.Log.With(zap.String("site", cfg.Site)), now: time.Now}
}

// Run campaigns until ctx ends; whenever elected, it coordinates until it
// loses the election (its session's lease) or ctx ends. It returns nil when
// ctx ends.
func (c *Coordinator) Run(ctx context.Context) error {
	ttl := int(math.Ceil(c.cfg.Cluster.Timings.LeaseTTL.Seconds()))
	retry := time.NewTicker(c.cfg.Cluster.Timings.RenewInterval)
	defer retry.Stop()
	for ctx.Err() == nil {
		if err := c.term(ctx, ttl); err != nil && ctx.Err() == nil {
			c.log.Debug("election term ended", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-retry.C:
			}
		}
	}
	return nil
}

// term is one campaign and, if won, one term as coordinator.
func (c *Coordinator) term(ctx context.Context, ttl int) error {
	sess, err := concurrency.NewSession(c.cfg.Store.Client(), concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, strings.TrimSuffix(c.cfg.Store.Keys().Election(), "/"))
	if err := el.Campaign(sess.Ctx(), c.cfg.Site); err != nil {
		return err
	}
	g := site.Guard{Key: el.Key(), Rev: el.Rev()}
	c.setLeading(true)
	c.log.Info("elected coordinator", zap.Int64("rev", g.Rev))
	c.event(sess.Ctx(), "coordinator", "", c.cfg.Site, c.cfg.Site+" is the coordinator")
	err = c.lead(sess.Ctx(), g)
	// It decides nothing more: say so before resigning, which waits for
	// etcd.
	c.setLeading(false)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = el.Resign(rctx) // best effort: the session's lease runs out anyway
	return err
}

func (c *Coordinator) setLeading(on bool) {
	if c.cfg.OnLeading != nil {
		c.cfg.OnLeading(on)
	}
}

// lead reconciles on every change of the cluster's state and on a timer,
// until ctx ends or the election is lost. It works from a view of the state
// that a watch keeps (site.View): each action reads it for the cost of one
// small read, not by reading and decoding every record.
func (c *Coordinator) lead(ctx context.Context, g site.Guard) error {
	ctx = clientv3.WithRequireLeader(ctx) // fail fast, not hang, without a quorum
	view := c.cfg.View
	if view == nil {
		view = site.NewView(c.cfg.Store)
		vctx, stop := context.WithCancel(ctx)
		viewDone := make(chan struct{})
		go func() {
			defer close(viewDone)
			_ = view.Run(vctx) // it returns when vctx ends
		}()
		defer func() {
			stop()
			<-viewDone
		}()
	}
	c.view = view
	defer func() { c.view = nil }()
	since := c.now()
	renew := c.cfg.Cluster.Timings.RenewInterval
	tick := time.NewTicker(renew)
	defer tick.Stop()
	var lastPass time.Time
	pass := true
	for {
		if pass {
			lastPass = c.now()
			if err := c.reconcile(ctx, g, since); errors.Is(err, site.ErrNotCoordinator) {
				return err
			} else if err != nil && ctx.Err() == nil {
				c.quiet = false
				c.log.Warn("reconcile failed; will retry", zap.Error(err))
			}
		}
		if c.now().Sub(c.pruned) >= pruneEvery {
			c.prune(ctx, g)
		}
		// The next pass reads the state anew: one pass answers every
		// change before it.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			pass = timerPassDue(c.quiet, c.now().Sub(lastPass), renew)
		case <-view.Changed():
			pass = true
		}
	}
}

// quietPasses is how many renew intervals apart a quiet coordinator passes
// on its timer: a pass reads etcd's revision (a linearizable read, a round
// of heartbeats from etcd's leader), twice a second for nothing otherwise.
const quietPasses = 10

// timerPassDue says whether the timer calls for a pass, since the last
// pass: always, unless the coordinator is quiet (then a change of the state
// calls for one), and then every quietPasses renew intervals all the same,
// in case a change was missed.
func timerPassDue(quiet bool, sinceLast, renew time.Duration) bool {
	return !quiet || sinceLast >= quietPasses*renew
}

// snapshot reads the cluster's state: from the view while leading, from
// etcd otherwise.
func (c *Coordinator) snapshot(ctx context.Context) (*site.Snapshot, error) {
	if c.view != nil {
		return c.view.Snapshot(ctx)
	}
	return c.cfg.Store.Snapshot(ctx)
}

// state is snapshot with the route observer's records, by prefix, of the
// same revision when read from the view; nil records without an observer.
func (c *Coordinator) state(ctx context.Context) (*site.Snapshot, map[string]site.UpstreamRoute, error) {
	if c.cfg.Cluster.BGP.Observer == nil {
		snap, err := c.snapshot(ctx)
		return snap, nil, err
	}
	if c.view != nil {
		return c.view.State(ctx)
	}
	snap, err := c.cfg.Store.Snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	upstream, err := c.cfg.Store.Upstream(ctx)
	return snap, upstream, err
}

// reconcile does what Decide says until there is nothing left to do.
func (c *Coordinator) reconcile(ctx context.Context, g site.Guard, since time.Time) error {
	const maxActions = 16 // bounded: the rest waits for the next pass
	waiting := map[string]bool{}
	for range maxActions {
		if err := c.act(ctx, g, since, waiting); errors.Is(err, errIdle) {
			return nil
		} else if err != nil && !errors.Is(err, errWaiting) {
			return err
		}
	}
	return nil
}

// errIdle: there is nothing to do.
var errIdle = errors.New("nothing to do")

// act takes the next action Decide names. An action may take as long as
// its op needs, but no more than the lease TTL without progress (a write
// of the op's journal that lands): a request stuck on an unresponsive etcd
// member must not hold up the coordinator; the next pass retries on
// another.
//
// An op that waits for the sites is added to waiting; the next action of
// the pass passes it over.
func (c *Coordinator) act(ctx context.Context, g site.Guard, since time.Time, waiting map[string]bool) error {
	ctx, dog, stop := withWatchdog(ctx, c.cfg.Cluster.Timings.LeaseTTL)
	defer stop()
	snap, err := c.snapshot(ctx)
	if err != nil {
		return err
	}
	dog.progress()
	d, err := decide(c.cfg.Cluster, snap, c.cfg.Site, c.now(), since, waiting, &c.placements)
	if err != nil {
		return err
	}
	op := d.Resume
	if d.Start != nil {
		op = d.Start
		if err := c.cfg.Store.CreateOp(ctx, g, op); err != nil {
			return err
		}
		c.log.Info("op started", zap.String("op", op.ID), zap.String("kind", op.Kind), zap.Any("params", op.Params))
		c.event(ctx, "op-started", op.ID, op.Params["site"], "op "+op.ID+" ("+op.Kind+") started")
	}
	if op == nil {
		c.quiet = isQuiet(c.cfg.Cluster, snap, c.now(), since)
		return errIdle
	}
	c.quiet = false
	dog.progress()
	err = c.execute(ctx, g, op, dog)
	if errors.Is(err, errWaiting) {
		waiting[op.ID] = true
	}
	return err
}

// prune deletes the finished ops and the events that retention no longer
// keeps. A failure is logged and tried again a pruneEvery later.
func (c *Coordinator) prune(ctx context.Context, g site.Guard) {
	c.pruned = c.now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Cluster.Timings.LeaseTTL)
	defer cancel()
	r := c.cfg.Cluster.Retention
	cutoff := func(age time.Duration) time.Time {
		if age <= 0 {
			return time.Time{}
		}
		return c.now().Add(-age)
	}
	ops, err := c.cfg.Store.PruneOps(ctx, g, cutoff(r.OpsMaxAge), r.OpsMaxCount)
	if err != nil {
		c.log.Warn("pruning the op journal failed; will retry", zap.Error(err))
	}
	events, err := c.cfg.Store.PruneEvents(ctx, g, cutoff(r.EventsMaxAge), r.EventsMaxCount)
	if err != nil {
		c.log.Warn("pruning the event log failed; will retry", zap.Error(err))
	}
	if ops > 0 || events > 0 {
		c.log.Info("pruned the op journal and the event log", zap.Int("ops", ops), zap.Int64("events", events))
	}
}

// event appends to the event log; a lost event is logged, not fatal.
func (c *Coordinator) event(ctx context.Context, kind, op, subject, msg string) {
	err := c.cfg.Store.AppendEvent(ctx, site.Event{At: c.now(), Site: c.cfg.Site, Kind: kind, Op: op, Subject: subject, Message: msg})
	if err != nil {
		c.log.Debug("event not written", zap.String("kind", kind), zap.Error(err))
	}
}
