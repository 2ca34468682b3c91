package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

// Under a steady write load the primary sees both standbys streaming; a
// standby whose replay is stopped reports a growing lag, which the RPO
// policy refuses, and catches up when it resumes.
func TestObserveLagUnderLoad(t *testing.T) {
	g := pgtest.Start(t, 3, pgtest.Options{})
	a, c := g.Members[0], g.Members[2]
	ms := members(t, g)
	ma, mb, mc := ms[0], ms[1], ms[2]
	ctx := context.Background()
	createLoad(t, a)
	w := startWriter(t, a)
	w.waitAcked(t, 100)

	st := eventually(t, ma, 10*time.Second, func(st replication.Status) bool {
		sb, okb := standbyNamed(st, "b")
		sc, okc := standbyNamed(st, "c")
		return okb && okc && sb.State == "streaming" && sc.State == "streaming"
	})
	if st.Role != replication.RolePrimary || !st.Writable || !st.Healthy || st.SyncConfigured || st.LagBytes != 0 {
		t.Errorf("primary status = %+v, want a healthy writable asynchronous primary", st)
	}
	if sb, _ := standbyNamed(st, "b"); sb.SyncState != "async" || sb.Synchronous {
		t.Errorf("standby b as the primary sees it = %+v, want async", sb)
	}
	stb, err := mb.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stb.Role != replication.RoleStandby || !stb.Healthy || stb.Writable || stb.Sync ||
		stb.Detail != fmt.Sprintf("streaming from 127.0.0.1:%d", a.Port) {
		t.Errorf("standby status = %+v, want a healthy streaming standby", stb)
	}

	// Stop c's replay: its WAL receiver still receives, so c knows how far
	// behind it falls.
	resume := pause(t, auxPid(t, c, "startup"))
	const MiB = 1 << 20
	lagging := eventually(t, mc, 20*time.Second, func(st replication.Status) bool { return st.LagBytes > MiB/2 })
	if lagging.LagSeconds <= 0 || !lagging.Healthy {
		t.Errorf("lagging standby = %+v, want lag seconds above 0 and still streaming", lagging)
	}
	later := eventually(t, mc, 20*time.Second, func(st replication.Status) bool {
		return st.LagBytes > lagging.LagBytes+MiB/4 && st.LagSeconds > lagging.LagSeconds
	})
	t.Logf("c lags %s, %.2fs, then %s, %.2fs", replication.FormatBytes(lagging.LagBytes), lagging.LagSeconds,
		replication.FormatBytes(later.LagBytes), later.LagSeconds)
	eventually(t, ma, 20*time.Second, func(st replication.Status) bool {
		sc, ok := standbyNamed(st, "c")
		return ok && sc.ReplayLagBytes > MiB/2 && sc.SentLagBytes < sc.ReplayLagBytes
	})
	ok, why := replication.Eligible(replication.RPOPolicy{MaxLagBytes: 256 << 10, MaxLagSeconds: -1}, later)
	if ok || !strings.Contains(why, "exceeds the limit of 256 KiB") {
		t.Errorf("Eligible(lagging c) = %v, %q; want a refusal naming the limit", ok, why)
	}
	if ok, why := replication.Eligible(replication.RPOPolicy{RequireSync: true}, later); ok {
		t.Errorf("Eligible(asynchronous c, sync required) = true, %q", why)
	}

	resume()
	eventually(t, mc, 30*time.Second, func(st replication.Status) bool { return st.LagBytes < MiB/4 })
	w.halt()
	caught := eventually(t, mc, 30*time.Second, func(st replication.Status) bool { return st.LagBytes == 0 })
	if caught.LagSeconds != 0 || !caught.Healthy {
		t.Errorf("caught-up standby = %+v, want no lag at all", caught)
	}
	if ok, why := replication.Eligible(replication.RPOPolicy{}, caught); !ok {
		t.Errorf("Eligible(caught-up c, strictest policy) = false, %q", why)
	}
}

