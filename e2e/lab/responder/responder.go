// Package responder is the lab's stand-in for the application a service's
// guests would run: a small HTTP server that every site of a lab in
// network namespaces runs, listening on every address of its site. Only
// the active site's interface carries the service's addresses, so only the
// active site is reached through them; it answers with its site's name and
// writes each write request into the lab's replicated PostgreSQL group,
// so that a client can tell which site served it and which of its writes
// were acknowledged.
//
//	GET  /site                    200 "a\n"
//	POST /write?client=C&seq=N    200 "a 42\n": the row id; 503 and why
//	                              when the write was not acknowledged
//
// Writes go to the group's primary, wherever it is: the connection string
// lists every member with target_session_attrs=read-write, as an
// application would connect.
package responder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Table is the table the responder writes to, made on first use.
const Table = "zdt_responder"

// A connection to one member is bounded twice. Its TCP handshake, which a
// dark site's member (links cut) never answers, takes dialTimeout at most,
// so that the next member in the connection string is tried soon. The
// whole of it (handshake, start-up, authentication and the read-write
// check: four round trips or so) takes connectTimeout at most, enough for a
// member a site away over links of 100 ms and more each way. One bound of
// 300 ms for both made every new connection to a remote primary fail at
// 100 ms between the sites: the soak's client lost its writes for good once
// the pool renewed its connections (pgxpool's MaxConnLifetime, an hour).
const (
	dialTimeout    = 400 * time.Millisecond
	connectTimeout = 5 * time.Second
)

// writeTimeout bounds one write request: an unacknowledged write fails
// fast, and the client tries the next.
const writeTimeout = 2 * time.Second

// Server answers for one site.
type Server struct {
	site string
	pool *pgxpool.Pool // nil without a database
	log  *zap.Logger
}

// New returns the responder of site, writing through a pool of
// connections to databaseURL; "" answers /site only and refuses writes.
func New(site, databaseURL string, log *zap.Logger) (*Server, error) {
	s := &Server{site: site, log: log}
	if databaseURL == "" {
		return s, nil
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// The URL holds a password: say what is wrong, not the URL.
		return nil, errors.New("the database URL cannot be parsed")
	}
	// Connections are made ahead, in the background, so that a request
	// rarely waits for one: the connection string lists every member, and
	// trying a dark site's first costs a connect timeout each time.
	cfg.MaxConns = 4
	cfg.MinConns = 2
	cfg.HealthCheckPeriod = 250 * time.Millisecond
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	cfg.ConnConfig.DialFunc = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}).DialContext
	if s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	return s, nil
}

// Close closes the database pool.
func (s *Server) Close() {
	if s.pool != nil {
		s.pool.Close()
	}
}

// Serve answers on l until ctx ends. Meanwhile it makes the table, once
// the database takes writes, so that the first requests need not.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.pool != nil {
		go s.makeTable(ctx)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /site", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, s.site)
	})
	mux.HandleFunc("POST /write", s.write)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	err := srv.Serve(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// makeTable makes the table, trying every half second until it is made
// or ctx ends.
func (s *Server) makeTable(ctx context.Context) {
	for {
		tctx, cancel := context.WithTimeout(ctx, writeTimeout)
		_, err := s.pool.Exec(tctx, createTable)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

const createTable = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	id bigserial PRIMARY KEY, client text NOT NULL, seq bigint NOT NULL,
	site text NOT NULL, at timestamptz NOT NULL DEFAULT now())`

const insertRow = `INSERT INTO ` + Table + ` (client, seq, site) VALUES ($1, $2, $3) RETURNING id`

func (s *Server) write(w http.ResponseWriter, r *http.Request) {
	client := r.URL.Query().Get("client")
	seq, err := strconv.ParseInt(r.URL.Query().Get("seq"), 10, 64)
	if client == "" || err != nil {
		http.Error(w, "want ?client=NAME&seq=NUMBER", http.StatusBadRequest)
		return
	}
	if s.pool == nil {
		http.Error(w, s.site+": no database", http.StatusServiceUnavailable)
		return
	}
	// A client that gives up does not cut the write short: a connection
	// being made for it would be lost too, and the next request would
	// start over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), writeTimeout)
	defer cancel()
	id, err := s.insert(ctx, client, seq)
	if err != nil && isMissingTable(err) {
		// Two sessions making the table at once: one of them fails (a
		// unique violation in the catalog), and the table is there.
		_, _ = s.pool.Exec(ctx, createTable)
		id, err = s.insert(ctx, client, seq)
	}
	if err != nil {
		s.log.Warn("write not acknowledged", zap.String("client", client), zap.Int64("seq", seq), zap.Error(err))
		http.Error(w, s.site+": "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "%s %d\n", s.site, id)
}

// insert writes one row and returns its id. A write refused as read-only
// says, in the log, what its session was connected to (a member whose
// fence was not lifted, or a session that outlived its primary), and the
// session is closed, as an application does that connects with
// target_session_attrs=read-write: that attribute is checked when a
// session starts, and the next one starts at whichever member takes
// writes now.
func (s *Server) insert(ctx context.Context, client string, seq int64) (int64, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var id int64
	err = conn.QueryRow(ctx, insertRow, client, seq, s.site).Scan(&id)
	if sqlState(err) == "25006" {
		var (
			addr              string
			recovery          bool
			defaultRO, thisRO string
			backend           int32
		)
		derr := conn.QueryRow(ctx, `SELECT coalesce(host(inet_server_addr()), 'local'), pg_is_in_recovery(),
			current_setting('default_transaction_read_only'), current_setting('transaction_read_only'), pg_backend_pid()`).
			Scan(&addr, &recovery, &defaultRO, &thisRO, &backend)
		s.log.Warn("write refused as read-only", zap.String("server", addr), zap.Bool("in_recovery", recovery),
			zap.String("default_transaction_read_only", defaultRO), zap.String("transaction_read_only", thisRO),
			zap.Int32("backend_pid", backend), zap.Error(derr))
		_ = conn.Conn().Close(ctx) // the pool drops it on Release
	}
	return id, err
}

// sqlState is err's SQLSTATE, or "".
func sqlState(err error) string {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return pe.SQLState()
	}
	return ""
}

// isMissingTable reports a PostgreSQL undefined_table error (42P01).
func isMissingTable(err error) bool { return sqlState(err) == "42P01" }
