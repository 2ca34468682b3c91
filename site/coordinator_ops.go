package site

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrSiteAlive: a fence was refused because the site holds a live lease
// again; it came back before it was fenced.
var ErrSiteAlive = errors.New("site is alive")

// FenceSite writes f, guarded by g, only while the site's alive key is
// absent: a site that holds its lease is never fenced under it. If the site is
// fenced already, it returns that record and no error. ErrSiteAlive when the
// site is alive.
func (s *Store) FenceSite(ctx context.Context, g Guard, f Fence) (Fence, error) {
	fenceKey, aliveKey := s.keys.Fence(f.Site), s.keys.Alive(f.Site)
	put, err := putJSON(fenceKey, f)
	if err != nil {
		return Fence{}, err
	}
	resp, err := s.commit(ctx, &g,
		[]clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(fenceKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(aliveKey), "=", 0),
		},
		[]clientv3.Op{put},
		clientv3.OpGet(fenceKey), clientv3.OpGet(aliveKey))
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, ErrConflict):
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			return decode[Fence](kvs[0])
		}
		return Fence{}, fmt.Errorf("fence site %s: %w", f.Site, ErrSiteAlive)
	default:
		return Fence{}, fmt.Errorf("fence site %s: %w", f.Site, err)
	}
}

// Assign writes a service's new assignment, guarded by g, if the service's
// assignment is still the one read as prev (prev.Epoch 0: it has none). It
// returns the new assignment with its epoch; ErrConflict if it changed.
func (s *Store) Assign(ctx context.Context, g Guard, prev, next Assignment) (Assignment, error) {
	return s.assign(ctx, g, prev, next)
}

// assign writes the assignment, and more in the same transaction.
func (s *Store) assign(ctx context.Context, g Guard, prev, next Assignment, more ...clientv3.Op) (Assignment, error) {
	key := s.keys.Assignment(next.Service)
	put, err := putJSON(key, next)
	if err != nil {
		return Assignment{}, err
	}
	resp, err := s.commit(ctx, &g,
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", prev.Epoch)},
		append([]clientv3.Op{put}, more...))
	if err != nil {
		return Assignment{}, fmt.Errorf("assign service %s to site %s: %w", next.Service, next.Site, err)
	}
	next.Epoch = resp.Header.Revision
	return next, nil
}

// Assignment reads a service's assignment; ErrNotFound if it has none.
func (s *Store) Assignment(ctx context.Context, service string) (Assignment, error) {
	a, kv, err := get[Assignment](ctx, s, s.keys.Assignment(service))
	if err != nil {
		return Assignment{}, err
	}
	a.Epoch = kv.ModRevision
	return a, nil
}

// CreateOp journals a new op, guarded by g.
func (s *Store) CreateOp(ctx context.Context, g Guard, op *Op) error {
	key := s.keys.Op(op.ID)
	put, err := putJSON(key, op)
	if err != nil {
		return err
	}
	resp, err := s.commit(ctx, &g,
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{put})
	if err != nil {
		return fmt.Errorf("create op %s: %w", op.ID, err)
	}
	op.Rev, op.CreateRev = resp.Header.Revision, resp.Header.Revision
	return nil
}

// UpdateOp writes the op back, guarded by g, if it has not changed since
// op.Rev; op.Rev is advanced.
func (s *Store) UpdateOp(ctx context.Context, g Guard, op *Op) error {
	key := s.keys.Op(op.ID)
	put, err := putJSON(key, op)
	if err != nil {
		return err
	}
	resp, err := s.commit(ctx, &g,
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", op.Rev)},
		[]clientv3.Op{put})
	if err != nil {
		return fmt.Errorf("update op %s: %w", op.ID, err)
	}
	op.Rev = resp.Header.Revision
	return nil
}

// Op reads one op of the journal.
func (s *Store) Op(ctx context.Context, id string) (*Op, error) {
	op, kv, err := get[Op](ctx, s, s.keys.Op(id))
	if err != nil {
		return nil, err
	}
	op.Rev, op.CreateRev = kv.ModRevision, kv.CreateRevision
	return &op, nil
}

// UnfinishedOps lists the ops that have no outcome yet, oldest first.
func (s *Store) UnfinishedOps(ctx context.Context) ([]*Op, error) {
	ops, err := s.Ops(ctx)
	if err != nil {
		return nil, err
	}
	var open []*Op
	for _, op := range ops {
		if !op.Finished() {
			open = append(open, op)
		}
	}
	return open, nil
}

// Ops lists the whole journal, oldest first.
func (s *Store) Ops(ctx context.Context) ([]*Op, error) {
	resp, err := s.c.Get(ctx, s.keys.Ops(), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("read op journal: %w", err)
	}
	ops := make([]*Op, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		op, err := decode[Op](kv)
		if err != nil {
			return nil, err
		}
		op.Rev, op.CreateRev = kv.ModRevision, kv.CreateRevision
		ops = append(ops, &op)
	}
	return ops, nil
}

// AssignWrite is one assignment of an AssignAll: Next replaces Prev (read at
// Prev.Epoch; 0 for a service without one), with Event appended to the
// event log beside it when its Kind is set. With Until set it is a planned
// move, written with its move record as AssignMoving writes it.
type AssignWrite struct {
	Prev, Next Assignment
	Until      time.Time
	Event      Event
}

// MaxAssignWrites is how many etcd writes one AssignAll carries
// (maxTxnOps, under etcd's limit per transaction); an AssignWrite takes
// Writes of them.
const MaxAssignWrites = maxTxnOps

// Writes is how many etcd writes the assignment takes: itself, its move
// record when it has one, its event when it has one.
func (w AssignWrite) Writes() int {
	n := 1
	if !w.Until.IsZero() {
		n++
	}
	if w.Event.Kind != "" {
		n++
	}
	return n
}

// AssignAll writes the assignments, their move records and events in one
// transaction guarded by g: all of them or none. ErrConflict when any
// assignment changed since its Prev was read. It returns the assignments
// written, each with its new Epoch (the transaction's revision).
func (s *Store) AssignAll(ctx context.Context, g Guard, writes []AssignWrite) ([]Assignment, error) {
	total := 0
	for _, w := range writes {
		total += w.Writes()
	}
	if total > MaxAssignWrites {
		return nil, fmt.Errorf("assign %d services in one transaction: %d writes, at most %d", len(writes), total, MaxAssignWrites)
	}
	var conds []clientv3.Cmp
	var ops []clientv3.Op
	for _, w := range writes {
		key := s.keys.Assignment(w.Next.Service)
		put, err := putJSON(key, w.Next)
		if err != nil {
			return nil, err
		}
		conds = append(conds, clientv3.Compare(clientv3.ModRevision(key), "=", w.Prev.Epoch))
		ops = append(ops, put)
		if !w.Until.IsZero() {
			put, err := putJSON(s.keys.Move(w.Next.Service), moveOf(w.Next, w.Until))
			if err != nil {
				return nil, err
			}
			ops = append(ops, put)
		}
		if w.Event.Kind != "" {
			put, err := s.eventPut(w.Event)
			if err != nil {
				return nil, err
			}
			ops = append(ops, put)
		}
	}
	resp, err := s.commit(ctx, &g, conds, ops)
	if err != nil {
		return nil, fmt.Errorf("assign %d services: %w", len(writes), err)
	}
	out := make([]Assignment, len(writes))
	for i, w := range writes {
		out[i] = w.Next
		out[i].Epoch = resp.Header.Revision
	}
	return out, nil
}
