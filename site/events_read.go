package site

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// eventsPage is how many events EventsSince reads at a time.
const eventsPage = 500

// EventFilter selects events of the log. A field left empty selects every
// event.
type EventFilter struct {
	// Since: written at this time or later.
	Since time.Time
	// Sites: written by one of these sites' controllers, or about one of
	// these sites.
	Sites []string
	// Services: about one of these services.
	Services []string
	// Kinds: of one of these kinds; a kind ending in "*" selects every kind
	// that begins with what comes before it ("op-*").
	Kinds []string
}

// Match reports whether the filter selects e.
func (f EventFilter) Match(e Event) bool {
	if !f.Since.IsZero() && e.At.Before(f.Since) {
		return false
	}
	if len(f.Sites) > 0 && !slices.Contains(f.Sites, e.Site) && !slices.Contains(f.Sites, e.Subject) {
		return false
	}
	if len(f.Services) > 0 && !slices.Contains(f.Services, e.Subject) {
		return false
	}
	if len(f.Kinds) > 0 && !slices.ContainsFunc(f.Kinds, func(k string) bool {
		if prefix, ok := strings.CutSuffix(k, "*"); ok {
			return strings.HasPrefix(e.Kind, prefix)
		}
		return e.Kind == k
	}) {
		return false
	}
	return true
}

// CheckEventKind says what is wrong with a kind to filter events by: a
// kind (op-failed), or the beginning of kinds followed by * (op-*).
func CheckEventKind(k string) error {
	if k == "" || strings.Contains(strings.TrimSuffix(k, "*"), "*") {
		return errors.New("want a kind (op-failed), or the beginning of kinds followed by * (op-*)")
	}
	return nil
}

// EventsSince returns the last n events (all when n <= 0) written at since
// or later (since zero: the whole log) that match (nil: every one), oldest
// first, and the revision they were read at: FollowEvents from that revision
// misses none. Event keys are ordered by time, so the read starts at since's
// key; it goes backwards from the end of the log a page at a time, so the
// last few events of a long log cost little.
func (s *Store) EventsSince(ctx context.Context, since time.Time, n int, match func(Event) bool) ([]Event, int64, error) {
	prefix := s.keys.Events()
	from := prefix
	if !since.IsZero() {
		from = s.eventKeyAt(since)
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	page := int64(eventsPage)
	if match == nil && n > 0 && n < eventsPage {
		page = int64(n)
	}
	var events []Event
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(page)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev)) // every page at the first page's revision
		}
		resp, err := s.c.Get(ctx, from, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("read events: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			e, err := decode[Event](kv)
			if err != nil {
				return nil, 0, err
			}
			e.Rev = kv.ModRevision
			if match != nil && !match(e) {
				continue
			}
			events = append(events, e)
			if n > 0 && len(events) == n {
				slices.Reverse(events)
				return events, rev, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			slices.Reverse(events)
			return events, rev, nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key) // the range end is exclusive
	}
}

// eventKeyAt is the first key an event written at t can have.
func (s *Store) eventKeyAt(t time.Time) string {
	return fmt.Sprintf("%s%020d", s.keys.Events(), t.UnixNano())
}

// FollowEvents calls fn with each event appended to the log after revision
// rev, in the order they were written, until fn fails or ctx ends (then it
// returns ctx.Err()).
//
// The watch requires a leader. When it breaks (no leader, compacted
// history, a lost connection) broken, when not nil, is told why; a moment
// later the events written since the last one seen are read by revision,
// so none still in the log is missed even when the history was compacted,
// and the watch starts again after them.
func (s *Store) FollowEvents(ctx context.Context, rev int64, fn func(Event) error, broken func(error)) error {
	last := rev // every event up to this revision was handed to fn
	for {
		stop, err := s.followEventsFrom(ctx, &last, fn)
		if stop {
			return err
		}
		// The watch broke: catch up by revision, then watch again.
		for {
			if err := pause(ctx, broken, err); err != nil {
				return err
			}
			if stop, err = s.eventsAfter(ctx, &last, fn); stop {
				return err
			} else if err == nil {
				break
			}
		}
	}
}

// followEventsFrom hands fn each event written after *last, advancing it.
// stop says FollowEvents is to return err (fn failed, a record is bad, or
// ctx ended); otherwise the watch broke, for the reason err.
func (s *Store) followEventsFrom(ctx context.Context, last *int64, fn func(Event) error) (stop bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.WatchKey(wctx, s.keys.Events(), true, *last+1) {
		if err := resp.Err(); err != nil {
			return false, fmt.Errorf("watch the event log: %w", err)
		}
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue // retention removes old events
			}
			e, err := decode[Event](ev.Kv)
			if err != nil {
				return true, err
			}
			e.Rev = ev.Kv.ModRevision
			if err := fn(e); err != nil {
				return true, err
			}
			*last = max(*last, ev.Kv.ModRevision)
		}
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	return false, fmt.Errorf("watch the event log: the watch ended")
}

// eventsAfter reads the events written after revision *last, in the order
// they were written, hands them to fn and advances *last to the revision
// read at. stop says FollowEvents is to return err (fn failed or a record is
// bad); otherwise err is a failed read, to be tried again.
func (s *Store) eventsAfter(ctx context.Context, last *int64, fn func(Event) error) (stop bool, err error) {
	resp, err := s.c.Get(ctx, s.keys.Events(), clientv3.WithPrefix(), clientv3.WithMinModRev(*last+1),
		clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortAscend))
	if err != nil {
		return false, fmt.Errorf("read the event log after revision %d: %w", *last, err)
	}
	for _, kv := range resp.Kvs {
		e, err := decode[Event](kv)
		if err != nil {
			return true, err
		}
		e.Rev = kv.ModRevision
		if err := fn(e); err != nil {
			return true, err
		}
		*last = max(*last, kv.ModRevision)
	}
	*last = max(*last, resp.Header.Revision)
	return false, nil
}

// ParseSince reads a "since" of the event log (zdt events --since, GET
// /events?since=): a duration before now (10m, 1h30m) or a time in RFC
// 3339. "" is no bound: the zero time. Its errors say what is wanted.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("want how long before now, not a negative duration (10m, 1h30m)")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	const want = "want a duration before now (10m, 1h30m) or a time in RFC 3339 (2026-12-02T03:13:00Z)"
	switch {
	case strings.HasSuffix(s, "d") && isDigits(strings.TrimSuffix(s, "d")):
		return time.Time{}, fmt.Errorf("%s; a day is not a unit: say %sh", want, times24(strings.TrimSuffix(s, "d")))
	case isDate(s):
		return time.Time{}, fmt.Errorf("%s; add a time and a zone: %sT00:00:00Z", want, s)
	case isDate(s[:min(len(s), 10)]) && len(s) > 10:
		if _, err := time.Parse("2006-01-02T15:04:05", strings.Replace(s, " ", "T", 1)); err == nil {
			return time.Time{}, fmt.Errorf("%s; add the zone: Z for UTC, or an offset such as +01:00", want)
		}
	}
	return time.Time{}, errors.New(want)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// times24 is the count of days n in hours.
func times24(n string) string {
	d, err := strconv.Atoi(n)
	if err != nil || d > 1<<30 {
		return n + "*24"
	}
	return strconv.Itoa(d * 24)
}
