package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

var sites = []string{"a", "b", "c"}

// fixture is three sites, each with a PostgreSQL member of group "pg" and a
// replication reconciler, sharing one etcd cluster. Service "db" (and any
// extra services) use the group; it starts assigned to a, the primary.
type fixture struct {
	t       testing.TB
	etcd    *sitetest.Cluster
	cl      *config.Cluster
	pg      *pgtest.Group
	srv     map[string]*pgtest.Server
	store   *site.Store // the test's own
	recs    map[string]*Reconciler
	members map[string]*postgres.Member
	regs    map[string]*prometheus.Registry
	proxies map[string]*sitetest.Proxy
	// leased says, per site, what the reconciler's Serving hook answers
	// (true unless a test says otherwise).
	leased map[string]*atomic.Bool
	opts   fixtureOptions
	// stops end each site's reconciler as a crash would: no last pass.
	stops map[string]func()
}

type fixtureOptions struct {
	synchronous bool
	rpo         *config.RPO
	services    []string // extra services using the group
	// wrongPassword: these sites' reconcilers get a wrong password.
	wrongPassword []string
	// proxied: these sites' reconcilers reach etcd through a proxy.
	proxied []string
	// wrap, when set, gives each site's reconciler the member it returns
	// instead of the driver of the site's server.
	wrap func(srv *pgtest.Server, m *postgres.Member) replication.Member
	// passfile: the members' replication conninfo names a libpq password
	// file instead of carrying the password, as the lab's does.
	passfile bool
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	pg := pgtest.Start(t, 3, pgtest.Options{Passfile: o.passfile})
	rpo := config.RPO{MaxLagBytes: config.DefaultMaxLagBytes, MaxLagSeconds: config.DefaultMaxLagSeconds}
	if o.rpo != nil {
		rpo = *o.rpo
	}
	var svcs []config.Service
	for _, name := range append([]string{"db"}, o.services...) {
		svcs = append(svcs, config.Service{Name: name, Sites: sites, ReplicationGroup: "pg", RPO: rpo})
	}
	etcd := sitetest.New(t, sitetest.Options{Services: svcs})
	cl := etcd.Config
	grp := config.ReplicationGroup{Name: "pg", Driver: config.DriverPostgres, Synchronous: o.synchronous}
	f := &fixture{t: t, etcd: etcd, cl: cl, pg: pg, srv: map[string]*pgtest.Server{},
		recs: map[string]*Reconciler{}, members: map[string]*postgres.Member{}, regs: map[string]*prometheus.Registry{},
		leased:  map[string]*atomic.Bool{},
		proxies: map[string]*sitetest.Proxy{}, opts: o, stops: map[string]func(){}}
	for _, s := range pg.Members {
		f.srv[s.Name] = s
		grp.Members = append(grp.Members, config.ReplicationMember{Site: s.Name, Conn: s.ConnString,
			ReplicationConn: s.ReplicationConnInfo, DataDir: s.DataDir, BinDir: s.Config.BinDir, OSUser: s.Config.OSUser})
	}
	cl.Replication = []config.ReplicationGroup{grp}
	f.store = site.NewStore(etcd.Client(), cl.Name)
	for _, s := range sites {
		f.put(f.store.Keys().Alive(s), site.Alive{Site: s})
	}
	f.assign("db", "a", "", "")
	for _, svc := range o.services {
		f.assign(svc, "a", "", "")
	}
	f.exec("a", "CREATE TABLE t (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")

	for _, name := range sites {
		f.startReconciler(name)
	}
	f.waitMember("a", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable })
	for _, s := range sites[1:] {
		if contains(o.wrongPassword, s) {
			continue
		}
		f.waitMember(s, 30*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy })
	}
	return f
}

