package site_test

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/zdt-project/zdt/site"
)

func TestDecodeCacheDecodesOnlyWhatChanged(t *testing.T) {
	c := site.NewDecodeCache[site.Placement]()
	kv := func(key, value string, rev int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(key), Value: []byte(value), ModRevision: rev}
	}
	decode := func(k *mvccpb.KeyValue) site.Placement {
		t.Helper()
		p, err := c.Decode(k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	c.Round()
	if p := decode(kv("g1", `{"guest":"g1","site":"a"}`, 5)); p.Site != "a" {
		t.Fatalf("g1 decoded at %q, want a", p.Site)
	}
	decode(kv("g2", `{"guest":"g2","site":"b"}`, 6))
	c.End()

	// The same revision is not decoded again: a value that would not
	// decode shows that it was not.
	c.Round()
	if p := decode(kv("g1", `not json`, 5)); p.Site != "a" {
		t.Fatalf("g1 at the same revision: %+v, want the value decoded before", p)
	}
	// A new revision is.
	if p := decode(kv("g2", `{"guest":"g2","site":"c"}`, 9)); p.Site != "c" {
		t.Fatalf("g2 written again decoded at %q, want c", p.Site)
	}
	if _, err := c.Decode(kv("g3", `{`, 10)); err == nil {
		t.Fatal("a record that is not JSON decoded without an error")
	}
	c.End()
	if c.Len() != 2 {
		t.Fatalf("after a round that saw g1 and g2, the cache holds %d records, want 2", c.Len())
	}

	// A record not seen in a round is forgotten: g1 deleted.
	c.Round()
	decode(kv("g2", `{"guest":"g2","site":"c"}`, 9))
	c.End()
	if c.Len() != 1 {
		t.Fatalf("after a round without g1 the cache holds %d records, want 1", c.Len())
	}
	c.Round()
	if p := decode(kv("g1", `{"guest":"g1","site":"b"}`, 5)); p.Site != "b" {
		t.Fatalf("g1 created again decoded at %q, want b (a forgotten record is decoded anew)", p.Site)
	}
}
