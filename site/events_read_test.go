package site_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/site"
)

func TestEventFilter(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC)
	stepAtA := site.Event{At: at, Site: "a", Kind: "step", Op: "op-1", Subject: "web", Message: "service web moved"}
	fencedC := site.Event{At: at, Site: "a", Kind: "op-started", Op: "op-1", Subject: "c", Message: "op op-1 (failover) started"}
	reportB := site.Event{At: at, Site: "b", Kind: "replication", Subject: "b", Message: "member pg promoted"}
	tests := []struct {
		name   string
		filter site.EventFilter
		want   []bool // stepAtA, fencedC, reportB
	}{
		{"no filter", site.EventFilter{}, []bool{true, true, true}},
		{"since: at or after", site.EventFilter{Since: at}, []bool{true, true, true}},
		{"since: before", site.EventFilter{Since: at.Add(time.Nanosecond)}, []bool{false, false, false}},
		{"site: writer", site.EventFilter{Sites: []string{"a"}}, []bool{true, true, false}},
		{"site: subject", site.EventFilter{Sites: []string{"c"}}, []bool{false, true, false}},
		{"site: writer or subject", site.EventFilter{Sites: []string{"b"}}, []bool{false, false, true}},
		{"sites", site.EventFilter{Sites: []string{"b", "c"}}, []bool{false, true, true}},
		{"service", site.EventFilter{Services: []string{"web"}}, []bool{true, false, false}},
		{"unknown service", site.EventFilter{Services: []string{"db"}}, []bool{false, false, false}},
		{"kind", site.EventFilter{Kinds: []string{"step"}}, []bool{true, false, false}},
		{"kinds", site.EventFilter{Kinds: []string{"step", "replication"}}, []bool{true, false, true}},
		{"kind prefix", site.EventFilter{Kinds: []string{"op-*"}}, []bool{false, true, false}},
		{"kind is not a prefix without *", site.EventFilter{Kinds: []string{"op-"}}, []bool{false, false, false}},
		{"every kind", site.EventFilter{Kinds: []string{"*"}}, []bool{true, true, true}},
		{"all of them", site.EventFilter{Sites: []string{"a"}, Services: []string{"web"}, Kinds: []string{"step"}}, []bool{true, false, false}},
		{"all of them, one fails", site.EventFilter{Sites: []string{"b"}, Services: []string{"web"}}, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, e := range []site.Event{stepAtA, fencedC, reportB} {
				if got := tt.filter.Match(e); got != tt.want[i] {
					t.Errorf("Match(%s %s by %s about %s) = %t, want %t", e.Kind, e.Op, e.Site, e.Subject, got, tt.want[i])
				}
			}
		})
	}
}

