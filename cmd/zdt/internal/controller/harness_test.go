package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/failstatic"
	"github.com/zdt-project/zdt/site/membership"
	"github.com/zdt-project/zdt/site/sitetest"
)

// testCluster is three etcd members and three controllers in one process.
type testCluster struct {
	t     testing.TB
	etcd  *sitetest.Cluster
	obs   *clientv3.Client // an observer's client, through every member
	store *site.Store      // the observer's view

	mu    sync.Mutex
	ctrls map[string]*runningController
}

type runningController struct {
	site    string
	ctrl    *Controller
	client  *clientv3.Client
	cancel  context.CancelFunc
	done    chan error
	changes chan membership.Change

	mu sync.Mutex
	// early is why Run returned before the test stopped the controller
	// (its API port taken, say), nil while it runs or once stopped.
	early error
}

// stoppedEarly is why the controller's Run returned before the test
// stopped it; nil when it did not.
func (r *runningController) stoppedEarly() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.early
}

// run runs the controller until ctx ends and then sends what Run returned
// on done; a controller that stops by itself is recorded and logged, so
// that a test waiting for its site says why it never came.
func (r *runningController) run(ctx context.Context, t testing.TB) {
	err := r.ctrl.Run(ctx)
	if ctx.Err() == nil {
		if err == nil {
			err = errors.New("its Run returned nil before its context ended")
		}
		r.mu.Lock()
		r.early = err
		r.mu.Unlock()
		t.Logf("site %s: the controller stopped by itself: %v", r.site, err)
	}
	r.done <- err
}

