package reconciler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/passloop"
)

// etcdTimeout bounds each etcd call of a pass: a site cut off from etcd
// still fences its members for the state it is in.
const etcdTimeout = 2 * time.Second

// Config configures a Reconciler.
type Config struct {
	Cluster *config.Cluster
	Site    string
	Store   *site.Store
	// Members are this site's members, by group name (BuildMembers makes
	// them from the config). A group of the config without a member here is
	// not reconciled.
	Members  map[string]replication.Member
	Log      *zap.Logger
	Registry prometheus.Registerer // nil registers no metrics
	// Interval is how often the members are observed (default 1s).
	Interval time.Duration
	// PublishEvery is the least time between two reports that differ only
	// in lag (default 5s); any other change is published at once.
	PublishEvery time.Duration
	// Serving, when set, tells whether the site may serve at this instant:
	// it is up and its lease cannot have expired yet. It is asked right
	// before a member is promoted (which also lifts its fence), and again
	// right after: a controller that froze in the middle of a pass must not
	// make a member writable on an assignment it read before, which a
	// failover may have moved meanwhile. nil: the state alone decides.
	Serving func() bool
}

// StandbyStarter is what a driver offers to start a stopped member only
// as a standby of the given primary, leaving a former primary down
// (postgres.Member has it).
type StandbyStarter interface {
	StartStandby(ctx context.Context, primary string) error
}

// Synchronizer is what a driver offers to keep a primary replicating
// synchronously (postgres.Member has it).
type Synchronizer interface {
	SetSynchronous(ctx context.Context, standbys []string, num int) error
}

// Reconciler makes one site's replication members follow the assignments.
// Create it with New, tell it the site's state with SetState, and Run it.
type Reconciler struct {
	cfg    Config
	log    *zap.Logger
	m      *metrics
	groups []*group
	loop   *passloop.Loop

	mu    sync.Mutex
	state site.ControllerState

	// passes counts the passes done, and passEnded is closed (and
	// replaced) as each ends: tests wait on it instead of polling.
	passes    int64
	passEnded chan struct{}

	// Run's goroutine only.
	published   map[string]site.MemberReport
	publishedAt time.Time
	// publishErr is why the last report was not written ("" once one
	// is): the same reason is logged once, not every pass.
	publishErr string
	// lastView is the last read of the assignments and reports, at
	// lastViewAt; a pass uses it again while no change of what it holds
	// came (viewStale, which the watch sets) and it is younger than
	// viewMaxAge.
	lastView   *view
	lastViewAt time.Time
	viewStale  atomic.Bool
}

// viewMaxAge bounds how long a pass uses an earlier read of the
// assignments and reports, in Intervals: the watch tells of each change
// at once, and a change it missed (while it was made again after a break)
// is read within this many passes.
const viewMaxAge = 5

// group is one replication group with a member at this site, and what the
// reconciler remembers about it between passes (Run's goroutine only).
type group struct {
	cfg      config.ReplicationGroup
	member   replication.Member
	services []string
	policy   replication.RPOPolicy
	others   []string // the other members' sites: the synchronous standby candidates

	seen          int64 // the largest assignment epoch seen
	acted         int64 // the epoch of the assignment last acted on
	followed      string
	followedEpoch int64
	followFailed  time.Time
	followError   string            // what the last failed Follow said
	startFailed   time.Time         // when the last start of its server failed
	unhealthy     time.Time         // since when the member is an unhealthy standby
	lastErr       map[string]string // by action: the last error logged
	syncSet       bool              // synchronous standbys set since the member became primary
	refused       string            // the refusal last written to the event log
	// lastSync is what the member, when last seen as a primary, waited
	// for: reported on while it cannot be observed (it died), so that a
	// standby can tell it held every acknowledged commit.
	lastSync []string
	// fenced: a Fence of the member returned nil since it was last seen
	// writable (or a standby), so both parts of the fence are done. A
	// read-only primary alone says nothing of the second part (its old
	// sessions cut): a fence interrupted after the first, by a cancelled
	// pass or a controller that died, leaves one.
	fenced bool
}

