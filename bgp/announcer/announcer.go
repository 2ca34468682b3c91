package announcer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/bgp"
	"github.com/zdt-project/zdt/bgp/speaker"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/passloop"
)

// Speaker is what the announcer needs of a BGP speaker (*speaker.Speaker).
type Speaker interface {
	// Apply announces exactly routes, changing only what differs.
	Apply(ctx context.Context, routes []speaker.Route) (speaker.Diff, error)
	// Sessions reports the peers' sessions.
	Sessions(ctx context.Context) ([]speaker.PeerStatus, error)
	// Established receives a peer's address when its session comes up.
	Established() <-chan netip.Addr
}

// Addresses is what the announcer needs to set the service addresses
// (*svcaddr.Manager).
type Addresses interface {
	// Apply makes the interface carry want among managed.
	Apply(ctx context.Context, want, managed []netip.Prefix) error
}

// etcdTimeout bounds each etcd call of a pass.
const etcdTimeout = 2 * time.Second

// Config configures an Announcer.
type Config struct {
	Cluster *config.Cluster
	Site    string
	Store   *site.Store
	// View is the controller's watch-fed view of the cluster: passes read
	// the routing state and the route observer's records from it, as fresh
	// as from etcd, without reading and decoding 10,000 records each time.
	View    *site.View
	Speaker Speaker
	// Addresses sets the service addresses; nil leaves them off, and
	// AddressesOff says why (it is reported).
	Addresses    Addresses
	AddressesOff error
	Log          *zap.Logger
	// Registry receives the metrics; nil registers none.
	Registry prometheus.Registerer
	// Resync is how often a pass runs with no change (default 10s).
	Resync time.Duration
	// MoveSettle is each phase of a planned move (default 1s): how long the
	// old site keeps the headroom after the new site went below it, and
	// then how long the new site stays below it.
	MoveSettle time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Announcer keeps one site's announcements. Create it with New, tell it the
// site's state with SetState, and Run it.
type Announcer struct {
	cfg      Config
	log      *zap.Logger
	me       config.Site
	services []config.Service // those the site may serve
	prefixes int              // how many prefixes they have in all
	m        *metrics
	loop     *passloop.Loop

	mu    sync.Mutex
	state site.ControllerState

	// Owned by Run.
	current map[netip.Prefix]bgp.Applied
	addrs   []netip.Prefix
	// lastReport is the site's report as last written; nil: not known
	// (none yet, or a write failed and may have landed all the same).
	lastReport *site.BGPReport
	// announced holds the site's announcement records, by service, as
	// last written; nil: not known, read them again before the next write.
	announced map[string][]site.Announcement
	// lastWrite is when the report was last written; reportDue, when a
	// changed report waits for reportEvery to pass.
	lastWrite time.Time
	reportDue time.Time
}

// reportEvery is the least time between two writes of the site's records
// when nothing urgent changed: a move of many services changes some on
// every pass, and one write a second gathers them.
const reportEvery = time.Second

// New returns an announcer for the site; the site starts as joining
// (nothing is announced until SetState says it is up).
func New(cfg Config) (*Announcer, error) {
	me, ok := cfg.Cluster.Site(cfg.Site)
	switch {
	case !ok:
		return nil, fmt.Errorf("site %q is not in the cluster config", cfg.Site)
	case me.BGP == nil:
		return nil, fmt.Errorf("site %s has no bgp section in the config", cfg.Site)
	case cfg.Speaker == nil || cfg.Store == nil || cfg.View == nil:
		return nil, errors.New("announcer needs a speaker, a store and a view")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Second
	}
	if cfg.MoveSettle == 0 {
		cfg.MoveSettle = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Announcer{
		cfg:     cfg,
		log:     cfg.Log.With(zap.String("site", cfg.Site)),
		me:      me,
		state:   site.ControllerJoining,
		loop:    passloop.New(),
		current: map[netip.Prefix]bgp.Applied{},
		m:       newMetrics(cfg.Site),
	}
	for _, svc := range cfg.Cluster.Services {
		if slices.Contains(svc.Sites, cfg.Site) {
			a.services = append(a.services, svc)
			a.prefixes += len(svc.Prefixes)
		}
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(a.m); err != nil {
			return nil, fmt.Errorf("register BGP metrics: %w", err)
		}
	}
	return a, nil
}

// SetState tells the announcer the site's state (the membership hook). It
// does not block; a state other than up withdraws everything at once.
func (a *Announcer) SetState(s site.ControllerState) {
	a.mu.Lock()
	a.state = s
	if s != site.ControllerUp {
		a.loop.CancelPass() // a pass waiting on etcd must not delay the withdrawal
	}
	a.mu.Unlock()
	a.loop.Kick()
}

func (a *Announcer) currentState() site.ControllerState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Run converges until ctx ends. When it returns, everything is withdrawn
// and the service addresses are removed if the site was not up.
func (a *Announcer) Run(ctx context.Context) error {
	// A pass that holds a change back kicks again when it falls due.
	recheck := time.AfterFunc(time.Hour, a.loop.Kick)
	defer recheck.Stop()
	keys := a.cfg.Store.Keys()
	follow := []passloop.Follower{a.followSessions}
	for _, prefix := range []string{keys.Services(), keys.Fences(), keys.Upstream()} {
		follow = append(follow, passloop.Watch(a.cfg.Store, prefix, nil))
	}
	a.loop.Run(ctx, passloop.Config{
		Pass: func(ctx context.Context) {
			if next := a.pass(ctx); !next.IsZero() {
				recheck.Reset(max(time.Until(next), time.Millisecond))
			}
		},
		Resync: a.cfg.Resync,
		Follow: follow,
		Finish: a.finish,
	})
	return nil
}

// followSessions kicks each time a BGP session comes up, until the
// speaker closes.
func (a *Announcer) followSessions(ctx context.Context, kick func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case addr, ok := <-a.cfg.Speaker.Established():
			if !ok {
				return
			}
			a.log.Info("BGP session established; announcing", zap.Stringer("peer", addr))
			kick()
		}
	}
}

