// Package pgtest runs real PostgreSQL 15 servers for tests: a Group is one
// primary and its streaming standbys on 127.0.0.1, in temporary directories
// that the test's cleanup removes with the servers.
//
// The servers are built for speed (fsync off, small buffers) and for the
// driver's needs: wal_log_hints on so that pg_rewind works, password
// (SCRAM) authentication for every connection, a superuser "zdt" for the
// driver's sessions and a user "zdt_repl" with REPLICATION and the grants
// pg_rewind needs from its source, for replication connections.
//
// PostgreSQL refuses to run as root: when the test runs as root, the
// servers and their tools run as the "postgres" user. The binaries are
// taken from $ZDT_PG_BINDIR or /usr/lib/postgresql/15/bin; when they are
// missing the test is skipped, except under CI=true, where it fails.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zdt-project/zdt/replication/postgres"
	"github.com/zdt-project/zdt/site/testport"
)

// Options shape a Group.
type Options struct {
	// Names are the members' names; the default is "a", "b", "c", ...
	Names []string
	// Conf are extra postgresql.conf lines for every member.
	Conf []string
	// Passfile: ReplicationConnInfo names a libpq password file (passfile=)
	// instead of carrying the password, as the lab's does.
	Passfile bool
}

// Group is a primary (Members[0]) and standbys streaming from it.
type Group struct {
	Members []*Server
	// Took is how long Start took.
	Took time.Duration
}

// Server is one PostgreSQL server of a Group.
type Server struct {
	Name    string
	Port    int
	DataDir string
	LogFile string
	// ConnString is a session of the superuser zdt.
	ConnString string
	// ReplicationConnInfo is how standbys stream from this server.
	ReplicationConnInfo string
	// Config is a driver Config for this server, with local control.
	Config postgres.Config

	t   testing.TB
	env *env
}

// env is what every server of a group shares.
type env struct {
	binDir string
	osUser string // "" when the test does not run as root
	cred   *syscall.Credential
	home   string
	base   string
}

// conf is what every member's postgresql.conf gets.
var conf = []string{
	"listen_addresses = '127.0.0.1'",
	"unix_socket_directories = ''",
	"fsync = off",
	"full_page_writes = on",
	"shared_buffers = 16MB",
	"max_connections = 40",
	"wal_level = replica",
	"wal_log_hints = on",
	"max_wal_senders = 10",
	"wal_keep_size = '512MB'",
	"max_wal_size = 256MB",
	"hot_standby = on",
	"wal_receiver_status_interval = 1s",
	"wal_retrieve_retry_interval = 200ms",
	"logging_collector = off",
	"log_line_prefix = '%m [%p] %b %a '",
}

const hba = `# pgtest: password authentication over loopback only
host replication zdt_repl 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
`

// BinDir finds the PostgreSQL 15 binaries, skipping the test when they are
// missing (failing under CI=true).
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("ZDT_PG_BINDIR")
	if dir == "" {
		dir = "/usr/lib/postgresql/15/bin"
	}
	for _, p := range []string{"initdb", "postgres", "pg_ctl", "pg_basebackup", "pg_rewind"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("PostgreSQL 15 server binaries are missing (%v): apt-get install -y postgresql", err)
			}
			t.Skipf("PostgreSQL 15 server binaries are missing (%v); apt-get install -y postgresql", err)
		}
	}
	return dir
}

