package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors a write can end with; check them with errors.Is.
var (
	// ErrConflict: the record changed since it was read; read again and
	// decide again.
	ErrConflict = errors.New("state changed since it was read")
	// ErrNotCoordinator: the writer's election key is gone or was replaced;
	// another controller coordinates now.
	ErrNotCoordinator = errors.New("no longer the coordinator")
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
)

// Store reads and writes one cluster's state in etcd.
type Store struct {
	c    *clientv3.Client
	keys Keys
}

// NewStore returns a store for the named cluster's state.
func NewStore(c *clientv3.Client, cluster string) *Store {
	return &Store{c: c, keys: NewKeys(cluster)}
}

// Client is the etcd client the store uses.
func (s *Store) Client() *clientv3.Client { return s.c }

// Keys is the key schema of the store's cluster.
func (s *Store) Keys() Keys { return s.keys }

// Guard is the coordinator's fencing token: its election key and the
// revision that key was created at. Every coordinator write compares it, so a
// coordinator that lost the election cannot write.
type Guard struct {
	Key string
	Rev int64
}

func (g Guard) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(g.Key), "=", g.Rev)
}

// commit runs one guarded transaction: ops if every condition holds. When it
// does not, it tells a lost election (ErrNotCoordinator) from a changed
// record (ErrConflict) and returns the responses of elseOps for the caller
// to inspect.
func (s *Store) commit(ctx context.Context, g *Guard, conds []clientv3.Cmp, ops []clientv3.Op, elseOps ...clientv3.Op) (*clientv3.TxnResponse, error) {
	if g != nil {
		conds = append([]clientv3.Cmp{g.cmp()}, conds...)
		elseOps = append([]clientv3.Op{clientv3.OpGet(g.Key)}, elseOps...)
	}
	resp, err := s.c.Txn(ctx).If(conds...).Then(ops...).Else(elseOps...).Commit()
	if err != nil {
		return nil, err
	}
	if resp.Succeeded {
		return resp, nil
	}
	if g != nil {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 || kvs[0].CreateRevision != g.Rev {
			return resp, ErrNotCoordinator
		}
		resp.Responses = resp.Responses[1:]
	}
	return resp, ErrConflict
}

func putJSON(key string, v any, opts ...clientv3.OpOption) (clientv3.Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("encode %s: %w", key, err)
	}
	return clientv3.OpPut(key, string(b), opts...), nil
}

func decode[T any](kv *mvccpb.KeyValue) (T, error) {
	var v T
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, fmt.Errorf("decode %s at revision %d: %w", kv.Key, kv.ModRevision, err)
	}
	return v, nil
}

// get reads one JSON record; ErrNotFound when the key is absent.
func get[T any](ctx context.Context, s *Store, key string) (T, *mvccpb.KeyValue, error) {
	var zero T
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return zero, nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return zero, nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	v, err := decode[T](resp.Kvs[0])
	return v, resp.Kvs[0], err
}

// WatchKey watches one key, or every key under a prefix, from revision rev on
// (0: from now), requiring a leader.
func (s *Store) WatchKey(ctx context.Context, key string, prefix bool, rev int64) clientv3.WatchChan {
	var opts []clientv3.OpOption
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return s.c.Watch(clientv3.WithRequireLeader(ctx), key, opts...)
}
