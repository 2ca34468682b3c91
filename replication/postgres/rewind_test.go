package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

// diverged makes a a former primary that must be rewound to follow b: b
// stops, a writes on alone and dies, b is promoted and writes a table big
// enough that pg_rewind spends a while copying it. It returns how many
// rows b's table has.
func diverged(t *testing.T, a, b *pgtest.Server, mb *postgres.Member) int {
	t.Helper()
	ctx := context.Background()
	createLoad(t, a)
	waitWAL(t, "replay", a, b)
	b.Stop()
	a.Exec(ctx, `INSERT INTO load SELECT i, md5(i::text) FROM generate_series(1, 1000) AS i`)
	a.Kill(syscall.SIGKILL)
	b.Start(true)
	if err := mb.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	const rows = 1000000
	b.Exec(ctx, fmt.Sprintf(`CREATE TABLE big AS SELECT i, md5(i::text) AS payload FROM generate_series(1, %d) AS i`, rows))
	return rows
}

// onLine calls fn, once, when a command's output has a line that contains
// s.
type onLine struct {
	s    string
	fn   func()
	once sync.Once
	buf  strings.Builder
}

func (w *onLine) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.s) {
		w.once.Do(w.fn)
	}
	return len(p), nil
}

// whenRewindBegins makes fn run when m's pg_rewind says it begins to
// rewind ("rewinding from last common checkpoint ..."), before it reads
// the file lists and copies.
func whenRewindBegins(m *postgres.Member, fn func()) {
	w := &onLine{s: "rewinding from last common checkpoint", fn: fn}
	postgres.SetCommandOutput(m, func(name string) io.Writer {
		if name == "pg_rewind" {
			return w
		}
		return nil
	})
}

// A Follow whose context ends while pg_rewind runs (a self-fence cancels
// the pass) returns at once, but pg_rewind is not cut: it runs to its end,
// and the next Follow starts the rewound standby, which streams, without a
// second rewind.
func TestRewindRunsOnPastItsCall(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	a, b := g.Members[0], g.Members[1]
	core, logs := observer.New(zap.InfoLevel)
	ma, mb := member(t, a, zap.New(core)), member(t, b, nil)
	rows := diverged(t, a, b, mb)

	ctx, cancel := context.WithCancel(context.Background())
	whenRewindBegins(ma, cancel)
	err := ma.Follow(ctx, b.ReplicationConnInfo)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow cancelled while pg_rewind runs = %v, want context.Canceled", err)
	}
	t.Logf("Follow cancelled: %v", err)
	// Meanwhile the member is left to pg_rewind.
	if err := ma.Start(context.Background()); err != nil && !errors.Is(err, postgres.ErrRewindRunning) {
		t.Errorf("Start while pg_rewind runs on = %v, want nil (it ended) or ErrRewindRunning", err)
	}
	postgres.WaitRewind(ma)
	if _, err := os.Stat(filepath.Join(a.DataDir, "zdt-rewind-unfinished")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the marker of an unfinished rewind is left after pg_rewind finished (%v)", err)
	}

	if err := ma.Follow(context.Background(), b.ReplicationConnInfo); err != nil {
		t.Fatalf("Follow after the rewind ran on: %v\n%s", err, a.Log())
	}
	if n := logs.FilterMessage("rewinding to follow the primary").Len(); n != 1 {
		t.Errorf("a was rewound %d times, want once", n)
	}
	a.Eventually(30*time.Second, func(c *pgx.Conn) (bool, string) {
		var n int
		if err := c.QueryRow(context.Background(), `SELECT count(*) FROM big`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == rows, fmt.Sprintf("a has %d of b's %d rows", n, rows)
	})
}

// pg_rewind killed once it began leaves a data directory that nothing
// but a fresh copy repairs: the server stays down, and every later Start,
// StartStandby and Follow refuses it with ErrRewindUnfinished.
func TestRewindKilledHalfWayKeepsTheServerDown(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	a, b := g.Members[0], g.Members[1]
	ma, mb := member(t, a, nil), member(t, b, nil)
	diverged(t, a, b, mb)

	ctx := context.Background()
	whenRewindBegins(ma, func() { killCommand(t, "pg_rewind", "--target-pgdata="+a.DataDir) })
	err := ma.Follow(ctx, b.ReplicationConnInfo)
	if !errors.Is(err, postgres.ErrRewindUnfinished) {
		t.Fatalf("Follow whose pg_rewind was killed = %v, want ErrRewindUnfinished", err)
	}
	t.Logf("Follow: %v", err)
	for name, try := range map[string]func() error{
		"Start":        func() error { return ma.Start(ctx) },
		"StartStandby": func() error { return ma.StartStandby(ctx, b.ReplicationConnInfo) },
		"Follow":       func() error { return ma.Follow(ctx, b.ReplicationConnInfo) },
	} {
		if err := try(); !errors.Is(err, postgres.ErrRewindUnfinished) {
			t.Errorf("%s after pg_rewind was killed = %v, want ErrRewindUnfinished", name, err)
		}
	}
	if pid := a.Pid(); pid != 0 {
		t.Errorf("a's server runs (pid %d) from a half-rewound data directory", pid)
	}
}

// killCommand kills, with SIGKILL, the process whose command line has the
// program name and arg.
func killCommand(t *testing.T, name, arg string) {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Error(err)
		return
	}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) != name || !strings.Contains(string(b), arg) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Error(err)
			}
			return
		}
	}
	t.Errorf("no %s process with %s", name, arg)
}