// The primary dies; b is promoted, c and the old primary a follow it (a by
// pg_rewind), and at no instant do two members accept writes.
func TestFailoverRejoin(t *testing.T) {
	g := pgtest.Start(t, 3, pgtest.Options{})
	a, b, c := g.Members[0], g.Members[1], g.Members[2]
	core, logs := observer.New(zap.InfoLevel)
	ma, mb, mc := member(t, a, zap.New(core)), member(t, b, zap.New(core)), member(t, c, zap.New(core))
	ctx := context.Background()
	createLoad(t, a)
	a.Exec(ctx, `CREATE TABLE probe (member text, at timestamptz)`)
	g.WaitStreaming(a, b, c)
	probe := startProbe(t, g)

	// Stop both WAL receivers, then write more than the sockets hold: the
	// primary has writes no standby has, which it must lose to rejoin. A
	// stopped receiver's kernel still takes what fits in its socket's
	// buffers (up to tcp_rmem's and tcp_wmem's maxima, 36 MB on a Debian
	// default): write twice that, incompressible (random hex), so no
	// standby can hold it all.
	resumeB := pause(t, auxPid(t, b, "walreceiver"))
	resumeC := pause(t, auxPid(t, c, "walreceiver"))
	w := startWriter(t, a)
	w.waitAcked(t, 200)
	rows := max(20000, 2*socketBuffers(t)/2000+1000)
	a.Exec(ctx, fmt.Sprintf(`INSERT INTO load SELECT 1000000 + i, (SELECT string_agg(md5(random()::text || i::text || j::text), '') FROM generate_series(1, 63) AS j)
		FROM generate_series(1, %d) AS i`, rows))
	a.Kill(syscall.SIGKILL)
	w.halt()
	resumeB()
	resumeC()

	began := time.Now()
	if err := mb.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Promote b: %s", time.Since(began).Round(time.Millisecond))
	st, err := mb.Observe(ctx)
	if err != nil || st.Role != replication.RolePrimary || !st.Writable {
		t.Fatalf("b after Promote: %+v, %v; want a writable primary", st, err)
	}
	if err := mb.Promote(ctx); err != nil {
		t.Errorf("Promote again: %v", err)
	}

	began = time.Now()
	if err := mc.Follow(ctx, b.ReplicationConnInfo); err != nil {
		t.Fatal(err)
	}
	t.Logf("Follow c: %s", time.Since(began).Round(time.Millisecond))
	eventually(t, mb, 10*time.Second, func(st replication.Status) bool {
		s, ok := standbyNamed(st, "c")
		return ok && s.State == "streaming"
	})
	began = time.Now()
	if err := ma.Follow(ctx, b.ReplicationConnInfo); err != nil {
		t.Fatal(err)
	}
	t.Logf("Follow a: %s", time.Since(began).Round(time.Millisecond))
	sta := eventually(t, ma, 10*time.Second, func(st replication.Status) bool { return st.Healthy })
	if sta.Role != replication.RoleStandby || sta.Writable {
		t.Errorf("a after Follow = %+v, want a streaming standby", sta)
	}
	eventually(t, mb, 10*time.Second, func(st replication.Status) bool {
		s, ok := standbyNamed(st, "a")
		return ok && s.State == "streaming"
	})
	receiver := auxPid(t, a, "walreceiver")
	if err := ma.Follow(ctx, b.ReplicationConnInfo); err != nil {
		t.Errorf("Follow again: %v", err)
	}
	if again := auxPid(t, a, "walreceiver"); again != receiver {
		t.Errorf("Follow again restarted a's WAL receiver (pid %d, now %d); want no change", receiver, again)
	}

	// A write on b reaches a; a's own last writes are gone.
	b.Exec(ctx, `INSERT INTO load VALUES (-1, 'after failover')`)
	var onB int
	if err := b.Connect(ctx).QueryRow(ctx, `SELECT count(*) FROM load`).Scan(&onB); err != nil {
		t.Fatal(err)
	}
	if acked := len(w.ackedIDs()) + rows; onB >= acked {
		t.Fatalf("b has %d rows, a acknowledged %d: the test did not make a diverge", onB, acked)
	}
	a.Eventually(10*time.Second, func(c *pgx.Conn) (bool, string) {
		var n int
		err := c.QueryRow(ctx, `SELECT count(*) FROM load`).Scan(&n)
		return err == nil && n == onB, fmt.Sprintf("a has %d rows, b %d (%v)", n, onB, err)
	})

	probe.halt()
	if err := probe.check(); err != nil {
		t.Error(err)
	}
	if got := probe.writers(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("writable members in order = %v, want [a b]", got)
	}
	t.Logf("%d probe rounds; writers %v", len(probe.rounds), probe.writers())
	for _, e := range logs.FilterMessage("rewinding to follow the primary").All() {
		t.Logf("%s rewound: %s", e.ContextMap()["site"], e.ContextMap()["reason"])
	}
	if logs.FilterMessage("rewinding to follow the primary").FilterField(zap.String("site", "a")).Len() != 1 {
		t.Errorf("a was not rewound exactly once")
	}
}