// finish withdraws everything when the controller stops: its lease is
// given up and another site takes its services over.
func (a *Announcer) finish() {
	if a.currentState() == site.ControllerUp {
		return // stopping without a state change: keep announcing (tests)
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdTimeout)
	defer cancel()
	a.apply(ctx, nil, nil)
}

// pass converges once, in a context that a state other than up cancels,
// and returns when the next recheck is due (zero: none).
func (a *Announcer) pass(ctx context.Context) time.Time {
	st := a.currentState()

	var decisions []decided
	var recheck time.Time
	var perr error
	if st == site.ControllerUp {
		decisions, recheck, perr = a.decide(ctx)
		if perr != nil {
			if ctx.Err() != nil && a.currentState() != site.ControllerUp {
				decisions, perr = nil, nil // cancelled by a self-fence: withdraw below
			} else {
				a.log.Warn("cannot decide announcements; keeping the current ones", zap.Error(perr))
				a.report(ctx, st, perr)
				return a.cfg.Now().Add(time.Second)
			}
		}
	}
	if a.currentState() != st {
		a.loop.Kick() // changed meanwhile: the next pass uses the new state
	}
	wantAddrs := a.wantedAddresses(st, decisions)
	err := a.apply(ctx, decisions, wantAddrs)
	a.report(ctx, st, err)
	if due := a.reportDue; !due.IsZero() && (recheck.IsZero() || due.Before(recheck)) {
		recheck = due
	}
	return recheck
}

// decided is one prefix's decision with its service.
type decided struct {
	service string
	bgp.Decision
}

