package site

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// DecodeCache keeps the records a reader decoded, by key, with the
// revision each was written at: a reader that reads many records again and
// again (every placement, on each pass) decodes only those written since.
// It is exact: a record is decoded again whenever its revision differs.
// The values are shared between reads and must not be changed. It is not
// safe for concurrent use.
type DecodeCache[T any] struct {
	entries map[string]decodedEntry[T]
	round   uint64
}

type decodedEntry[T any] struct {
	rev   int64
	round uint64
	v     T
}

// NewDecodeCache returns an empty cache.
func NewDecodeCache[T any]() *DecodeCache[T] {
	return &DecodeCache[T]{entries: map[string]decodedEntry[T]{}}
}

// Round starts a read of the whole set; End forgets what it did not see.
func (c *DecodeCache[T]) Round() { c.round++ }

// Decode returns the record's value, decoding it only if it was written
// since it was last decoded.
func (c *DecodeCache[T]) Decode(kv *mvccpb.KeyValue) (T, error) {
	key := string(kv.Key)
	if e, ok := c.entries[key]; ok && e.rev == kv.ModRevision {
		e.round = c.round
		c.entries[key] = e
		return e.v, nil
	}
	var v T
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		delete(c.entries, key)
		return v, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	c.entries[key] = decodedEntry[T]{rev: kv.ModRevision, round: c.round, v: v}
	return v, nil
}

// End forgets every record not decoded since Round: those deleted.
func (c *DecodeCache[T]) End() {
	for k, e := range c.entries {
		if e.round != c.round {
			delete(c.entries, k)
		}
	}
}

// Len is how many records the cache holds.
func (c *DecodeCache[T]) Len() int { return len(c.entries) }
