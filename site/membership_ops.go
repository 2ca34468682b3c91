package site

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// JoinResult is what a site learns as it joins.
type JoinResult struct {
	// Rev is the revision of the join.
	Rev int64
	// Fence is the site's fence record at that revision, if it has one.
	Fence *Fence
}

// Join binds the site's alive key to lease, registers the site if this is
// its first join, and reads its fence record, all in one transaction. The
// coordinator fences a site only while its alive key is absent, so a site
// that joins without a fence may serve: no fence can follow without its lease
// expiring first.
func (s *Store) Join(ctx context.Context, lease clientv3.LeaseID, alive Alive, reg Registration) (JoinResult, error) {
	putAlive, err := putJSON(s.keys.Alive(alive.Site), alive, clientv3.WithLease(lease))
	if err != nil {
		return JoinResult{}, err
	}
	putReg, err := putJSON(s.keys.Registered(alive.Site), reg)
	if err != nil {
		return JoinResult{}, err
	}
	// One transaction: the coordinator must never see the site registered
	// but not alive, or it would take it for dark.
	// The beat too: a site that rejoins changes its beat's revision, so
	// no sweep judged on an older beat can end the new membership.
	putBeat := clientv3.OpPut(s.keys.Beat(alive.Site), alive.Incarnation, clientv3.WithLease(lease))
	regKey, fenceKey := s.keys.Registered(alive.Site), s.keys.Fence(alive.Site)
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(regKey), "=", 0)).
		Then(putAlive, clientv3.OpGet(fenceKey), putBeat, putReg).
		Else(putAlive, clientv3.OpGet(fenceKey), putBeat).
		Commit()
	if err != nil {
		return JoinResult{}, fmt.Errorf("join site %s: %w", alive.Site, err)
	}
	res := JoinResult{Rev: resp.Header.Revision}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		f, err := decode[Fence](kvs[0])
		if err != nil {
			return JoinResult{}, err
		}
		res.Fence = &f
	}
	return res, nil
}

// PutReport writes the site's report of itself.
func (s *Store) PutReport(ctx context.Context, r Report) error {
	op, err := putJSON(s.keys.Report(r.Site), r)
	if err != nil {
		return err
	}
	if _, err := s.c.Do(ctx, op); err != nil {
		return fmt.Errorf("write report of site %s: %w", r.Site, err)
	}
	return nil
}

// PutReportAfter writes the site's report if the stored one is still the
// one at mod revision prev (0: none is stored), and returns the revision
// of the write. If another write came between, it writes nothing and
// returns ErrConflict with the stored report's mod revision, so a write
// that was sent before a newer one cannot land after it and undo it.
func (s *Store) PutReportAfter(ctx context.Context, r Report, prev int64) (int64, error) {
	key := s.keys.Report(r.Site)
	op, err := putJSON(key, r)
	if err != nil {
		return 0, err
	}
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", prev)).
		Then(op).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("write report of site %s: %w", r.Site, err)
	}
	if !resp.Succeeded {
		var cur int64
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			cur = kvs[0].ModRevision
		}
		return cur, fmt.Errorf("write report of site %s: it changed since revision %d: %w", r.Site, prev, ErrConflict)
	}
	return resp.Header.Revision, nil
}

// Fence reads a site's fence record; ErrNotFound when it has none.
func (s *Store) Fence(ctx context.Context, site string) (Fence, error) {
	f, _, err := get[Fence](ctx, s, s.keys.Fence(site))
	return f, err
}
