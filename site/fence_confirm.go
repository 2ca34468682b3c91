package site

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotFenced: the site has no fence record. Only the fence of a site a
// failover fenced can be confirmed.
var ErrNotFenced = errors.New("site is not fenced")

// confirmAttempts bounds how often ConfirmFence reads again after the fence
// changed under it.
const confirmAttempts = 10

// FenceToConfirm reads a site's fence as ConfirmFence would find it, and
// whether the site holds a lease, at one revision; ErrNotFenced as
// ConfirmFence would fail. It changes nothing (`zdt fence confirm
// --dry-run`).
func (s *Store) FenceToConfirm(ctx context.Context, siteName string) (f Fence, alive bool, err error) {
	f, _, alive, err = s.readFenceToConfirm(ctx, siteName)
	return f, alive, err
}

// ConfirmFence records on the fence of siteName that who, a person,
// confirmed the site is dark (`zdt fence confirm`): a failover that could
// not fence a resource of the site from outside, and waits for this
// (fencing.require_confirmation), may take it over. The write compares the
// revision of the fence it read, so it never confirms a fence it did not
// see, and logs an event with it. A fence confirmed already is returned as
// it is, without error. ErrNotFenced when the site has no fence.
//
// A fenced site that holds a lease again is confirmed too: its controller
// came back and converges to its fence by itself, but a failover that
// cannot reach the site's resources would otherwise wait for ever. The
// caller warns (see FenceToConfirm).
func (s *Store) ConfirmFence(ctx context.Context, siteName, who string) (Fence, error) {
	if who == "" {
		return Fence{}, fmt.Errorf("confirm the fence of site %s: say who confirms it", siteName)
	}
	fenceKey := s.keys.Fence(siteName)
	for range confirmAttempts {
		f, rev, _, err := s.readFenceToConfirm(ctx, siteName)
		if err != nil || f.Confirmed != nil {
			return f, err
		}
		now := time.Now().UTC()
		f.Confirmed = &Confirmation{By: who, At: now}
		put, err := putJSON(fenceKey, f)
		if err != nil {
			return Fence{}, err
		}
		event, err := s.eventPut(Event{At: now, Kind: "fence-confirmed", Op: f.Op, Subject: siteName,
			Message: fmt.Sprintf("%s confirmed that site %s is dark (fenced by op %s)", who, siteName, f.Op)})
		if err != nil {
			return Fence{}, err
		}
		resp, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(fenceKey), "=", rev)).Then(put, event).Commit()
		if err != nil {
			return Fence{}, fmt.Errorf("confirm the fence of site %s: %w", siteName, err)
		}
		if resp.Succeeded {
			return f, nil
		}
		// The fence was rewritten, confirmed or lifted since it was read:
		// read again and decide again.
	}
	return Fence{}, fmt.Errorf("confirm the fence of site %s: it kept changing while being confirmed: %w", siteName, ErrConflict)
}

// readFenceToConfirm reads the site's fence with its mod revision, and
// whether the site holds a lease, at one revision.
func (s *Store) readFenceToConfirm(ctx context.Context, siteName string) (f Fence, rev int64, alive bool, err error) {
	fenceKey, aliveKey := s.keys.Fence(siteName), s.keys.Alive(siteName)
	resp, err := s.c.Txn(ctx).Then(clientv3.OpGet(fenceKey), clientv3.OpGet(aliveKey, clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return Fence{}, 0, false, fmt.Errorf("read the fence of site %s: %w", siteName, err)
	}
	alive = len(resp.Responses[1].GetResponseRange().Kvs) > 0
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return Fence{}, 0, alive, fmt.Errorf("confirm the fence of site %s: %w: confirm applies only to a site a failover has fenced (zdt status shows each site's state)", siteName, ErrNotFenced)
	}
	f, err = decode[Fence](kvs[0])
	if err != nil {
		return Fence{}, 0, alive, err
	}
	return f, kvs[0].ModRevision, alive, nil
}
