// Package outside fences a dark site's resources from outside the site, as
// Pacemaker's STONITH does: a failover calls it before it promotes a member
// or starts a guest elsewhere, so that a site whose controller crashed or
// froze (and so fences nothing itself) cannot keep a writable primary or a
// running guest while the coordinator moves them.
//
// Each resource is tried once, all in parallel, each bounded by the
// configured limit: a site that is truly dark does not answer and must not
// stall the failover. The outcome per resource says "fenced", "nothing to
// fence", or "unreachable, presumed dark". A site whose beats stopped is
// probed before its failover (Suspect, probe.go), so that a resource
// already silent for the limit is known unreachable when the fence comes.
//
// What it does to each kind of resource:
//   - a PostgreSQL member, through its own administrative connection: if it
//     is a primary, it is fenced as the site's own controller would fence it
//     (default_transaction_read_only set with ALTER SYSTEM and reloaded, every
//     other client session cut);
//   - a hypervisor host, through its libvirt URI: every guest of the config
//     that is active there is destroyed (a fenced site runs no guest; its
//     Gold guests start elsewhere next);
//   - a DRBD member cannot be reached from outside (drbdadm acts on the local
//     node only); it is recorded as such, and DRBD's own fencing policy has to
//     cover it.
package outside

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	replrec "github.com/zdt-project/zdt/replication/reconciler"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// Fencer fences the resources of a site from outside it.
type Fencer struct {
	cluster *config.Cluster
	log     *zap.Logger
	// timeout bounds each resource's attempt.
	timeout time.Duration
	// leaseTTL times how long a suspected site is probed (probe.go).
	leaseTTL time.Duration

	mu     sync.Mutex
	probes map[string]*siteProbe // by site
	closed bool
	wg     sync.WaitGroup // the probes' goroutines
}

// New returns a Fencer for the cluster; each attempt is bounded by the
// config's fencing.timeout.
func New(cl *config.Cluster, log *zap.Logger) *Fencer {
	if log == nil {
		log = zap.NewNop()
	}
	timeout := cl.Fencing.Timeout
	if timeout <= 0 { // a config built in code, not loaded
		timeout = defaultTimeout
	}
	ttl := cl.Timings.LeaseTTL
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	return &Fencer{cluster: cl, log: log, timeout: timeout, leaseTTL: ttl, probes: map[string]*siteProbe{}}
}

// The config's defaults of fencing.timeout and timings.lease_ttl, for a
// config built in code.
const (
	defaultTimeout  = 2 * time.Second
	defaultLeaseTTL = 6 * time.Second
)

// attempt is one resource to fence.
type attempt struct {
	site, resource string
	fence          func(ctx context.Context) (outcome, detail string, err error)
	// probe, when set, tells whether the resource answers, changing
	// nothing (probe.go).
	probe func(ctx context.Context) error
}

// Fence fences every resource of the named site that it can reach, in
// parallel, each within the limit, and returns one outcome per resource in
// a stable order (members by group, then hosts in config order). It never
// fails as a whole: what did not answer is "unreachable, presumed dark".
func (f *Fencer) Fence(ctx context.Context, siteName string) []site.ResourceOutcome {
	attempts := f.attempts(siteName)
	out := make([]site.ResourceOutcome, len(attempts))
	var wg sync.WaitGroup
	for i, a := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f.run(ctx, a)
		}()
	}
	wg.Wait()
	return out
}

func (f *Fencer) run(ctx context.Context, a attempt) site.ResourceOutcome {
	if ps := f.probeOf(a.site, a.resource); ps != nil {
		if since, silent := ps.silentFor(ctx, f.timeout); silent {
			f.log.Debug("outside fence: resource silent since its site's beats stopped", zap.String("resource", a.resource), zap.Time("since", since))
			return site.ResourceOutcome{Resource: a.resource, Outcome: site.FenceUnreachable, Detail: silentVerdict(since, f.timeout)}
		}
	}
	actx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	outcome, detail, err := a.fence(actx)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			// Our own context ended (the coordinator lost its term): no
			// verdict about the resource.
			return site.ResourceOutcome{Resource: a.resource, Outcome: site.FenceInterrupted, Detail: err.Error()}
		}
		f.log.Debug("outside fence: resource did not answer", zap.String("resource", a.resource), zap.Duration("took", took), zap.Error(err))
		return site.ResourceOutcome{Resource: a.resource, Outcome: site.FenceUnreachable,
			Detail: fmt.Sprintf("no answer within %s: %v", f.timeout, err)}
	}
	f.log.Info("outside fence", zap.String("resource", a.resource), zap.String("outcome", outcome), zap.String("detail", detail), zap.Duration("took", took))
	return site.ResourceOutcome{Resource: a.resource, Outcome: outcome, Detail: detail}
}

