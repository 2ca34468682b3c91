package failover

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// unreachableFencer reaches none of a site's resources.
type unreachableFencer struct{}

func (unreachableFencer) Fence(_ context.Context, s string) []site.ResourceOutcome {
	return []site.ResourceOutcome{{Resource: "member pg at " + s, Outcome: site.FenceUnreachable, Detail: "dial: i/o timeout"}}
}

// TestAbortRequested runs a coordinator on a real etcd through the failover
// of a dark site and asks, as zdt ops abort does, for the op to be aborted:
// once while a step runs (the coordinator's next write of the op fails on
// the request's revision; it must read the op again and see the request,
// not lose it) and once while a step waits for an operator. Either way the
// op ends aborted before its next step, the rest is not run, and the abort
// is in the event log.
func TestAbortRequested(t *testing.T) {
	req := site.Request{By: "operator:ann@noc1", Reason: "drill"}
	const why = "aborted by operator:ann@noc1: drill"
	tests := []struct {
		name string
		// duringStep: the request is written while this step runs (after
		// it was journaled as running, before its action); -1: not so.
		duringStep int
		// whileWaiting: the request is written once the op waits for an
		// operator's confirmation of the fence.
		whileWaiting bool
		want         []site.Step
	}{
		{
			name:       "while the fence step runs",
			duringStep: 0,
			want: []site.Step{
				{Name: StepFence, Status: site.StepFailed, Detail: "interrupted: " + why},
				{Name: StepFenceResources, Status: site.StepSkipped, Detail: "not run: " + why},
				{Name: StepAssign, Status: site.StepSkipped, Detail: "not run: " + why},
				{Name: StepAwaitPrefixes, Status: site.StepSkipped, Detail: "not run: " + why},
			},
		},
		{
			name:         "while waiting for a confirmation",
			duringStep:   -1,
			whileWaiting: true,
			want: []site.Step{
				{Name: StepFence, Status: site.StepDone, Detail: "site c fenced"},
				{Name: StepFenceResources, Status: site.StepFailed, Detail: "interrupted: " + why + "; before that: site c: unreachable, presumed dark: member pg at c; waiting for an operator"},
				{Name: StepAssign, Status: site.StepSkipped, Detail: "not run: " + why},
				{Name: StepAwaitPrefixes, Status: site.StepSkipped, Detail: "not run: " + why},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := sitetest.New(t, sitetest.Options{Services: []config.Service{
				{Name: "web", Sites: []string{"c", "a", "b"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/26")}},
			}})
			cl.Config.Fencing.RequireConfirmation = true
			store := site.NewStore(cl.Client(), cl.Config.Name)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			darkSiteServingWeb(t, ctx, store)

			var once sync.Once
			requested := make(chan error, 1)
			coord := New(Config{
				Cluster: cl.Config,
				Site:    "a",
				Store:   store,
				Log:     zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
				Fencer:  unreachableFencer{},
				BeforeStep: func(ctx context.Context, op *site.Op, step int) error {
					if op.Kind == KindFailover && step == tt.duringStep {
						once.Do(func() {
							_, err := store.RequestAbort(ctx, op.ID, req)
							requested <- err
						})
					}
					return nil
				},
			})
			cctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- coord.Run(cctx) }()
			defer func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("coordinator: %v", err)
				}
			}()

			id := failoverID(t, ctx, store)
			err := store.WatchOp(ctx, id, 0, func(op *site.Op) (bool, error) {
				if tt.whileWaiting && op.AbortRequested == nil && len(op.Steps) > 1 &&
					op.Steps[1].Status == site.StepRunning && strings.Contains(op.Steps[1].Detail, "waiting for an operator") {
					_, err := store.RequestAbort(ctx, op.ID, req)
					requested <- err
				}
				return op.Finished(), nil
			}, nil)
			if err != nil {
				t.Fatalf("watch op %s: %v", id, err)
			}
			if err := <-requested; err != nil {
				t.Fatalf("request the abort: %v", err)
			}

			op, err := store.Op(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if op.Outcome != site.OpAborted || op.Error != why || op.Ended.IsZero() {
				t.Errorf("op ended %s (%q) at %s; want aborted (%q)", op.Outcome, op.Error, op.Ended, why)
			}
			if op.AbortRequested == nil || op.AbortRequested.By != req.By || op.AbortRequested.Reason != req.Reason {
				t.Errorf("the request in the ended op: %+v", op.AbortRequested)
			}
			if len(op.Steps) != len(tt.want) {
				t.Fatalf("steps %+v; want %d", op.Steps, len(tt.want))
			}
			for i, want := range tt.want {
				st := op.Steps[i]
				if st.Name != want.Name || st.Status != want.Status || !strings.HasPrefix(st.Detail, want.Detail) {
					t.Errorf("step %d: %s %s %q; want %s %s %q...", i, st.Name, st.Status, st.Detail, want.Name, want.Status, want.Detail)
				}
				if ran := st.Status != site.StepSkipped; ran == st.Ended.IsZero() {
					t.Errorf("step %d (%s, %s) ended at %s", i, st.Name, st.Status, st.Ended)
				}
			}
			// A later op may move web off the fenced site; this one did not.
			if a, err := store.Assignment(ctx, "web"); err != nil || a.Op == id {
				t.Errorf("service web after the abort: %+v, %v; want it not moved by the aborted op", a, err)
			}
			// The event of the outcome follows the op's last write.
			kinds := eventKindsUntil(t, ctx, store, id, "op-aborted")
			if !containsInOrder(kinds, "op-started", "op-abort-requested", "op-aborted") {
				t.Errorf("events of the op: %v; want op-started, op-abort-requested, op-aborted in that order", kinds)
			}
		})
	}
}

