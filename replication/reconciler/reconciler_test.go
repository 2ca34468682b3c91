package reconciler

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zdt-project/zdt/replication/postgres"
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
	f.srv["a"].Eventually(10*time.Second, func(_ *pgx.Conn) (bool, string) { return len(w.ids()) > 100, "writer too slow" })

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
	w := f.startWriter("a", 1)
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.LagBytes > 1<<20 })
	w.halt()
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

	// b's server stops: reported unhealthy with the error, no action.
	before := f.actions("b", "follow", "ok") + f.actions("b", "follow", "error") + f.actions("b", "fence", "ok") + f.actions("b", "fence", "error")
	f.srv["b"].Stop()
	m = f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return !m.Healthy })
	if !strings.Contains(m.Detail, "cannot observe") || !strings.Contains(m.Detail, "no action on stale data") || m.Role != "unknown" {
		t.Errorf("b stopped: %+v, want the observation error and no action", m)
	}
	f.passes("b", 5)
	after := f.actions("b", "follow", "ok") + f.actions("b", "follow", "error") + f.actions("b", "fence", "ok") + f.actions("b", "fence", "error")
	if after != before || f.srv["b"].Pid() != 0 {
		t.Errorf("b unreachable: actions %v -> %v, pid %d; want no action", before, after, f.srv["b"].Pid())
	}
	f.srv["b"].Start(false)
	f.waitMember("b", 30*time.Second, func(m site.MemberReport) bool { return m.Role == "standby" && m.Healthy })

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
	if n := f.actions("a", "fence", "ok"); n != 1 {
		t.Errorf("fence actions: %v, want 1", n)
	}
	t.Logf("a refused writes %s after SetState(self-fenced), etcd unreachable", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("fencing took %s, want well under the etcd timeout", took)
	}
}
