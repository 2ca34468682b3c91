// Package controller is a site's controller: it holds the site's membership
// (lease, heartbeat, self-fencing), runs the coordinator whenever the site is
// up, and serves /healthz, /metrics and the JSON API. Later reconcilers (BGP,
// replication, guests) hang off the membership hook here.
package controller

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/zdt-project/zdt/bgp/announcer"
	"github.com/zdt-project/zdt/bgp/speaker"
	"github.com/zdt-project/zdt/bgp/svcaddr"
	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/deploy/reconciler"
	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/failover/outside"
	replrec "github.com/zdt-project/zdt/replication/reconciler"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/etcdmaint"
	"github.com/zdt-project/zdt/site/failstatic"
	"github.com/zdt-project/zdt/site/membership"
)

// Config configures a Controller.
type Config struct {
	Cluster *config.Cluster
	Site    string
	Client  *clientv3.Client
	Log     *zap.Logger
	// Registry receives the controller's metrics; nil makes a new one.
	Registry *prometheus.Registry
	// RevokeOnStop gives up the lease on a clean stop (see
	// membership.Config).
	RevokeOnStop bool
	// OnChange, when set, is told of every membership change after the
	// controller's own handling.
	OnChange func(membership.Change)
	// BeforeStep is passed to the coordinator (a test seam).
	BeforeStep func(ctx context.Context, op *site.Op, step int) error
	// HostFailAfter overrides the config's timings.host_fail_after (tests).
	HostFailAfter time.Duration
	// EtcdMember reads what the site's embedded etcd member sees, for the
	// other sites' fail-static checks; nil: the controller cannot tell,
	// and no site can fail static.
	EtcdMember func() failstatic.MemberStatus
	// PeerAddrs overrides where this controller reaches the other sites'
	// peer_api, by site (tests put a proxy in between).
	PeerAddrs map[string]string
	// EtcdMaint, when set, runs the maintenance of the site's embedded
	// etcd member (package etcdmaint) for as long as the controller runs.
	// Its Member and Cluster clients are the caller's; the lock, the
	// registry, the log, the site label and, unless set, MaxBlock are the
	// controller's (see etcdMaxBlock).
	EtcdMaint *etcdmaint.Config
	// Fallback, when set, reaches the other sites' etcd members, a client
	// each, for a Client that talks to the site's own member alone: the
	// membership renews through them too, so that losing that member does
	// not cost the site its lease (membership.Config.Fallback).
	Fallback []*clientv3.Client
	// Profiles serves Go's runtime profiles (net/http/pprof) at
	// /debug/pprof/ on the API address, to admin identities only.
	Profiles bool
}

// Controller is one site's controller.
type Controller struct {
	cfg   Config
	site  config.Site
	store *site.Store
	// view is the cluster's state kept by a watch: the coordinator, the
	// API's status and the metrics read it.
	view    *site.View
	member  *membership.Member
	sweeper *membership.Sweeper
	coord   *failover.Coordinator
	// fencer fences dark sites from outside for the coordinator, and
	// probes a site whose beats stopped.
	fencer *outside.Fencer
	// outside runs the notify and shell steps of runbooks while this
	// controller coordinates.
	outside *runbooks.Outside
	leading atomic.Bool
	metrics *metrics
	guests  *reconciler.Reconciler
	// replicas manages the site's replication members; nil when it has
	// none. closeMembers closes their connections.
	replicas     *replrec.Reconciler
	closeMembers func()
	// announcer is set by Run before the membership starts, when the
	// site has a BGP speaker.
	announcer atomic.Pointer[announcer.Announcer]
	// peerTLS is the server side of the fail-static checks; nil when
	// fail static is off.
	peerTLS *tls.Config
	// api serves /api/v1; apiTLS is its listener's TLS, nil when the site
	// has no API certificate (insecure_plaintext).
	api    *api.Server
	apiTLS *tls.Config
	// etcdMaint maintains the site's embedded etcd member; nil without
	// Config.EtcdMaint.
	etcdMaint *etcdmaint.Maintainer
}