// putEvents writes n events one millisecond apart from base, as AppendEvent
// would, but many to a transaction; kinds cycle through kinds. It returns
// the revision of the last write.
func putEvents(t *testing.T, ctx context.Context, s *site.Store, base time.Time, n int, kinds ...string) int64 {
	t.Helper()
	var rev int64
	const perTxn = 100
	for from := 0; from < n; from += perTxn {
		var ops []clientv3.Op
		for i := from; i < min(n, from+perTxn); i++ {
			e := site.Event{At: base.Add(time.Duration(i) * time.Millisecond), Site: "a", Kind: kinds[i%len(kinds)], Message: fmt.Sprint(i)}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%020d-%08x", s.Keys().Events(), e.At.UnixNano(), i), string(b)))
		}
		resp, err := s.Client().Txn(ctx).Then(ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	return rev
}

func TestEventsSince(t *testing.T) {
	s, _, ctx := setup(t)
	base := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	const n = 1234 // more than two pages
	rev := putEvents(t, ctx, s, base, n, "step", "op-started", "op-failed")
	kind := func(k string) func(site.Event) bool { return func(e site.Event) bool { return e.Kind == k } }
	tests := []struct {
		name       string
		since      time.Time
		limit      int
		match      func(site.Event) bool
		first, num int // the messages wanted: first, first+step, ...
		step       int
	}{
		{name: "all", first: 0, num: n, step: 1},
		{name: "the last 10", limit: 10, first: n - 10, num: 10, step: 1},
		{name: "since", since: base.Add(1000 * time.Millisecond), first: 1000, num: n - 1000, step: 1},
		{name: "since, between two events", since: base.Add(1000*time.Millisecond - 1), first: 1000, num: n - 1000, step: 1},
		{name: "since, with a limit", since: base.Add(1000 * time.Millisecond), limit: 5, first: n - 5, num: 5, step: 1},
		{name: "since after the last", since: base.Add(time.Hour)},
		{name: "matching, over pages", match: kind("op-failed"), first: 2, num: n / 3, step: 3},
		{name: "matching, the last 3", match: kind("step"), limit: 3, first: 1227, num: 3, step: 3},
		{name: "matching since", since: base.Add(600 * time.Millisecond), match: kind("op-started"), first: 601, num: (n - 601 + 2) / 3, step: 3},
		{name: "matching none", match: kind("coordinator")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, got, err := s.EventsSince(ctx, tt.since, tt.limit, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			if got < rev {
				t.Errorf("read at revision %d, before the last write at %d", got, rev)
			}
			if len(events) != tt.num {
				t.Fatalf("%d events, want %d", len(events), tt.num)
			}
			for i, e := range events {
				if want := fmt.Sprint(tt.first + i*tt.step); e.Message != want || e.Rev == 0 {
					t.Fatalf("event %d: %q (revision %d), want %q", i, e.Message, e.Rev, want)
				}
			}
		})
	}
}

// TestFollowEventsAfterCompaction: following from a revision whose history
// is compacted reads the events written since by revision, then watches on;
// none is missed and none comes twice.
func TestFollowEventsAfterCompaction(t *testing.T) {
	s, _, ctx := setup(t)
	base := time.Now().UTC()
	putEvents(t, ctx, s, base, 3, "old")
	events, rev, err := s.EventsSince(ctx, time.Time{}, 0, nil)
	if err != nil || len(events) != 3 {
		t.Fatalf("events %+v, %v", events, err)
	}
	for i := range 3 {
		if err := s.AppendEvent(ctx, site.Event{At: base.Add(time.Second), Kind: "new", Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.Client().Get(ctx, "any")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}

	errEnough := errors.New("enough")
	var got []string
	var broken []error
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	appended := make(chan error, 1)
	err = s.FollowEvents(fctx, rev, func(e site.Event) error {
		got = append(got, e.Kind+" "+e.Message)
		switch len(got) {
		case 3: // caught up: now a new one, through the watch
			go func() {
				appended <- s.AppendEvent(ctx, site.Event{At: base.Add(2 * time.Second), Kind: "new", Message: "3"})
			}()
		case 4:
			return errEnough
		}
		return nil
	}, func(err error) { broken = append(broken, err) })
	if !errors.Is(err, errEnough) {
		t.Fatalf("follow: %v", err)
	}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if want := "[new 0 new 1 new 2 new 3]"; fmt.Sprint(got) != want {
		t.Errorf("followed %v, want %s", got, want)
	}
	if len(broken) != 1 || !strings.Contains(broken[0].Error(), "compacted") {
		t.Errorf("broken told %v; want once, that the revision was compacted", broken)
	}

	// Cancelled: FollowEvents says so.
	cancel()
	if err := s.FollowEvents(fctx, rev, func(site.Event) error { return nil }, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("follow with a cancelled context: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "", want: time.Time{}},
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "0s", want: now},
		{in: "2026-12-01T22:00:00Z", want: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)},
		{in: "2026-12-02T04:00:00.5+01:00", want: time.Date(2026, 12, 2, 3, 0, 0, 500e6, time.UTC)},
		{in: "-5m", err: "want how long before now, not a negative duration"},
		{in: "3d", err: "a day is not a unit: say 72h"},
		{in: "2026-12-02", err: "add a time and a zone: 2026-12-02T00:00:00Z"},
		{in: "2026-12-02T03:00:00", err: "add the zone: Z for UTC, or an offset such as +01:00"},
		{in: "2026-12-02 03:00:00", err: "add the zone"},
		{in: "yesterday", err: "want a duration before now (10m, 1h30m) or a time in RFC 3339 (2026-12-02T03:13:00Z)"},
		{in: "10", err: "want a duration before now"},
	}
	for _, tt := range tests {
		got, err := site.ParseSince(tt.in, now)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("site.ParseSince(%q) = %s, %v; want an error saying %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || !got.Equal(tt.want)):
			t.Errorf("site.ParseSince(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
