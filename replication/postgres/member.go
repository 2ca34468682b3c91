package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/replication"
)

// Config describes one PostgreSQL server as a member of its replication
// group.
type Config struct {
	// Name is the member's name, its site. Standbys use it as their
	// application_name, so it is also the name the primary's
	// pg_stat_replication and synchronous_standby_names know them by.
	Name string
	// ConnString is the libpq or pgx connection string (keyword=value or
	// URI) of a session on this member for Observe, Promote, Fence, Follow
	// and SetSynchronous: a superuser, or a role with pg_monitor,
	// pg_signal_backend, pg_checkpoint and the grants for ALTER SYSTEM,
	// pg_reload_conf and pg_promote.
	ConnString string
	// ReplicationConnInfo is the libpq connection string, in keyword=value
	// form, that the other members put into their primary_conninfo to
	// stream from this member while it is primary (host, port, user, and a
	// password or passfile). Follow receives the primary's
	// ReplicationConnInfo. Its user needs REPLICATION and, so that pg_rewind
	// can use it as its source, EXECUTE on pg_ls_dir, pg_stat_file and
	// pg_read_binary_file (the pg_rewind documentation lists them).
	// Settings it leaves out take libpq's defaults, never the controller's
	// PG* environment variables: the driver runs pg_ctl and pg_rewind
	// without them, and its own replication connections ignore them.
	ReplicationConnInfo string

	// Local control, optional: needed to rewind a former primary and to
	// restart the server. DataDir is the server's data directory, BinDir
	// the directory of pg_ctl and pg_rewind, OSUser the owner of the data
	// directory that those commands run as when the controller runs as
	// root ("" = the current user). LogFile is where `pg_ctl start` sends
	// the server's output ("" = startup.log in the data directory).
	DataDir, BinDir, OSUser, LogFile string

	// QueryTimeout bounds every query; 0 means 5 seconds.
	QueryTimeout time.Duration
	// StreamTimeout bounds how long Follow waits for the WAL receiver to
	// stream from the new primary; 0 means 30 seconds.
	StreamTimeout time.Duration
	// Log receives what the driver does; nil means no logging.
	Log *zap.Logger
}

// Member is one PostgreSQL server as a member of its replication group. It
// implements replication.Member over SQL, and with pg_ctl and pg_rewind when
// it has local control. It connects lazily and reconnects after errors; it
// keeps no state about the server between calls but a pg_rewind that runs
// on past the call that began it. Serialising role changes of one member is
// the caller's business.
type Member struct {
	name          string
	pool          *pgxpool.Pool
	replConnInfo  connInfo
	dataDir       string
	binDir        string
	osUser        string
	logFile       string
	queryTimeout  time.Duration
	streamTimeout time.Duration
	log           *zap.Logger

	// rewinding is the last pg_rewind, which may run on past the call
	// that began it (see rewind).
	rewindMu  sync.Mutex
	rewinding *rewindRun

	// commandOutput, a test seam, returns where a local command's output
	// goes too, or nil.
	commandOutput func(name string) io.Writer
	// betweenFenceParts, a test seam, runs in Fence once the member is
	// read-only, before its sessions are cut.
	betweenFenceParts func(ctx context.Context)
}

var _ replication.Member = (*Member)(nil)

// New returns the Member for cfg, or an error saying what is wrong with
// cfg. It does not connect: the first call does.
func New(cfg Config) (*Member, error) {
	m, err := newMember(cfg)
	if err != nil {
		if cfg.Name == "" {
			return nil, fmt.Errorf("PostgreSQL member: %w", err)
		}
		return nil, fmt.Errorf("PostgreSQL member %s: %w", cfg.Name, err)
	}
	return m, nil
}