// New checks the config and builds the controller.
func New(cfg Config) (*Controller, error) {
	me, ok := cfg.Cluster.Site(cfg.Site)
	if !ok {
		return nil, fmt.Errorf("site %q is not in the cluster config (sites: %v)", cfg.Site, cfg.Cluster.SiteNames())
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		// The process's footprint: go_memstats_*, go_gc_*,
		// process_resident_memory_bytes, process_cpu_seconds_total.
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	c := &Controller{cfg: cfg, site: me, store: site.NewStore(cfg.Client, cfg.Cluster.Name)}
	c.view = site.NewView(c.store)
	if err := c.buildAPI(); err != nil {
		return nil, err
	}
	t := cfg.Cluster.Timings
	c.metrics = newMetrics(c)
	guests, err := reconciler.New(reconciler.Config{
		Cluster:   cfg.Cluster,
		Site:      me.Name,
		Store:     c.store,
		View:      c.view,
		Log:       cfg.Log,
		FailAfter: cmp.Or(cfg.HostFailAfter, cfg.Cluster.Timings.HostFailAfter),
		Registry:  cfg.Registry,
		Serving:   c.serving,
	})
	if err != nil {
		return nil, err
	}
	c.guests = guests
	if err := c.buildReplicas(); err != nil {
		return nil, err
	}
	mcfg := membership.Config{
		Site:            me.Name,
		API:             me.API,
		Store:           c.store,
		Log:             cfg.Log,
		LeaseTTL:        t.LeaseTTL,
		RenewInterval:   t.RenewInterval,
		SelfFenceMargin: t.SelfFenceMargin,
		RevokeOnStop:    cfg.RevokeOnStop,
		OnChange:        c.onMembershipChange,
	}
	for _, c := range cfg.Fallback {
		mcfg.Fallback = append(mcfg.Fallback, site.NewStore(c, cfg.Cluster.Name))
	}
	if err := c.setUpFailStatic(&mcfg); err != nil {
		return nil, err
	}
	c.member = membership.New(mcfg)
	c.fencer = outside.New(cfg.Cluster, cfg.Log)
	c.sweeper = membership.NewSweeper(membership.SweeperConfig{
		Site:     me.Name,
		Store:    c.store,
		Log:      cfg.Log,
		LeaseTTL: t.LeaseTTL,
		OwnBeat:  c.member.LastBeat,
		OnLate:   c.onLate,
	})
	c.outside = runbooks.NewOutside(runbooks.OutsideConfig{AllowShell: cfg.Cluster.Runbooks.AllowShell, Log: cfg.Log})
	c.coord = failover.New(failover.Config{
		Cluster:    cfg.Cluster,
		Site:       me.Name,
		Store:      c.store,
		View:       c.view,
		Log:        cfg.Log,
		BeforeStep: cfg.BeforeStep,
		Fencer:     c.fencer,
		Outside:    c.outside,
		OnLeading: func(on bool) {
			c.leading.Store(on)
			c.member.SetCoordinator(on)
		},
	})
	if err := cfg.Registry.Register(c.metrics); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err := c.buildEtcdMaint(); err != nil {
		return nil, err
	}
	return c, nil
}

// buildEtcdMaint builds the maintenance of the site's etcd member, if the
// config asks for it.
func (c *Controller) buildEtcdMaint() error {
	if c.cfg.EtcdMaint == nil {
		return nil
	}
	mc := *c.cfg.EtcdMaint
	mc.LockKey = c.store.Keys().DefragLock()
	mc.Registry = c.cfg.Registry
	mc.ConstLabels = prometheus.Labels{"site": c.site.Name}
	mc.Log = c.cfg.Log.Named("etcdmaint").With(zap.String("site", c.site.Name))
	mc.MaxBlock = cmp.Or(mc.MaxBlock, etcdMaxBlock(c.cfg.Cluster.Timings))
	m, err := etcdmaint.New(mc)
	if err != nil {
		return fmt.Errorf("site %s: %w", c.site.Name, err)
	}
	c.etcdMaint = m
	return nil
}

// etcdMaxBlock is how long a routine defragmentation may stop the site's
// etcd member. The controller renews its lease through that member alone,
// and a renewal may take lease TTL - self-fence margin - renew interval
// before the site fences itself (package membership); the defragmentation
// takes at most half of that, leaving the rest to an etcd election and
// the round trips. Never 0, which would set no limit.
func etcdMaxBlock(t config.Timings) time.Duration {
	return max((t.LeaseTTL-t.SelfFenceMargin-t.RenewInterval)/2, time.Nanosecond)
}

// serving tells whether the site may serve at this instant: it is up and
// its lease is known to be alive (the self-fence deadline has not passed).
// The reconcilers ask it right before a side effect that makes the site
// serve: after a freeze, what they read before may have been moved, and the
// membership's own timer may not have fired yet.
func (c *Controller) serving() bool {
	i := c.member.Info()
	return i.State == site.ControllerUp && time.Now().Before(i.FenceDeadline)
}

// deciding tells whether the site may make decisions: it is up and renews
// its lease. Failing static it serves on, but its automation is frozen.
func (c *Controller) deciding() bool {
	i := c.member.Info()
	return i.State == site.ControllerUp && i.FailStatic == ""
}

// onLate is the sweeper's hook: a site whose beats stopped has its
// resources probed, so that the outside fence of a failover that follows
// need not wait on them (package outside). Every controller probes, not
// only the coordinator: the late site may be the coordinator's, and the
// next one is elected only once its lease is gone, when the failover
// begins.
func (c *Controller) onLate(name string, late bool) {
	if late {
		c.fencer.Suspect(name)
	} else {
		c.fencer.Clear(name)
	}
}

// Member is the site's membership.
func (c *Controller) Member() *membership.Member { return c.member }

// Leading reports whether this controller is the coordinator now.
func (c *Controller) Leading() bool { return c.leading.Load() }

// onMembershipChange is the membership hook: the one place where the site's
// reconcilers learn to stop or resume serving.
func (c *Controller) onMembershipChange(ch membership.Change) {
	if a := c.announcer.Load(); a != nil {
		a.SetState(ch.To) // first: withdrawing is what stops traffic
	}
	if c.replicas != nil {
		c.replicas.SetState(ch.To) // fences a primary at once when not up
	}
	c.guests.SetState(ch.To)
	if ch.To == site.ControllerSelfFenced {
		c.metrics.selfFences.Inc()
		c.cfg.Log.Warn("self-fenced", zap.String("site", c.site.Name), zap.String("reason", ch.Reason))
	}
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(ch)
	}
}

