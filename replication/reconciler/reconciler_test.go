package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// Lag under a steady write load is observed and published; a standby whose
// replay is stopped shows its lag growing, and back to 0 once it resumes.
func TestLagPublished(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if m, _, _ := f.member(context.Background(), "a"); m.Role != "primary" || !m.Writable || m.LagBytes != 0 {
		t.Errorf("a: %+v, want a writable primary with no lag", m)
	}
	w := f.startWriter("a", 1)
	resume := stopReplay(t, f.srv["b"])
	first := f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.LagBytes > 0 })
	grown := f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.LagBytes > first.LagBytes+1<<20 })
	if grown.Role != "standby" {
		t.Errorf("b while replay is stopped: role %s, want standby", grown.Role)
	}
	if v, ok := f.gauge("b", "zdt_replication_lag_bytes", nil); !ok || v <= 0 {
		t.Errorf("b: zdt_replication_lag_bytes = %v, %v; want > 0", v, ok)
	}
	c, _, _ := f.member(context.Background(), "c")
	if c.Role != "standby" || !c.Healthy {
		t.Errorf("c: %+v, want a healthy standby", c)
	}
	t.Logf("b's published lag grew from %d to %d bytes", first.LagBytes, grown.LagBytes)
	resume()
	w.halt()
	if len(w.ids()) == 0 {
		t.Fatal("the writer wrote nothing")
	}
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.LagBytes == 0 && m.Healthy })
	if v, _ := f.gauge("b", "zdt_replication_role", map[string]string{"role": "standby"}); v != 1 {
		t.Errorf("b: zdt_replication_role{role=standby} = %v, want 1", v)
	}
}

// prober tries a write on every member in rounds and counts the rounds in
// which more than one member accepted it.
type prober struct {
	overlaps, rounds atomic.Int64
	wrote            sync.Map // site -> true once a write succeeded there
	stop             context.CancelFunc
	done             chan struct{}
	mu               sync.Mutex
	detail           []string
}

func (f *fixture) startProber() *prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		id := int64(1 << 40)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			var wg sync.WaitGroup
			ok := make([]bool, len(sites))
			base := id
			id += int64(len(sites))
			for i, s := range sites {
				wg.Go(func() { ok[i] = tryWrite(ctx, f.srv[s], base+int64(i)) == nil })
			}
			wg.Wait()
			var writable []string
			for i, s := range sites {
				if ok[i] {
					writable = append(writable, s)
					p.wrote.Store(s, true)
				}
			}
			p.rounds.Add(1)
			if len(writable) > 1 {
				p.overlaps.Add(1)
				p.mu.Lock()
				p.detail = append(p.detail, time.Now().Format(time.RFC3339Nano)+" "+strings.Join(writable, "+"))
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	f.t.Cleanup(p.halt)
	return p
}

func (p *prober) halt() {
	p.stop()
	<-p.done
}

// Failover: the primary is killed, its site fenced and the service assigned
// to b; b promotes, c follows b, and a, when its site comes back fenced, is
// rewound and follows b. Never two writable members at once.
func TestFailover(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	probe := f.startProber()
	w := f.startWriter("a", 1)
	f.srv["a"].Eventually(10*time.Second, func(_ *pgx.Conn) (bool, string) {
		// The prober, too, must have seen a writable before a dies.
		_, probed := probe.wrote.Load("a")
		return len(w.ids()) > 100 && probed, fmt.Sprintf("%d writes, prober wrote on a: %t", len(w.ids()), probed)
	})

	f.leased["a"].Store(false) // a goes dark: its controller holds no lease, so it starts nothing
	f.srv["a"].Kill(syscall.SIGKILL)
	w.halt()
	f.del(f.store.Keys().Alive("a"))
	f.fence("a")
	began := time.Now()
	epoch := f.assign("db", "b", "a", "failover")

	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable && m.Epoch == epoch })
	t.Logf("b promoted %s after the assignment", time.Since(began).Round(time.Millisecond))
	streamsTo(f.srv["b"], "c", 30*time.Second)
	f.waitMember("c", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy && m.Epoch == epoch })
	acked := w.ids()
	hasRow(f.srv["b"], acked[len(acked)-1]-50, 10*time.Second) // async: the last few may be lost, not the bulk

	f.recs["a"].SetState(site.ControllerFenced)
	f.waitMember("a", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy })
	streamsTo(f.srv["b"], "a", 10*time.Second)
	f.exec("b", "INSERT INTO t (id) VALUES (-1)")
	hasRow(f.srv["a"], -1, 10*time.Second)
	if rec, err := inRecovery(ctx, f.srv["a"]); err != nil || !rec {
		t.Errorf("a after it came back: in recovery = %v, %v; want a standby", rec, err)
	}
	if n := f.actions("b", "promote", "ok"); n != 1 {
		t.Errorf("b promoted %v times, want 1", n)
	}
	if n := f.actions("a", "follow", "ok"); n < 1 {
		t.Errorf("a followed %v times, want at least 1", n)
	}

	probe.halt()
	for _, s := range []string{"a", "b"} {
		if _, ok := probe.wrote.Load(s); !ok {
			t.Errorf("the prober never wrote on %s: it does not see writability", s)
		}
	}
	if n := probe.overlaps.Load(); n != 0 {
		t.Errorf("%d of %d probe rounds found two writable members: %v", n, probe.rounds.Load(), probe.detail)
	}
	t.Logf("%d probe rounds, no two writable members", probe.rounds.Load())
}