// Fence cuts the sessions of a primary and makes it read-only, for good:
// also after a restart, until Promote.
func TestFence(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	a, b := g.Members[0], g.Members[1]
	ms := members(t, g)
	ma, mb := ms[0], ms[1]
	ctx := context.Background()
	a.Exec(ctx, `CREATE TABLE t (v int)`)

	open := a.Connect(ctx)
	tx, err := open.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := ma.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Error("a transaction begun before the fence committed")
	}
	fresh := a.Connect(ctx)
	_, err = fresh.Exec(ctx, `INSERT INTO t VALUES (2)`)
	if !isReadOnly(err) {
		t.Errorf("write after Fence: %v, want a read-only error", err)
	}
	var n int
	if err := fresh.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after Fence = %d, %v; want 0", n, err)
	}
	st, err := ma.Observe(ctx)
	if err != nil || st.Role != replication.RolePrimary || st.Writable || st.Healthy || st.Detail != "fenced: read-only" {
		t.Errorf("fenced primary: %+v, %v", st, err)
	}
	if err := ma.Fence(ctx); err != nil {
		t.Errorf("Fence again: %v", err)
	}
	if err := mb.Fence(ctx); err != nil {
		t.Errorf("Fence on a standby: %v", err)
	}
	var bReadOnly string
	if err := b.Connect(ctx).QueryRow(ctx, `SELECT setting FROM pg_file_settings WHERE name = 'default_transaction_read_only'`).Scan(&bReadOnly); !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("the standby's configuration sets default_transaction_read_only = %q (%v); Fence on a standby must not", bReadOnly, err)
	}

	a.Stop()
	a.Start(false)
	_, err = a.Connect(ctx).Exec(ctx, `INSERT INTO t VALUES (3)`)
	if !isReadOnly(err) {
		t.Errorf("write after restarting the fenced primary: %v, want a read-only error", err)
	}
	if st, err := ma.Observe(ctx); err != nil || st.Writable {
		t.Errorf("restarted fenced primary: %+v, %v; want read-only", st, err)
	}

	if err := ma.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(ctx).Exec(ctx, `INSERT INTO t VALUES (4)`); err != nil {
		t.Errorf("write after Promote lifted the fence: %v", err)
	}
	if st, err := ma.Observe(ctx); err != nil || !st.Writable || !st.Healthy {
		t.Errorf("primary after Promote: %+v, %v; want healthy and writable", st, err)
	}
}