func (f *Fencer) attempts(siteName string) []attempt {
	var as []attempt
	for _, g := range f.cluster.Replication {
		m, ok := g.Member(siteName)
		if !ok {
			continue
		}
		name := fmt.Sprintf("member %s at %s", g.Name, siteName)
		switch g.Driver {
		case config.DriverPostgres:
			as = append(as, attempt{site: siteName, resource: name, fence: func(ctx context.Context) (string, string, error) {
				return f.fencePostgres(ctx, siteName, m)
			}, probe: func(ctx context.Context) error {
				_, err := f.observePostgres(ctx, siteName, m)
				return err
			}})
		default:
			as = append(as, attempt{site: siteName, resource: name, fence: func(context.Context) (string, string, error) {
				return site.FenceUnsupported, fmt.Sprintf("a %s member is reached only through its own site's tools; its own fencing policy must cover it", g.Driver), nil
			}})
		}
	}
	guests := map[string]bool{}
	for _, g := range f.cluster.Guests() {
		guests[g.Name] = true
	}
	s, _ := f.cluster.Site(siteName)
	for _, h := range s.Hosts {
		as = append(as, attempt{site: siteName, resource: "host " + h.Name, fence: func(ctx context.Context) (string, string, error) {
			return f.fenceHost(ctx, h, guests)
		}, probe: func(ctx context.Context) error {
			host, err := f.dialHost(ctx, h)
			if err == nil {
				err = host.Close()
			}
			return err
		}})
	}
	return as
}

// fencePostgres makes the member read-only and cuts its sessions if it is
// a primary.
func (f *Fencer) fencePostgres(ctx context.Context, siteName string, m config.ReplicationMember) (string, string, error) {
	pm, err := f.openPostgres(siteName, m)
	if err != nil {
		return "", "", err
	}
	defer pm.Close()
	st, err := pm.Observe(ctx)
	if err != nil {
		return "", "", err
	}
	if st.Role != replication.RolePrimary {
		return site.FenceNothing, fmt.Sprintf("a %s, not a primary", st.Role), nil
	}
	was := "writable"
	if !st.Writable {
		was = "already read-only"
	}
	if err := pm.Fence(ctx); err != nil {
		return "", "", err
	}
	return site.FenceDone, fmt.Sprintf("primary (%s) made read-only, its client sessions cut", was), nil
}

// openPostgres is a driver of the member, through its own administrative
// connection.
func (f *Fencer) openPostgres(siteName string, m config.ReplicationMember) (*postgres.Member, error) {
	return postgres.New(postgres.Config{
		Name:         siteName,
		ConnString:   replrec.WithPassword(m.Conn, m.Password),
		QueryTimeout: f.timeout,
		Log:          f.log,
	})
}

// observePostgres observes the member, changing nothing.
func (f *Fencer) observePostgres(ctx context.Context, siteName string, m config.ReplicationMember) (replication.Status, error) {
	pm, err := f.openPostgres(siteName, m)
	if err != nil {
		return replication.Status{}, err
	}
	defer pm.Close()
	return pm.Observe(ctx)
}

// dialHost connects to the host's hypervisor.
func (f *Fencer) dialHost(ctx context.Context, h config.Host) (*hypervisor.Host, error) {
	host, err := hypervisor.Dial(ctx, h.URI, hypervisor.Options{Name: h.Name, FailAfter: 2 * f.timeout, Log: f.log})
	if err != nil {
		return nil, err
	}
	if hl := host.Health(); !hl.Connected {
		_ = host.Close()
		return nil, cmpErr(hl.Err, ctx.Err(), "no connection")
	}
	return host, nil
}

// fenceHost destroys every guest of ours that is active at the host.
func (f *Fencer) fenceHost(ctx context.Context, h config.Host, guests map[string]bool) (string, string, error) {
	host, err := f.dialHost(ctx, h)
	if err != nil {
		return "", "", err
	}
	defer func() { _ = host.Close() }()
	doms, err := host.List(ctx)
	if err != nil {
		return "", "", err
	}
	var destroyed []string
	for _, d := range doms {
		if !guests[d.Name] || (d.State != hypervisor.StateRunning && d.State != hypervisor.StatePaused && d.State != hypervisor.StateOther) {
			continue
		}
		if err := host.Destroy(ctx, d.Name); err != nil {
			return "", "", fmt.Errorf("destroy guest %s: %w", d.Name, err)
		}
		destroyed = append(destroyed, d.Name)
	}
	if len(destroyed) == 0 {
		return site.FenceNothing, "no guest of ours active", nil
	}
	slices.Sort(destroyed)
	return site.FenceDone, "destroyed " + strings.Join(destroyed, ", "), nil
}

// cmpErr returns the first non-nil error, or one made of what.
func cmpErr(a, b error, what string) error {
	switch {
	case a != nil:
		return a
	case b != nil:
		return b
	}
	return errors.New(what)
}
