package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// A primary that dies under load is rewound and rejoins the new primary,
// round after round, each member in turn: every Follow ends with the
// member streaming within seconds, not after the stream timeout.
func TestRejoinUnderLoadStreamsPromptly(t *testing.T) {
	g := pgtest.Start(t, 3, pgtest.Options{})
	core, logs := observer.New(zap.InfoLevel)
	ms := make([]*postgres.Member, len(g.Members))
	for i, s := range g.Members {
		ms[i] = member(t, s, zap.New(core))
	}
	ctx := context.Background()
	createLoad(t, g.Members[0])
	const bound = 10 * time.Second
	primary := 0
	for round := range 4 {
		p, next, other := primary, (primary+1)%3, (primary+2)%3
		P, N := g.Members[p], g.Members[next]
		P.Exec(ctx, fmt.Sprintf(`DELETE FROM load WHERE id < 0 OR id > 0`))
		w := startWriter(t, P)
		w.waitAcked(t, 300)
		P.Kill(syscall.SIGKILL)
		w.halt()
		if err := ms[next].Promote(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, i := range []int{other, p} {
			began := time.Now()
			err := ms[i].Follow(ctx, N.ReplicationConnInfo)
			took := time.Since(began)
			t.Logf("round %d: Follow %s -> %s: %s, %v", round, g.Members[i].Name, N.Name, took.Round(time.Millisecond), err)
			if err != nil {
				t.Fatalf("round %d: %v\n%s", round, err, g.Members[i].Log())
			}
			if took > bound {
				t.Errorf("round %d: Follow %s took %s, want under %s\n%s", round, g.Members[i].Name, took, bound, g.Members[i].Log())
			}
			st := eventually(t, ms[i], 5*time.Second, func(st replication.Status) bool { return st.Healthy })
			if st.Role != replication.RoleStandby {
				t.Errorf("round %d: %s = %+v, want a standby", round, g.Members[i].Name, st)
			}
		}
		// Both standbys replay what the new primary writes.
		N.Exec(ctx, fmt.Sprintf(`INSERT INTO load VALUES (%d, 'round')`, -1-round))
		for _, i := range []int{other, p} {
			g.Members[i].Eventually(10*time.Second, func(c *pgx.Conn) (bool, string) {
				var n int
				err := c.QueryRow(ctx, `SELECT count(*) FROM load WHERE id = $1`, -1-round).Scan(&n)
				return err == nil && n == 1, fmt.Sprintf("%d rows (%v)", n, err)
			})
		}
		primary = next
	}
	rewinds := logs.FilterMessage("rewinding to follow the primary").All()
	for _, e := range rewinds {
		t.Logf("%s rewound: %v", e.ContextMap()["site"], e.ContextMap()["reason"])
	}
	// The dead primary of each round is rewound; a standby that streamed
	// from it only when it really received more than the promoted one (its
	// WAL past the fork point): never for nothing.
	dead := 0
	for _, e := range rewinds {
		switch reason := fmt.Sprint(e.ContextMap()["reason"]); {
		case reason == "the server is stopped":
			dead++
		case !strings.Contains(reason, "past") || !strings.Contains(reason, "forked"):
			t.Errorf("a live standby was rewound without a divergence: %s", reason)
		}
	}
	if dead != 4 {
		t.Errorf("%d dead primaries rewound in 4 rounds, want one per round", dead)
	}
}

// A standby that received more than the standby promoted in its place has
// diverged: it is rewound and streams promptly from the new primary.
func TestRejoinStandbyAheadOfNewPrimary(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			g := pgtest.Start(t, 3, pgtest.Options{})
			a, b, c := g.Members[0], g.Members[1], g.Members[2]
			core, logs := observer.New(zap.InfoLevel)
			mb, mc := member(t, b, zap.New(core)), member(t, c, zap.New(core))
			ctx := context.Background()
			createLoad(t, a)
			w := startWriter(t, a)
			w.waitAcked(t, 200)
			resumeC := pause(t, auxPid(t, c, "walreceiver"))
			w.waitAcked(t, 400)
			a.Exec(ctx, `INSERT INTO load SELECT 1000000 + i, md5(random()::text) || md5(random()::text) FROM generate_series(1, 100000) AS i`)
			w.waitAcked(t, 500)
			a.Kill(syscall.SIGKILL)
			w.halt()
			resumeC()
			if err := mc.Promote(ctx); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			err := mb.Follow(ctx, c.ReplicationConnInfo)
			t.Logf("Follow b -> c: %s, %v", time.Since(began).Round(time.Millisecond), err)
			for _, e := range logs.All() {
				t.Logf("%s: %s %v", e.ContextMap()["site"], e.Message, e.ContextMap())
			}
			if err != nil || time.Since(began) > 10*time.Second {
				t.Fatalf("Follow: %v\n%s", err, b.Log())
			}
			// Rewound before its WAL receiver was pointed at c: it
			// would have written c's history and part of a segment
			// of c's timeline into pg_wal.
			if n := logs.FilterMessage("rewinding to follow the primary").Len(); n != 1 {
				t.Errorf("b was rewound %d times, want once", n)
			}
			if n := logs.FilterMessage("primary_conninfo set").Len(); n != 0 {
				t.Errorf("b's primary_conninfo was set %d times before its rewind, want none", n)
			}
		})
	}
}

