package site

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site/ctxsleep"
)

// ErrOpEnded: the op has an outcome already; there is nothing left to abort.
var ErrOpEnded = errors.New("op has ended")

// abortAttempts bounds how often RequestAbort reads the op again after the
// coordinator rewrote it under the request.
const abortAttempts = 10

// watchRetry is how long WatchOp and FollowEvents wait after a watch broke
// before they read again.
const watchRetry = 500 * time.Millisecond

// OpIDs lists the ids of the journal's ops in key order: oldest first, as an
// id begins with its op's creation time.
func (s *Store) OpIDs(ctx context.Context) ([]string, error) {
	resp, err := s.c.Get(ctx, s.keys.Ops(), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read op journal: %w", err)
	}
	ids := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		ids[i] = strings.TrimPrefix(string(kv.Key), s.keys.Ops())
	}
	return ids, nil
}

// Coordinator returns the site whose controller holds the coordinator
// election, "" when none does.
func (s *Store) Coordinator(ctx context.Context) (string, error) {
	resp, err := s.c.Get(ctx, s.keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read the coordinator election: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// RequestAbort records in a running op that req.By asks for it to be
// aborted (zdt ops abort), together with an event, in one transaction that
// compares the op's mod revision. The coordinator rewrites the op only with
// the same comparison, so it never writes over the request: its next write
// fails, it reads the op again and ends it, aborted, before it runs another
// step.
//
// It returns the op as it stands afterwards: with req, or with an earlier
// request, in which case nothing was written (compare By and At). ErrOpEnded
// when the op has an outcome; ErrNotFound when there is no such op.
func (s *Store) RequestAbort(ctx context.Context, id string, req Request) (*Op, error) {
	return s.request(ctx, id, "abort", req, func(op *Op, req Request) (bool, Event, error) {
		if op.AbortRequested != nil {
			return false, Event{}, nil
		}
		op.AbortRequested = &req
		msg := fmt.Sprintf("%s asked to abort op %s (%s)", req.By, id, op.Kind)
		if req.Reason != "" {
			msg += ": " + req.Reason
		}
		return true, Event{At: req.At, Kind: "op-abort-requested", Op: id, Subject: op.Params["site"], Message: msg}, nil
	})
}

// ErrNotWaiting: the op has no confirm step waiting for an approval.
var ErrNotWaiting = errors.New("no step waits for an approval")

// ApproveStep records that req.By approves the op's confirm step that is
// running (waiting for a person), with an event, in one transaction that
// compares the op's mod revision, as RequestAbort does. It returns the op as
// it stands afterwards. ErrNotWaiting when no confirm step runs; ErrOpEnded
// when the op has an outcome; ErrNotFound when there is no such op.
func (s *Store) ApproveStep(ctx context.Context, id string, req Request) (*Op, error) {
	return s.request(ctx, id, "approve a step of", req, func(op *Op, req Request) (bool, Event, error) {
		for i := range op.Steps {
			st := &op.Steps[i]
			if st.Name != "confirm" || st.Status != StepRunning || st.Approved != nil {
				continue
			}
			st.Approved = &req
			label := st.ID
			if label == "" {
				label = fmt.Sprintf("%d", i+1)
			}
			msg := fmt.Sprintf("%s approved step %s of op %s", req.By, label, id)
			if req.Reason != "" {
				msg += ": " + req.Reason
			}
			return true, Event{At: req.At, Kind: "op-approved", Op: id, Subject: op.Params["site"], Message: msg}, nil
		}
		return false, Event{}, fmt.Errorf("%w (op %s)", ErrNotWaiting, id)
	})
}

// request writes a person's request into a running op: change applies it
// (with its time set) to the op as read (false: there is nothing to write, the op is returned as
// it stands) and says the event to record with it. The write compares the
// op's mod revision; the op is read again when the coordinator wrote it
// meanwhile.
func (s *Store) request(ctx context.Context, id, what string, req Request, change func(*Op, Request) (bool, Event, error)) (*Op, error) {
	if req.By == "" {
		return nil, fmt.Errorf("%s op %s: say who asks", what, id)
	}
	if req.At.IsZero() {
		req.At = time.Now().UTC()
	}
	key := s.keys.Op(id)
	for range abortAttempts {
		op, err := s.Op(ctx, id)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s op %s: %w", what, id, err)
		case op.Finished():
			return op, fmt.Errorf("%s op %s: %w: %s at %s", what, id, ErrOpEnded, op.Outcome, op.Ended.UTC().Format(time.RFC3339))
		}
		write, ev, err := change(op, req)
		if err != nil {
			return op, err
		}
		if !write {
			return op, nil
		}
		put, err := putJSON(key, op)
		if err != nil {
			return nil, err
		}
		event, err := s.eventPut(ev)
		if err != nil {
			return nil, err
		}
		resp, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", op.Rev)).Then(put, event).Commit()
		if err != nil {
			return nil, fmt.Errorf("%s op %s: %w", what, id, err)
		}
		if resp.Succeeded {
			op.Rev = resp.Header.Revision
			return op, nil
		}
		// The coordinator wrote the op since it was read: read it again.
	}
	return nil, fmt.Errorf("%s op %s: it kept changing while the request was written: %w", what, id, ErrConflict)
}

// WatchOp calls fn with the op as it stands, then with each new version of
// it, until fn says it is done or fails, or ctx ends (then it returns
// ctx.Err()). ErrNotFound when there is no such op.
//
// With from above 0 fn is first handed the versions written from revision
// from on, as far as etcd's history still holds them (the op's CreateRev
// replays every step it took, for a watcher that came late); where the
// history is compacted, or from is past the op's latest version, the op as
// it stands.
//
// The watch requires a leader. When it breaks (no leader, compacted
// history, a lost connection) broken, when not nil, is told why; a moment
// later the op is read again and watched from there. Versions written while
// the watch was broken may be missed, the latest one never is.
func (s *Store) WatchOp(ctx context.Context, id string, from int64, fn func(*Op) (done bool, err error), broken func(error)) error {
	key := s.keys.Op(id)
	var seen int64 // the mod revision of the version fn saw last
	for first := true; ; first = false {
		resp, err := s.c.Get(ctx, key)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && first:
			return fmt.Errorf("read op %s: %w", id, err)
		case err != nil:
			if err := pause(ctx, broken, fmt.Errorf("read op %s again: %w", id, err)); err != nil {
				return err
			}
			continue
		case len(resp.Kvs) == 0 && first:
			return fmt.Errorf("read op %s: %w", id, ErrNotFound)
		case len(resp.Kvs) == 0:
			return fmt.Errorf("op %s was removed from the journal while it was watched", id)
		}
		if kv := resp.Kvs[0]; first && from > 0 && from <= kv.ModRevision {
			stop, err := s.watchOpFrom(ctx, id, from, &seen, fn)
			if stop {
				return err
			}
			if !errors.Is(err, rpctypes.ErrCompacted) {
				if err := pause(ctx, broken, err); err != nil {
					return err
				}
			}
			continue
		}
		if kv := resp.Kvs[0]; kv.ModRevision != seen {
			seen = kv.ModRevision
			op, err := decode[Op](kv)
			if err != nil {
				return err
			}
			op.Rev, op.CreateRev = kv.ModRevision, kv.CreateRevision
			if done, err := fn(&op); done || err != nil {
				return err
			}
		}
		stop, err := s.watchOpFrom(ctx, id, resp.Header.Revision+1, &seen, fn)
		if stop {
			return err
		}
		if err := pause(ctx, broken, err); err != nil {
			return err
		}
	}
}

// watchOpFrom hands fn each version of the op from revision rev on. stop
// says WatchOp is to return err (fn is done, failed, or ctx ended);
// otherwise the watch broke, for the reason err.
func (s *Store) watchOpFrom(ctx context.Context, id string, rev int64, seen *int64, fn func(*Op) (bool, error)) (stop bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.WatchKey(wctx, s.keys.Op(id), false, rev) {
		if err := resp.Err(); err != nil {
			return false, fmt.Errorf("watch op %s: %w", id, err)
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return true, fmt.Errorf("op %s was removed from the journal while it was watched", id)
			}
			op, err := decode[Op](ev.Kv)
			if err != nil {
				return true, err
			}
			op.Rev, op.CreateRev = ev.Kv.ModRevision, ev.Kv.CreateRevision
			*seen = ev.Kv.ModRevision
			if done, err := fn(&op); done || err != nil {
				return true, err
			}
		}
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	return false, fmt.Errorf("watch op %s: the watch ended", id)
}

// pause tells broken (when not nil) why a watch broke and waits a moment;
// ctx.Err() if ctx ends meanwhile.
func pause(ctx context.Context, broken func(error), why error) error {
	if broken != nil {
		broken(why)
	}
	return ctxsleep.For(ctx, watchRetry)
}
