package site

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/zdt-project/zdt/site/ctxsleep"
)

// View is the cluster's state that Snapshot reads, kept up to date by a
// watch: it is read once, then each change is decoded as it arrives. A
// reader that asks for the state many times a second (the coordinator,
// before each action) gets it for the cost of one small read, instead of
// reading and decoding every record each time.
//
// Its Snapshot is as fresh as Store.Snapshot's: it holds every change
// committed before the call. Run keeps it; a watch that breaks (a lost
// leader, a compacted revision) is made again from a fresh read.
type View struct {
	store *Store

	mu sync.Mutex
	// state holds every record but the ops and the election, which ops
	// and election hold; rev is the revision up to which every change has
	// been applied (0 before the first read).
	state *Snapshot
	// lent says state's maps are shared with a Snapshot handed out: the
	// next change copies them first (own), so that a reader's snapshot
	// never changes and a snapshot while nothing changes costs no copy.
	lent     bool
	ops      map[string]*Op
	election map[string]electionKey
	// upstream holds the route observer's records, by prefix (not part of
	// a Snapshot); upstreamLent, like lent, says a reader shares it.
	upstream     map[string]UpstreamRoute
	upstreamLent bool
	// upstreamAt is the revision of the last change to upstream.
	upstreamAt int64
	rev        int64
	// changedAt is the revision of the last change to the state (its
	// Snapshot.Changed).
	changedAt int64
	// advanced is closed, and replaced, whenever rev advances.
	advanced chan struct{}
	// wctx is the context of the watch that runs, for asking it for
	// progress; nil while there is none.
	wctx context.Context
	// changed holds a token when a record the state holds, or the route
	// observer's, changed since the last receive (not only beats or
	// events).
	changed chan struct{}
	// statuses keeps the last status built from the view (StatusFrom).
	statuses statusCache
}

// electionKey is one candidate's key in the coordinator's election.
type electionKey struct {
	createRev int64
	site      string
}

// NewView returns a view of the cluster's state; Run keeps it.
func NewView(s *Store) *View {
	return &View{store: s, advanced: make(chan struct{}), changed: make(chan struct{}, 1)}
}

// viewRetryMin and viewRetryMax bound the wait before the view reads the
// state again after its read or its watch failed.
const (
	viewRetryMin = 50 * time.Millisecond
	viewRetryMax = 2 * time.Second
)

// Run reads the state and follows its changes until ctx ends, then
// returns nil. A failed read or a broken watch is retried with a backoff.
func (v *View) Run(ctx context.Context) error {
	retry := ctxsleep.NewBackoff(viewRetryMin, viewRetryMax)
	for {
		err := v.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errViewWatched) {
			retry.Reset() // it worked for a while
		}
		if retry.Wait(ctx) != nil {
			return nil
		}
	}
}

// errViewWatched: the watch applied changes before it broke.
var errViewWatched = errors.New("the watch broke")

// follow reads the state, then applies the watch's changes until it
// breaks.
func (v *View) follow(ctx context.Context) error {
	// A stream of its own: a request for progress reaches this watch
	// alone (etcd sends it to every watch of the stream).
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx), "zdt-stream", "view"))
	defer cancel()
	reads := v.store.snapshotReads()
	// Every candidate, not the first alone: the watch then says which
	// come and go.
	reads[readElection] = clientv3.OpGet(v.store.keys.Election(), clientv3.WithPrefix())
	reads = append(reads, clientv3.OpGet(v.store.keys.Upstream(), clientv3.WithPrefix()))
	resp, err := v.store.c.Txn(ctx).Then(reads...).Commit()
	if err != nil {
		return fmt.Errorf("read cluster state: %w", err)
	}
	if err := v.load(resp); err != nil {
		return err
	}
	watch := v.store.c.Watch(ctx, v.store.keys.Root(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	v.mu.Lock()
	v.wctx = ctx
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.wctx = nil
		v.mu.Unlock()
	}()
	applied := false
	for w := range watch {
		if err := w.Err(); err != nil {
			return fmt.Errorf("watch cluster state: %w", err)
		}
		if w.IsProgressNotify() {
			v.advance(w.Header.Revision, false)
			continue
		}
		if err := v.apply(w.Events); err != nil {
			return err
		}
		applied = true
	}
	if applied {
		return errViewWatched
	}
	return errors.New("watch cluster state: closed")
}

