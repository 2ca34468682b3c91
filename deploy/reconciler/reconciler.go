package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/passloop"
)

// etcdTimeout bounds each etcd call of a pass: a site that cannot reach etcd
// still converges its hosts for the state it is in.
const etcdTimeout = 2 * time.Second

// Config configures a Reconciler.
type Config struct {
	Cluster *config.Cluster
	Site    string
	Store   *site.Store
	// View is the controller's watch-fed view of the cluster: passes read
	// the placements and the other sites' hosts from it, as fresh as from
	// etcd, without reading and decoding 10,000 placements each time.
	View *site.View
	Log  *zap.Logger
	// FailAfter is how long a host may go without answering before it is
	// reported failed (default hypervisor.DefaultFailAfter).
	FailAfter time.Duration
	// Resync is how often the reconciler converges without being told of a
	// change, so that a missed event heals (default 10s).
	Resync time.Duration
	// Registry receives the metrics; nil registers none.
	Registry prometheus.Registerer
	// Serving, when set, tells whether the site may serve at this instant:
	// it is up and its lease cannot have expired yet. It is asked right
	// before a guest is started or resumed, and again right after: a
	// controller that was frozen in the middle of a pass must not act on
	// the placements it read before, which a failover may have moved
	// meanwhile (and fenced from outside). nil: the state alone decides.
	Serving func() bool
}

// Reconciler converges a site's hosts. Create it with New, tell it the
// site's state with SetState, and Run it.
type Reconciler struct {
	cfg    Config
	log    *zap.Logger
	guests map[string]config.Guest // every guest of the cluster, by name
	hosts  []config.Host           // this site's
	m      *metrics
	loop   *passloop.Loop

	mu       sync.Mutex
	state    site.ControllerState
	reports  map[string]site.HostReport
	dialed   map[string]*hypervisor.Host
	unusable map[string]error // hosts whose URI could not be used
}

// New returns a reconciler for the site's hosts; the site starts as joining
// (nothing is started until SetState says it is up).
func New(cfg Config) (*Reconciler, error) {
	me, ok := cfg.Cluster.Site(cfg.Site)
	switch {
	case !ok:
		return nil, fmt.Errorf("site %q is not in the cluster config", cfg.Site)
	case cfg.Store == nil || cfg.View == nil:
		return nil, errors.New("the guest reconciler needs a store and a view")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.FailAfter == 0 {
		cfg.FailAfter = hypervisor.DefaultFailAfter
	}
	if cfg.Resync == 0 {
		cfg.Resync = 10 * time.Second
	}
	r := &Reconciler{
		cfg:      cfg,
		log:      cfg.Log.With(zap.String("site", cfg.Site)),
		guests:   map[string]config.Guest{},
		hosts:    me.Hosts,
		state:    site.ControllerJoining,
		loop:     passloop.New(),
		dialed:   map[string]*hypervisor.Host{},
		unusable: map[string]error{},
	}
	for _, g := range cfg.Cluster.Guests() {
		r.guests[g.Name] = g
	}
	r.m = newMetrics(cfg.Site)
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(r.m); err != nil {
			return nil, fmt.Errorf("register guest metrics: %w", err)
		}
	}
	return r, nil
}

// SetState tells the reconciler the site's state (the membership hook). It
// does not block; the reconciler acts on it at once.
func (r *Reconciler) SetState(s site.ControllerState) {
	r.mu.Lock()
	r.state = s
	// The pass under way may wait on etcd, which a cut-off site cannot
	// reach: a self-fence must not wait behind it.
	r.loop.CancelPass()
	r.mu.Unlock()
	r.loop.Kick()
}