func newMember(cfg Config) (*Member, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("name is empty")
	case strings.ContainsFunc(cfg.Name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return nil, fmt.Errorf("name %q contains control characters", cfg.Name)
	case len(cfg.Name) >= 64:
		return nil, fmt.Errorf("name %q is longer than 63 bytes, PostgreSQL would truncate it as application_name", cfg.Name)
	case cfg.ConnString == "":
		return nil, errors.New("connection string is empty")
	case cfg.QueryTimeout < 0 || cfg.StreamTimeout < 0:
		return nil, errors.New("timeouts must not be negative")
	}
	pc, err := pgxpool.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("connection string: %w", err)
	}
	repl, err := parseConnInfo(cfg.ReplicationConnInfo)
	if err != nil {
		return nil, fmt.Errorf("replication connection string: %w", err)
	}
	if cfg.ReplicationConnInfo != "" && repl.get("host") == "" && repl.get("hostaddr") == "" {
		return nil, errors.New("replication connection string names no host (host=...)")
	}
	if cfg.DataDir != "" || cfg.BinDir != "" {
		if !filepath.IsAbs(cfg.DataDir) || !filepath.IsAbs(cfg.BinDir) {
			return nil, fmt.Errorf("local control needs both DataDir and BinDir as absolute paths (got %q and %q)", cfg.DataDir, cfg.BinDir)
		}
	}
	if cfg.LogFile != "" && !filepath.IsAbs(cfg.LogFile) {
		return nil, fmt.Errorf("log file %q is not an absolute path", cfg.LogFile)
	}
	m := &Member{
		name:          cfg.Name,
		replConnInfo:  repl,
		dataDir:       cfg.DataDir,
		binDir:        cfg.BinDir,
		osUser:        cfg.OSUser,
		logFile:       cfg.LogFile,
		queryTimeout:  cfg.QueryTimeout,
		streamTimeout: cfg.StreamTimeout,
		log:           cfg.Log,
	}
	if m.queryTimeout == 0 {
		m.queryTimeout = 5 * time.Second
	}
	if m.streamTimeout == 0 {
		m.streamTimeout = 30 * time.Second
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.logFile == "" && m.dataDir != "" {
		m.logFile = filepath.Join(m.dataDir, "startup.log")
	}
	m.log = m.log.With(zap.String("site", m.name))
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > m.queryTimeout {
		pc.ConnConfig.ConnectTimeout = m.queryTimeout
	}
	pc.MinConns = 0
	pc.MaxConns = 4
	// Statements run one at a time on one session; the simple protocol
	// keeps ALTER SYSTEM and friends out of prepared-statement caches.
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "zdt"
	}
	m.pool, err = pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Name is the member's name.
func (m *Member) Name() string { return m.name }

// ReplicationConnInfo is what other members pass to Follow to stream from
// this member.
func (m *Member) ReplicationConnInfo() string { return m.replConnInfo.String() }

// Close closes the member's sessions, once a pg_rewind that runs on has
// ended: the controller does not leave a data directory half-rewound.
func (m *Member) Close() {
	if m.rewindRunning() {
		m.log.Warn("waiting for pg_rewind to end before closing")
	}
	m.waitRewind()
	m.pool.Close()
}

// session runs fn on one session of the member, bounded by the query
// timeout. When the session turns out to be dead (terminated by a fence or
// a restart while idle), fn runs once more on a fresh one: everything the
// driver runs is idempotent.
func (m *Member) session(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, c *pgx.Conn) error) error {
	for attempt := 0; ; attempt++ {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := m.pool.Acquire(qctx)
		if err != nil {
			cancel()
			return err
		}
		err = fn(qctx, c.Conn())
		dead := c.Conn().IsClosed()
		c.Release()
		cancel()
		if err == nil || !dead || attempt > 0 || ctx.Err() != nil || !isConnectionLost(err) {
			return err
		}
	}
}

// isConnectionLost says whether err ended the session from the server's
// side or the network, rather than being the answer to a statement.
func isConnectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// admin_shutdown, crash_shutdown, cannot_connect_now.
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}
