package postgres

import (
	"bytes"
	"context"
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
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Bounds of the local steps; ctx may end them earlier.
const (
	stopTimeout  = 30 * time.Second // pg_ctl stop -m fast before -m immediate
	startTimeout = 60 * time.Second // pg_ctl start -w
)

// configFiles are the member's own configuration in its data directory,
// which pg_rewind overwrites with the primary's and rejoin puts back.
var configFiles = []string{"postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"}

// rejoin makes the member a standby of primary by rewinding it: stop,
// pg_rewind, configure, start, wait for streaming. why says why, for the log.
func (m *Member) rejoin(ctx context.Context, primary connInfo, why string) error {
	if m.dataDir == "" {
		return ErrNoLocalControl
	}
	log := m.log.With(zap.String("op", "rejoin"), zap.String("peer", hostPort(primary)))
	if err := m.usable(); err != nil {
		return err
	}
	log.Info("rewinding to follow the primary", zap.String("reason", why))
	// pg_rewind needs the primary; when it cannot be reached, the member
	// is not stopped for nothing.
	if _, err := primaryHistory(ctx, primary, m.queryTimeout); errors.Is(err, errPrimaryUnreachable) {
		return fmt.Errorf("%w; nothing was stopped nor rewound", err)
	}
	running, err := m.running(ctx)
	if err != nil {
		return err
	}
	if running {
		if err := m.stop(ctx); err != nil {
			return err
		}
	}
	// The pool's sessions died with the server.
	m.pool.Reset()

	// The marker says, until pg_rewind has finished, that the data
	// directory may be half-rewound. It is saved with the configuration,
	// since pg_rewind removes what the primary does not have.
	// standby.signal is saved too, and set aside during pg_rewind: its
	// crash recovery (single-user mode) refuses it; restore puts it back
	// whatever pg_rewind did, so a failed rewind leaves no would-be primary.
	began := fmt.Sprintf("pg_rewind from %s began at %s\n", hostPort(primary), time.Now().UTC().Format(time.RFC3339))
	if err := m.writeFile(filepath.Join(m.dataDir, rewindMarker), []byte(began)); err != nil {
		return err
	}
	saved, err := readFiles(m.dataDir, append(slices.Clone(configFiles), "standby.signal", rewindMarker))
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(m.dataDir, "standby.signal")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	source := primary.with("application_name", "zdt-rewind-"+m.name)
	if source.get("dbname") == "" {
		source = source.with("dbname", "postgres")
	}
	// The password goes in the environment, not on the command line; its
	// messages in English (the log says whether a rewind was required).
	env := []string{"LC_ALL=C"}
	if pw := source.get("password"); pw != "" {
		env = append(env, "PGPASSWORD="+pw)
		source = source.without("password")
	}
	standby := func() error { return m.configureStandby(primary) }
	out, rerr := m.rewind(ctx, saved, standby, env, "--target-pgdata="+m.dataDir, "--source-server="+source.String())
	if rerr != nil {
		if ctx.Err() != nil {
			return rerr // pg_rewind runs on
		}
		if err := m.usable(); err != nil {
			// Cut half-way: the server stays down; m.usable says why to
			// whoever tries to start it.
			log.Error("pg_rewind did not finish; the server stays down", zap.Error(rerr))
			return fmt.Errorf("%w; %w", rerr, err)
		}
		// It failed before it changed the data directory. The member is
		// not left down: it runs again as a standby, with the
		// primary_conninfo it had, until a rewind succeeds.
		if err := m.writeFile(filepath.Join(m.dataDir, "standby.signal"), nil); err != nil {
			return errors.Join(rerr, fmt.Errorf("restart as a standby: %w", err))
		}
		if err := m.start(context.WithoutCancel(ctx)); err != nil {
			return errors.Join(rerr, fmt.Errorf("restart as a standby: %w", err))
		}
		log.Warn("pg_rewind failed; the member runs again as a standby", zap.Error(rerr))
		return fmt.Errorf("%w; the member was restarted as a standby", rerr)
	}
	log.Info("rewound", zap.Bool("no_rewind_required", strings.Contains(out, "no rewind required")))
	from := m.markLog()
	if err := m.start(ctx); err != nil {
		return err
	}
	diverged, err := m.waitStreaming(ctx, primary, from)
	if err != nil {
		return fmt.Errorf("started as a standby but %w", err)
	}
	if diverged != "" {
		return fmt.Errorf("started as a standby but cannot stream: %s", diverged)
	}
	return nil
}

// wasStandby reports whether the (stopped) server's data directory says it
// is a standby: standby.signal is there.
func (m *Member) wasStandby() bool {
	_, err := os.Stat(filepath.Join(m.dataDir, "standby.signal"))
	return err == nil
}

// configureStandby writes primary_conninfo into postgresql.auto.conf
// (replacing any earlier one; ALTER SYSTEM needs a running server) and
// creates standby.signal.
func (m *Member) configureStandby(primary connInfo) error {
	auto := filepath.Join(m.dataDir, "postgresql.auto.conf")
	old, err := os.ReadFile(auto)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var b strings.Builder
	for line := range strings.Lines(string(old)) {
		key, _, _ := strings.Cut(line, "=")
		if strings.TrimSpace(key) == "primary_conninfo" {
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	if len(old) == 0 {
		b.WriteString("# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n")
	}
	fmt.Fprintf(&b, "primary_conninfo = %s\n", quoteConfigValue(primary.String()))
	if err := m.writeFile(auto, []byte(b.String())); err != nil {
		return err
	}
	return m.writeFile(filepath.Join(m.dataDir, "standby.signal"), nil)
}

// writeFile replaces name atomically with data, owned like the data
// directory and readable by its owner only.
func (m *Member) writeFile(name string, data []byte) error {
	fi, err := os.Stat(m.dataDir)
	if err != nil {
		return err
	}
	tmp := name + ".zdt-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := os.Chown(tmp, int(st.Uid), int(st.Gid)); err != nil {
			return errors.Join(err, os.Remove(tmp))
		}
	}
	if err := os.Rename(tmp, name); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

// savedFiles are files read before pg_rewind, to be put back after it.
type savedFiles []savedFile

type savedFile struct {
	name     string
	data     []byte
	mode     os.FileMode
	uid, gid int
}

func readFiles(dir string, names []string) (savedFiles, error) {
	var out savedFiles
	for _, n := range names {
		name := filepath.Join(dir, n)
		fi, err := os.Stat(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f := savedFile{name: name, data: data, mode: fi.Mode().Perm(), uid: -1, gid: -1}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.uid, f.gid = int(st.Uid), int(st.Gid)
		}
		out = append(out, f)
	}
	return out, nil
}

func (s savedFiles) restore() error {
	var errs []error
	for _, f := range s {
		tmp := f.name + ".zdt-tmp"
		err := os.WriteFile(tmp, f.data, f.mode)
		if err == nil && os.Geteuid() == 0 {
			err = os.Chown(tmp, f.uid, f.gid)
		}
		if err == nil {
			err = os.Rename(tmp, f.name)
		}
		if err != nil {
			errs = append(errs, err, os.Remove(tmp))
		}
	}
	return errors.Join(errs...)
}

// running says whether a postmaster runs on the data directory
// (pg_ctl status: 0 running, 3 not running).
func (m *Member) running(ctx context.Context) (bool, error) {
	_, err := m.command(ctx, nil, "pg_ctl", "status", "-D", m.dataDir)
	var ce *commandError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce) && ce.exitCode == 3:
		return false, nil
	}
	return false, err
}