// Synchronous replication: no acknowledged write is lost when the primary
// is killed under load and the furthest synchronous standby is promoted.
func TestSynchronousNoLoss(t *testing.T) {
	// RPO 0: only a standby that holds every acknowledged commit may be
	// promoted; the reports of the old primary and the other standby tell.
	rpo := config.RPO{MaxLagBytes: -1, MaxLagSeconds: -1, RequireSync: true}
	f := newFixture(t, fixtureOptions{synchronous: true, rpo: &rpo})
	ctx := context.Background()
	a := f.waitMember("a", 30*time.Second, func(m site.MemberReport) bool { return m.Sync })
	if !strings.Contains(a.Detail, "quorum") {
		t.Errorf("a's detail = %q, want its standbys' quorum sync states", a.Detail)
	}
	w := f.startWriter("a", 1)
	f.srv["a"].Eventually(10*time.Second, func(_ *pgx.Conn) (bool, string) { return len(w.ids()) > 200, "writer too slow" })
	f.leased["a"].Store(false) // a goes dark: its controller holds no lease, so it starts nothing
	f.srv["a"].Kill(syscall.SIGKILL)
	w.halt()
	acked := w.ids()

	// ANY 1 (b, c): the furthest standby holds every acknowledged commit;
	// choosing it is the coordinator's part.
	target, best := "", uint64(0)
	for _, s := range []string{"b", "c"} {
		var lsn string
		c := f.srv[s].Connect(ctx)
		if err := c.QueryRow(ctx, `SELECT pg_last_wal_receive_lsn()::text`).Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		pos, err := postgres.ParseLSN(lsn)
		if err != nil {
			t.Fatal(err)
		}
		if target == "" || pos > best {
			target, best = s, pos
		}
	}
	f.del(f.store.Keys().Alive("a"))
	f.fence("a")
	epoch := f.assign("db", target, "a", "failover")
	f.waitMember(target, 30*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable && m.Epoch == epoch })

	c := f.srv[target].Connect(ctx)
	var missing int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = a.id)`, acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Errorf("%d of %d acknowledged writes missing on the new primary %s", missing, len(acked), target)
	}
	var names string
	if err := c.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names')`).Scan(&names); err != nil {
		t.Fatal(err)
	}
	other := "b"
	if target == "b" {
		other = "c"
	}
	if !strings.HasPrefix(names, "ANY 1") || !strings.Contains(names, "a") || !strings.Contains(names, other) {
		t.Errorf("new primary's synchronous_standby_names = %q, want ANY 1 of a and %s", names, other)
	}
	f.waitMember(target, 30*time.Second, func(m site.MemberReport) bool { return m.Sync }) // the other standby follows it synchronously
	t.Logf("%d acknowledged writes, all on %s", len(acked), target)
}