// New returns a reconciler for the site's members; the site starts as
// joining (nothing is done until SetState says more).
func New(cfg Config) (*Reconciler, error) {
	if cfg.Cluster == nil || cfg.Store == nil {
		return nil, errors.New("replication reconciler: Cluster and Store are required")
	}
	if _, ok := cfg.Cluster.Site(cfg.Site); !ok {
		return nil, fmt.Errorf("replication reconciler: site %q is not in the cluster config", cfg.Site)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.PublishEvery <= 0 {
		cfg.PublishEvery = 5 * time.Second
	}
	r := &Reconciler{
		cfg:   cfg,
		log:   cfg.Log.With(zap.String("site", cfg.Site)),
		m:     newMetrics(cfg.Site),
		state: site.ControllerJoining,
		loop:  passloop.New(),

		passEnded: make(chan struct{}),
	}
	for name := range cfg.Members {
		i := slices.IndexFunc(cfg.Cluster.Replication, func(g config.ReplicationGroup) bool { return g.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("replication reconciler: member given for group %q, which is not in the cluster config", name)
		}
	}
	for _, gc := range cfg.Cluster.Replication {
		mem, ok := cfg.Members[gc.Name]
		if !ok || mem == nil {
			continue
		}
		if _, ok := gc.Member(cfg.Site); !ok {
			return nil, fmt.Errorf("replication reconciler: group %s has no member at site %s", gc.Name, cfg.Site)
		}
		g := &group{cfg: gc, member: mem, lastErr: map[string]string{}}
		for _, svc := range cfg.Cluster.Services {
			if svc.ReplicationGroup == gc.Name {
				g.services = append(g.services, svc.Name)
			}
		}
		g.policy = GroupPolicy(cfg.Cluster, gc.Name)
		for _, m := range gc.Members {
			if m.Site != cfg.Site {
				g.others = append(g.others, m.Site)
			}
		}
		r.groups = append(r.groups, g)
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(r.m); err != nil {
			return nil, fmt.Errorf("register replication metrics: %w", err)
		}
	}
	return r, nil
}

// strictest is the policy that satisfies every service of a group: the
// smallest limits (a negative limit is none) and sync if any requires it.
// A group no service uses gets the config defaults.
func strictest(rpos []config.RPO) replication.RPOPolicy {
	if len(rpos) == 0 {
		return replication.RPOPolicy{MaxLagBytes: config.DefaultMaxLagBytes, MaxLagSeconds: config.DefaultMaxLagSeconds}
	}
	p := replication.RPOPolicy{MaxLagBytes: rpos[0].MaxLagBytes, MaxLagSeconds: rpos[0].MaxLagSeconds, RequireSync: rpos[0].RequireSync}
	for _, r := range rpos[1:] {
		if r.MaxLagBytes >= 0 && (p.MaxLagBytes < 0 || r.MaxLagBytes < p.MaxLagBytes) {
			p.MaxLagBytes = r.MaxLagBytes
		}
		if r.MaxLagSeconds >= 0 && (p.MaxLagSeconds < 0 || r.MaxLagSeconds < p.MaxLagSeconds) {
			p.MaxLagSeconds = r.MaxLagSeconds
		}
		p.RequireSync = p.RequireSync || r.RequireSync
	}
	return p
}

// SetState tells the reconciler the site's state (the membership hook). It
// does not block: the pass under way is cancelled (it may wait on etcd,
// which a cut-off site cannot reach) and a new one starts at once.
func (r *Reconciler) SetState(s site.ControllerState) {
	r.mu.Lock()
	r.state = s
	r.loop.CancelPass()
	r.mu.Unlock()
	r.viewStale.Store(true) // a new state: read what holds now
	r.loop.Kick()
}

// passesDone is how many passes have ended, and a channel closed when the
// next one ends.
func (r *Reconciler) passesDone() (int64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passes, r.passEnded
}

func (r *Reconciler) currentState() site.ControllerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Run reconciles until ctx ends. A controller that stops (state stopped)
// fences its members before Run returns.
func (r *Reconciler) Run(ctx context.Context) error {
	if len(r.groups) == 0 {
		<-ctx.Done()
		return nil
	}
	r.loadEpochs(ctx)
	r.loop.Run(ctx, passloop.Config{
		Pass:   r.pass,
		Resync: r.cfg.Interval,
		Follow: []passloop.Follower{passloop.Watch(r.cfg.Store, r.cfg.Store.Keys().Root(), r.relevant)},
		Finish: r.finish,
	})
	return nil
}

// finish: a controller that stops on purpose leaves no writable primary
// behind (its lease is given up and another site takes over).
func (r *Reconciler) finish() {
	if r.currentState() != site.ControllerStopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.loop.Pass(ctx, r.pass)
}

// loadEpochs starts from the epochs the site's last report acted on, so a
// restarted controller does not act on an assignment older than those.
func (r *Reconciler) loadEpochs(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	resp, err := r.cfg.Store.Client().Get(ctx, r.cfg.Store.Keys().SiteReplication(r.cfg.Site))
	if err != nil || len(resp.Kvs) == 0 {
		return
	}
	var rep site.ReplicationReport
	if json.Unmarshal(resp.Kvs[0].Value, &rep) != nil {
		return
	}
	for _, mr := range rep.Members {
		for _, g := range r.groups {
			if g.cfg.Name == mr.Group {
				g.seen = max(g.seen, mr.Epoch)
			}
		}
	}
}

// relevant says whether a change calls for a pass: an assignment, a fence,
// another site's replication report or lease. The Interval's passes cover
// any gap.
// Any change of what a pass reads (this site's report and lease too) makes
// the next pass read again.
func (r *Reconciler) relevant(e *clientv3.Event) bool {
	k := r.cfg.Store.Keys()
	key := string(e.Kv.Key)
	if strings.HasPrefix(key, k.Services()) || strings.HasPrefix(key, k.Fences()) {
		r.viewStale.Store(true)
		return true
	}
	for _, s := range r.cfg.Cluster.Sites {
		if key == k.SiteReplication(s.Name) || key == k.Alive(s.Name) {
			r.viewStale.Store(true)
			return s.Name != r.cfg.Site
		}
	}
	return false
}

// observation is one member's observation in a pass.
type observation struct {
	ok  bool
	st  replication.Status
	err error
}

func (g *group) observe(ctx context.Context) observation {
	st, err := g.member.Observe(ctx)
	if err != nil {
		return observation{err: err}
	}
	return observation{ok: true, st: st}
}

// pass observes every member, decides and acts, and publishes the report,
// in a context that a change of state cancels (r.loop runs it).
func (r *Reconciler) pass(ctx context.Context) {
	defer func() {
		r.mu.Lock()
		r.passes++
		close(r.passEnded)
		r.passEnded = make(chan struct{})
		r.mu.Unlock()
	}()

	state := r.currentState()
	obs := make([]observation, len(r.groups))
	for i, g := range r.groups {
		obs[i] = g.observe(ctx)
	}
	var (
		view    *view
		viewErr error
	)
	if state == site.ControllerUp || state == site.ControllerFenced {
		view, viewErr = r.readAgain(ctx)
	}
	reports := make([]site.MemberReport, len(r.groups))
	for i, g := range r.groups {
		reports[i] = r.reconcile(ctx, g, state, obs[i], view, viewErr)
	}
	if ctx.Err() != nil {
		return // the state changed: the next pass reports
	}
	err := r.publish(ctx, reports)
	switch {
	case err != nil && err.Error() != r.publishErr:
		r.publishErr = err.Error()
		r.log.Warn("publish replication report", zap.Error(err))
	case err == nil && r.publishErr != "":
		r.publishErr = ""
		r.log.Info("replication report published again")
	}
}

// syncHolder says whether this site's standby holds every commit the
// previous primary (of site from) acknowledged: the primary's last report
// listed it among the standbys it waited for, it has replayed all it
// received, and every other standby the primary waited for has reported
// since the assignment (epoch) that it has replayed all it received, and
// no further than this one. With 'ANY 1 (...)' only the furthest standby is
// sure to hold everything, so anything less certain is a "no", with why.
func syncHolder(group, self, from string, epoch int64, own replication.Status, reports map[string]site.ReplicationReport) (bool, string) {
	member := func(s string) (site.MemberReport, bool) {
		for _, m := range reports[s].Members {
			if m.Group == group {
				return m, true
			}
		}
		return site.MemberReport{}, false
	}
	prim, ok := member(from)
	switch {
	case from == "" || !ok:
		return false, "no report from the previous primary's site " + cmp.Or(from, "(unknown)") + " to tell whether this member was synchronous"
	case !slices.Contains(prim.SyncStandbys, self):
		return false, fmt.Sprintf("site %s's primary did not list this member among its synchronous standbys (%v)", from, prim.SyncStandbys)
	case own.LagBytes > 0:
		return false, "this member is still replaying what it received"
	}
	mine, err := postgres.ParseLSN(own.Position)
	if err != nil {
		return false, "cannot compare WAL positions: " + err.Error()
	}
	for _, other := range prim.SyncStandbys {
		if other == self {
			continue
		}
		rep, ok := member(other)
		switch {
		case !ok || rep.Epoch < epoch:
			return false, "waiting for site " + other + "'s report since the assignment, to compare WAL positions"
		case rep.LagBytes > 0:
			return false, "site " + other + " is still replaying what it received"
		}
		theirs, err := postgres.ParseLSN(rep.Position)
		if err != nil {
			return false, "cannot compare WAL positions with site " + other + ": " + err.Error()
		}
		if theirs > mine {
			return false, fmt.Sprintf("site %s holds more WAL (%s against %s): only it is sure to hold every acknowledged commit", other, rep.Position, own.Position)
		}
	}
	return true, fmt.Sprintf("site %s's primary waited for this member, and no other synchronous standby holds more", from)
}

// SyncHolder is syncHolder judged from the sites' reports alone, as the
// coordinator sees it when it chooses a failover target: whether site
// self's member holds every commit the primary of site from acknowledged.
func SyncHolder(group, self, from string, epoch int64, reports map[string]site.ReplicationReport) (bool, string) {
	for _, m := range reports[self].Members {
		if m.Group == group {
			return syncHolder(group, self, from, epoch, replication.Status{Position: m.Position, LagBytes: m.LagBytes}, reports)
		}
	}
	return false, "site " + self + " does not report its member of group " + group
}

// catchUp says what this standby still waits for, in a planned move from
// site from, before a promotion loses nothing the old primary committed:
// the old primary's report since the assignment (epoch), which it writes
// once it has fenced its member (read-only, sessions cut) and which then
// holds its last WAL position; and this member's replay up to that
// position. "" when nothing is left to wait for, or when the old primary
// is no longer a primary (it follows someone: nothing more comes from it).
// A dark old site is no concern here: the coordinator turns that into a
// failover.
func catchUp(group, from string, epoch int64, own replication.Status, rep site.ReplicationReport) string {
	i := slices.IndexFunc(rep.Members, func(m site.MemberReport) bool { return m.Group == group })
	if i < 0 {
		return "waiting for site " + from + "'s report of its member, to learn the old primary's last WAL position"
	}
	old := rep.Members[i]
	switch {
	case old.Role != string(replication.RolePrimary):
		return ""
	case old.Writable || old.Epoch < epoch:
		return fmt.Sprintf("waiting for site %s to fence its primary and report its last WAL position (it reports epoch %d, the assignment is at %d)", from, old.Epoch, epoch)
	}
	theirs, err := postgres.ParseLSN(old.Position)
	if err != nil {
		return fmt.Sprintf("cannot read site %s's last WAL position: %v", from, err)
	}
	mine, err := postgres.ParseLSN(own.Position)
	if err != nil {
		return "cannot read this member's replay position: " + err.Error()
	}
	if mine < theirs {
		return fmt.Sprintf("replaying up to site %s's last WAL position %s (at %s)", from, old.Position, own.Position)
	}
	return ""
}

// readAgain returns the last read if nothing it holds changed since and it
// is recent (see viewMaxAge), and else reads anew.
func (r *Reconciler) readAgain(ctx context.Context) (*view, error) {
	// Cleared before the read: a change during the read makes the next
	// pass read again.
	stale := r.viewStale.Swap(false)
	if !stale && r.lastView != nil && time.Since(r.lastViewAt) < viewMaxAge*r.cfg.Interval {
		return r.lastView, nil
	}
	at := time.Now()
	v, err := r.read(ctx)
	if err != nil {
		r.lastView = nil
		return nil, err
	}
	r.lastView, r.lastViewAt = v, at
	return v, nil
}

// view is what a pass reads from etcd.
type view struct {
	routing *site.Routing
	reports map[string]site.ReplicationReport // other sites' replication reports
}

func (r *Reconciler) read(ctx context.Context) (*view, error) {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	rt, err := r.cfg.Store.Routing(ctx, r.cfg.Cluster.SiteNames())
	if err != nil {
		return nil, err
	}
	v := &view{routing: rt, reports: map[string]site.ReplicationReport{}}
	// Only the replication reports, at the assignments' revision: the
	// sites' other records (their BGP and hosts reports, hundreds of KB
	// each in a large cluster) are not read every second for nothing.
	ops := make([]clientv3.Op, len(r.cfg.Cluster.Sites))
	for i, s := range r.cfg.Cluster.Sites {
		ops[i] = clientv3.OpGet(r.cfg.Store.Keys().SiteReplication(s.Name), clientv3.WithRev(rt.Rev))
	}
	resp, err := r.cfg.Store.Client().Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read replication reports: %w", err)
	}
	for i, s := range r.cfg.Cluster.Sites {
		for _, kv := range resp.Responses[i].GetResponseRange().Kvs {
			var rep site.ReplicationReport
			if err := json.Unmarshal(kv.Value, &rep); err != nil {
				return nil, fmt.Errorf("replication report of site %s: %w", s.Name, err)
			}
			v.reports[s.Name] = rep
		}
	}
	return v, nil
}

// input gathers the decision's input for one group.
func (r *Reconciler) input(g *group, state site.ControllerState, o observation, v *view, verr error) Input {
	in := Input{
		State: state, Site: r.cfg.Site, Seen: g.seen,
		Observed: o.ok, Status: o.st, Policy: g.policy,
		Followed: g.followed, FollowedEpoch: g.followedEpoch, FollowFailed: g.followFailed, FollowError: g.followError, Now: time.Now(),
		StartFailed: g.startFailed,
	}
	if st, ok := g.member.(replication.Starter); ok && st != nil && g.cfg.Driver == config.DriverPostgres {
		m, _ := g.cfg.Member(r.cfg.Site)
		in.CanStart = m.DataDir != ""
	}
	if o.err != nil {
		in.ObserveErr = o.err.Error()
	}
	if o.ok && o.st.Role == replication.RoleStandby && !o.st.Healthy {
		if g.unhealthy.IsZero() {
			g.unhealthy = in.Now
		}
		in.UnhealthyFor = in.Now.Sub(g.unhealthy)
	} else {
		g.unhealthy = time.Time{}
	}
	switch {
	case verr != nil:
		in.Conflict = "cannot read the assignments: " + verr.Error()
		return in
	case v == nil:
		return in
	}
	_, in.Fenced = v.routing.Fences[r.cfg.Site]
	var holders, sites []string
	var from string
	for _, svc := range g.services {
		if a, ok := v.routing.Assignments[svc]; ok {
			if a.Epoch > in.Epoch {
				in.Failover, in.Force = a.Kind == "failover", a.Force
				from = a.From
			}
			in.Epoch = max(in.Epoch, a.Epoch)
			holders = append(holders, fmt.Sprintf("%s at site %s (epoch %d)", svc, a.Site, a.Epoch))
			if !slices.Contains(sites, a.Site) {
				sites = append(sites, a.Site)
			}
		}
	}
	switch len(sites) {
	case 0:
	case 1:
		in.Active = sites[0]
	default:
		in.Conflict = "conflicting assignments of the services using the group: " + strings.Join(holders, ", ") + "; no action"
	}
	for _, s := range r.cfg.Cluster.Sites {
		if s.Name == r.cfg.Site || !v.routing.Alive[s.Name] {
			continue
		}
		for _, mr := range v.reports[s.Name].Members {
			if mr.Group == g.cfg.Name && mr.Role == string(replication.RolePrimary) && mr.Writable && in.OtherWritable == "" {
				in.OtherWritable = s.Name
			}
		}
	}
	if in.Active == r.cfg.Site && g.cfg.Synchronous && o.ok {
		in.SyncHolder, in.SyncWhy = syncHolder(g.cfg.Name, r.cfg.Site, from, in.Epoch, o.st, v.reports)
	}
	if in.Active == r.cfg.Site && !in.Failover && from != "" && from != r.cfg.Site && v.routing.Alive[from] && o.ok &&
		o.st.Role == replication.RoleStandby && g.cfg.Driver == config.DriverPostgres {
		in.CatchUp = catchUp(g.cfg.Name, from, in.Epoch, o.st, v.reports[from])
	}
	if in.Active != "" && in.Active != r.cfg.Site && v.routing.Alive[in.Active] {
		for _, mr := range v.reports[in.Active].Members {
			if mr.Group == g.cfg.Name && mr.Role == string(replication.RolePrimary) && mr.Writable && mr.Healthy {
				in.ActiveReady = true
			}
		}
	}
	return in
}

// reconcile decides and acts for one group and returns its report.
func (r *Reconciler) reconcile(ctx context.Context, g *group, state site.ControllerState, o observation, v *view, verr error) site.MemberReport {
	in := r.input(g, state, o, v, verr)
	g.seen = max(g.seen, in.Epoch)
	d := Decide(in)
	notes := []string{d.Reason}
	log := r.log.With(zap.String("group", g.cfg.Name), zap.Int64("epoch", in.Epoch))
	acted := false
	if o.ok && (o.st.Role != replication.RolePrimary || o.st.Writable) {
		g.fenced = false
	}
	switch d.Action {
	case ActFence, ActFenceFollow:
		switch {
		case o.ok && o.st.Role == replication.RoleStandby:
			// A standby takes no writes.
		case o.ok && !o.st.Writable && (o.st.Role != replication.RolePrimary || g.fenced):
			// Fenced by this reconciler, both parts done (or, of unknown
			// role, not writable): Fence would only cut the read-only
			// sessions again.
		default:
			if err := r.do(ctx, g, "fence", d.Reason, func() error { return g.member.Fence(ctx) }); err != nil {
				notes = append(notes, err.Error())
			} else {
				g.fenced, acted = true, true
			}
		}
		if d.Action == ActFenceFollow {
			acted = r.follow(ctx, g, in, d, &notes) || acted
		}
	case ActFollow:
		acted = r.follow(ctx, g, in, d, &notes)
	case ActPromote:
		acted = r.promote(ctx, g, in, &notes, log)
	case ActRefuse:
		r.refuse(ctx, g, d, log)
	case ActStart:
		acted = r.start(ctx, g, &notes, log)
	case ActStartStandby:
		acted = r.startStandby(ctx, g, in, d, &notes)
	}
	if d.Epoch > 0 {
		g.acted = max(g.acted, d.Epoch)
	}
	if acted && ctx.Err() == nil {
		o = g.observe(ctx) // report the member as the action left it
	}
	if o.ok && o.st.Role == replication.RolePrimary && o.st.Writable {
		if note := r.keepSync(ctx, g, o.st); note != "" {
			notes = append(notes, note)
		}
	} else {
		g.syncSet = false
	}
	r.m.observe(g.cfg.Name, g.policy, o.ok, o.st)
	return memberReport(g, o, notes)
}

// do runs one action on a member, counts it and logs it.
func (r *Reconciler) do(ctx context.Context, g *group, action, why string, fn func() error) error {
	err := fn()
	log := r.log.With(zap.String("group", g.cfg.Name), zap.String("op", action))
	if err != nil {
		if ctx.Err() == nil {
			r.m.action(g.cfg.Name, action, "error")
			if g.lastErr[action] != err.Error() { // not again every pass
				g.lastErr[action] = err.Error()
				log.Warn("replication action failed", zap.String("reason", why), zap.Error(err))
			}
		}
		return fmt.Errorf("%s failed: %w", action, err)
	}
	delete(g.lastErr, action)
	r.m.action(g.cfg.Name, action, "ok")
	log.Info("replication action", zap.String("reason", why))
	r.event(ctx, "replication-"+action, g.cfg.Name+": "+action+": "+why)
	return nil
}

// follow makes the member follow the active site's member, when that one
// is primary.
func (r *Reconciler) follow(ctx context.Context, g *group, in Input, d Decision, notes *[]string) bool {
	if !in.ActiveReady {
		return false
	}
	target := r.followTarget(g, in.Active)
	err := r.do(ctx, g, "follow", d.Reason, func() error { return g.member.Follow(ctx, target) })
	if err != nil {
		if ctx.Err() == nil {
			g.followFailed, g.followError = time.Now(), err.Error()
		}
		*notes = append(*notes, err.Error())
		return true
	}
	g.followed, g.followedEpoch, g.followFailed, g.followError = in.Active, in.Epoch, time.Time{}, ""
	return true
}

// followTarget is what the driver's Follow takes: a PostgreSQL member's
// replication conninfo; "" for DRBD, whose secondary replicates from
// whichever peer is primary.
func (r *Reconciler) followTarget(g *group, active string) string {
	if g.cfg.Driver == config.DriverDRBD {
		return ""
	}
	m, _ := g.cfg.Member(active)
	return m.ReplicationConn
}

// promote re-checks the decision on a fresh observation, then promotes.
func (r *Reconciler) promote(ctx context.Context, g *group, in Input, notes *[]string, log *zap.Logger) bool {
	fresh := g.observe(ctx)
	in.Observed, in.Status = fresh.ok, fresh.st
	if fresh.err != nil {
		in.ObserveErr = fresh.err.Error()
	}
	d := Decide(in)
	switch d.Action {
	case ActPromote:
	case ActRefuse:
		(*notes)[0] = d.Reason
		r.refuse(ctx, g, d, log)
		return false
	default:
		(*notes)[0] = d.Reason
		return false
	}
	if s, ok := g.member.(Synchronizer); ok && g.cfg.Synchronous && fresh.st.Role == replication.RoleStandby {
		// Set before the promotion, so that the new primary never
		// acknowledges a commit that only it holds.
		if err := s.SetSynchronous(ctx, g.others, 1); err != nil {
			log.Warn("set synchronous standbys before promotion", zap.Error(err))
		}
	}
	if !r.serving() {
		*notes = append(*notes, "not promoted: the site's lease may have lapsed since this pass read the assignment")
		return false
	}
	if err := r.do(ctx, g, "promote", d.Reason, func() error { return g.member.Promote(ctx) }); err != nil {
		*notes = append(*notes, err.Error())
	}
	if !r.serving() {
		// The lease lapsed while the member was promoted (the controller
		// froze in between): take the writes back at once.
		log.Warn("promoted as the site's lease lapsed: fencing the member again")
		if err := r.do(ctx, g, "fence", "the lease lapsed during the promotion", func() error { return g.member.Fence(ctx) }); err != nil {
			*notes = append(*notes, err.Error())
		}
	}
	g.refused = ""
	return true
}

// start starts the member's server. A server that comes back may be a
// writable primary, so it is started only while the site's lease is known
// alive, and fenced again if the lease lapsed meanwhile, as a promotion is.
func (r *Reconciler) start(ctx context.Context, g *group, notes *[]string, log *zap.Logger) bool {
	if !r.serving() {
		*notes = append(*notes, "not started: the site's lease may have lapsed since this pass read the assignment")
		return false
	}
	if err := r.do(ctx, g, "start", "the member does not answer", func() error { return g.member.(replication.Starter).Start(ctx) }); err != nil {
		if ctx.Err() == nil {
			g.startFailed = time.Now()
		}
		*notes = append(*notes, err.Error())
		return true
	}
	g.startFailed = time.Time{}
	if !r.serving() {
		log.Warn("started as the site's lease lapsed: fencing the member")
		if err := r.do(ctx, g, "fence", "the lease lapsed while the server started", func() error { return g.member.Fence(ctx) }); err != nil {
			*notes = append(*notes, err.Error())
		}
	}
	return true
}

// startStandby starts the member's server only if its data is a
// standby's, as a standby of the active site (a former primary stays
// down). A standby takes no writes, so the lease is not asked.
func (r *Reconciler) startStandby(ctx context.Context, g *group, in Input, d Decision, notes *[]string) bool {
	s, ok := g.member.(StandbyStarter)
	if !ok {
		return false
	}
	err := r.do(ctx, g, "start-standby", d.Reason, func() error { return s.StartStandby(ctx, r.followTarget(g, in.Active)) })
	if err != nil {
		if ctx.Err() == nil {
			g.startFailed = time.Now()
		}
		*notes = append(*notes, err.Error())
		return true
	}
	g.startFailed = time.Time{}
	return true
}

// serving: the site is up and, when the controller says so, its lease is
// known to be alive.
func (r *Reconciler) serving() bool {
	return r.currentState() == site.ControllerUp && (r.cfg.Serving == nil || r.cfg.Serving())
}

// refuse records a refused promotion: counted every pass, written to the
// event log once per reason.
func (r *Reconciler) refuse(ctx context.Context, g *group, d Decision, log *zap.Logger) {
	r.m.action(g.cfg.Name, "refuse", "refused")
	key := fmt.Sprint(d.Epoch, refusalKind(d.Reason))
	if g.refused == key {
		return
	}
	g.refused = key
	log.Warn("promotion refused", zap.String("reason", d.Reason))
	r.event(ctx, "replication-refuse", g.cfg.Name+" at site "+r.cfg.Site+": "+d.Reason)
}

// refusalKind is a refusal's reason without its numbers, so that a lag
// that changes does not write a new event every pass.
func refusalKind(why string) string {
	return strings.Map(func(c rune) rune {
		if c >= '0' && c <= '9' || c == '.' {
			return -1
		}
		return c
	}, why)
}

// keepSync keeps a synchronous group's primary waiting for one of the
// other members (ANY 1), and says when none is connected synchronously.
func (r *Reconciler) keepSync(ctx context.Context, g *group, st replication.Status) string {
	if !g.cfg.Synchronous {
		return ""
	}
	s, ok := g.member.(Synchronizer)
	if !ok {
		return "synchronous replication: the driver cannot configure it"
	}
	if !g.syncSet || !st.SyncConfigured {
		if err := s.SetSynchronous(ctx, g.others, 1); err != nil {
			return "synchronous replication: " + err.Error()
		}
		g.syncSet = true
	}
	if !slices.ContainsFunc(st.Standbys, func(s replication.StandbyStatus) bool { return s.Synchronous }) {
		return "synchronous replication: no synchronous standby connected, commits wait"
	}
	return ""
}

// event appends to the event log, best effort.
func (r *Reconciler) event(ctx context.Context, kind, msg string) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	err := r.cfg.Store.AppendEvent(ctx, site.Event{At: time.Now(), Site: r.cfg.Site, Kind: kind, Subject: r.cfg.Site, Message: msg})
	if err != nil {
		r.log.Warn("append event", zap.String("kind", kind), zap.Error(err))
	}
}