// stop stops the server: a fast shutdown (sessions are cut, a shutdown
// checkpoint is written), or an immediate one when that does not end in
// time.
func (m *Member) stop(ctx context.Context) error {
	secs := strconv.Itoa(int(stopTimeout / time.Second))
	_, err := m.command(ctx, nil, "pg_ctl", "stop", "-D", m.dataDir, "-m", "fast", "-w", "-t", secs)
	if err == nil {
		return nil
	}
	m.log.Warn("fast shutdown failed; shutting down immediately", zap.Error(err))
	_, err = m.command(ctx, nil, "pg_ctl", "stop", "-D", m.dataDir, "-m", "immediate", "-w", "-t", secs)
	return err
}

// Start starts the server, as it was, unless a postmaster runs on its data
// directory: a server that died with its host does not come back by
// itself in the lab, nor where no service manager restarts it. It needs
// local control (ErrNoLocalControl otherwise).
func (m *Member) Start(ctx context.Context) error {
	if m.dataDir == "" {
		return ErrNoLocalControl
	}
	running, err := m.running(ctx)
	if err != nil || running {
		return err
	}
	m.log.Info("starting the server, which does not run")
	m.pool.Reset()
	return m.start(ctx)
}

// ErrFormerPrimary says the stopped server's data directory is a
// primary's (it has no standby.signal): StartStandby leaves it down.
var ErrFormerPrimary = errors.New("its data directory is a primary's: it comes back only rewound to follow a writable primary")

