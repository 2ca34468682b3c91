package site

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AppendEvent adds an event to the log. Anyone may append; nothing is ever
// rewritten.
func (s *Store) AppendEvent(ctx context.Context, e Event) error {
	put, err := s.eventPut(e)
	if err != nil {
		return err
	}
	if _, err := s.c.Do(ctx, put); err != nil {
		return fmt.Errorf("append event %q: %w", e.Kind, err)
	}
	return nil
}

// eventPut is the write that appends e to the event log.
func (s *Store) eventPut(e Event) (clientv3.Op, error) {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	key := fmt.Sprintf("%s%020d-%s", s.keys.Events(), e.At.UnixNano(), hex.EncodeToString(b[:]))
	return putJSON(key, e)
}

// Events returns the last n events of the log (all when n <= 0), oldest
// first.
func (s *Store) Events(ctx context.Context, n int) ([]Event, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if n > 0 {
		opts = append(opts, clientv3.WithLimit(int64(n)))
	}
	resp, err := s.c.Get(ctx, s.keys.Events(), opts...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	events := make([]Event, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		e, err := decode[Event](kv)
		if err != nil {
			return nil, err
		}
		e.Rev = kv.ModRevision
		events[len(resp.Kvs)-1-i] = e
	}
	return events, nil
}
