package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

// member is the driver of s, closed when the test ends.
func member(t testing.TB, s *pgtest.Server, log *zap.Logger) *postgres.Member {
	t.Helper()
	cfg := s.Config
	cfg.Log = log
	m, err := postgres.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// members are the drivers of every server of g.
func members(t testing.TB, g *pgtest.Group) []*postgres.Member {
	var ms []*postgres.Member
	for _, s := range g.Members {
		ms = append(ms, member(t, s, nil))
	}
	return ms
}

// eventually observes m every 20ms until cond holds, failing the test with
// the last status after within.
func eventually(t testing.TB, m *postgres.Member, within time.Duration, cond func(replication.Status) bool) replication.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var (
		st  replication.Status
		err error
	)
	for {
		st, err = m.Observe(ctx)
		if err == nil && cond(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: condition not met within %s; last status %+v, error %v", m.Name(), within, st, err)
		case <-tick.C:
		}
	}
}

// standbyNamed is the standby called name in a primary's status.
func standbyNamed(st replication.Status, name string) (replication.StandbyStatus, bool) {
	i := slices.IndexFunc(st.Standbys, func(s replication.StandbyStatus) bool { return s.Name == name })
	if i < 0 {
		return replication.StandbyStatus{}, false
	}
	return st.Standbys[i], true
}

// writer inserts rows into load(id) on s, one transaction each, until
// stopped or an insert fails; it records the ids whose commit was
// acknowledged.
type writer struct {
	stop  context.CancelFunc
	done  chan struct{}
	mu    sync.Mutex
	acked []int64
	err   error
}

func createLoad(t testing.TB, s *pgtest.Server) {
	s.Exec(context.Background(), `CREATE TABLE load (id bigint PRIMARY KEY, payload text)`)
}

func startWriter(t testing.TB, s *pgtest.Server) *writer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{stop: cancel, done: make(chan struct{})}
	c, err := pgx.Connect(ctx, s.ConnString)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer c.Close(context.Background())
		for id := int64(1); ctx.Err() == nil; id++ {
			_, err := c.Exec(ctx, `INSERT INTO load VALUES ($1, repeat('x', 200))`, id)
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.acked = append(w.acked, id)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

// halt stops the writer and waits for it.
func (w *writer) halt() {
	w.stop()
	<-w.done
}

func (w *writer) ackedIDs() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// waitAcked waits until at least n commits were acknowledged.
func (w *writer) waitAcked(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		w.mu.Lock()
		got, err := len(w.acked), w.err
		w.mu.Unlock()
		if got >= n {
			return
		}
		if err != nil {
			t.Fatalf("writer failed after %d commits: %v", got, err)
		}
		select {
		case <-deadline:
			t.Fatalf("writer made %d commits in 30s, want %d", got, n)
		case <-tick.C:
		}
	}
}

// auxPid is the process id of one of a server's auxiliary processes
// (backend_type "startup", "walreceiver").
func auxPid(t testing.TB, s *pgtest.Server, backendType string) int {
	t.Helper()
	ctx := context.Background()
	var pid int
	if err := s.Connect(ctx).QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE backend_type = $1`, backendType).Scan(&pid); err != nil {
		t.Fatalf("%s: no %s process: %v", s.Name, backendType, err)
	}
	return pid
}

// pause stops a process with SIGSTOP and returns the function that resumes
// it, which the test's cleanup also calls.
// socketBuffers is the most one TCP connection's kernel buffers can hold,
// receiver and sender together: the maxima of tcp_rmem and tcp_wmem.
func socketBuffers(t testing.TB) int {
	t.Helper()
	total := 0
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(data))
		n, err := strconv.Atoi(fields[len(fields)-1])
		if err != nil {
			t.Fatalf("%s: %q: %v", f, data, err)
		}
		total += n
	}
	return total
}

func pause(t testing.TB, pid int) (resume func()) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

// writability probes, round after round, which members accept a real
// write (an INSERT into probe), and records the writers of every round.
type writability struct {
	stop   context.CancelFunc
	done   chan struct{}
	rounds [][]string // the members that accepted a write, per round
}

func startProbe(t testing.TB, g *pgtest.Group) *writability {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &writability{stop: cancel, done: make(chan struct{})}
	conns := make([]*pgx.Conn, len(g.Members))
	go func() {
		defer close(p.done)
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.Close(context.Background())
				}
			}
		}()
		for ctx.Err() == nil {
			var writers []string
			for i, s := range g.Members {
				if conns[i] == nil || conns[i].IsClosed() {
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					conns[i], _ = pgx.Connect(cctx, s.ConnString+" connect_timeout=1")
					cancel()
					if conns[i] == nil {
						continue
					}
				}
				qctx, cancel := context.WithTimeout(ctx, time.Second)
				_, err := conns[i].Exec(qctx, `INSERT INTO probe VALUES ($1, clock_timestamp())`, s.Name)
				cancel()
				if err == nil {
					writers = append(writers, s.Name)
				}
			}
			p.rounds = append(p.rounds, writers)
		}
	}()
	t.Cleanup(p.halt)
	return p
}

func (p *writability) halt() {
	p.stop()
	<-p.done
}

// check says what is wrong with the recorded history: two writers in one
// round, or a member writable again after another one was.
func (p *writability) check() error {
	var order []string
	for i, w := range p.rounds {
		if len(w) > 1 {
			return fmt.Errorf("round %d: %v accepted writes at once", i, w)
		}
		if len(w) == 1 && (len(order) == 0 || order[len(order)-1] != w[0]) {
			if slices.Contains(order, w[0]) {
				return fmt.Errorf("round %d: %s writable again after %v", i, w[0], order)
			}
			order = append(order, w[0])
		}
	}
	return nil
}

// writers are the members that accepted writes, in order.
func (p *writability) writers() []string {
	var order []string
	for _, w := range p.rounds {
		if len(w) == 1 && (len(order) == 0 || order[len(order)-1] != w[0]) {
			order = append(order, w[0])
		}
	}
	return order
}

// isReadOnly says whether err is PostgreSQL refusing a write in a
// read-only transaction.
func isReadOnly(err error) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe) && pe.SQLState() == "25006"
}