// buildAPI builds the API server and its listener's TLS.
func (c *Controller) buildAPI() error {
	auth, err := apiauth.New(c.cfg.Cluster)
	if err != nil {
		return err
	}
	c.api = api.New(api.Config{Cluster: c.cfg.Cluster, Site: c.site.Name, Store: c.store, View: c.view, Auth: auth, Log: c.cfg.Log.Named("api")})
	if c.site.APICert != "" {
		if c.apiTLS, err = apiauth.ServerTLS(c.site.APICert, c.site.APIKey); err != nil {
			return fmt.Errorf("site %s: %w", c.site.Name, err)
		}
	}
	return nil
}

// Run runs the controller until ctx ends. Ending ctx is a clean stop, not an
// error.
func (c *Controller) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", c.site.API)
	if err != nil {
		return fmt.Errorf("site %s api listener: %w", c.site.Name, err)
	}
	if c.apiTLS != nil {
		ln = tls.NewListener(ln, c.apiTLS)
	}
	// No WriteTimeout: the API streams ops and events for as long as a
	// client follows them.
	srv := &http.Server{Handler: c.handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, IdleTimeout: 2 * time.Minute}
	var peers net.Listener
	if c.peerTLS != nil {
		if peers, err = tls.Listen("tcp", c.site.PeerAPI, c.peerTLS); err != nil {
			_ = ln.Close()
			return fmt.Errorf("site %s peer_api listener: %w", c.site.Name, err)
		}
	}
	sp, err := c.startSpeaker(ctx)
	if err != nil {
		_ = ln.Close()
		if peers != nil {
			_ = peers.Close()
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	defer c.outside.Close()
	defer c.fencer.Close()
	memberDone := make(chan struct{})
	// Like the guests, the announcements outlive the membership by a
	// moment: a stopping controller withdraws them after it said so.
	afterMember := func(run func(context.Context) error) func() error {
		return func() error {
			rctx, cancel := context.WithCancel(context.WithoutCancel(gctx))
			defer cancel()
			go func() {
				select {
				case <-memberDone:
				case <-rctx.Done():
				}
				cancel()
			}()
			return run(rctx)
		}
	}
	if a := c.announcer.Load(); a != nil {
		g.Go(afterMember(func(ctx context.Context) error {
			defer sp.Close()
			return a.Run(ctx)
		}))
	}
	g.Go(func() error {
		defer close(memberDone)
		return c.member.Run(gctx)
	})
	// The guests outlive the membership by a moment: when the controller
	// stops, the membership says so first, and the guests stop after.
	g.Go(afterMember(c.guests.Run))
	if c.replicas != nil {
		g.Go(afterMember(func(ctx context.Context) error {
			defer c.closeMembers()
			return c.replicas.Run(ctx)
		}))
	}
	g.Go(func() error { return c.sweeper.Run(gctx) })
	g.Go(func() error { return c.view.Run(gctx) })
	if c.etcdMaint != nil {
		g.Go(func() error { return c.etcdMaint.Run(gctx) })
	}
	if peers != nil {
		serve(gctx, g, &http.Server{Handler: failstatic.Handler(c.answerPeer), ReadHeaderTimeout: 5 * time.Second},
			peers, "site "+c.site.Name+" peer_api")
	}
	g.Go(func() error { return c.superviseCoordinator(gctx) })
	serve(gctx, g, srv, ln, "site "+c.site.Name+" api")
	return g.Wait()
}

// serve serves srv on ln in g until ctx ends, then shuts it down (within
// 2s).
func serve(ctx context.Context, g *errgroup.Group, srv *http.Server, ln net.Listener, what string) {
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
}

// speakerFamilies are the config's families ("ipv4", "ipv6", validated)
// as the speaker's.
func speakerFamilies(names []string) []speaker.Family {
	var fams []speaker.Family
	for _, n := range names {
		if n == "ipv6" {
			fams = append(fams, speaker.IPv6)
		} else {
			fams = append(fams, speaker.IPv4)
		}
	}
	return fams
}

// startSpeaker starts the site's BGP speaker and its announcer, when the
// site has a bgp section; it returns nil otherwise.
func (c *Controller) startSpeaker(ctx context.Context) (*speaker.Speaker, error) {
	b := c.site.BGP
	if b == nil {
		return nil, nil
	}
	cfg := speaker.Config{ASN: b.ASN, RouterID: b.RouterID, ListenPort: -1, Log: c.cfg.Log.Named("gobgp").With(zap.String("site", c.site.Name))}
	for _, p := range b.Peers {
		cfg.Peers = append(cfg.Peers, speaker.Peer{
			Address: p.Address, ASN: p.ASN, Port: p.Port, LocalAddress: p.LocalAddress, Password: p.Password,
			HoldTime: p.HoldTime, Keepalive: p.Keepalive, ConnectRetry: p.ConnectRetry, Multihop: p.Multihop,
			Passive: p.Passive, Description: p.Description, Families: speakerFamilies(p.Families),
		})
	}
	sp, err := speaker.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("site %s: start the BGP speaker: %w", c.site.Name, err)
	}
	acfg := announcer.Config{
		Cluster: c.cfg.Cluster, Site: c.site.Name, Store: c.store, View: c.view, Speaker: sp,
		Log: c.cfg.Log, Registry: c.cfg.Registry,
	}
	if hasServiceAddresses(c.cfg.Cluster, c.site.Name) {
		m := svcaddr.New(b.Interface, c.cfg.Log)
		if err := m.Check(); err != nil {
			c.cfg.Log.Warn("service addresses are off", zap.String("site", c.site.Name), zap.Error(err))
			acfg.AddressesOff = err
		} else {
			acfg.Addresses = m
		}
	}
	a, err := announcer.New(acfg)
	if err != nil {
		_ = sp.Close()
		return nil, err
	}
	c.announcer.Store(a)
	return sp, nil
}