// memberReport is what the site publishes about one member.
func memberReport(g *group, o observation, notes []string) site.MemberReport {
	mr := site.MemberReport{Group: g.cfg.Name, Role: string(replication.RoleUnknown), Epoch: g.acted, Observed: time.Now().UTC()}
	parts := notes
	if o.ok {
		st := o.st
		mr.Role, mr.Healthy, mr.Writable = string(st.Role), st.Healthy, st.Writable
		mr.LagBytes, mr.LagSeconds, mr.Position = st.LagBytes, st.LagSeconds, st.Position
		mr.Sync = st.Sync || slices.ContainsFunc(st.Standbys, func(s replication.StandbyStatus) bool { return s.Synchronous })
		for _, sb := range st.Standbys {
			if sb.Synchronous {
				mr.SyncStandbys = append(mr.SyncStandbys, sb.Name)
			}
			if sb.State == "streaming" {
				mr.Streaming = append(mr.Streaming, sb.Name)
			}
		}
		if st.Role == replication.RolePrimary {
			g.lastSync = mr.SyncStandbys
		} else {
			g.lastSync = nil
		}
		if !st.ObservedAt.IsZero() {
			mr.Observed = st.ObservedAt.UTC()
		}
		parts = append([]string{st.Detail}, notes...)
	} else {
		parts = append([]string{"cannot observe: " + o.err.Error()}, notes...)
		mr.SyncStandbys = g.lastSync // as last seen: it may have died a primary
	}
	var detail []string
	for _, p := range parts {
		if p != "" && !slices.Contains(detail, p) {
			detail = append(detail, p)
		}
	}
	mr.Detail = strings.Join(detail, "; ")
	return mr
}