func (r *Reconciler) currentState() site.ControllerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Run dials the site's hosts and converges them until ctx ends. When it
// returns every guest of the site's hosts has been destroyed if the site was
// not up (a stopping controller takes its guests with it), and every host
// connection is closed.
func (r *Reconciler) Run(ctx context.Context) error {
	if len(r.hosts) == 0 {
		<-ctx.Done()
		return nil
	}
	for _, h := range r.hosts {
		hv, err := hypervisor.Dial(ctx, h.URI, hypervisor.Options{Name: h.Name, FailAfter: r.cfg.FailAfter, Log: r.log})
		if err != nil {
			// Only a URI it cannot use fails Dial: the host is reported
			// failed with the reason, the rest of the site goes on.
			r.log.Error("host unusable", zap.String("host", h.Name), zap.Error(err))
			r.unusable[h.Name] = err
			continue
		}
		defer hv.Close()
		r.dialed[h.Name] = hv
	}
	var follow []passloop.Follower
	for _, hv := range r.dialed {
		follow = append(follow, followHealth(hv))
	}
	// A change of a placement, of another site's hosts report (a guest
	// waiting for its old copy to stop there starts once the report says
	// it did) or of a site's lease.
	k := r.cfg.Store.Keys()
	placements := func(ev *clientv3.Event) bool {
		key := string(ev.Kv.Key)
		return strings.HasPrefix(key, k.Guests()) || strings.HasSuffix(key, "/alive") ||
			(strings.HasSuffix(key, "/hosts") && key != k.Hosts(r.cfg.Site)) ||
			(strings.Contains(key, "/host/") && !strings.HasPrefix(key, k.SiteHostPrefix(r.cfg.Site)))
	}
	follow = append(follow, passloop.Watch(r.cfg.Store, k.Guests(), placements), passloop.Watch(r.cfg.Store, k.Sites(), placements))
	r.loop.Run(ctx, passloop.Config{
		// Each pass runs in a context that a change of state cancels.
		Pass: func(pctx context.Context) {
			if err := r.converge(pctx); err != nil && ctx.Err() == nil {
				r.log.Warn("converging guests failed; will retry", zap.Error(err))
			}
		},
		Resync: r.cfg.Resync,
		Follow: follow,
		Finish: r.finish,
	})
	return nil
}

// finish: a controller that stops cleanly takes its guests with it (its
// lease is given up and the coordinator places them elsewhere).
func (r *Reconciler) finish() {
	if r.currentState() != site.ControllerStopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.converge(ctx); err != nil {
		r.log.Warn("guests not all stopped at exit", zap.Error(err))
	}
}

// followHealth kicks on every change of a host's health.
func followHealth(hv *hypervisor.Host) passloop.Follower {
	return func(ctx context.Context, kick func()) {
		for {
			_, changed := hv.Watch()
			select {
			case <-ctx.Done():
				return
			case <-changed:
				kick()
			}
		}
	}
}

// converge makes the hosts match the placements, for the site's state: first
// every copy that must not run is stopped on every host, then what is placed
// here is started — never while another host of the site still holds a copy.
func (r *Reconciler) converge(ctx context.Context) error {
	st := r.currentState()
	var placements map[string]site.Placement
	var elsewhere map[string][]string
	if st == site.ControllerUp {
		var err error
		if placements, elsewhere, err = r.readPlacements(ctx); err != nil {
			return err
		}
	}
	var errs []error
	views := make([]*hostView, len(r.hosts))
	holders := map[string][]string{} // guest -> hosts that still hold an active copy
	for i, h := range r.hosts {
		v, err := r.stopUnwanted(ctx, h, st, placements)
		views[i] = v
		errs = append(errs, err)
		for name, d := range v.domains {
			if d.State == hypervisor.StateRunning || d.State == hypervisor.StatePaused {
				holders[name] = append(holders[name], h.Name)
			}
		}
	}
	if st == site.ControllerUp {
		placed := r.placedHere(placements)
		for _, v := range views {
			if v.hv == nil || v.domains == nil {
				continue
			}
			for _, name := range placed[v.host.Name] {
				g := r.guests[name]
				if others := slices.DeleteFunc(slices.Clone(holders[name]), func(h string) bool { return h == v.host.Name }); len(others) > 0 {
					errs = append(errs, fmt.Errorf("guest %s not started on %s: a copy still runs on %v", name, v.host.Name, others))
					continue
				}
				if sites := elsewhere[name]; len(sites) > 0 {
					// A planned move: the old copy stops first. Its site
					// destroys it and reports that, which kicks this pass.
					errs = append(errs, fmt.Errorf("guest %s not started on %s: site %v still reports a copy running", name, v.host.Name, sites))
					continue
				}
				errs = append(errs, r.runGuarded(ctx, v.hv, g, v.domains[name]))
			}
		}
	}
	report := site.HostsReport{Site: r.cfg.Site}
	for _, v := range views {
		report.Hosts = append(report.Hosts, r.hostReport(ctx, v))
	}
	r.m.observe(report, r.guests)
	errs = append(errs, r.publish(ctx, report))
	return errors.Join(errs...)
}