// Asynchronous replication with the target's lag above the limit: the
// assignment is refused, with the reason, and nothing is promoted.
func TestRefusedWhenLagging(t *testing.T) {
	rpo := config.RPO{MaxLagBytes: 64 << 10, MaxLagSeconds: -1}
	f := newFixture(t, fixtureOptions{rpo: &rpo})
	ctx := context.Background()
	resume := stopReplay(t, f.srv["b"])
	// One statement, several MiB of WAL: how fast a writer of one row per
	// commit makes lag depends on the machine's load.
	f.srv["a"].Exec(ctx, `INSERT INTO t (id) SELECT g FROM generate_series(1000001, 1100000) AS g`)
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.LagBytes > 1<<20 })
	f.fence("a")
	epoch := f.assign("db", "b", "a", "failover")
	m := f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return m.Epoch == epoch && strings.Contains(m.Detail, "promotion refused")
	})
	if !strings.Contains(m.Detail, "exceeds the limit of 64 KiB") {
		t.Errorf("b's detail = %q, want the Eligible reason", m.Detail)
	}
	if rec, err := inRecovery(ctx, f.srv["b"]); err != nil || !rec {
		t.Errorf("b: in recovery = %v, %v; want still a standby", rec, err)
	}
	if n := f.actions("b", "refuse", "refused"); n < 1 {
		t.Errorf("refusals counted: %v, want at least 1", n)
	}
	if n := f.actions("b", "promote", "ok") + f.actions("b", "promote", "error"); n != 0 {
		t.Errorf("promotions attempted: %v, want 0", n)
	}
	if evs := f.events("replication-refuse"); len(evs) != 1 || !strings.Contains(evs[0], "exceeds the limit") {
		t.Errorf("refusal events = %q, want one with the reason", evs)
	}
	t.Logf("refused: %s", m.Detail)

	resume()
}

// Stale or bad input: conflicting and stale assignments are not acted on,
// an unreachable member and a wrong password are reported, and a second
// writable primary on a site that is not active is fenced and follows.
func TestBadInput(t *testing.T) {
	f := newFixture(t, fixtureOptions{services: []string{"db2"}, wrongPassword: []string{"c"}})
	ctx := context.Background()

	c := f.waitMember("c", 30*time.Second, func(m site.MemberReport) bool { return !m.Healthy && m.Detail != "" })
	if !strings.Contains(c.Detail, "password authentication failed") || c.Role != "unknown" {
		t.Errorf("c with a wrong password: %+v, want role unknown and the authentication error", c)
	}

	// db and db2 disagree: no action.
	conflict := f.assign("db", "b", "a", "switchover")
	m := f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return strings.Contains(m.Detail, "conflicting assignments") })
	t.Logf("b: %s", m.Detail)
	newer := f.assign("db2", "a", "", "switchover")
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return strings.Contains(m.Detail, "(epoch "+strconv.FormatInt(newer, 10)+")")
	})
	// db2 is gone: db's assignment to b (older than db2's, already seen)
	// is stale and must not be acted on.
	f.del(f.store.Keys().Assignment("db2"))
	m = f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return strings.Contains(m.Detail, "stale assignment") })
	if !strings.Contains(m.Detail, "epoch "+strconv.FormatInt(conflict, 10)) || !strings.Contains(m.Detail, strconv.FormatInt(newer, 10)) {
		t.Errorf("b: %q, want the stale epoch %d and the newer %d", m.Detail, conflict, newer)
	}
	if m.Role != "standby" {
		t.Errorf("b acted on a stale assignment: %+v", m)
	}
	if rec, err := inRecovery(ctx, f.srv["b"]); err != nil || !rec {
		t.Errorf("b: in recovery = %v, %v; want still a standby", rec, err)
	}
	f.assign("db", "a", "", "switchover")
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Healthy && strings.Contains(m.Detail, "following site a") })

	// b's server dies (with its host, say): b, where a is active and a
	// writable primary, starts it again only as a standby, by following a;
	// never as it was.
	before := f.actions("b", "follow", "ok")
	f.srv["b"].Kill(syscall.SIGKILL)
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return m.Role == "standby" && m.Healthy && f.actions("b", "follow", "ok") > before
	})
	if rec, err := inRecovery(ctx, f.srv["b"]); err != nil || !rec {
		t.Errorf("b started again: in recovery = %v, %v; want a standby", rec, err)
	}
	if n := f.actions("b", "start", "ok") + f.actions("b", "start", "error"); n != 0 {
		t.Errorf("b's server was started as it was %v times, away from the active site", n)
	}

	// b becomes a second writable primary behind the controller's back.
	f.exec("b", "SELECT pg_promote()")
	m = f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return strings.Contains(m.Detail, "writable primary but site a is active")
	})
	t.Logf("b: %s", m.Detail)
	f.waitMember("b", 60*time.Second, func(m site.MemberReport) bool {
		return m.Role == "standby" && m.Healthy && strings.Contains(m.Detail, "following site a")
	})
	if n := f.actions("b", "fence", "ok"); n < 1 {
		t.Errorf("b fenced %v times, want at least 1", n)
	}
	streamsTo(f.srv["a"], "b", 10*time.Second)
	if err := tryWrite(ctx, f.srv["b"], 1<<50); err == nil {
		t.Error("b accepts writes after it was made to follow a")
	}
	if err := tryWrite(ctx, f.srv["a"], 1<<50+1); err != nil {
		t.Errorf("a, the active primary: %v", err)
	}
}