// load replaces the state with a fresh read (the answer to snapshotReads,
// then the observer's records).
func (v *View) load(resp *clientv3.TxnResponse) error {
	ops := map[string]*Op{}
	election := map[string]electionKey{}
	last := len(resp.Responses) - 1
	upstream, err := decodeUpstream(resp.Responses[last].GetResponseRange().Kvs)
	if err != nil {
		return err
	}
	resp.Responses = resp.Responses[:last]
	state, err := v.store.keys.decodeSnapshot(resp, func(op *Op) { ops[op.ID] = op },
		func(kv *mvccpb.KeyValue) { election[string(kv.Key)] = electionKey{kv.CreateRevision, string(kv.Value)} })
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.state, v.ops, v.election, v.upstream = state, ops, election, upstream
	v.lent, v.upstreamLent = false, false
	v.changedAt, v.upstreamAt = resp.Header.Revision, resp.Header.Revision
	v.mu.Unlock()
	v.advance(resp.Header.Revision, true)
	return nil
}

// apply applies one watch response's events, all of one or more whole
// revisions.
func (v *View) apply(events []*clientv3.Event) error {
	k := v.store.keys
	v.mu.Lock()
	changed := false
	var last int64
	var err error
	for _, e := range events {
		key := string(e.Kv.Key)
		last = e.Kv.ModRevision
		if strings.HasPrefix(key, k.Beats()) || strings.HasPrefix(key, k.Events()) {
			continue
		}
		changed = true
		put := e.Type == mvccpb.PUT
		if k.inSnapshot(key) {
			v.changedAt = e.Kv.ModRevision
		}
		switch {
		case strings.HasPrefix(key, k.Ops()):
			if !put {
				delete(v.ops, strings.TrimPrefix(key, k.Ops()))
				continue
			}
			var op *Op
			if op, err = decodeOp(e.Kv); err == nil {
				v.ops[op.ID] = op
			}
		case strings.HasPrefix(key, k.Election()):
			if put {
				v.election[key] = electionKey{e.Kv.CreateRevision, string(e.Kv.Value)}
			} else {
				delete(v.election, key)
			}
		case strings.HasPrefix(key, k.Upstream()):
			if v.upstreamLent {
				v.upstream, v.upstreamLent = maps.Clone(v.upstream), false
			}
			v.upstreamAt = e.Kv.ModRevision
			if !put {
				delete(v.upstream, k.upstreamPrefix(key))
				continue
			}
			var r UpstreamRoute
			if r, err = decode[UpstreamRoute](e.Kv); err == nil {
				v.upstream[r.Prefix] = r
			}
		case put:
			v.ownLocked()
			err = k.putRecord(v.state, e.Kv)
		default:
			v.ownLocked()
			k.deleteRecord(v.state, key)
		}
		if err != nil {
			break
		}
	}
	v.mu.Unlock()
	if err != nil {
		return err // the state is read afresh
	}
	v.advance(last, changed)
	return nil
}

// advance records that every change up to rev is applied, and wakes who
// waits for it and, if changed, for a change.
func (v *View) advance(rev int64, changed bool) {
	v.mu.Lock()
	if rev > v.rev {
		v.rev = rev
		close(v.advanced)
		v.advanced = make(chan struct{})
	}
	v.mu.Unlock()
	if changed {
		select {
		case v.changed <- struct{}{}:
		default:
		}
	}
}

// Changed receives when the state changed since the last receive: any
// record but the beats and the events.
func (v *View) Changed() <-chan struct{} { return v.changed }

// progressEvery is how often a Snapshot that waits for the view asks its
// watch for progress: etcd answers only once the watch has caught up.
const progressEvery = 100 * time.Millisecond