// hostView is one host during a pass.
type hostView struct {
	host    config.Host
	hv      *hypervisor.Host // nil: the host's URI is unusable
	report  site.HostReport
	domains map[string]hypervisor.Domain // the inventory's guests defined there; nil if unknown
}

// stopUnwanted stops, on one host, every copy of a guest that must not run
// there in the site's state: destroyed, or paused while self-fenced.
func (r *Reconciler) stopUnwanted(ctx context.Context, h config.Host, st site.ControllerState, placements map[string]site.Placement) (*hostView, error) {
	v := &hostView{host: h, report: site.HostReport{Name: h.Name, Running: []site.RunningGuest{}}}
	hv, ok := r.dialed[h.Name]
	if !ok {
		v.report.Failed, v.report.Error = true, r.unusable[h.Name].Error()
		return v, nil
	}
	v.hv = hv
	if failed, since := hv.Failed(); failed {
		v.report.Failed, v.report.Error = true, fmt.Sprintf("no answer since %s", since.UTC().Format(time.RFC3339))
	}
	vcpus, mem, err := hv.Capacity(ctx)
	if err != nil {
		v.report.Error = err.Error()
		return v, err
	}
	v.report.VCPUs, v.report.MemoryMiB = vcpus, mem
	domains, err := hv.List(ctx)
	if err != nil {
		v.report.Error = err.Error()
		return v, err
	}
	var errs []error
	v.domains = map[string]hypervisor.Domain{}
	for _, d := range domains {
		if _, ours := r.guests[d.Name]; !ours {
			continue // not a guest of the inventory: leave it alone
		}
		want := placements[d.Name]
		wanted := st == site.ControllerUp && want.State == site.GuestRunning && want.Host == h.Name
		switch {
		case st == site.ControllerJoining:
			// Hands off until the site knows whether it is fenced: a
			// controller that restarts must not take its guests down.
		case wanted || d.State == hypervisor.StateShutoff:
		case st == site.ControllerSelfFenced:
			if d.State == hypervisor.StateRunning {
				if err := r.act(ctx, "pause", d.Name, h.Name, hv.Suspend); err != nil {
					errs = append(errs, err)
				} else {
					d.State = hypervisor.StatePaused
				}
			}
		default:
			if want.State == site.GuestPreempted && st == site.ControllerUp {
				r.m.preemptions.Inc()
			}
			if err := r.act(ctx, "destroy", d.Name, h.Name, hv.Destroy); err != nil {
				errs = append(errs, err)
			} else {
				d.State = hypervisor.StateShutoff
			}
		}
		v.domains[d.Name] = d
	}
	return v, errors.Join(errs...)
}

// hostReport lists what runs on the host after the pass.
func (r *Reconciler) hostReport(ctx context.Context, v *hostView) site.HostReport {
	if v.hv == nil || v.domains == nil {
		return v.report
	}
	if domains, err := v.hv.List(ctx); err == nil {
		for _, d := range domains {
			if _, ours := r.guests[d.Name]; ours && d.State == hypervisor.StateRunning {
				v.report.Running = append(v.report.Running, site.RunningGuest{Name: d.Name, VCPUs: d.VCPUs, MemoryMiB: d.MemoryMiB})
			}
		}
	}
	return v.report
}

// errNotServing: the site's lease may have lapsed since the pass read the
// placements; nothing is started on what it read.
var errNotServing = errors.New("the site's lease may have lapsed: not starting guests on what this pass read")

// runGuarded runs a guest only while the site serves, and destroys it again
// if the site stopped serving while it was being started (the controller
// froze in between): a guest must never run at two places.
func (r *Reconciler) runGuarded(ctx context.Context, hv *hypervisor.Host, g config.Guest, d hypervisor.Domain) error {
	if d.State == hypervisor.StateRunning {
		return nil
	}
	if !r.serving() {
		return fmt.Errorf("guest %s on host %s: %w", g.Name, hv.Name(), errNotServing)
	}
	err := r.run(ctx, hv, g, d)
	if err == nil && !r.serving() {
		r.log.Warn("guest started as the site's lease lapsed: destroying it again", zap.String("guest", g.Name), zap.String("host", hv.Name()))
		return errors.Join(fmt.Errorf("guest %s on host %s: %w", g.Name, hv.Name(), errNotServing),
			r.act(ctx, "destroy", g.Name, hv.Name(), hv.Destroy))
	}
	return err
}