// A self-fence fences the active site's primary at once, with etcd out of
// reach.
func TestSelfFence(t *testing.T) {
	f := newFixture(t, fixtureOptions{proxied: []string{"a"}})
	ctx := context.Background()
	if err := tryWrite(ctx, f.srv["a"], 1); err != nil {
		t.Fatalf("a before the self-fence: %v", err)
	}
	f.proxies["a"].Cut()
	began := time.Now()
	f.recs["a"].SetState(site.ControllerSelfFenced)
	var lastErr error
	for i := int64(2); ; i++ {
		if lastErr = tryWrite(ctx, f.srv["a"], i); lastErr != nil {
			break
		}
		if time.Since(began) > 5*time.Second {
			t.Fatal("a still accepts writes 5s after the self-fence")
		}
		time.Sleep(10 * time.Millisecond) // polling a server: there is no event to wait on
	}
	took := time.Since(began)
	// The first refusal may be the fence cutting the session that was
	// being opened; a session opened after it finds the server read-only.
	if strings.Contains(lastErr.Error(), "administrator command") {
		lastErr = tryWrite(ctx, f.srv["a"], 1000)
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "read-only") {
		t.Errorf("write after the self-fence: %v, want a read-only error", lastErr)
	}
	// The server turns read-only in the middle of the fence; the action is
	// counted when it returns, by the end of its pass.
	f.waitPasses("a", 15*time.Second, func() bool { return f.actions("a", "fence", "ok") >= 1 }, "fenced")
	if n := f.actions("a", "fence", "ok"); n != 1 {
		t.Errorf("fence actions: %v, want 1", n)
	}
	t.Logf("a refused writes %s after SetState(self-fenced), etcd unreachable", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("fencing took %s, want well under the etcd timeout", took)
	}
}

// halfFence is a member whose first Fence stops half-way, as a pass
// cancelled or a controller killed in the middle of one does: the server is
// read-only, its sessions are not cut. Later calls fence for real.
type halfFence struct {
	replication.Member
	conn  string // a superuser session on the member
	calls atomic.Int32
}