// decide reads the cluster's routing state and asks the policy about every
// prefix of every service the site may serve.
func (a *Announcer) decide(ctx context.Context) ([]decided, time.Time, error) {
	rctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	snap, upstream, err := a.cfg.View.State(rctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read assignments and fences: %w", err)
	}
	now := a.cfg.Now()
	fenced := map[string]bool{}
	for s := range snap.Fences {
		fenced[s] = true
	}
	out := make([]decided, 0, a.prefixes) // one decision a prefix: no regrowth at 10,000
	var recheck time.Time
	for _, svc := range a.services {
		in := bgp.Input{
			Site: a.cfg.Site, Service: svc.Name, Prefixes: svc.Prefixes, Order: svc.Sites,
			Fenced: fenced, Current: a.current, Now: now,
		}
		if as, ok := snap.Assignments[svc.Name]; ok {
			in.Active, in.Epoch = as.Site, as.Epoch
			mv, recorded := snap.Moves[svc.Name]
			if !recorded || !mv.Of(as) {
				mv = site.Move{}
			}
			switch t, m := a.transition(as, mv, now); {
			case t != nil:
				if a.cfg.Cluster.BGP.Observer != nil {
					t.PathGone = pathGone(svc, upstream, t.From, t.Started)
				}
				in.Takeover = t
			case m != nil:
				in.Move = m
			}
		}
		ds, err := bgp.Decide(a.policy(svc), in)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("decide announcements of service %s: %w", svc.Name, err)
		}
		for _, d := range ds {
			out = append(out, decided{service: svc.Name, Decision: d})
			if !d.Recheck.IsZero() && (recheck.IsZero() || d.Recheck.Before(recheck)) {
				recheck = d.Recheck
			}
		}
		if in.Move != nil {
			// The move ends on the clock: a move without a record at
			// the end of each phase, one with a record at its bound.
			end := a.moveEnd(snap.Assignments[svc.Name], snap.Moves[svc.Name], now)
			if end.After(now) && (recheck.IsZero() || end.Before(recheck)) {
				recheck = end
			}
		}
	}
	return out, recheck, nil
}

// policy returns the announcement policy of a service.
func (a *Announcer) policy(svc config.Service) bgp.Config {
	b := a.cfg.Cluster.BGP
	return bgp.Config{Headroom: b.Headroom, Step: svc.PrependStep, MaxPrepends: b.MaxPrepends, MinChangeInterval: b.MinChangeInterval}
}

// transition derives the takeover or planned move an assignment is part of,
// if it is still under way at now. A planned move with a record (mv, of the
// assignment; the zero Move when there is none) is in the record's phase
// until the record's bound; one without a record (a rollback, or an
// assignment written without one) runs its phases on the clock, MoveSettle
// each.
func (a *Announcer) transition(as site.Assignment, mv site.Move, now time.Time) (*bgp.Takeover, *bgp.Move) {
	if as.From == "" || as.From == as.Site {
		return nil, nil
	}
	if as.Kind == "failover" {
		var hold time.Duration
		if from, ok := a.cfg.Cluster.Site(as.From); ok && from.BGP != nil {
			hold = from.BGP.MaxHoldTime()
		}
		return &bgp.Takeover{From: as.From, Started: as.At, HoldTime: hold}, nil
	}
	if mv.Op != "" {
		if !now.Before(mv.Until) {
			return nil, nil
		}
		switch mv.Phase {
		case site.MovePrepare:
			return nil, &bgp.Move{From: as.From, Phase: bgp.MovePrepare}
		case site.MoveAnnounce:
			return nil, &bgp.Move{From: as.From, Phase: bgp.MoveAnnounce}
		case site.MoveRelease:
			return nil, &bgp.Move{From: as.From, Phase: bgp.MoveRelease}
		}
		return nil, nil
	}
	settle := a.cfg.MoveSettle
	switch {
	case now.Before(as.At.Add(settle)):
		return nil, &bgp.Move{From: as.From, Phase: bgp.MoveAnnounce}
	case now.Before(as.At.Add(2 * settle)):
		return nil, &bgp.Move{From: as.From, Phase: bgp.MoveRelease}
	}
	return nil, nil
}

// moveEnd is when the planned move's current phase ends on the clock.
func (a *Announcer) moveEnd(as site.Assignment, mv site.Move, now time.Time) time.Time {
	if mv.Of(as) {
		return mv.Until
	}
	for _, t := range []time.Time{as.At.Add(a.cfg.MoveSettle), as.At.Add(2 * a.cfg.MoveSettle)} {
		if t.After(now) {
			return t
		}
	}
	return time.Time{}
}

// pathGone reports whether the observer, in records written after started,
// holds no path from the dark site for any of the service's prefixes.
func pathGone(svc config.Service, upstream map[string]site.UpstreamRoute, from string, started time.Time) bool {
	for _, p := range svc.Prefixes {
		r, ok := upstream[p.String()]
		if !ok || r.Observed.Before(started) {
			return false
		}
		if slices.ContainsFunc(r.Paths, func(up site.UpstreamPath) bool { return up.Site == from }) {
			return false
		}
	}
	return true
}