func (r *Reconciler) serving() bool {
	return r.currentState() == site.ControllerUp && (r.cfg.Serving == nil || r.cfg.Serving())
}

// run brings a guest placed on this host up: define it from its XML unless
// it is defined, resume it if paused, start it if off.
func (r *Reconciler) run(ctx context.Context, hv *hypervisor.Host, g config.Guest, d hypervisor.Domain) error {
	switch d.State {
	case hypervisor.StateRunning:
		return nil
	case hypervisor.StatePaused:
		return r.act(ctx, "resume", g.Name, hv.Name(), hv.Resume)
	}
	if d.Name == "" {
		xml, err := os.ReadFile(g.Domain)
		if err != nil {
			return fmt.Errorf("guest %s: domain XML: %w", g.Name, err)
		}
		if _, err := hv.Define(ctx, string(xml)); err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
	}
	return r.act(ctx, "start", g.Name, hv.Name(), hv.Start)
}

func (r *Reconciler) act(ctx context.Context, what, guest, host string, fn func(context.Context, string) error) error {
	if err := fn(ctx, guest); err != nil {
		return fmt.Errorf("%s guest %s on host %s: %w", what, guest, host, err)
	}
	r.log.Info("guest "+what, zap.String("guest", guest), zap.String("host", host))
	return nil
}

// publish writes the records of the hosts whose report changed (their
// time aside), then the report's header; nothing when none changed. When
// what etcd holds is unknown (at start, after a failed write) it writes
// every host's record and deletes those of hosts it no longer has.
func (r *Reconciler) publish(ctx context.Context, report site.HostsReport) error {
	r.mu.Lock()
	known := r.reports
	r.mu.Unlock()
	byName := make(map[string]site.HostReport, len(report.Hosts))
	var changed []site.HostReport
	for _, h := range report.Hosts {
		byName[h.Name] = h
		if old, ok := known[h.Name]; !ok || !reflect.DeepEqual(old, h) {
			changed = append(changed, h)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	held := slices.Collect(maps.Keys(known))
	if known == nil {
		var err error
		if held, err = r.cfg.Store.HostNames(ctx, r.cfg.Site); err != nil {
			return err
		}
	}
	gone := slices.DeleteFunc(held, func(name string) bool { _, ok := byName[name]; return ok })
	if known != nil && len(changed) == 0 && len(gone) == 0 {
		return nil
	}
	report.Updated = time.Now()
	if err := r.cfg.Store.PutHostsReport(ctx, report, changed, gone); err != nil {
		// A write that failed may have landed all the same (cancelled
		// after etcd took it: a self-fence that ends at once cancels the
		// pass that paused the guests): what etcd holds is unknown, so the
		// next pass writes every record even if it is the one before.
		// Otherwise etcd could keep "paused" for guests running again.
		r.mu.Lock()
		r.reports = nil
		r.mu.Unlock()
		return err
	}
	r.mu.Lock()
	r.reports = byName
	r.mu.Unlock()
	return nil
}

// placedHere lists, by host, the guests of the site's inventory placed
// there to run, in name order.
func (r *Reconciler) placedHere(placements map[string]site.Placement) map[string][]string {
	placed := map[string][]string{}
	for name, p := range placements {
		if _, ours := r.guests[name]; ours && p.State == site.GuestRunning {
			placed[p.Host] = append(placed[p.Host], name)
		}
	}
	for _, names := range placed {
		slices.Sort(names)
	}
	return placed
}

// readPlacements reads from the view, at one revision, every guest's
// placement (the view's map, not to be changed) and, for each guest, the
// other sites that report a copy of it running and are up (they hold a
// lease and are not fenced). A dark or fenced site's report is no reason
// to wait: its copies are destroyed by its own reconciler or by the
// failover's outside fence, and it may never report again.
func (r *Reconciler) readPlacements(ctx context.Context) (map[string]site.Placement, map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	snap, err := r.cfg.View.Snapshot(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read placements: %w", err)
	}
	elsewhere := map[string][]string{}
	for _, s := range r.cfg.Cluster.Sites {
		if s.Name == r.cfg.Site || !snap.Up(s.Name) {
			continue
		}
		for _, h := range snap.Hosts[s.Name].Hosts {
			for _, g := range h.Running {
				if !slices.Contains(elsewhere[g.Name], s.Name) {
					elsewhere[g.Name] = append(elsewhere[g.Name], s.Name)
				}
			}
		}
	}
	return snap.Placements, elsewhere, nil
}