func (h *halfFence) Fence(ctx context.Context) error {
	if h.calls.Add(1) > 1 {
		return h.Member.Fence(ctx)
	}
	c, err := pgx.Connect(ctx, h.conn)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	for _, q := range []string{`ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`} {
		if _, err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	// Read-only in effect, as the driver's fence waits for it.
	for ro := ""; ro != "on"; {
		if err := c.QueryRow(ctx, `SHOW default_transaction_read_only`).Scan(&ro); err != nil {
			return err
		}
	}
	return errors.New("fence interrupted after the member turned read-only")
}

// A fence cut short after the member turned read-only is finished on a
// later pass: a read-only primary is not taken for a fenced one, so a
// transaction begun before the fence never commits. A fence that completed
// is not repeated.
func TestInterruptedFenceFinished(t *testing.T) {
	var half *halfFence
	f := newFixture(t, fixtureOptions{wrap: func(srv *pgtest.Server, m *postgres.Member) replication.Member {
		if srv.Name != "a" {
			return m
		}
		half = &halfFence{Member: m, conn: srv.ConnString}
		return half
	}})
	ctx := context.Background()
	tx, err := f.srv["a"].Connect(ctx).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO t (id) VALUES (1)`); err != nil {
		t.Fatal(err)
	}

	f.recs["a"].SetState(site.ControllerSelfFenced)
	f.waitPasses("a", 15*time.Second, func() bool { return f.actions("a", "fence", "ok") >= 1 }, "fenced after the interrupted fence")
	if n := f.actions("a", "fence", "error"); n != 1 {
		t.Errorf("failed fences: %v, want 1 (the interrupted one)", n)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("a transaction begun before the fence committed: the interrupted fence was taken for a finished one")
	}
	if _, err := f.srv["a"].Connect(ctx).Exec(ctx, `INSERT INTO t (id) VALUES (2)`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write after the fence: %v, want a read-only error", err)
	}
	f.passes("a", 3)
	if n, calls := f.actions("a", "fence", "ok"), half.calls.Load(); n != 1 || calls != 2 {
		t.Errorf("after the fence completed: %v fences counted ok, Fence called %d times; want 1 and 2 (no fence again)", n, calls)
	}
}

// A primary whose controller died (no fence: its server runs on, writable)
// loses its group to a promoted standby; when its controller comes back to
// find its site fenced, the old primary is rewound and streams from the new
// one, with the new primary's rows and without its own later ones. The
// replication conninfo names a passfile, as the lab's does, and the
// controller's environment has a PGPASSWORD (the superuser's, from the
// shell that started it), which must not stand in for the replication
// user's.
func TestCrashedControllerRejoins(t *testing.T) {
	f := newFixture(t, fixtureOptions{passfile: true})
	ctx := context.Background()
	t.Setenv("PGPASSWORD", "the-superusers-password")
	f.exec("a", "INSERT INTO t (id) VALUES (1)")

	f.crash("a")
	f.del(f.store.Keys().Alive("a"))
	f.fence("a")
	epoch := f.assign("db", "b", "a", "failover")
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable && m.Epoch == epoch })
	f.exec("b", "INSERT INTO t (id) VALUES (2)")
	// a's server runs on, writable, and diverges from b.
	f.exec("a", "INSERT INTO t (id) VALUES (-1)")
	f.waitMember("c", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy && m.Epoch == epoch })

	f.put(f.store.Keys().Alive("a"), site.Alive{Site: "a"})
	f.startReconciler("a")
	f.recs["a"].SetState(site.ControllerFenced)
	f.waitMember("a", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy })

	var status string
	var port int32
	c := f.srv["a"].Connect(ctx)
	if err := c.QueryRow(ctx, `SELECT status, sender_port FROM pg_stat_wal_receiver`).Scan(&status, &port); err != nil {
		t.Fatalf("a's WAL receiver: %v", err)
	}
	if status != "streaming" || int(port) != f.srv["b"].Port {
		t.Errorf("a's WAL receiver: %s from port %d, want streaming from b (port %d)", status, port, f.srv["b"].Port)
	}
	streamsTo(f.srv["b"], "a", 10*time.Second)
	f.exec("b", "INSERT INTO t (id) VALUES (3)")
	hasRow(f.srv["a"], 3, 10*time.Second)
	var ids []int64
	if err := c.QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM t`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int64{1, 2, 3}) {
		t.Errorf("a's rows: %v, want b's [1 2 3] (its own -1 rewound away)", ids)
	}
	if rec, err := inRecovery(ctx, f.srv["a"]); err != nil || !rec {
		t.Errorf("a after it rejoined: in recovery = %v, %v; want a standby", rec, err)
	}
}

// TestNoPromotionWithoutLease: a site whose lease may have lapsed (its
// controller froze after it read the assignment) promotes nothing; once its
// lease is known alive again, it does.
func TestNoPromotionWithoutLease(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.leased["b"].Store(false)
	f.leased["a"].Store(false) // a goes dark: its controller holds no lease, so it starts nothing
	f.srv["a"].Kill(syscall.SIGKILL)
	f.del(f.store.Keys().Alive("a"))
	f.fence("a")
	epoch := f.assign("db", "b", "a", "failover")
	f.passes("b", 3)
	if n := f.actions("b", "promote", "ok"); n != 0 {
		t.Fatalf("b promoted %v times without a lease it knows alive", n)
	}
	if rec, err := inRecovery(context.Background(), f.srv["b"]); err != nil || !rec {
		t.Fatalf("b: in recovery = %v, %v; want still a standby", rec, err)
	}
	f.leased["b"].Store(true)
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable && m.Epoch == epoch })
}