// StartStandby starts the server, unless a postmaster runs on its data
// directory, only if its data directory says it is a standby
// (standby.signal): it comes back a standby of primary (the primary's
// ReplicationConnInfo, written as primary_conninfo), which need not run.
// A former primary's data is left as it is, the server down
// (ErrFormerPrimary): started as it was it would take writes. It needs
// local control (ErrNoLocalControl otherwise).
func (m *Member) StartStandby(ctx context.Context, primary string) error {
	if m.dataDir == "" {
		return ErrNoLocalControl
	}
	want, err := parseConnInfo(primary)
	if err != nil {
		return err
	}
	running, err := m.running(ctx)
	if err != nil || running {
		return err
	}
	if err := m.usable(); err != nil {
		return fmt.Errorf("PostgreSQL member %s not started: %w", m.name, err)
	}
	if !m.wasStandby() {
		return fmt.Errorf("PostgreSQL member %s not started: %w", m.name, ErrFormerPrimary)
	}
	if err := m.configureStandby(want.with("application_name", m.name)); err != nil {
		return err
	}
	m.log.Info("starting the stopped standby", zap.String("peer", hostPort(want)))
	m.pool.Reset()
	return m.start(ctx)
}

// start starts the server and waits until it accepts connections, unless
// its data directory is not fit to start (see usable).
func (m *Member) start(ctx context.Context) error {
	if err := m.usable(); err != nil {
		return err
	}
	secs := strconv.Itoa(int(startTimeout / time.Second))
	_, err := m.command(ctx, nil, "pg_ctl", "start", "-D", m.dataDir, "-w", "-t", secs, "-l", m.logFile)
	if err != nil {
		// Where the server says why: pg_ctl's file, and the logging
		// collector's, to which a server that runs one writes the rest.
		for _, f := range append([]string{m.logFile}, m.collectorFiles()...) {
			err = fmt.Errorf("%w; the end of %s: %s", err, f, tail(f, 1500))
		}
		return err
	}
	return nil
}

// startStandby starts a standby (pg_ctl start -w) and watches its logs
// after the mark meanwhile: when the log shows the standby diverged from
// its primary (see logDivergence), it returns why at once, whether the
// server stopped at startup or waits, never consistent, for WAL its
// primary cannot send; the server may still run then. Otherwise it returns
// start's error.
func (m *Member) startStandby(ctx context.Context, from logMark) (diverged string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- m.start(ctx) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-started:
			return m.logDivergence(from), err
		case <-tick.C:
			if why := m.logDivergence(from); why != "" {
				// Cancelling kills pg_ctl, not the server it started.
				cancel()
				<-started
				return why, nil
			}
		}
	}
}

// tail returns the last n bytes of a file, for errors.
func tail(name string, n int64) string {
	f, err := os.Open(name)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

// commandError is a local command that ran and failed.
type commandError struct {
	cmd      string
	exitCode int
	output   string
}

func (e *commandError) Error() string {
	return fmt.Sprintf("%s: exit status %d: %s", e.cmd, e.exitCode, strings.Join(strings.Fields(e.output), " "))
}

// command runs one of the server's programs from BinDir, as OSUser when the
// controller runs as root, and returns its combined output.
func (m *Member) command(ctx context.Context, env []string, name string, args ...string) (string, error) {
	if m.binDir == "" {
		return "", ErrNoLocalControl
	}
	cmd := exec.CommandContext(ctx, filepath.Join(m.binDir, name), args...)
	cmd.Dir = "/"
	cmd.Env = append(withoutLibpqEnv(os.Environ()), env...)
	cmd.WaitDelay = 5 * time.Second
	if err := asUser(cmd, m.osUser); err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if m.commandOutput != nil {
		if w := m.commandOutput(name); w != nil {
			both := io.MultiWriter(&out, w)
			cmd.Stdout, cmd.Stderr = both, both
		}
	}
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	line := name + " " + strings.Join(args, " ")
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ctx.Err() == nil {
		return out.String(), &commandError{cmd: line, exitCode: ee.ExitCode(), output: out.String()}
	}
	return out.String(), fmt.Errorf("%s: %w", line, err)
}

// withoutLibpqEnv returns environ without the PG* variables, which libpq
// and the server's programs read: pg_rewind and the server that pg_ctl
// starts (whose WAL receiver connects with primary_conninfo) take their
// connection settings from the member's conninfo alone. A PGPASSWORD in the
// controller's environment would otherwise beat the replication conninfo's
// passfile, and the rejoined member could not authenticate to its primary;
// a PGPORT would become the port of a server whose configuration sets none.
func withoutLibpqEnv(environ []string) []string {
	return slices.DeleteFunc(slices.Clone(environ), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
}

// asUser makes cmd run as the named user when the controller runs as
// root; otherwise the name must be the current user's or empty.
func asUser(cmd *exec.Cmd, name string) error {
	if name == "" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		if u.Uid != strconv.Itoa(os.Geteuid()) {
			return fmt.Errorf("cannot run as %s: the controller does not run as root nor as that user", name)
		}
		return nil
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = append(cmd.Env, "HOME="+u.HomeDir, "USER="+name, "LOGNAME="+name)
	return nil
}