// buildReplicas builds the reconciler of the site's replication members,
// if it has any.
func (c *Controller) buildReplicas() error {
	members, closeMembers, err := replrec.BuildMembers(c.cfg.Cluster, c.site.Name, c.cfg.Log)
	if err != nil {
		return fmt.Errorf("site %s: replication members: %w", c.site.Name, err)
	}
	if len(members) == 0 {
		closeMembers()
		return nil
	}
	r, err := replrec.New(replrec.Config{Cluster: c.cfg.Cluster, Site: c.site.Name, Store: c.store, Members: members,
		Log: c.cfg.Log, Registry: c.cfg.Registry, Serving: c.serving})
	if err != nil {
		closeMembers()
		return err
	}
	c.replicas, c.closeMembers = r, closeMembers
	return nil
}

// hasServiceAddresses reports whether a service the site may serve lists
// addresses.
func hasServiceAddresses(cl *config.Cluster, siteName string) bool {
	for _, svc := range cl.Services {
		if len(svc.Addresses) > 0 && slices.Contains(svc.Sites, siteName) {
			return true
		}
	}
	return false
}

// superviseCoordinator runs the coordinator while the site is up, and only
// then: a self-fenced or fenced controller makes no decisions.
func (c *Controller) superviseCoordinator(ctx context.Context) error {
	up := c.deciding
	for {
		if err := c.waitMember(ctx, up); err != nil {
			return nil
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.coord.Run(cctx) }()
		_ = c.waitMember(ctx, func() bool { return !up() })
		cancel()
		if err := <-done; err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitMember waits until cond holds for the membership, or ctx ends.
func (c *Controller) waitMember(ctx context.Context, cond func() bool) error {
	for {
		changed := c.member.Changed()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
