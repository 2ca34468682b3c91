// Package observer is zdt's route observer: a BGP speaker that learns the
// paths the upstream holds for the service prefixes and publishes, for
// each, which site the best path leads to, with its AS path, into etcd
// (`upstream/<prefix>`), where `zdt status` and the sites' announcers read
// it.
//
// In the lab the observer is the upstream itself: every site's speaker
// announces to it, and GoBGP's best path selection is the upstream's
// choice. In production it peers with the upstream routers, which send it
// their best paths. A path leads to the site of the peer that sent it (the
// config's observer peers name their site), or else to the site whose ASN
// originated it (the last AS of the path).
//
// It announces nothing. It reads its RIB when GoBGP says something in it
// changed (at most every Interval, and every Resync regardless) and writes
// only the records that changed; beside them it holds its beat (site.ObserverBeat),
// a small record under a lease, which says that it is alive: without it
// the records are its last view, stale (zdt status, zdt_upstream_observer_up).
package observer

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/bgp/speaker"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// DefaultInterval is how often, at most, the observer reads its RIB;
// DefaultResync how often it reads it with no change announced.
const (
	DefaultInterval = 250 * time.Millisecond
	DefaultResync   = 10 * time.Second
)

// Config configures an Observer.
type Config struct {
	Cluster  *config.Cluster
	Store    *site.Store
	Log      *zap.Logger
	Interval time.Duration
	// Resync is how often the RIB is read when no change was announced;
	// 0 means DefaultResync.
	Resync time.Duration
	// BeatTTL is the lease of the observer's beat; 0 means
	// site.ObserverBeatTTL.
	BeatTTL time.Duration
}

// Observer publishes the upstream's view of the service prefixes.
type Observer struct {
	cfg      Config
	obs      *config.Observer
	sp       *speaker.Speaker
	prefixes map[netip.Prefix]bool
	byPeer   map[netip.Addr]string
	byASN    map[uint32]string
	last     map[string]site.UpstreamRoute
	log      *zap.Logger
}

