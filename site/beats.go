package site

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotMember: the site's alive key is gone or bound to another lease;
// its membership under this lease has ended.
var ErrNotMember = errors.New("the site's membership under this lease has ended")

// Beat rewrites the site's beat key, if the site's alive key is still bound
// to lease; otherwise it writes nothing and returns ErrNotMember. A site
// counts a renewal of its lease only together with a beat sent no earlier,
// so once a sweep has ended its membership (EndMembership), no renewal it
// sends counts any more.
func (s *Store) Beat(ctx context.Context, siteName, incarnation string, lease clientv3.LeaseID) error {
	alive := s.keys.Alive(siteName)
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(alive), "=", lease)).
		Then(clientv3.OpPut(s.keys.Beat(siteName), incarnation, clientv3.WithLease(lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("beat of site %s: %w", siteName, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("beat of site %s: %w", siteName, ErrNotMember)
	}
	return nil
}

// Beats returns the mod revision of every site's beat key, and the
// revision they were read at.
func (s *Store) Beats(ctx context.Context) (map[string]int64, int64, error) {
	resp, err := s.c.Get(ctx, s.keys.Beats(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, fmt.Errorf("read beats: %w", err)
	}
	beats := make(map[string]int64, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		beats[s.keys.BeatSite(string(kv.Key))] = kv.ModRevision
	}
	return beats, resp.Header.Revision, nil
}

// EndMembership ends the membership of a site whose beat has not changed
// since mod revision beat: it deletes the site's alive and beat keys, and
// its controller's election key if it coordinates, so that the coordinator
// (or, in a campaign, the next one) fails it over as if its lease had
// expired. It writes nothing and returns false if the site beat again
// since. The caller must have seen no newer beat for a whole lease TTL: the
// site then fenced itself (its renewals count only with a beat), and none
// it sends after this can count.
//
// The same transaction appends why to the event log. That write is also
// what makes a sweep fail while etcd refuses writes (its database at the
// quota): a sweep of deletes alone would succeed, although the silence it
// measured was the quota's, not the site's (see Sweeper.Pause).
func (s *Store) EndMembership(ctx context.Context, siteName string, beat int64, why Event) (bool, error) {
	if beat <= 0 {
		return false, fmt.Errorf("end the membership of site %s: no beat revision", siteName)
	}
	// The controller's election key is bound to its own session's lease,
	// which a dark site no longer renews either; it names the site.
	el, err := s.c.Get(ctx, s.keys.Election(), clientv3.WithPrefix())
	if err != nil {
		return false, fmt.Errorf("read the election: %w", err)
	}
	event, err := s.eventPut(why)
	if err != nil {
		return false, err
	}
	ops := []clientv3.Op{clientv3.OpDelete(s.keys.Alive(siteName)), clientv3.OpDelete(s.keys.Beat(siteName)), event}
	for _, kv := range el.Kvs {
		if string(kv.Value) == siteName {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
	}
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.keys.Beat(siteName)), "=", beat)).
		Then(ops...).
		Commit()
	if err != nil {
		return false, fmt.Errorf("end the membership of site %s: %w", siteName, err)
	}
	return resp.Succeeded, nil
}