// A standby that received the old primary's WAL past the fork without
// replaying it (commits that change no data page, held back), and was
// stopped while its WAL receiver had begun to write the new primary's
// segment of the fork, cannot start: it reads the partial segment and
// stops at once ("WAL location ... belongs to timeline 1, but previous
// recovered WAL file came from timeline 2"), at every start. Follow finds
// that in the log of the server's logging collector, rewinds it, and it
// streams from the new primary and replays its writes.
func TestFollowStoppedStandbyWithAPartialSegment(t *testing.T) {
	g := pgtest.Start(t, 3, pgtest.Options{Names: []string{"x", "a", "c"}, Conf: []string{"logging_collector = on"}})
	x, a, c := g.Members[0], g.Members[1], g.Members[2]
	core, logs := observer.New(zap.InfoLevel)
	ma, mc := member(t, a, zap.New(core)), member(t, c, zap.New(core))
	ctx := context.Background()
	createLoad(t, x)
	x.Exec(ctx, `INSERT INTO load SELECT i, md5(i::text) FROM generate_series(1, 100) AS i`)
	g.WaitStreaming(x, a, c)
	waitWAL(t, "replay", x, a, c)

	// a receives commits but holds them back (until its next start: the
	// setting is reset, not reloaded); c stops receiving; x commits.
	a.Exec(ctx, `ALTER SYSTEM SET recovery_min_apply_delay = '1h'`, `SELECT pg_reload_conf()`, `ALTER SYSTEM RESET recovery_min_apply_delay`)
	c.Exec(ctx, `ALTER SYSTEM SET primary_conninfo = ''`, `SELECT pg_reload_conf()`)
	c.Eventually(30*time.Second, func(conn *pgx.Conn) (bool, string) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_wal_receiver`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 0, "c's WAL receiver still runs"
	})
	for range 3 {
		x.Exec(ctx, `SELECT txid_current()`)
	}
	waitWAL(t, "receive", x, a)
	x.Kill(syscall.SIGKILL)
	a.Stop()
	if err := mc.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	c.Exec(ctx, `INSERT INTO load SELECT 1000 + i, md5(i::text) FROM generate_series(1, 100) AS i`)

	// What a's WAL receiver had written of c's timeline when a stopped:
	// the history, and c's segment of the fork up to a page before it.
	copyHistory(t, c, a, 2)
	var forkText string
	if err := c.Connect(ctx).QueryRow(ctx, `SELECT split_part(pg_read_file('pg_wal/00000002.history'), E'\t', 2)`).Scan(&forkText); err != nil {
		t.Fatal(err)
	}
	fork, err := postgres.ParseLSN(forkText)
	if err != nil {
		t.Fatal(err)
	}
	const segSize, pageSize = 16 << 20, 8192
	seg := fmt.Sprintf("%08X%08X%08X", 2, fork>>32, (fork&0xFFFFFFFF)/segSize)
	data, err := os.ReadFile(filepath.Join(c.DataDir, "pg_wal", seg))
	if err != nil {
		t.Fatal(err)
	}
	clear(data[(fork-1)%segSize/pageSize*pageSize:])
	writeOwned(t, a, filepath.Join("pg_wal", seg), data)

	began := time.Now()
	err = ma.Follow(ctx, c.ReplicationConnInfo)
	t.Logf("Follow a -> c: %s, %v", time.Since(began).Round(time.Millisecond), err)
	for _, e := range logs.All() {
		t.Logf("%s %v", e.Message, e.ContextMap())
	}
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if n := logs.FilterMessage("rewinding to follow the primary").Len(); n != 1 {
		t.Errorf("a was rewound %d times, want once", n)
	}
	a.Eventually(30*time.Second, func(conn *pgx.Conn) (bool, string) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM load`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 200, fmt.Sprintf("a has %d rows, want c's 200", n)
	})
}

