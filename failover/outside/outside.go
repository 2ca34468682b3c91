// Package outside fences a dark site's resources from outside the site, as
// Pacemaker's STONITH does: a failover calls it before it promotes a member
// or starts a guest elsewhere, so that a site whose controller crashed or
// froze (and so fences nothing itself) cannot keep a writable primary or a
// running guest while the coordinator moves them.
//
// Each resource is tried once, all in parallel, each bounded by the
// configured limit: a site that is truly dark does not answer and must not
// stall the failover. The outcome per resource says "fenced", "nothing to
// fence", or "unreachable, presumed dark".
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
	return &Fencer{cluster: cl, log: log, timeout: timeout}
}

// defaultTimeout is the config's default fencing.timeout.
const defaultTimeout = 2 * time.Second

// attempt is one resource to fence.
type attempt struct {
	resource string
	fence    func(ctx context.Context) (outcome, detail string, err error)
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
			as = append(as, attempt{resource: name, fence: func(ctx context.Context) (string, string, error) {
				return f.fencePostgres(ctx, siteName, m)
			}})
		default:
			as = append(as, attempt{resource: name, fence: func(context.Context) (string, string, error) {
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
		as = append(as, attempt{resource: "host " + h.Name, fence: func(ctx context.Context) (string, string, error) {
			return f.fenceHost(ctx, h, guests)
		}})
	}
	return as
}

// fencePostgres makes the member read-only and cuts its sessions if it is
// a primary.
func (f *Fencer) fencePostgres(ctx context.Context, siteName string, m config.ReplicationMember) (string, string, error) {
	pm, err := postgres.New(postgres.Config{
		Name:         siteName,
		ConnString:   replrec.WithPassword(m.Conn, m.Password),
		QueryTimeout: f.timeout,
		Log:          f.log,
	})
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

// fenceHost destroys every guest of ours that is active at the host.
func (f *Fencer) fenceHost(ctx context.Context, h config.Host, guests map[string]bool) (string, string, error) {
	host, err := hypervisor.Dial(ctx, h.URI, hypervisor.Options{Name: h.Name, FailAfter: 2 * f.timeout, Log: f.log})
	if err != nil {
		return "", "", err
	}
	defer func() { _ = host.Close() }()
	if hl := host.Health(); !hl.Connected {
		return "", "", cmpErr(hl.Err, ctx.Err(), "no connection")
	}
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