func testServices() []config.Service {
	return []config.Service{
		{Name: "web", Sites: []string{"a", "b", "c"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/26")}},
		{Name: "db", Sites: []string{"b", "c", "a"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26")}},
	}
}

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	return newTestClusterWith(t, sitetest.Options{Services: testServices()})
}

func newTestClusterWith(t testing.TB, opts sitetest.Options) *testCluster {
	t.Helper()
	etcd := sitetest.New(t, opts)
	obs := etcd.Client()
	tc := &testCluster{
		t:     t,
		etcd:  etcd,
		obs:   obs,
		store: site.NewStore(obs, etcd.Config.Name),
		ctrls: map[string]*runningController{},
	}
	t.Cleanup(tc.killAll)
	return tc
}

type startOptions struct {
	endpoints  []string
	beforeStep func(ctx context.Context, op *site.Op, step int) error
	// peerAddrs overrides where the controller reaches the other sites'
	// peer_api (fail static).
	peerAddrs map[string]string
	// profiles serves the Go profiles on the API (Config.Profiles).
	profiles bool
}

// start runs a site's controller.
func (tc *testCluster) start(name string, opts startOptions) *runningController {
	tc.t.Helper()
	log := zaptest.NewLogger(tc.t, zaptest.Level(testLogLevel())).Named(name)
	client, err := site.NewClient(tc.etcd.Config, opts.endpoints, zap.NewNop())
	if err != nil {
		tc.t.Fatal(err)
	}
	r := &runningController{site: name, client: client, done: make(chan error, 1), changes: make(chan membership.Change, 64)}
	r.ctrl, err = New(Config{
		Cluster: tc.etcd.Config,
		Site:    name,
		Client:  client,
		Log:     log,
		OnChange: func(ch membership.Change) {
			select {
			case r.changes <- ch:
			default:
			}
		},
		BeforeStep: opts.beforeStep,
		EtcdMember: func() failstatic.MemberStatus { return tc.etcd.MemberStatus(name) },
		PeerAddrs:  opts.peerAddrs,
		Profiles:   opts.profiles,
	})
	if err != nil {
		tc.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(ctx, tc.t)
	tc.mu.Lock()
	tc.ctrls[name] = r
	tc.mu.Unlock()
	return r
}

// kill stops a site's controller as a crash would: its etcd client goes
// first, so it can neither resign, revoke nor report.
func (tc *testCluster) kill(name string) {
	tc.mu.Lock()
	r := tc.ctrls[name]
	delete(tc.ctrls, name)
	tc.mu.Unlock()
	if r == nil {
		return
	}
	_ = r.client.Close()
	r.cancel()
	select {
	case <-r.done:
		if err := r.stoppedEarly(); err != nil {
			tc.t.Errorf("controller %s had stopped by itself before the test stopped it: %v", name, err)
		}
	case <-time.After(10 * time.Second):
		tc.t.Errorf("controller %s did not stop within 10s of being killed", name)
	}
}

func (tc *testCluster) killAll() {
	for _, s := range tc.etcd.Config.Sites {
		tc.kill(s.Name)
	}
}

func (tc *testCluster) startAll() {
	for _, s := range tc.etcd.Config.Sites {
		tc.start(s.Name, startOptions{})
	}
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitKey waits, on a watch, until the key's value satisfies cond (nil
// value: the key is absent), and returns the key-value (nil if absent) and
// the time the matching state was seen.
func waitKey(t testing.TB, ctx context.Context, c *clientv3.Client, key string, what string, cond func(kv *clientv3.GetResponse) bool) (*clientv3.GetResponse, time.Time) {
	t.Helper()
	return waitKeys(t, ctx, c, key, false, what, cond)
}

// waitKeys is waitKey for one key or, with prefix, every key under it (read
// oldest first).
func waitKeys(t testing.TB, ctx context.Context, c *clientv3.Client, key string, prefix bool, what string, cond func(kv *clientv3.GetResponse) bool) (*clientv3.GetResponse, time.Time) {
	t.Helper()
	var getOpts, watchOpts []clientv3.OpOption
	if prefix {
		getOpts = clientv3.WithFirstCreate()
		watchOpts = []clientv3.OpOption{clientv3.WithPrefix()}
	}
	for ctx.Err() == nil {
		resp, err := c.Get(ctx, key, getOpts...)
		if err != nil {
			select { // etcd unavailable for a moment (a member was killed)
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if cond(resp) {
			return resp, time.Now()
		}
		wctx, cancel := context.WithCancel(ctx)
		for wr := range c.Watch(wctx, key, append(watchOpts, clientv3.WithRev(resp.Header.Revision+1))...) {
			if wr.Err() != nil {
				break
			}
			if len(wr.Events) > 0 {
				break // read it again
			}
		}
		cancel()
	}
	t.Fatalf("waiting for %s (%s): %v", key, what, ctx.Err())
	return nil, time.Time{}
}

func present(r *clientv3.GetResponse) bool { return len(r.Kvs) > 0 }
func absent(r *clientv3.GetResponse) bool  { return len(r.Kvs) == 0 }

func decodeKV[T any](t testing.TB, r *clientv3.GetResponse) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Kvs[0].Value, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// waitAssigned waits until the service is assigned to the site.
func (tc *testCluster) waitAssigned(ctx context.Context, service, to string) site.Assignment {
	tc.t.Helper()
	resp, _ := waitKey(tc.t, ctx, tc.obs, tc.store.Keys().Assignment(service), "assigned to "+to, func(r *clientv3.GetResponse) bool {
		if !present(r) {
			return false
		}
		var a site.Assignment
		return json.Unmarshal(r.Kvs[0].Value, &a) == nil && a.Site == to
	})
	a := decodeKV[site.Assignment](tc.t, resp)
	a.Epoch = resp.Kvs[0].ModRevision
	return a
}

// coordinator waits until some controller coordinates and returns its site.
func (tc *testCluster) coordinator(ctx context.Context) string {
	tc.t.Helper()
	resp, _ := waitKeys(tc.t, ctx, tc.obs, tc.store.Keys().Election(), true, "a coordinator", present)
	return string(resp.Kvs[0].Value)
}

// waitChange waits for the controller to enter the state and returns when.
func (r *runningController) waitChange(t testing.TB, ctx context.Context, to site.ControllerState) membership.Change {
	t.Helper()
	for {
		select {
		case ch := <-r.changes:
			if ch.To == to {
				return ch
			}
		case <-ctx.Done():
			t.Fatalf("site %s never became %s (now %s: %s)", r.site, to, r.ctrl.Member().Info().State, r.ctrl.Member().Info().Reason)
		}
	}
}

// finishedOp waits until the op is finished and returns it.
func (tc *testCluster) finishedOp(ctx context.Context, id string) *site.Op {
	tc.t.Helper()
	resp, _ := waitKey(tc.t, ctx, tc.obs, tc.store.Keys().Op(id), "op finished", func(r *clientv3.GetResponse) bool {
		if !present(r) {
			return false
		}
		var op site.Op
		return json.Unmarshal(r.Kvs[0].Value, &op) == nil && op.Finished()
	})
	op := decodeKV[site.Op](tc.t, resp)
	return &op
}

// testLogLevel is the controllers' log level in tests: warn, or what
// ZDT_TEST_LOG says (debug, info, ...).
func testLogLevel() zapcore.Level {
	if l, err := zapcore.ParseLevel(os.Getenv("ZDT_TEST_LOG")); err == nil && os.Getenv("ZDT_TEST_LOG") != "" {
		return l
	}
	return zapcore.WarnLevel
}