// Snapshot returns the state with every change committed before the call
// (a linearizable read of the current revision, then a wait for the watch
// to apply it), as Store.Snapshot would read it. It never changes: the
// view copies its maps before its next change, and the unfinished ops are
// copies. The maps and the finished ops are shared (with the view and
// with other snapshots of the same state) and must not be changed.
func (v *View) Snapshot(ctx context.Context) (*Snapshot, error) {
	snap, _, _, err := v.read(ctx, false)
	return snap, err
}

// State is Snapshot with the route observer's records, by prefix, of the
// same revision. The records are shared, like the snapshot's maps, and
// must not be changed.
func (v *View) State(ctx context.Context) (*Snapshot, map[string]UpstreamRoute, error) {
	snap, upstream, _, err := v.read(ctx, true)
	return snap, upstream, err
}

// read is Snapshot, and State with withUpstream; upstreamAt is the
// revision of the last change to the observer's records then, as Changed
// is the snapshot's.
func (v *View) read(ctx context.Context, withUpstream bool) (snap *Snapshot, upstream map[string]UpstreamRoute, upstreamAt int64, err error) {
	resp, err := v.store.c.Get(ctx, v.store.keys.Election(), clientv3.WithCountOnly())
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read cluster state: %w", err)
	}
	want := resp.Header.Revision
	var ask <-chan time.Time // nil until the first wait: most calls wait for nothing
	for {
		v.mu.Lock()
		if v.rev >= want {
			snap = v.copyLocked()
			if withUpstream {
				upstream, v.upstreamLent, upstreamAt = v.upstream, true, v.upstreamAt
			}
			v.mu.Unlock()
			return snap, upstream, upstreamAt, nil
		}
		advanced, wctx := v.advanced, v.wctx
		v.mu.Unlock()
		if ask == nil {
			t := time.NewTicker(progressEvery)
			defer t.Stop()
			ask = t.C
			v.requestProgress(wctx)
		}
		select {
		case <-ctx.Done():
			return nil, nil, 0, fmt.Errorf("read cluster state: waiting for revision %d: %w", want, ctx.Err())
		case <-advanced:
		case <-ask:
			v.requestProgress(wctx)
		}
	}
}

// requestProgress asks the watch to say how far it has come, which it
// does once it has sent every change up to the current revision: the
// changes of other keys than the cluster's advance the revision too.
func (v *View) requestProgress(wctx context.Context) {
	if wctx != nil {
		_ = v.store.c.RequestProgress(wctx) // best effort: the next tick asks again
	}
}

// copyLocked returns the state as a new Snapshot; v.mu is held. Its maps
// are the view's own until the next change, which copies them (ownLocked).
func (v *View) copyLocked() *Snapshot {
	snap := *v.state
	snap.Rev, snap.Changed, snap.Ops, snap.Coordinator = v.rev, v.changedAt, nil, ""
	v.lent = true
	for _, op := range v.ops {
		if !op.Finished() {
			op = op.Clone()
		}
		snap.Ops = append(snap.Ops, op)
	}
	slices.SortFunc(snap.Ops, func(a, b *Op) int { return cmp.Compare(a.CreateRev, b.CreateRev) })
	first := int64(0)
	for _, e := range v.election {
		if first == 0 || e.createRev < first {
			first, snap.Coordinator = e.createRev, e.site
		}
	}
	return &snap
}

// ownLocked makes the state's maps the view's alone before a change, if a
// Snapshot shares them; v.mu is held.
func (v *View) ownLocked() {
	if !v.lent {
		return
	}
	s := *v.state
	s.Alive, s.Registered, s.Reports = maps.Clone(s.Alive), maps.Clone(s.Registered), maps.Clone(s.Reports)
	s.Fences, s.Drains, s.HostDrains = maps.Clone(s.Fences), maps.Clone(s.Drains), maps.Clone(s.HostDrains)
	s.Assignments, s.Moves, s.Placements = maps.Clone(s.Assignments), maps.Clone(s.Moves), maps.Clone(s.Placements)
	s.Hosts, s.BGP, s.Replication = maps.Clone(s.Hosts), maps.Clone(s.BGP), maps.Clone(s.Replication)
	s.Announced = maps.Clone(s.Announced)
	v.state, v.lent = &s, false
}