// wantedAddresses returns the service addresses the site must carry: those
// of the services it actively announces, and, during a planned move, at
// the old site while it holds the best path (move-hold): the upstream
// still sends it the traffic until the new site's path is in place, and
// an address already gone there would drop it.
func (a *Announcer) wantedAddresses(st site.ControllerState, ds []decided) []netip.Prefix {
	if st != site.ControllerUp {
		return nil
	}
	active := map[string]bool{}
	for _, d := range ds {
		switch d.Cause {
		case bgp.CauseActive, bgp.CauseTakeover, bgp.CauseMoveIn, bgp.CauseMoveHold:
			active[d.service] = true
		}
	}
	var want []netip.Prefix
	for _, svc := range a.services {
		if active[svc.Name] {
			for _, ad := range svc.Addresses {
				want = append(want, netip.PrefixFrom(ad, ad.BitLen()))
			}
		}
	}
	return want
}

// managedAddresses are every service address of the site's services.
func (a *Announcer) managedAddresses() []netip.Prefix {
	var all []netip.Prefix
	for _, svc := range a.services {
		for _, ad := range svc.Addresses {
			all = append(all, netip.PrefixFrom(ad, ad.BitLen()))
		}
	}
	return all
}

// apply announces what the decisions say (nil: nothing) and sets the
// service addresses.
func (a *Announcer) apply(ctx context.Context, ds []decided, wantAddrs []netip.Prefix) error {
	routes := make([]speaker.Route, 0, len(ds))
	next := make(map[netip.Prefix]bgp.Announcement, len(ds))
	for _, d := range ds {
		next[d.Prefix] = d.Announcement
		if d.Announce {
			routes = append(routes, speaker.Route{Prefix: d.Prefix, Prepends: d.Prepends})
		}
	}
	start := time.Now()
	diff, err := a.cfg.Speaker.Apply(ctx, routes)
	a.m.observeApply(time.Since(start), diff, err)
	if err != nil {
		a.log.Error("applying announcements failed", zap.Error(err))
		err = fmt.Errorf("apply announcements: %w", err)
	} else {
		if diff != (speaker.Diff{}) {
			a.log.Info("announcements changed", zap.Int("announced", diff.Announced), zap.Int("replaced", diff.Replaced),
				zap.Int("withdrawn", diff.Withdrawn), zap.Int("total", len(routes)))
		}
		// current holds what this run announced, and the withdrawals of
		// what it had announced: a prefix it never announced is absent, so
		// its first announcement is not held back by the flap guard.
		now := a.cfg.Now()
		for p, ann := range next {
			cur, ok := a.current[p]
			switch {
			case !ok && !ann.Announce:
			case !ok || cur.Announcement != ann:
				a.current[p] = bgp.Applied{Announcement: ann, Since: now}
			}
		}
		for p := range a.current {
			if _, ok := next[p]; !ok {
				delete(a.current, p)
			}
		}
	}
	a.m.setAnnouncements(ds)
	if aerr := a.applyAddresses(ctx, wantAddrs); aerr != nil {
		err = errors.Join(err, aerr)
	}
	return err
}

func (a *Announcer) applyAddresses(ctx context.Context, want []netip.Prefix) error {
	managed := a.managedAddresses()
	if len(managed) == 0 {
		return nil
	}
	if a.cfg.Addresses == nil {
		if len(want) > 0 && a.cfg.AddressesOff != nil {
			return fmt.Errorf("service addresses are off: %w", a.cfg.AddressesOff)
		}
		return nil
	}
	if slices.Equal(want, a.addrs) && a.addrs != nil {
		return nil
	}
	if err := a.cfg.Addresses.Apply(ctx, want, managed); err != nil {
		a.addrs = nil // try again on the next pass
		return fmt.Errorf("set service addresses on %s: %w", a.me.BGP.Interface, err)
	}
	if want == nil {
		want = []netip.Prefix{}
	}
	a.addrs = want
	return nil
}

// newlyCarried says whether now announces a prefix at the headroom or below
// (the rungs of the site that carries the traffic) that before did not.
func newlyCarried(before, now []site.Announcement, headroom int) bool {
	carried := make(map[string]bool, len(before))
	for _, an := range before {
		if an.Prepends <= headroom {
			carried[an.Prefix] = true
		}
	}
	for _, an := range now {
		if an.Prepends <= headroom && !carried[an.Prefix] {
			return true
		}
	}
	return false
}