// A fence interrupted between its two parts (read-only in effect, the old
// sessions not yet cut) leaves a primary that looks fenced while a
// transaction begun before the fence can still commit; Fence called again
// finishes it, and then no such transaction commits.
func TestFenceInterrupted(t *testing.T) {
	g := pgtest.Start(t, 1, pgtest.Options{})
	a := g.Members[0]
	ma := members(t, g)[0]
	ctx := context.Background()
	a.Exec(ctx, `CREATE TABLE t (v int)`)
	begin := func(v int) pgx.Tx {
		tx, err := a.Connect(ctx).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES ($1)`, v); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	early, old := begin(1), begin(2)

	fctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	postgres.SetBetweenFenceParts(ma, func(context.Context) { interrupt() })
	err := ma.Fence(fctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fence interrupted between its parts = %v, want context.Canceled", err)
	}
	st, err := ma.Observe(ctx)
	if err != nil || st.Role != replication.RolePrimary || st.Writable {
		t.Fatalf("after the interrupted fence: %+v, %v; want a read-only primary", st, err)
	}
	// The hazard: the member looks fenced, yet a transaction begun before
	// the fence commits.
	if err := early.Commit(ctx); err != nil {
		t.Fatalf("the test's premise: a transaction begun before a half-done fence should still commit, got %v", err)
	}

	postgres.SetBetweenFenceParts(ma, nil)
	if err := ma.Fence(ctx); err != nil {
		t.Fatalf("Fence again: %v", err)
	}
	if err := old.Commit(ctx); err == nil {
		t.Error("a transaction begun before the fence committed after Fence was called again")
	}
	var vs []int32
	if err := a.Connect(ctx).QueryRow(ctx, `SELECT coalesce(array_agg(v ORDER BY v), '{}') FROM t`).Scan(&vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0] != 1 {
		t.Errorf("rows after the fence = %v, want [1]: only the transaction committed before Fence completed", vs)
	}
	if _, err := a.Connect(ctx).Exec(ctx, `INSERT INTO t VALUES (3)`); !isReadOnly(err) {
		t.Errorf("write after the fence: %v, want a read-only error", err)
	}
	if err := ma.Fence(ctx); err != nil {
		t.Errorf("Fence a third time: %v", err)
	}
}

// With a synchronous quorum, promoting the most advanced standby after the
// primary dies keeps every acknowledged commit.
func TestSynchronousKeepsAcknowledgedWrites(t *testing.T) {
	g := pgtest.Start(t, 3, pgtest.Options{})
	a := g.Members[0]
	ms := members(t, g)
	ma := ms[0]
	ctx := context.Background()
	createLoad(t, a)

	if err := ma.SetSynchronous(ctx, []string{"b", "c"}, 3); err == nil {
		t.Error("SetSynchronous with a quorum of 3 of 2 standbys succeeded")
	}
	if err := ma.SetSynchronous(ctx, []string{"b", "c"}, 1); err != nil {
		t.Fatal(err)
	}
	st := eventually(t, ma, 10*time.Second, func(st replication.Status) bool {
		sb, okb := standbyNamed(st, "b")
		sc, okc := standbyNamed(st, "c")
		return okb && okc && sb.SyncState == "quorum" && sc.SyncState == "quorum"
	})
	if !st.SyncConfigured || st.SyncStandbys != `ANY 1 ("b", "c")` {
		t.Errorf("synchronous primary: SyncConfigured %v, SyncStandbys %q", st.SyncConfigured, st.SyncStandbys)
	}
	for _, s := range st.Standbys {
		if !s.Synchronous {
			t.Errorf("standby %s is not reported synchronous: %+v", s.Name, s)
		}
	}

	w := startWriter(t, a)
	w.waitAcked(t, 300)
	a.Kill(syscall.SIGKILL)
	w.halt()
	acked := w.ackedIDs()

	// The standbys replay what they received; the furthest holds every
	// acknowledged commit.
	var best *postgres.Member
	var bestPos uint64
	for i, m := range ms[1:] {
		g.Members[i+1].Eventually(10*time.Second, func(c *pgx.Conn) (bool, string) {
			var done bool
			err := c.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()`).Scan(&done)
			return err == nil && done, fmt.Sprintf("replayed all received: %v (%v)", done, err)
		})
		st, err := m.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Healthy {
			t.Errorf("%s streams from a dead primary: %+v", m.Name(), st)
		}
		pos, err := postgres.ParseLSN(st.Position)
		if err != nil {
			t.Fatal(err)
		}
		if best == nil || pos > bestPos {
			best, bestPos = m, pos
		}
	}
	if err := best.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	np := g.Members[1]
	if best == ms[2] {
		np = g.Members[2]
	}
	var present int
	if err := np.Connect(ctx).QueryRow(ctx, `SELECT count(*) FROM load WHERE id = ANY($1)`, acked).Scan(&present); err != nil {
		t.Fatal(err)
	}
	if present != len(acked) {
		t.Errorf("%s has %d of the %d acknowledged commits", np.Name, present, len(acked))
	}
	t.Logf("promoted %s at %s: all %d acknowledged commits present", np.Name, postgres.FormatLSN(bestPos), len(acked))

	// Asynchronous replication is an explicit empty setting:
	if err := best.SetSynchronous(ctx, nil, 0); err != nil {
		t.Fatal(err)
	}
	if st, err := best.Observe(ctx); err != nil || st.SyncConfigured || st.SyncStandbys != "" {
		t.Errorf("after SetSynchronous(nil): %+v, %v", st, err)
	}
}

