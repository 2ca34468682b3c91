package site_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
)

// runningOp journals a running op of two steps, as coordinator g would.
func runningOp(t *testing.T, ctx context.Context, s *site.Store, g site.Guard, at time.Time) *site.Op {
	t.Helper()
	op := &site.Op{
		ID: site.NewOpID(at, "failover"), Kind: "failover", Params: map[string]string{"site": "c"},
		Who: "coordinator@a", Created: at, Outcome: site.OpRunning, Coordinators: []string{"a"},
		Steps: []site.Step{
			{Name: "fence", Params: map[string]string{"site": "c"}, Status: site.StepPending},
			{Name: "assign", Params: map[string]string{"service": "web", "from": "c"}, Status: site.StepPending},
		},
	}
	if err := s.CreateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	return op
}

func TestOpIDsAndCoordinator(t *testing.T) {
	s, _, ctx := setup(t)
	if ids, err := s.OpIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("ids of an empty journal: %v, %v", ids, err)
	}
	if c, err := s.Coordinator(ctx); err != nil || c != "" {
		t.Fatalf("coordinator before any election: %q, %v", c, err)
	}
	g, _ := elect(t, ctx, s, "b")
	if c, err := s.Coordinator(ctx); err != nil || c != "b" {
		t.Fatalf("coordinator: %q, %v; want b", c, err)
	}
	base := time.Date(2026, 12, 2, 3, 13, 0, 0, time.UTC)
	var want []string
	for _, d := range []time.Duration{2 * time.Second, 0, time.Second} { // created out of order
		want = append(want, runningOp(t, ctx, s, g, base.Add(d)).ID)
	}
	want = []string{want[1], want[2], want[0]}
	ids, err := s.OpIDs(ctx)
	if err != nil || strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("ids %v, %v; want %v (by creation time)", ids, err, want)
	}
}

