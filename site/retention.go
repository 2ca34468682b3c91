package site

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PruneOps deletes, guarded by g, the finished ops that ended before cutoff
// (the zero time: none by age) and then, of the finished ops left, all but
// the newest keep (0: any number). Unfinished ops are never deleted, nor an
// op that changed since it was read. It returns how many it deleted.
func (s *Store) PruneOps(ctx context.Context, g Guard, cutoff time.Time, keep int) (int, error) {
	resp, err := s.c.Get(ctx, s.keys.Ops(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return 0, fmt.Errorf("read the op journal: %w", err)
	}
	type finished struct {
		key   string
		rev   int64
		ended time.Time
	}
	var done []finished // oldest first
	for _, kv := range resp.Kvs {
		op, err := decode[Op](kv)
		if err != nil {
			return 0, err
		}
		if op.Finished() {
			done = append(done, finished{string(kv.Key), kv.ModRevision, op.Ended})
		}
	}
	var conds []clientv3.Cmp
	var dels []clientv3.Op
	for i, f := range done {
		tooOld := !cutoff.IsZero() && f.ended.Before(cutoff)
		tooMany := keep > 0 && len(done)-i > keep
		if tooOld || tooMany {
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(f.key), "=", f.rev))
			dels = append(dels, clientv3.OpDelete(f.key))
		}
	}
	return inBatches(len(dels), func(start, end int) error {
		if _, err := s.commit(ctx, &g, conds[start:end], dels[start:end]); err != nil {
			return fmt.Errorf("delete %d finished ops: %w", end-start, err)
		}
		return nil
	})
}

// PruneEvents deletes, guarded by g, the events older than cutoff (the zero
// time: none by age) and then all but the newest keep (0: any number). It
// returns how many it deleted.
func (s *Store) PruneEvents(ctx context.Context, g Guard, cutoff time.Time, keep int) (int64, error) {
	prefix := s.keys.Events()
	var n int64
	if !cutoff.IsZero() {
		// Event keys start with their time in nanoseconds, zero-padded:
		// the old ones are one key range.
		end := fmt.Sprintf("%s%020d", prefix, max(cutoff.UnixNano(), 0))
		resp, err := s.commit(ctx, &g, nil, []clientv3.Op{clientv3.OpDelete(prefix, clientv3.WithRange(end))})
		if err != nil {
			return 0, fmt.Errorf("delete the events before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
		}
		n += resp.Responses[0].GetResponseDeleteRange().Deleted
	}
	if keep <= 0 {
		return n, nil
	}
	count, err := s.c.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return n, fmt.Errorf("count the events: %w", err)
	}
	extra := count.Count - int64(keep)
	if extra <= 0 {
		return n, nil
	}
	oldest, err := s.c.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(extra))
	if err != nil {
		return n, fmt.Errorf("read the oldest events: %w", err)
	}
	if len(oldest.Kvs) == 0 {
		return n, nil // deleted meanwhile
	}
	end := string(oldest.Kvs[len(oldest.Kvs)-1].Key) + "\x00"
	resp, err := s.commit(ctx, &g, nil, []clientv3.Op{clientv3.OpDelete(prefix, clientv3.WithRange(end))})
	if err != nil {
		return n, fmt.Errorf("delete the %d oldest events: %w", extra, err)
	}
	return n + resp.Responses[0].GetResponseDeleteRange().Deleted, nil
}