// Start starts the observer's speaker.
func Start(ctx context.Context, cfg Config) (*Observer, error) {
	o := cfg.Cluster.BGP.Observer
	if o == nil {
		return nil, fmt.Errorf("the config has no bgp.observer section")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.BeatTTL == 0 {
		cfg.BeatTTL = site.ObserverBeatTTL
	}
	ob := &Observer{cfg: cfg, obs: o, prefixes: map[netip.Prefix]bool{}, byPeer: map[netip.Addr]string{},
		byASN: map[uint32]string{}, last: map[string]site.UpstreamRoute{}, log: cfg.Log.With(zap.String("component", "observer"))}
	for _, svc := range cfg.Cluster.Services {
		for _, p := range svc.Prefixes {
			ob.prefixes[p] = true
		}
	}
	asnSites := map[uint32][]string{}
	for _, s := range cfg.Cluster.Sites {
		if s.BGP != nil {
			asnSites[s.BGP.ASN] = append(asnSites[s.BGP.ASN], s.Name)
		}
	}
	for asn, sites := range asnSites {
		if len(sites) == 1 {
			ob.byASN[asn] = sites[0]
		}
	}
	scfg := speaker.Config{
		ASN: o.ASN, RouterID: o.RouterID,
		ListenAddresses: []string{o.Listen.Addr().String()}, ListenPort: int32(o.Listen.Port()), AcceptRoutes: true,
		Log: cfg.Log.Named("gobgp"),
	}
	for _, p := range o.Peers {
		if p.Site != "" {
			ob.byPeer[p.Address] = p.Site
		}
		// Both families where the session allows: a site's IPv6 prefixes
		// may come over its IPv4 session (families: [ipv4, ipv6]).
		fams := []speaker.Family{speaker.IPv6}
		if p.Address.Is4() {
			fams = []speaker.Family{speaker.IPv4, speaker.IPv6}
		}
		scfg.Peers = append(scfg.Peers, speaker.Peer{Address: p.Address, ASN: p.ASN, Passive: true,
			HoldTime: config.DefaultBGPHoldTime, Description: p.Site, Families: fams})
	}
	sp, err := speaker.Start(ctx, scfg)
	if err != nil {
		return nil, fmt.Errorf("start the observer's speaker: %w", err)
	}
	ob.sp = sp
	return ob, nil
}

// Speaker returns the observer's speaker (for its sessions).
func (o *Observer) Speaker() *speaker.Speaker { return o.sp }

// Run publishes until ctx ends, then closes the speaker.
func (o *Observer) Run(ctx context.Context) error {
	defer o.sp.Close()
	host, _ := os.Hostname()
	beat := site.ObserverBeat{Since: time.Now(), Host: host, PID: os.Getpid()}
	beating := make(chan struct{})
	defer func() { <-beating }() // revoked before Run returns
	go func() {
		defer close(beating)
		_ = o.cfg.Store.HoldObserverBeat(ctx, beat, o.cfg.BeatTTL)
	}()
	// Reading the whole RIB costs in proportion to the prefixes (most of
	// a core every 250 ms at 10,000): it is read when GoBGP says something
	// changed, and every Resync in case a change went unsaid.
	changed := make(chan struct{}, 1)
	if err := o.sp.WatchRIB(ctx, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}); err != nil {
		return fmt.Errorf("observer: %w", err)
	}
	t := time.NewTicker(o.cfg.Interval)
	defer t.Stop()
	due, last := true, time.Time{}
	for {
		select {
		case <-changed:
			due = true
		default:
		}
		if due || time.Since(last) >= o.cfg.Resync {
			last = time.Now()
			err := o.publish(ctx)
			if err != nil && ctx.Err() == nil {
				o.log.Warn("cannot publish the upstream's view", zap.Error(err))
			}
			due = err != nil // a failed publish is tried again at once
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// publish reads the RIB and writes the records that changed.
func (o *Observer) publish(ctx context.Context) error {
	paths, err := o.sp.Received(ctx)
	if err != nil {
		return err
	}
	return o.write(ctx, o.Routes(paths, time.Now()))
}

// write writes the records of routes that differ from what it last wrote
// (not in their time alone), and deletes those of prefixes that are gone.
func (o *Observer) write(ctx context.Context, routes map[string]site.UpstreamRoute) error {
	var changed []site.UpstreamRoute
	for p, r := range routes {
		if last, ok := o.last[p]; ok && sameRoute(last, r) {
			continue
		}
		changed = append(changed, r)
	}
	var gone []string
	for p := range o.last {
		if _, ok := routes[p]; !ok {
			gone = append(gone, p)
		}
	}
	if len(changed) == 0 && len(gone) == 0 {
		return nil
	}
	// A write gets one lease TTL and fails fast without a leader: while the
	// member this client talks to is dead or has lost its leader (the site
	// that held the etcd leader went dark), the next publish tries again
	// with a fresh view, rather than one write waiting for long and the
	// observer's view of a failover reaching etcd seconds late.
	timeout := o.cfg.Cluster.Timings.LeaseTTL
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), timeout)
	defer cancel()
	// What was written is remembered even when the rest failed: a publish
	// too large for one timeout (the first one, of every prefix) goes on
	// from where it stopped, and no record is written again for its
	// timestamp alone.
	n, err := o.cfg.Store.PutUpstream(wctx, changed, gone)
	for _, r := range changed[:min(n, len(changed))] {
		o.last[r.Prefix] = r
	}
	// The records after those may have landed too (the transaction that
	// failed, cancelled after etcd took it): what etcd holds for them is
	// unknown, so the next publish writes them whatever they are then (or
	// deletes them, if the upstream no longer has them).
	for _, r := range changed[min(n, len(changed)):] {
		o.last[r.Prefix] = site.UpstreamRoute{Prefix: r.Prefix, BestSite: unknownSite}
	}
	for _, p := range gone[:max(0, n-len(changed))] {
		delete(o.last, p)
	}
	return err
}

// unknownSite marks a record that may or may not have been written: no
// route leads there, so it differs from every route.
const unknownSite = "\x00unknown"

func sameRoute(a, b site.UpstreamRoute) bool {
	a.Observed, b.Observed = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// Routes turns received paths into records of the service prefixes.
func (o *Observer) Routes(paths []speaker.ReceivedPath, now time.Time) map[string]site.UpstreamRoute {
	routes := map[string]site.UpstreamRoute{}
	for _, p := range paths {
		if !o.prefixes[p.Prefix] {
			continue
		}
		key := p.Prefix.String()
		r, ok := routes[key]
		if !ok {
			r = site.UpstreamRoute{Prefix: key, ASPath: []uint32{}, Observed: now}
		}
		up := site.UpstreamPath{Site: o.siteOf(p), Peer: p.Peer.String(), ASPath: p.ASPath, Best: p.Best}
		r.Paths = append(r.Paths, up)
		if p.Best {
			r.BestSite, r.ASPath = up.Site, p.ASPath
		}
		routes[key] = r
	}
	for k, r := range routes {
		slices.SortFunc(r.Paths, func(a, b site.UpstreamPath) int {
			if a.Peer < b.Peer {
				return -1
			}
			if a.Peer > b.Peer {
				return 1
			}
			return 0
		})
		routes[k] = r
	}
	return routes
}

// siteOf is the site a path leads to.
func (o *Observer) siteOf(p speaker.ReceivedPath) string {
	if s, ok := o.byPeer[p.Peer]; ok {
		return s
	}
	if len(p.ASPath) > 0 {
		return o.byASN[p.ASPath[len(p.ASPath)-1]]
	}
	return ""
}