// startReconciler starts the site's reconciler, with a new driver for its
// member, and tells it the site is up.
func (f *fixture) startReconciler(name string) {
	t := f.t
	pc := f.srv[name].Config
	pc.QueryTimeout = 2 * time.Second
	pc.StreamTimeout = 10 * time.Second
	pc.Log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("pg-" + name)
	if contains(f.opts.wrongPassword, name) {
		pc.ConnString = strings.Replace(pc.ConnString, "password=", "password=wrong", 1)
	}
	m, err := postgres.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	f.members[name] = m
	var member replication.Member = m
	if f.opts.wrap != nil {
		member = f.opts.wrap(f.srv[name], m)
	}
	client := f.etcd.Client()
	if contains(f.opts.proxied, name) {
		p := f.etcd.NewProxy(name)
		f.proxies[name] = p
		client = f.etcd.Client(p.URL)
		t.Cleanup(p.Heal) // before the client closes
	}
	reg := prometheus.NewRegistry()
	f.regs[name] = reg
	leased := &atomic.Bool{}
	leased.Store(true)
	f.leased[name] = leased
	r, err := New(Config{Cluster: f.cl, Site: name, Store: site.NewStore(client, f.cl.Name),
		Members: map[string]replication.Member{"pg": member}, Registry: reg, Serving: leased.Load,
		Log:      zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("rec-" + name),
		Interval: 200 * time.Millisecond, PublishEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.recs[name] = r
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("reconciler %s: %v", name, err)
			}
		})
	}
	f.stops[name] = stop
	t.Cleanup(stop)
	r.SetState(site.ControllerUp)
}

// crash ends the site's reconciler as a killed controller ends: no last
// pass, nothing fenced; its member stays as it is.
func (f *fixture) crash(s string) { f.stops[s]() }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fixture) put(key string, v any) int64 {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.store.Client().Put(ctx, key, string(b))
	if err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

func (f *fixture) del(key string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.store.Client().Delete(ctx, key); err != nil {
		f.t.Fatalf("delete %s: %v", key, err)
	}
}

// assign writes a service's assignment as the coordinator would; it
// returns its epoch.
func (f *fixture) assign(svc, to, from, kind string) int64 {
	return f.put(f.store.Keys().Assignment(svc), site.Assignment{Service: svc, Site: to, Op: "test", At: time.Now(), From: from, Kind: kind})
}

func (f *fixture) fence(s string) {
	f.put(f.store.Keys().Fence(s), site.Fence{Site: s, Op: "test", By: "test", At: time.Now(), Reason: "test"})
}

func (f *fixture) exec(s string, stmts ...string) { f.srv[s].Exec(context.Background(), stmts...) }

// member reads the site's published report of group pg.
func (f *fixture) member(ctx context.Context, s string) (site.MemberReport, int64, bool) {
	f.t.Helper()
	resp, err := f.store.Client().Get(ctx, f.store.Keys().SiteReplication(s))
	if err != nil {
		f.t.Fatalf("read the report of %s: %v", s, err)
	}
	if len(resp.Kvs) == 0 {
		return site.MemberReport{}, resp.Header.Revision, false
	}
	var rep site.ReplicationReport
	if err := json.Unmarshal(resp.Kvs[0].Value, &rep); err != nil {
		f.t.Fatal(err)
	}
	for _, m := range rep.Members {
		if m.Group == "pg" {
			return m, resp.Header.Revision, true
		}
	}
	return site.MemberReport{}, resp.Header.Revision, false
}

// waitMember waits, on a watch of the site's report, until cond holds for
// its member of pg, and returns that report.
func (f *fixture) waitMember(s string, within time.Duration, cond func(site.MemberReport) bool) site.MemberReport {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, rev, ok := f.member(ctx, s)
	if ok && cond(m) {
		return m
	}
	last := m
	wch := f.store.WatchKey(ctx, f.store.Keys().SiteReplication(s), false, rev+1)
	for resp := range wch {
		for _, ev := range resp.Events {
			var rep site.ReplicationReport
			if json.Unmarshal(ev.Kv.Value, &rep) != nil {
				continue
			}
			for _, m := range rep.Members {
				if m.Group == "pg" {
					last = m
					if cond(m) {
						return m
					}
				}
			}
		}
	}
	f.t.Fatalf("site %s: report not as wanted within %s; last: %+v", s, within, last)
	return last
}

// actions is the count of an action on site s by result.
func (f *fixture) actions(s, action, result string) float64 {
	f.t.Helper()
	mfs, err := f.regs[s].Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "zdt_replication_actions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["action"] == action && labels["result"] == result && labels["group"] == "pg" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// gauge is a gauge of site s for group pg (with extra labels).
func (f *fixture) gauge(s, name string, extra map[string]string) (float64, bool) {
	f.t.Helper()
	mfs, err := f.regs[s].Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := extra[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// writer inserts rows into t on one server as fast as it can, recording
// the ids whose commit was acknowledged, until stop is called or the
// server stops answering.
type writer struct {
	mu    sync.Mutex
	acked []int64
	stop  context.CancelFunc
	done  chan struct{}
}

func (f *fixture) startWriter(s string, first int64) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{stop: cancel, done: make(chan struct{})}
	conn := f.srv[s].ConnString
	go func() {
		defer close(w.done)
		c, err := pgx.Connect(ctx, conn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for id := first; ctx.Err() == nil; id++ {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Exec(qctx, `INSERT INTO t (id) SELECT $1`, id)
			qcancel()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.acked = append(w.acked, id)
			w.mu.Unlock()
		}
	}()
	f.t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	w.stop()
	<-w.done
}

func (w *writer) ids() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.acked...)
}

// startupPid finds the startup (WAL replay) process of a standby.
func startupPid(t *testing.T, s *pgtest.Server) int {
	t.Helper()
	parent := s.Pid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.HasPrefix(string(cmd), "postgres: startup") {
			return pid
		}
	}
	t.Fatalf("%s: no startup process under postmaster %d", s.Name, parent)
	return 0
}

// stopReplay stops a standby's WAL replay (SIGSTOP to its startup process)
// until the returned function or the test's end resumes it.
func stopReplay(t *testing.T, s *pgtest.Server) func() {
	pid := startupPid(t, s)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume := func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

// inRecovery says whether the server is a standby.
func inRecovery(ctx context.Context, s *pgtest.Server) (bool, error) {
	c, err := pgx.Connect(ctx, s.ConnString)
	if err != nil {
		return false, err
	}
	defer c.Close(context.Background())
	var r bool
	err = c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&r)
	return r, err
}

// tryWrite attempts one write on s, on a new session: nil when it
// committed.
func tryWrite(ctx context.Context, s *pgtest.Server, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.ConnString)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, `INSERT INTO t (id) SELECT $1`, id)
	return err
}