// report writes the site's BGP records that changed: the announcement
// records of the services whose announcements changed, then the report.
func (a *Announcer) report(ctx context.Context, st site.ControllerState, passErr error) {
	r := site.BGPReport{Site: a.cfg.Site, Peers: []site.BGPPeer{}}
	pctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	peers, err := a.cfg.Speaker.Sessions(pctx)
	cancel()
	if err != nil {
		passErr = errors.Join(passErr, err)
	}
	for _, p := range peers {
		r.Peers = append(r.Peers, site.BGPPeer{Address: p.Address.String(), ASN: p.ASN, State: p.State, Since: p.Since})
	}
	a.m.setPeers(peers)
	for _, p := range a.addrs {
		r.Addresses = append(r.Addresses, p.Addr().String())
	}
	if passErr != nil {
		r.Error = passErr.Error()
	} else if a.cfg.AddressesOff != nil && len(a.managedAddresses()) > 0 {
		r.Error = "service addresses are off: " + a.cfg.AddressesOff.Error()
	}

	if st != site.ControllerUp && st != site.ControllerJoining {
		// Not up: etcd may be unreachable; try, but do not wait for it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
	}
	if a.announced == nil {
		rctx, cancel := context.WithTimeout(ctx, etcdTimeout)
		announced, err := a.cfg.Store.Announcements(rctx, a.cfg.Site)
		cancel()
		if err != nil {
			a.log.Debug("cannot read the announcement records", zap.Error(err))
			return
		}
		a.announced = announced
	}
	changed, gone, urgent := a.announcementChanges()
	if len(changed) == 0 && len(gone) == 0 && a.lastReport != nil && reflect.DeepEqual(*a.lastReport, r) {
		a.reportDue = time.Time{}
		return
	}
	// Sessions, errors and prefixes this site now carries the traffic of
	// (an op waits for them) are news at once; other announcements can
	// wait a bit.
	urgent = urgent || a.lastReport == nil || st != site.ControllerUp || r.Error != a.lastReport.Error || !reflect.DeepEqual(r.Peers, a.lastReport.Peers)
	if next := a.lastWrite.Add(reportEvery); !urgent && time.Now().Before(next) {
		a.reportDue = next
		return
	}
	a.reportDue = time.Time{}
	wctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	committed, err := a.cfg.Store.PutAnnouncements(wctx, a.cfg.Site, changed, gone)
	for i := range committed {
		if i < len(changed) {
			a.announced[changed[i].Service] = changed[i].Announcements
		} else {
			delete(a.announced, gone[i-len(changed)])
		}
	}
	if err != nil {
		// What the failed transaction carried may have landed: read the
		// records again before the next write.
		a.announced = nil
		a.log.Debug("cannot write the announcement records", zap.Error(err))
		return
	}
	stamped := r
	stamped.Updated = a.cfg.Now()
	if err := a.cfg.Store.PutBGPReport(wctx, stamped); err != nil {
		a.lastReport = nil
		a.log.Debug("cannot write the BGP report", zap.Error(err))
		return
	}
	a.lastWrite = time.Now()
	a.lastReport = &r
}

// announcementChanges compares what the site announces with its records
// as last written: the records to write (in the config's order), the
// services whose records to delete, and whether a change is urgent (the
// site now carries the traffic of a prefix it did not).
func (a *Announcer) announcementChanges() (changed []site.ServiceAnnouncements, gone []string, urgent bool) {
	configured := make(map[string]bool, len(a.services))
	for _, svc := range a.services {
		configured[svc.Name] = true
		var now []site.Announcement
		for _, p := range svc.Prefixes {
			if cur, ok := a.current[p]; ok && cur.Announce {
				now = append(now, site.Announcement{Service: svc.Name, Prefix: p.String(), Prepends: cur.Prepends})
			}
		}
		before, written := a.announced[svc.Name]
		switch {
		case len(now) > 0:
			if !written || !slices.Equal(before, now) {
				changed = append(changed, site.ServiceAnnouncements{Site: a.cfg.Site, Service: svc.Name, Announcements: now})
				urgent = urgent || newlyCarried(before, now, a.cfg.Cluster.BGP.Headroom)
			}
		case written:
			gone = append(gone, svc.Name)
		}
	}
	// Records of services the site may no longer serve (the config
	// changed) go too.
	for svc := range a.announced {
		if !configured[svc] {
			gone = append(gone, svc)
		}
	}
	slices.Sort(gone)
	return changed, gone, urgent
}
