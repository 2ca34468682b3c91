package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
)

// A controller that runs its site's etcd member talks to that member alone
// (Config.Store): a member elsewhere that hangs, at a frozen site, cannot
// hold up its requests, and a site cut off from the others fails its
// renewals at once and fences itself, as it must. But a member can be lost
// while its site is not: cut off from its peers (their port blocked, the
// member's process wedged) while the controller still reaches the other
// sites, and their majority. The member then has no leader, every request
// through it waits, and the site would fence itself and be failed over
// although nothing it serves had failed.
//
// So the membership's own requests (the join, the renewals' keep-alives
// and beats, the reads of the fence, the reports, the revoke at a stop)
// also go through Config.Fallback, a store per other site's member: a
// keep-alive is sent there too when the site's member has not answered
// within half a renew interval, and the beats' attempts, and the other
// requests' retries, take the site's member and the others in turn. A
// renewal through another member is as good as one through the site's
// own: it counts from when it was sent, and its beat commits only while the
// site's alive key still holds its lease, so a site whose membership ended
// (swept, fenced) cannot keep it this way.
//
// The fallback is for a lost member, not for a lost network. A site cut off
// from one other site (one inter-site link down) also has a member without
// a leader when the leader is across that link. It reaches the rest
// through the third site, but what it serves may need the site it lost (a
// primary there): it must fence itself and be failed over, as before. So
// nothing that renews the lease (a keep-alive, a beat, a join) goes through
// the fallback unless every other site's member has answered, with a
// leader, within the last renew interval: then the site's own member is
// the one thing it lost. The check comes before the request, not after:
// a keep-alive that reached the leader has renewed the lease whatever its
// sender makes of the answer, and a lease renewed by a site that fenced
// itself would never expire, so its services would never move. A site cut
// off from every other site fails both ways and fences itself in time.
//
// The rest of the controller keeps to the site's member: its reconcilers
// hold still while they cannot read the cluster, so the services stay
// where they are, served as before, until the member is back.

// store is the store the attempt-th try of a request goes through: the
// site's own member, then each fallback member, in turn.
func (m *Member) store(attempt int) *site.Store {
	if i := attempt % (1 + len(m.cfg.Fallback)); i > 0 {
		return m.cfg.Fallback[i-1]
	}
	return m.cfg.Store
}

// retryEvery is how often a renewal's request goes out again while the
// earlier tries still wait, and how long a keep-alive waits for the site's
// member before it also goes through the fallback.
func (m *Member) retryEvery() time.Duration {
	return max(m.cfg.RenewInterval/2, 50*time.Millisecond)
}

// beatVia is the beat through store (or the test's), which through a
// fallback member goes out only once every other member answers.
func (m *Member) beatVia(store *site.Store) func(context.Context, string, string, clientv3.LeaseID) error {
	beat := store.Beat
	if m.beat != nil {
		beat = m.beat
	}
	if store == m.cfg.Store {
		return beat
	}
	return func(ctx context.Context, siteName, incarnation string, lease clientv3.LeaseID) error {
		if err := m.othersAnswer(ctx); err != nil {
			return err
		}
		return beat(ctx, siteName, incarnation, lease)
	}
}

// keepAliveOnce sends one keep-alive through the site's member and, with a
// fallback, once the first has failed or not answered within retryEvery
// and every other member answers, one through each fallback member. The
// first to succeed answers; when all fail, the error holds why.
func (m *Member) keepAliveOnce(ctx context.Context, lease clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	if m.keepAlive != nil {
		return m.keepAlive(ctx, lease)
	}
	if len(m.cfg.Fallback) == 0 {
		return m.cfg.Store.Client().KeepAliveOnce(ctx, lease)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the others, if they still wait
	type answer struct {
		resp *clientv3.LeaseKeepAliveResponse
		err  error
	}
	answers := make(chan answer, 1+len(m.cfg.Fallback))
	keepAlive := func(s *site.Store) {
		ctx := ctx
		if s != m.cfg.Store {
			// A stream: the clients' interceptor does not see it. The
			// site's own member may wait for a leader being elected.
			ctx = clientv3.WithRequireLeader(ctx)
		}
		resp, err := s.Client().KeepAliveOnce(ctx, lease)
		answers <- answer{resp, err}
	}
	go keepAlive(m.cfg.Store)
	pending, fellBack := 1, false
	fallBack := func() {
		fellBack = true
		if err := m.othersAnswer(ctx); err != nil {
			answers <- answer{nil, err}
			pending++
			return
		}
		for _, s := range m.cfg.Fallback {
			pending++
			go keepAlive(s)
		}
	}
	hedge := time.NewTimer(m.retryEvery())
	defer hedge.Stop()
	var errs []error
	for {
		select {
		case <-hedge.C:
		case a := <-answers:
			pending--
			if a.err == nil {
				return a.resp, nil
			}
			errs = append(errs, a.err)
			if pending == 0 && fellBack {
				return nil, errors.Join(errs...)
			}
		}
		if !fellBack {
			fallBack()
		}
	}
}

// othersAnswer says whether every fallback member has answered, with a
// leader, within the last renew interval, asking them again (for at most a
// renew interval) when that is not known.
func (m *Member) othersAnswer(ctx context.Context) error {
	m.mu.Lock()
	fresh := time.Since(m.othersAnswered) < m.cfg.RenewInterval
	m.mu.Unlock()
	if fresh {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RenewInterval)
	defer cancel()
	errs := make([]error, len(m.cfg.Fallback))
	var wg sync.WaitGroup
	for i, s := range m.cfg.Fallback {
		wg.Go(func() {
			// Served by the member itself, with no raft round; a member
			// without a leader refuses it.
			_, err := s.Client().Get(clientv3.WithRequireLeader(ctx), s.Keys().Alive(m.cfg.Site), clientv3.WithSerializable(), clientv3.WithCountOnly())
			if err != nil {
				errs[i] = fmt.Errorf("etcd member %v: %w", s.Client().Endpoints(), err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("not every other site's etcd member answers, so the site may have lost more than its own member: %w", err)
	}
	m.mu.Lock()
	m.othersAnswered = time.Now()
	m.mu.Unlock()
	return nil
}

// eachStore runs fn through the site's member and, while it fails, through
// each fallback member, each within timeout, and returns the last error.
func (m *Member) eachStore(timeout time.Duration, fn func(context.Context, *site.Store) error) error {
	var err error
	for i := range 1 + len(m.cfg.Fallback) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = fn(ctx, m.store(i))
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}