// streamsTo waits until primary lists the standby as streaming.
func streamsTo(primary *pgtest.Server, standby string, within time.Duration) {
	primary.Eventually(within, func(c *pgx.Conn) (bool, string) {
		var n int
		err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`, standby).Scan(&n)
		if err != nil {
			return false, err.Error()
		}
		return n == 1, fmt.Sprintf("%s not streaming", standby)
	})
}

// hasRow waits until the row id is on s.
func hasRow(s *pgtest.Server, id int64, within time.Duration) {
	s.Eventually(within, func(c *pgx.Conn) (bool, string) {
		var n int
		if err := c.QueryRow(context.Background(), `SELECT count(*) FROM t WHERE id = $1`, id).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 1, fmt.Sprintf("row %d missing", id)
	})
}

// events returns the event log's messages of a kind.
func (f *fixture) events(kind string) []string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := f.store.Events(ctx, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e.Message)
		}
	}
	return out
}

// passes waits until the site's reconciler has done n more passes.
func (f *fixture) passes(s string, n int64) {
	f.t.Helper()
	want, _ := f.recs[s].passesDone()
	want += n
	f.waitPasses(s, time.Duration(n+5)*2*time.Second, func() bool {
		done, _ := f.recs[s].passesDone()
		return done >= want
	}, fmt.Sprintf("%d passes done", n))
}

// waitPasses waits until cond holds, checking it as each pass of the
// site's reconciler ends, and fails the test, saying what it waited for,
// after within.
func (f *fixture) waitPasses(s string, within time.Duration, cond func() bool, what string) {
	f.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		_, ended := f.recs[s].passesDone()
		if cond() {
			return
		}
		select {
		case <-ended:
		case <-timer.C:
			f.t.Fatalf("site %s: not %s within %s", s, what, within)
		}
	}
}