// TestPlannedMoveNoLoss: a planned move of an asynchronous group under a
// write load loses nothing. The old primary is fenced first; the new one
// waits, with its reason in its report, until it has replayed the old
// primary's last WAL position (here held back by stopping its replay), and
// only then is promoted; the old primary follows it.
func TestPlannedMoveNoLoss(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	probe := f.startProber()
	w := f.startWriter("a", 1)
	f.srv["a"].Eventually(10*time.Second, func(_ *pgx.Conn) (bool, string) { return len(w.ids()) > 100, "writer too slow" })

	resume := stopReplay(t, f.srv["b"])
	epoch := f.assign("db", "b", "a", "switchover")
	f.waitMember("a", 30*time.Second, func(m site.MemberReport) bool { return m.Epoch == epoch && !m.Writable })
	<-w.done // the fence cut its session
	acked := w.ids()
	waiting := f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return m.Epoch == epoch && strings.Contains(m.Detail, "planned move: replaying up to site a's last WAL position")
	})
	t.Logf("b while its replay is stopped: %s", waiting.Detail)
	if rec, err := inRecovery(ctx, f.srv["b"]); err != nil || !rec {
		t.Fatalf("b promoted before it replayed all of a: in recovery = %v, %v", rec, err)
	}

	resume()
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable && m.Epoch == epoch })
	c := f.srv["b"].Connect(ctx)
	var missing int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = a.id)`, acked).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Errorf("%d of %d acknowledged writes missing on the new primary b", missing, len(acked))
	}
	f.waitMember("a", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy && m.Epoch == epoch })
	streamsTo(f.srv["b"], "a", 10*time.Second)
	if n := f.actions("b", "refuse", "refused"); n != 0 {
		t.Errorf("b refused its promotion %v times while it caught up; want it to wait", n)
	}
	probe.halt()
	if n := probe.overlaps.Load(); n != 0 {
		t.Errorf("%d of %d probe rounds found two writable members: %v", n, probe.rounds.Load(), probe.detail)
	}
	t.Logf("%d acknowledged writes, all on b; %d probe rounds, never two writable members", len(acked), probe.rounds.Load())
}

// TestActiveMemberRestarted: the server of the active site's member dies
// (SIGKILL, as with its host); its site's reconciler starts it again, and
// it is a writable primary again with everything it had; the standbys
// stream from it again.
func TestActiveMemberRestarted(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.exec("a", "INSERT INTO t (id) VALUES (1)")
	hasRow(f.srv["b"], 1, 10*time.Second)
	f.srv["a"].Kill(syscall.SIGKILL)
	f.waitMember("a", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "unknown" })
	f.waitMember("a", 60*time.Second, func(m site.MemberReport) bool { return m.Role == "primary" && m.Writable })
	if n := f.actions("a", "start", "ok"); n < 1 {
		t.Errorf("starts of a's server counted: %v, want at least 1", n)
	}
	f.exec("a", "INSERT INTO t (id) VALUES (2)")
	hasRow(f.srv["a"], 1, 10*time.Second)
	hasRow(f.srv["b"], 2, 30*time.Second)
	hasRow(f.srv["c"], 2, 30*time.Second)
}

// TestForcedPromotion: with its primary dead, a standby that does not
// stream is refused by a planned assignment; an assignment that an operator
// forced (zdt switchover --force) promotes it with what it has, and the
// other standby follows it.
func TestForcedPromotion(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.exec("a", "INSERT INTO t (id) VALUES (1)")
	hasRow(f.srv["b"], 1, 10*time.Second)
	f.leased["a"].Store(false) // a goes dark: its controller holds no lease, so it starts nothing
	f.srv["a"].Kill(syscall.SIGKILL)
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && !m.Healthy })
	planned := f.assign("db", "b", "a", "switchover")
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool {
		return m.Epoch == planned && strings.Contains(m.Detail, "promotion refused")
	})
	forced := f.put(f.store.Keys().Assignment("db"), site.Assignment{Service: "db", Site: "b", Op: "test-force", At: time.Now(), From: "a", Kind: "switchover", Force: true})
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Epoch == forced && m.Role == "primary" && m.Writable })
	if n := f.actions("b", "promote", "ok"); n != 1 {
		t.Errorf("promotions of b: %v, want 1", n)
	}
	hasRow(f.srv["b"], 1, 10*time.Second)
	f.exec("b", "INSERT INTO t (id) VALUES (2)")
	hasRow(f.srv["c"], 2, 30*time.Second)
}