// darkSiteServingWeb has sites a and b up and site c, which serves web,
// dark: registered once, its lease gone.
func darkSiteServingWeb(t *testing.T, ctx context.Context, store *site.Store) {
	t.Helper()
	for _, s := range []string{"a", "b", "c"} {
		lease, err := store.Client().Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Join(ctx, lease.ID, site.Alive{Site: s}, site.Registration{Site: s}); err != nil {
			t.Fatal(err)
		}
		if s == "c" {
			if _, err := store.Client().Revoke(ctx, lease.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := json.Marshal(site.Assignment{Service: "web", Site: "c", Op: "op-0", At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Client().Put(ctx, store.Keys().Assignment("web"), string(b)); err != nil {
		t.Fatal(err)
	}
}

// failoverID waits until the coordinator has journaled a failover and
// returns its id.
func failoverID(t *testing.T, ctx context.Context, store *site.Store) string {
	t.Helper()
	for resp := range store.WatchKey(ctx, store.Keys().Ops(), true, 1) {
		for _, ev := range resp.Events {
			var op site.Op
			if err := json.Unmarshal(ev.Kv.Value, &op); err == nil && op.Kind == KindFailover {
				return op.ID
			}
		}
	}
	t.Fatalf("no failover journaled: %v", errors.Join(ctx.Err(), errors.New("watch ended")))
	return ""
}

// eventKindsUntil returns the kinds of the op's events, oldest first, once
// one of kind last is in the log.
func eventKindsUntil(t *testing.T, ctx context.Context, store *site.Store, op, last string) []string {
	t.Helper()
	var kinds []string
	errFound := errors.New("found")
	add := func(e site.Event) error {
		if e.Op != op {
			return nil
		}
		kinds = append(kinds, e.Kind)
		if e.Kind == last {
			return errFound
		}
		return nil
	}
	events, rev, err := store.EventsSince(ctx, time.Time{}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if add(e) != nil {
			return kinds
		}
	}
	if err := store.FollowEvents(ctx, rev, add, nil); !errors.Is(err, errFound) {
		t.Fatalf("waiting for event %s of op %s: %v (events so far: %v)", last, op, err, kinds)
	}
	return kinds
}

// containsInOrder reports whether want occur in got in that order.
func containsInOrder(got []string, want ...string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}