// publish writes the site's report when a member changed, or when only
// lag changed and PublishEvery has passed.
func (r *Reconciler) publish(ctx context.Context, members []site.MemberReport) error {
	now := time.Now()
	changed, lagged := false, false
	for _, m := range members {
		prev, ok := r.published[m.Group]
		switch {
		case !ok || !reflect.DeepEqual(withoutLag(prev), withoutLag(m)):
			changed = true
		case prev.LagBytes != m.LagBytes || prev.LagSeconds != m.LagSeconds || prev.Position != m.Position:
			lagged = true
		}
	}
	if !changed && !(lagged && now.Sub(r.publishedAt) >= r.cfg.PublishEvery) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	err := r.cfg.Store.PutReplicationReport(ctx, site.ReplicationReport{Site: r.cfg.Site, Updated: now.UTC(), Members: members})
	if err != nil {
		// It may have landed all the same (cancelled after etcd took it):
		// what etcd holds is unknown, so the next pass writes its report
		// even if it is the one before.
		r.published = nil
		return err
	}
	r.published = map[string]site.MemberReport{}
	for _, m := range members {
		r.published[m.Group] = m
	}
	r.publishedAt = now
	return nil
}

func withoutLag(m site.MemberReport) site.MemberReport {
	m.LagBytes, m.LagSeconds, m.Position, m.Observed = 0, 0, "", time.Time{}
	return m
}