// TestRequestAbort: the request is written with an event, once; the
// coordinator's copy read before it can no longer be written over it; a
// finished op is refused.
func TestRequestAbort(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	ann := site.Request{By: "operator:ann@noc1", Reason: "drill over"}

	if _, err := s.RequestAbort(ctx, "no-such-op", ann); !errors.Is(err, site.ErrNotFound) {
		t.Fatalf("abort an unknown op: %v, want ErrNotFound", err)
	}
	if _, err := s.RequestAbort(ctx, "no-such-op", site.Request{}); err == nil || !strings.Contains(err.Error(), "say who asks") {
		t.Fatalf("abort without saying who: %v", err)
	}

	op := runningOp(t, ctx, s, g, time.Now().UTC())
	coordinatorsCopy, err := s.Op(ctx, op.ID) // as the coordinator read it
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	got, err := s.RequestAbort(ctx, op.ID, ann)
	if err != nil {
		t.Fatal(err)
	}
	r := got.AbortRequested
	if r == nil || r.By != ann.By || r.Reason != ann.Reason || r.At.Before(before.Add(-time.Second)) {
		t.Fatalf("request %+v; want ann's, made now", r)
	}

	// The coordinator's next write fails; read again, it sees the request.
	coordinatorsCopy.Steps[0].Status = site.StepRunning
	if err := s.UpdateOp(ctx, g, coordinatorsCopy); !errors.Is(err, site.ErrConflict) {
		t.Fatalf("the coordinator's write of a copy read before the request: %v, want ErrConflict", err)
	}
	stored, err := s.Op(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.AbortRequested == nil || !stored.AbortRequested.At.Equal(r.At) || stored.Rev != got.Rev {
		t.Fatalf("stored op: request %+v at revision %d; want %+v at %d", stored.AbortRequested, stored.Rev, r, got.Rev)
	}

	// Asking again changes nothing: the first request stands.
	again, err := s.RequestAbort(ctx, op.ID, site.Request{By: "operator:bob@noc2"})
	if err != nil || again.AbortRequested.By != ann.By || again.Rev != got.Rev {
		t.Fatalf("abort again: %+v at %d, %v; want ann's request at %d", again.AbortRequested, again.Rev, err, got.Rev)
	}
	events, err := s.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := countEvents(events, "op-abort-requested"); n != 1 {
		t.Fatalf("%d op-abort-requested events, want 1: %+v", n, events)
	}
	if e := events[len(events)-1]; e.Op != op.ID || e.Subject != "c" || e.Message != "operator:ann@noc1 asked to abort op "+op.ID+" (failover): drill over" {
		t.Errorf("event %+v", e)
	}

	// The coordinator ends the op; then it cannot be aborted.
	stored.Outcome, stored.Ended, stored.Error = site.OpAborted, time.Date(2026, 12, 2, 3, 14, 0, 0, time.UTC), "aborted by operator:ann@noc1: drill over"
	if err := s.UpdateOp(ctx, g, stored); err != nil {
		t.Fatal(err)
	}
	_, err = s.RequestAbort(ctx, op.ID, ann)
	if !errors.Is(err, site.ErrOpEnded) || !strings.Contains(err.Error(), "aborted at 2026-12-02T03:14:00Z") {
		t.Fatalf("abort an ended op: %v, want ErrOpEnded saying how and when it ended", err)
	}
}

// TestWatchOp: the op as it is, then each version in order, until fn is
// done; an unknown op, a failing fn and an op removed while watched end the
// watch with an error.
func TestWatchOp(t *testing.T) {
	s, _, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")

	if err := s.WatchOp(ctx, "no-such-op", 0, func(*site.Op) (bool, error) { return true, nil }, nil); !errors.Is(err, site.ErrNotFound) {
		t.Fatalf("watch an unknown op: %v, want ErrNotFound", err)
	}

	op := runningOp(t, ctx, s, g, time.Now().UTC())
	seen := make(chan *site.Op, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.WatchOp(ctx, op.ID, 0, func(o *site.Op) (bool, error) {
			seen <- o
			return o.Finished(), nil
		}, nil)
	}()
	next := func() *site.Op {
		t.Helper()
		select {
		case o := <-seen:
			return o
		case <-ctx.Done():
			t.Fatal("no version of the op seen")
			return nil
		}
	}
	if o := next(); o.Rev != op.Rev || o.Steps[0].Status != site.StepPending {
		t.Fatalf("first version at %d (%s); want the op as created, at %d", o.Rev, o.Steps[0].Status, op.Rev)
	}
	op.Steps[0].Status = site.StepRunning
	if err := s.UpdateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	runningRev := op.Rev
	if o := next(); o.Rev != op.Rev || o.Steps[0].Status != site.StepRunning {
		t.Fatalf("second version at %d (%s); want the step running at %d", o.Rev, o.Steps[0].Status, op.Rev)
	}
	op.Outcome, op.Ended = site.OpSucceeded, time.Now().UTC()
	if err := s.UpdateOp(ctx, g, op); err != nil {
		t.Fatal(err)
	}
	if o := next(); !o.Finished() || o.Rev != op.Rev {
		t.Fatalf("last version %s at %d; want succeeded at %d", o.Outcome, o.Rev, op.Rev)
	}
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}

	// A watcher that comes late, from the op's creation: each of the
	// three versions, in order; once history is compacted, the op as it
	// stands.
	replay := func() []string {
		t.Helper()
		var got []string
		err := s.WatchOp(ctx, op.ID, op.CreateRev, func(o *site.Op) (bool, error) {
			got = append(got, fmt.Sprintf("%s/%s@%d", o.Outcome, o.Steps[0].Status, o.Rev))
			return o.Finished(), nil
		}, func(err error) { t.Errorf("the replay broke: %v", err) })
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		return got
	}
	if got, want := replay(), fmt.Sprintf("[running/pending@%d running/running@%d succeeded/running@%d]", op.CreateRev, runningRev, op.Rev); fmt.Sprint(got) != want {
		t.Errorf("replay from the op's creation: %v; want %s", got, want)
	}
	if _, err := s.Client().Compact(ctx, op.Rev); err != nil {
		t.Fatal(err)
	}
	if got, want := replay(), fmt.Sprintf("[succeeded/running@%d]", op.Rev); fmt.Sprint(got) != want {
		t.Errorf("replay once history is compacted: %v; want %s", got, want)
	}

	errStop := errors.New("stop")
	if err := s.WatchOp(ctx, op.ID, 0, func(*site.Op) (bool, error) { return false, errStop }, nil); !errors.Is(err, errStop) {
		t.Fatalf("watch with a failing fn: %v, want its error", err)
	}

	other := runningOp(t, ctx, s, g, time.Now().UTC().Add(time.Millisecond))
	var once sync.Once
	err := s.WatchOp(ctx, other.ID, 0, func(*site.Op) (bool, error) {
		once.Do(func() {
			if _, err := s.Client().Delete(ctx, s.Keys().Op(other.ID)); err != nil {
				t.Error(err)
			}
		})
		return false, nil
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "was removed from the journal") {
		t.Fatalf("watch an op removed meanwhile: %v", err)
	}
}

// TestWatchesWithoutLeader: when the etcd member a watch goes through
// loses its leader, WatchOp and FollowEvents say the watch broke, and go on
// once the cluster has a leader again, missing neither the op's latest
// version nor any event.
func TestWatchesWithoutLeader(t *testing.T) {
	s, cl, ctx := setup(t)
	g, _ := elect(t, ctx, s, "a")
	op := runningOp(t, ctx, s, g, time.Now().UTC())
	_, rev, err := s.EventsSince(ctx, time.Time{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}

	viaA := site.NewStore(cl.Client(cl.Endpoint("a")), cl.Config.Name)
	type seen struct {
		what string
		err  error
	}
	ch := make(chan seen, 100)
	broken := func(what string) func(error) {
		return func(err error) { ch <- seen{what: what + " broken", err: err} }
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := viaA.WatchOp(wctx, op.ID, 0, func(o *site.Op) (bool, error) {
			ch <- seen{what: "op " + string(o.Outcome)}
			return o.Finished(), nil
		}, broken("op"))
		ch <- seen{what: "op watch ended", err: err}
	}()
	go func() {
		defer wg.Done()
		err := viaA.FollowEvents(wctx, rev, func(e site.Event) error {
			ch <- seen{what: "event " + e.Message}
			return nil
		}, broken("events"))
		ch <- seen{what: "event follow ended", err: err}
	}()
	got := map[string]bool{}
	wait := func(what string) {
		t.Helper()
		for !got[what] {
			select {
			case s := <-ch:
				got[s.what] = true
				if strings.HasSuffix(s.what, "ended") && s.what != what {
					t.Fatalf("%s: %v, waiting for %q", s.what, s.err, what)
				}
			case <-ctx.Done():
				t.Fatalf("waiting for %q: %v", what, ctx.Err())
			}
		}
	}
	wait("op running")
	if err := s.AppendEvent(ctx, site.Event{At: time.Now(), Kind: "test", Message: "one"}); err != nil {
		t.Fatal(err)
	}
	wait("event one")

	cl.KillMember("b")
	cl.KillMember("c")
	wait("op broken")
	wait("events broken")
	cl.StartMember("b")
	cl.StartMember("c")

	// Written through b and c while a may not have caught up yet.
	viaBC := site.NewStore(cl.Client(cl.Endpoint("b"), cl.Endpoint("c")), cl.Config.Name)
	if err := viaBC.AppendEvent(ctx, site.Event{At: time.Now(), Kind: "test", Message: "two"}); err != nil {
		t.Fatal(err)
	}
	wait("event two")
	latest, err := viaBC.Op(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	latest.Outcome, latest.Ended = site.OpSucceeded, time.Now().UTC()
	if err := viaBC.UpdateOp(ctx, g, latest); err != nil {
		t.Fatal(err)
	}
	wait("op succeeded")
	wait("op watch ended")
	cancel()
	wg.Wait()
}