// Errors say which member and what failed, and a refused Follow changes
// nothing.
func TestErrors(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	a, b := g.Members[0], g.Members[1]
	ctx := context.Background()

	nobody := postgres.Config{Name: "x", ConnString: "host=127.0.0.1 port=1 user=zdt password=x dbname=postgres"}
	wrongPassword := a.Config
	wrongPassword.ConnString = strings.Replace(a.ConnString, "password=", "password=wrong", 1)
	stopped := b.Config
	tests := []struct {
		name string
		cfg  postgres.Config
		want []string
	}{
		{"nothing listens", nobody, []string{"observe PostgreSQL member x", "connection refused"}},
		{"wrong password", wrongPassword, []string{"observe PostgreSQL member a", `password authentication failed for user "zdt"`}},
		{"stopped server", stopped, []string{"observe PostgreSQL member b", "connection refused"}},
	}
	b.Stop()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := postgres.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			st, err := m.Observe(ctx)
			if err == nil {
				t.Fatalf("Observe = %+v, want an error", st)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Observe error %q does not say %q", err, w)
				}
			}
		})
	}

	t.Run("follow on a primary without local control", func(t *testing.T) {
		cfg := a.Config
		cfg.DataDir, cfg.BinDir = "", ""
		m, err := postgres.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		err = m.Follow(ctx, b.ReplicationConnInfo)
		if !errors.Is(err, postgres.ErrNoLocalControl) || !strings.Contains(err.Error(), "is a primary") ||
			!strings.Contains(err.Error(), "nothing was changed") || strings.Contains(err.Error(), "password=") && !strings.Contains(err.Error(), "password='xxx'") {
			t.Errorf("Follow = %v, want ErrNoLocalControl saying the member is a primary, without its password", err)
		}
		st, err := m.Observe(ctx)
		if err != nil || !st.Writable || !st.Healthy {
			t.Errorf("after the refused Follow: %+v, %v; want a writable primary still", st, err)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := postgres.Config{Name: "a", ConnString: "host=127.0.0.1 user=zdt", ReplicationConnInfo: "host=127.0.0.1 user=zdt_repl"}
	tests := []struct {
		name   string
		change func(*postgres.Config)
		want   string
	}{
		{"no name", func(c *postgres.Config) { c.Name = "" }, "PostgreSQL member: name is empty"},
		{"control characters", func(c *postgres.Config) { c.Name = "a\nb" }, "contains control characters"},
		{"long name", func(c *postgres.Config) { c.Name = strings.Repeat("n", 64) }, "longer than 63 bytes"},
		{"no connection string", func(c *postgres.Config) { c.ConnString = "" }, "PostgreSQL member a: connection string is empty"},
		{"bad connection string", func(c *postgres.Config) { c.ConnString = "host" }, "PostgreSQL member a: connection string:"},
		{"replication URI", func(c *postgres.Config) { c.ReplicationConnInfo = "postgres://h/db" }, "replication connection string: connection string is a URI"},
		{"replication without host", func(c *postgres.Config) { c.ReplicationConnInfo = "user=r" }, "names no host"},
		{"unterminated quote", func(c *postgres.Config) { c.ReplicationConnInfo = "host='h" }, "unterminated quoted value"},
		{"relative data directory", func(c *postgres.Config) { c.DataDir, c.BinDir = "data", "/usr/bin" }, "absolute paths"},
		{"data directory without binaries", func(c *postgres.Config) { c.DataDir = "/var/lib/pg" }, "both DataDir and BinDir"},
		{"negative timeout", func(c *postgres.Config) { c.QueryTimeout = -time.Second }, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			m, err := postgres.New(cfg)
			if err == nil {
				m.Close()
				t.Fatalf("New accepted %+v", cfg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error %q does not say %q", err, tt.want)
			}
		})
	}
	m, err := postgres.New(good)
	if err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	m.Close()
}

// Settings tells whether a member can be rewound.
func TestSettings(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	b := g.Members[1]
	ms := members(t, g)
	ctx := context.Background()
	s, err := ms[0].Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !s.WalLogHints || !s.CanRewind() || s.WalLevel != "replica" || s.MaxWalSenders != 10 || !s.HotStandby || len(s.Problems()) != 0 {
		t.Errorf("harness primary settings = %+v, problems %q", s, s.Problems())
	}

	b.Exec(ctx, `ALTER SYSTEM SET wal_log_hints = off`)
	b.Stop()
	b.Start(false)
	s, err = ms[1].Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.WalLogHints || s.DataChecksums || s.CanRewind() {
		t.Errorf("settings after wal_log_hints = off: %+v, want no rewind", s)
	}
	if p := s.Problems(); len(p) != 1 || !strings.Contains(p[0], "cannot be rewound") {
		t.Errorf("problems = %q, want the one about rewinding", p)
	}
}