// waitWAL waits until every standby has received (what: "receive") or
// replayed ("replay") all the WAL the primary has written so far.
func waitWAL(t testing.TB, what string, primary *pgtest.Server, standbys ...*pgtest.Server) {
	t.Helper()
	ctx := context.Background()
	var lsn string
	if err := primary.Connect(ctx).QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	for _, s := range standbys {
		s.Eventually(30*time.Second, func(conn *pgx.Conn) (bool, string) {
			var done bool
			if err := conn.QueryRow(ctx, `SELECT pg_last_wal_`+what+`_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
				return false, err.Error()
			}
			return done, fmt.Sprintf("%s has not %sed up to %s", s.Name, strings.TrimSuffix(what, "e"), lsn)
		})
	}
}

// Follow to a primary that cannot be reached fails within a bound and
// leaves the standby running, in recovery: nothing is stopped or rewound.
func TestFollowUnreachablePrimaryLeavesStandbyRunning(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	a, b := g.Members[0], g.Members[1]
	core, logs := observer.New(zap.InfoLevel)
	mb := member(t, b, zap.New(core))
	ctx := context.Background()
	free := pgtest.Start(t, 1, pgtest.Options{Names: []string{"x"}}).Members[0]
	free.Stop()
	a.Kill(syscall.SIGKILL)
	for _, tt := range []struct{ name, conninfo string }{
		{"stopped primary", a.ReplicationConnInfo},
		{"nothing listens", free.ReplicationConnInfo},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pid := b.Pid()
			began := time.Now()
			err := mb.Follow(ctx, tt.conninfo)
			took := time.Since(began)
			t.Logf("Follow: %s, %v", took.Round(time.Millisecond), err)
			if err == nil || !strings.Contains(err.Error(), "cannot reach the new primary") {
				t.Errorf("Follow = %v, want an error saying the primary cannot be reached", err)
			}
			if took > 10*time.Second {
				t.Errorf("Follow took %s, want under 10s", took)
			}
			if b.Pid() != pid {
				t.Errorf("b's postmaster is %d, was %d: b was stopped", b.Pid(), pid)
			}
			var recovery bool
			if err := b.Connect(ctx).QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil || !recovery {
				t.Errorf("b in recovery = %v, %v; want a running standby", recovery, err)
			}
		})
	}
	if n := logs.FilterMessage("rewinding to follow the primary").Len(); n != 0 {
		t.Errorf("b was rewound %d times", n)
	}
}

// A standby that followed one new primary and received its writes, then
// was stopped (its site went dark), must follow another standby promoted
// in the meantime from an earlier point of the old history: its WAL is past
// the fork, so its server stops at startup on the new primary's history.
// Follow tells that from the server's log and rewinds it, whether the
// server logs to pg_ctl's log file or through a logging collector.
func TestFollowStoppedStandbyPastTheFork(t *testing.T) {
	for _, tt := range []struct {
		name string
		conf []string
	}{
		{"pg_ctl log", nil},
		{"logging collector", []string{"logging_collector = on", "log_directory = 'log'", "log_filename = 'server-%H%M%S.log'"}},
	} {
		t.Run(tt.name, func(t *testing.T) { followStoppedStandbyPastTheFork(t, tt.conf) })
	}
}

func followStoppedStandbyPastTheFork(t *testing.T, conf []string) {
	g := pgtest.Start(t, 4, pgtest.Options{Names: []string{"x", "a", "b", "c"}, Conf: conf})
	x, a, b, c := g.Members[0], g.Members[1], g.Members[2], g.Members[3]
	core, logs := observer.New(zap.InfoLevel)
	ma, mb, mc := member(t, a, zap.New(core)), member(t, b, zap.New(core)), member(t, c, zap.New(core))
	ctx := context.Background()
	createLoad(t, x)

	// c stops receiving; x writes on, then dies; b takes over on
	// timeline 2 and a follows it.
	c.Exec(ctx, `ALTER SYSTEM SET primary_conninfo = ''`, `SELECT pg_reload_conf()`)
	x.Exec(ctx, `INSERT INTO load SELECT i, md5(i::text) FROM generate_series(1, 1000) AS i`)
	g.WaitStreaming(x, a, b)
	x.Kill(syscall.SIGKILL)
	if err := mb.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ma.Follow(ctx, b.ReplicationConnInfo); err != nil {
		t.Fatal(err)
	}
	b.Exec(ctx, `INSERT INTO load SELECT 10000 + i, md5(i::text) FROM generate_series(1, 1000) AS i`)
	g.WaitStreaming(b, a)
	// A restartpoint puts a's checkpoint on timeline 2.
	b.Exec(ctx, `CHECKPOINT`)
	a.Eventually(30*time.Second, func(conn *pgx.Conn) (bool, string) {
		var tli int64
		if _, err := conn.Exec(ctx, `CHECKPOINT`); err != nil {
			return false, err.Error()
		}
		if err := conn.QueryRow(ctx, `SELECT timeline_id FROM pg_control_checkpoint()`).Scan(&tli); err != nil {
			return false, err.Error()
		}
		return tli == 2, fmt.Sprintf("a's checkpoint is on timeline %d", tli)
	})
	// a's site goes dark, then b's.
	a.Kill(syscall.SIGKILL)
	b.Kill(syscall.SIGKILL)

	// c learnt of timeline 2 (a history file is all it takes) but never
	// replayed it: promoted, it forks timeline 3 from timeline 1, before
	// where b forked, and writes more than a has.
	copyHistory(t, b, c, 2)
	if err := mc.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	c.Exec(ctx, `INSERT INTO load SELECT 20000 + i, md5(i::text) FROM generate_series(1, 20000) AS i`)
	var tli int64
	if err := c.Connect(ctx).QueryRow(ctx, `SELECT timeline_id FROM pg_control_checkpoint()`).Scan(&tli); err != nil {
		t.Fatal(err)
	}
	if tli != 3 {
		t.Fatalf("c promoted on timeline %d, want 3", tli)
	}
	// An earlier attempt to follow c left c's history in a's pg_wal, as
	// a WAL receiver does before the server stops on it: now a's server
	// stops at startup, before it could stream or be asked anything.
	copyHistory(t, c, a, 3)

	began := time.Now()
	err := ma.Follow(ctx, c.ReplicationConnInfo)
	t.Logf("Follow a -> c: %s, %v", time.Since(began).Round(time.Millisecond), err)
	for _, e := range logs.All() {
		t.Logf("%s %v", e.Message, e.ContextMap())
	}
	if err != nil {
		t.Fatalf("Follow: %v\n%s", err, a.Log())
	}
	var onA, onC int64
	if err := c.Connect(ctx).QueryRow(ctx, `SELECT count(*) FROM load`).Scan(&onC); err != nil {
		t.Fatal(err)
	}
	a.Eventually(30*time.Second, func(conn *pgx.Conn) (bool, string) {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM load`).Scan(&onA); err != nil {
			return false, err.Error()
		}
		return onA == onC, fmt.Sprintf("a has %d rows, c %d", onA, onC)
	})
	if n := logs.FilterMessage("rewinding to follow the primary").Len(); n != 1 {
		t.Errorf("a was rewound %d times, want once", n)
	}
}

// copyHistory copies the history file of timeline tli from one server's
// pg_wal to another's, owned like the other's data directory.
func copyHistory(t testing.TB, from, to *pgtest.Server, tli int) {
	t.Helper()
	name := filepath.Join("pg_wal", fmt.Sprintf("%08X.history", tli))
	data, err := os.ReadFile(filepath.Join(from.DataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	writeOwned(t, to, name, data)
}

// writeOwned writes a file of a server's data directory, owned like the
// directory.
func writeOwned(t testing.TB, to *pgtest.Server, name string, data []byte) {
	t.Helper()
	path := filepath.Join(to.DataDir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(to.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		t.Fatal(err)
	}
}