// Start starts n servers: Members[0] is a new primary, the others are
// cloned from it with pg_basebackup and stream from it, with their name as
// application_name. Everything is stopped and removed when the test ends.
func Start(t testing.TB, n int, opts Options) *Group {
	t.Helper()
	began := time.Now()
	if n < 1 {
		t.Fatalf("pgtest.Start: %d servers", n)
	}
	names := opts.Names
	for i := len(names); i < n; i++ {
		names = append(names, string(rune('a'+i)))
	}
	e := &env{binDir: BinDir(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres user: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		e.osUser, e.home = "postgres", u.HomeDir
		e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("remove %s: %v", base, err)
		}
	})
	e.base = base
	if err := e.own(base); err != nil {
		t.Fatal(err)
	}
	password, replPassword := secret(t), secret(t)
	pwfile := filepath.Join(base, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.own(pwfile); err != nil {
		t.Fatal(err)
	}

	replAuth := "password=" + replPassword
	if opts.Passfile {
		passfile := filepath.Join(base, "pgpass")
		if err := os.WriteFile(passfile, []byte("*:*:*:zdt_repl:"+replPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.own(passfile); err != nil {
			t.Fatal(err)
		}
		replAuth = "passfile=" + passfile
	}

	g := &Group{}
	for _, name := range names[:n] {
		s := &Server{
			Name:    name,
			Port:    testport.Reserve(t, "127.0.0.1"),
			DataDir: filepath.Join(base, name),
			LogFile: filepath.Join(base, name+".log"),
			t:       t,
			env:     e,
		}
		s.ConnString = fmt.Sprintf("host=127.0.0.1 port=%d user=zdt password=%s dbname=postgres sslmode=disable connect_timeout=5", s.Port, password)
		s.ReplicationConnInfo = fmt.Sprintf("host=127.0.0.1 port=%d user=zdt_repl %s sslmode=disable", s.Port, replAuth)
		s.Config = postgres.Config{
			Name:                s.Name,
			ConnString:          s.ConnString,
			ReplicationConnInfo: s.ReplicationConnInfo,
			DataDir:             s.DataDir,
			BinDir:              e.binDir,
			OSUser:              e.osUser,
			LogFile:             s.LogFile,
			StreamTimeout:       20 * time.Second,
		}
		g.Members = append(g.Members, s)
		t.Cleanup(s.cleanup)
	}

	p := g.Members[0]
	p.run("initdb", "-D", p.DataDir, "-U", "zdt", "--pwfile="+pwfile, "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "-N")
	p.appendConf(append(append(conf, opts.Conf...), fmt.Sprintf("port = %d", p.Port)))
	p.writeFile("pg_hba.conf", hba)
	p.Start(false)
	p.Exec(context.Background(),
		"CREATE ROLE zdt_repl WITH LOGIN REPLICATION PASSWORD '"+replPassword+"'",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO zdt_repl",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO zdt_repl",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO zdt_repl",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO zdt_repl",
	)

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range g.Members[1:] {
		wg.Go(func() { errs[i+1] = s.clone(p) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n > 1 {
		g.WaitStreaming(p, g.Members[1:]...)
	}
	g.Took = time.Since(began)
	t.Logf("pgtest: %d PostgreSQL servers up in %s (%s)", n, g.Took.Round(time.Millisecond), base)
	return g
}

// clone makes s a standby of p with pg_basebackup -R and starts it. It runs
// on its own goroutine, so it returns errors instead of failing the test.
func (s *Server) clone(p *Server) error {
	conn := p.ReplicationConnInfo + " application_name=" + s.Name
	if _, err := s.env.command("pg_basebackup", "-D", s.DataDir, "-d", conn, "-X", "stream", "-c", "fast", "-R", "-N"); err != nil {
		return fmt.Errorf("clone %s from %s: %w", s.Name, p.Name, err)
	}
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "port = %d\n", s.Port)
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	if out, err := s.env.command("pg_ctl", "start", "-D", s.DataDir, "-w", "-t", "60", "-l", s.LogFile); err != nil {
		return fmt.Errorf("start %s: %w\n%s\n%s", s.Name, err, out, tail(s.LogFile))
	}
	return nil
}

// WaitStreaming waits until primary lists every standby as streaming in
// pg_stat_replication, failing the test after 30 seconds.
func (g *Group) WaitStreaming(primary *Server, standbys ...*Server) {
	primary.t.Helper()
	var names []string
	for _, s := range standbys {
		names = append(names, s.Name)
	}
	primary.Eventually(30*time.Second, func(c *pgx.Conn) (bool, string) {
		var n int
		err := c.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_replication
			WHERE state = 'streaming' AND application_name = ANY($1)`, names).Scan(&n)
		if err != nil {
			return false, err.Error()
		}
		return n == len(names), fmt.Sprintf("%d of %v streaming", n, names)
	})
}

// Eventually polls cond on a session of s every 20ms until it holds,
// failing the test with cond's last word when within has passed.
func (s *Server) Eventually(within time.Duration, cond func(c *pgx.Conn) (bool, string)) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	last := ""
	for {
		if c == nil || c.IsClosed() {
			var err error
			c, err = pgx.Connect(ctx, s.ConnString)
			if err != nil {
				c, last = nil, err.Error()
			}
		}
		if c != nil {
			ok, why := cond(c)
			if ok {
				return
			}
			last = why
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("%s: condition not met within %s: %s\n%s", s.Name, within, last, tail(s.LogFile))
		case <-tick.C:
		}
	}
}

// Connect opens a session of the superuser on s, closed when the test ends.
func (s *Server) Connect(ctx context.Context) *pgx.Conn {
	s.t.Helper()
	c, err := pgx.Connect(ctx, s.ConnString)
	if err != nil {
		s.t.Fatalf("connect to %s: %v", s.Name, err)
	}
	s.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs statements on a new session of s, failing the test on error.
func (s *Server) Exec(ctx context.Context, stmts ...string) {
	s.t.Helper()
	c, err := pgx.Connect(ctx, s.ConnString)
	if err != nil {
		s.t.Fatalf("connect to %s: %v\n%s", s.Name, err, tail(s.LogFile))
	}
	defer c.Close(context.Background())
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			s.t.Fatalf("%s: %s: %v", s.Name, q, err)
		}
	}
}

// Pid is the postmaster's process id, 0 when the server does not run.
func (s *Server) Pid() int {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// Kill sends sig to the postmaster and all its processes (pg_ctl makes the
// postmaster the leader of its own process group).
func (s *Server) Kill(sig syscall.Signal) {
	s.t.Helper()
	pid := s.Pid()
	if pid == 0 {
		s.t.Fatalf("kill %s: the server does not run", s.Name)
	}
	target := pid
	if pg, err := syscall.Getpgid(pid); err == nil && pg == pid {
		target = -pid
	}
	if err := syscall.Kill(target, sig); err != nil {
		s.t.Fatalf("kill %s: %v", s.Name, err)
	}
	if sig == syscall.SIGKILL {
		s.waitGone(pid)
	}
}

// waitGone waits until the process pid has exited, up to 10 seconds.
func (s *Server) waitGone(pid int) {
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: postmaster %d still runs 10s after it was killed", s.Name, pid)
		}
		// A killed child of another process leaves no event to wait on.
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop stops the server with a fast shutdown.
func (s *Server) Stop() {
	s.t.Helper()
	s.run("pg_ctl", "stop", "-D", s.DataDir, "-m", "fast", "-w", "-t", "30")
}

// Start starts the server and waits until it accepts connections. With
// asStandby it first writes standby.signal; otherwise the data directory
// starts as it is (a standby's keeps its standby.signal).
func (s *Server) Start(asStandby bool) {
	s.t.Helper()
	if asStandby {
		s.writeFile("standby.signal", "")
	}
	s.run("pg_ctl", "start", "-D", s.DataDir, "-w", "-t", "60", "-l", s.LogFile)
}

// Log is the end of the server's log, for failure messages.
func (s *Server) Log() string { return tail(s.LogFile) }

// cleanup stops the server, whatever state the test left it in: resumed
// if stopped by a signal, shut down immediately, killed if that fails, and
// its shared memory segment removed when it died without doing so.
func (s *Server) cleanup() {
	pid := s.Pid()
	if pid == 0 {
		postgres.RemoveSharedMemory(s.DataDir)
		return
	}
	if pg, err := syscall.Getpgid(pid); err == nil && pg == pid {
		_ = syscall.Kill(-pid, syscall.SIGCONT)
	}
	if _, err := s.env.command("pg_ctl", "stop", "-D", s.DataDir, "-m", "immediate", "-w", "-t", "10"); err != nil {
		s.t.Logf("stop %s: %v; killing it", s.Name, err)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		postgres.RemoveSharedMemory(s.DataDir)
	}
}

// run runs one of the server's programs, failing the test on error.
func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	if out, err := s.env.command(name, args...); err != nil {
		s.t.Fatalf("%s: %v\n%s\n%s", s.Name, err, out, tail(s.LogFile))
	}
}

func (s *Server) appendConf(lines []string) {
	s.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	_, err = f.WriteString("\n# pgtest\n" + strings.Join(lines, "\n") + "\n")
	if err := errors.Join(err, f.Close()); err != nil {
		s.t.Fatal(err)
	}
}

// writeFile writes a file of the data directory, owned by the server's user.
func (s *Server) writeFile(name, data string) {
	s.t.Helper()
	p := filepath.Join(s.DataDir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := s.env.own(p); err != nil {
		s.t.Fatal(err)
	}
}

// own gives a file to the servers' user, readable by it only.
func (e *env) own(p string) error {
	if e.cred == nil {
		return nil
	}
	return os.Chown(p, int(e.cred.Uid), int(e.cred.Gid))
}

// command runs one of the server's programs as the servers' user.
func (e *env) command(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.binDir, name), args...)
	cmd.Dir = e.base
	// The servers and tools take their connection settings from the
	// conninfo alone, never from the test's PG* environment (a PGPASSWORD
	// left in a developer's shell would beat the passfile).
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
	cmd.WaitDelay = 5 * time.Second
	if e.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: e.cred}
		cmd.Env = append(cmd.Env, "HOME="+e.home, "USER="+e.osUser, "LOGNAME="+e.osUser)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// tail is the end of a log file.
func tail(name string) string {
	f, err := os.Open(name)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const n = 4000
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return "--- end of " + name + " ---\n" + string(b)
}

// secret is a random password.
func secret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
