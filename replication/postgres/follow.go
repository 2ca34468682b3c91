package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// ErrNoLocalControl says a step needs the server's data directory and
// binaries (Config.DataDir and BinDir), which the member was not given.
var ErrNoLocalControl = errors.New("the step needs local control of the server (Config.DataDir and BinDir)")

// errPrimaryUnreachable marks a failure to connect to the new primary,
// which says nothing about whether the member can follow it.
var errPrimaryUnreachable = errors.New("cannot reach the new primary")

// Follow makes the member a standby of primary, the primary's
// ReplicationConnInfo.
//
// A standby whose WAL has gone past the point where the new primary's
// timeline forked from its own cannot stream from it: Follow sees that from
// the primary's timeline history, before anything else, and rewinds it.
// Another running standby gets primary_conninfo (with application_name set
// to the member's name) by ALTER SYSTEM and a configuration reload, which
// restarts its WAL receiver (PostgreSQL 13 and later); one already
// configured for that primary is left alone. Follow then waits until the
// WAL receiver streams from the new primary, and rewinds the standby if
// its server says meanwhile that it cannot follow that history.
//
// A primary, a stopped server and a diverged standby are rewound, which
// needs local control: a running primary is fenced and stopped (pg_ctl stop
// -m fast, then -m immediate), pg_rewind makes its data directory a copy of
// the primary's as of their common history (it runs crash recovery itself
// when the server was not shut down cleanly; "no rewind required" is fine
// too), the member's own configuration files are put back (pg_rewind copies
// the primary's), primary_conninfo and standby.signal are written, and the
// server is started (pg_ctl start -w) and must then stream. Without local
// control, Follow on a primary fails with ErrNoLocalControl and changes
// nothing.
func (m *Member) Follow(ctx context.Context, primary string) error {
	err := m.follow(ctx, primary, m.markLog())
	if err != nil {
		return fmt.Errorf("PostgreSQL member %s follow %s: %w", m.name, redact(primary), err)
	}
	return nil
}

// follow is Follow; what the server logs after logFrom counts as a sign of
// divergence.
func (m *Member) follow(ctx context.Context, primary string, logFrom logMark) error {
	want, err := parseConnInfo(primary)
	if err != nil {
		return err
	}
	if want.get("host") == "" && want.get("hostaddr") == "" {
		return errors.New("the primary's connection string names no host")
	}
	want = want.with("application_name", m.name)

	var (
		recovery bool
		current  string
	)
	err = m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('primary_conninfo')`).Scan(&recovery, &current)
	})
	if err != nil {
		if m.dataDir == "" {
			return fmt.Errorf("cannot reach the server (%w); telling whether it is stopped and rewinding it: %w", err, ErrNoLocalControl)
		}
		running, serr := m.running(ctx)
		if serr != nil {
			return fmt.Errorf("cannot reach the server (%w), nor tell whether it runs: %w", err, serr)
		}
		if running {
			return fmt.Errorf("the server runs but cannot be reached, so it cannot be fenced before it is stopped: %w", err)
		}
		if err := m.usable(); err != nil {
			return err
		}
		if !m.wasStandby() {
			return m.rejoin(ctx, want, "the server is stopped")
		}
		// A stopped standby (killed with its site, say) needs no rewind
		// to start: start it as a standby of the new primary, then follow
		// as a running standby, which rewinds only on a divergence.
		if err := m.configureStandby(want); err != nil {
			return err
		}
		from := m.markLog()
		diverged, err := m.startStandby(ctx, from)
		if diverged != "" {
			// Its WAL is past where the new primary's history left the
			// old one: the server stops at startup, or never becomes
			// consistent, until it is rewound.
			return m.rejoin(ctx, want, diverged)
		}
		if err != nil {
			return fmt.Errorf("start the stopped standby: %w", err)
		}
		m.log.Info("stopped standby started", zap.String("op", "follow"), zap.String("peer", hostPort(want)))
		return m.follow(ctx, primary, from)
	}
	if !recovery {
		if m.dataDir == "" {
			return fmt.Errorf("the member is a primary (not in recovery); to follow it must be stopped and rewound; nothing was changed: %w", ErrNoLocalControl)
		}
		if err := m.fence(ctx); err != nil {
			return err
		}
		return m.rejoin(ctx, want, "the member was primary")
	}

	// Compared before the WAL receiver is pointed at the new primary: a
	// receiver that streamed from it a moment would have written its
	// history and part of a segment of its timeline into pg_wal, which a
	// standby that turns out to have diverged does not start with again.
	diverged, err := m.diverged(ctx, want)
	if diverged == "" {
		cur, perr := parseConnInfo(current)
		if perr != nil || !sameSender(cur, want) {
			err := m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
				return setSystem(ctx, c, "primary_conninfo", want.String())
			})
			if err != nil {
				return err
			}
			m.log.Info("primary_conninfo set", zap.String("op", "follow"), zap.String("peer", hostPort(want)))
		}
	}
	if errors.Is(err, errPrimaryUnreachable) {
		// Nothing tells whether the standby can follow the primary, and a
		// standby is never taken down because its primary is away: it
		// keeps running and connects by itself when the primary is back.
		return fmt.Errorf("%w; the standby was left running", err)
	}
	if err != nil {
		m.log.Warn("cannot compare timelines with the new primary; waiting for streaming", zap.String("op", "follow"), zap.Error(err))
	}
	if diverged == "" {
		diverged, err = m.waitStreaming(ctx, want, logFrom)
		if err != nil {
			// Not streaming, but no divergence established: rewinding
			// would only take the standby down.
			return err
		}
		if diverged == "" {
			return nil
		}
	}
	if m.dataDir == "" {
		return fmt.Errorf("%s; the standby must be rewound: %w", diverged, ErrNoLocalControl)
	}
	return m.rejoin(ctx, want, diverged)
}

// waitStreaming waits, up to the stream timeout, until the WAL receiver
// streams from the server that want names. While it does not, it checks
// about every second whether the standby turns out to have diverged from
// the primary, by the primary's timeline history and by what the server
// logged since logFrom (see logDivergence): then it returns why, at once.
// A timeout, an unreachable primary included, is an error, never a
// divergence.
func (m *Member) waitStreaming(ctx context.Context, want connInfo, logFrom logMark) (diverged string, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.streamTimeout)
	defer cancel()
	host := want.get("host")
	if host == "" {
		host = want.get("hostaddr")
	}
	port := want.get("port")
	if port == "" {
		port = "5432"
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no WAL receiver"
	nextCheck := time.Now().Add(time.Second)
	for {
		var status, sHost string
		var sPort int32
		err := m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT coalesce(r.status, ''), coalesce(r.sender_host, ''), coalesce(r.sender_port, 0)
				FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`).Scan(&status, &sHost, &sPort)
		})
		switch {
		case err != nil:
			last = err.Error()
		case status == "streaming" && sHost == host && strconv.Itoa(int(sPort)) == port:
			return "", nil
		case status != "":
			last = fmt.Sprintf("WAL receiver %s from %s:%d", status, sHost, sPort)
		default:
			last = "no WAL receiver"
		}
		if time.Now().After(nextCheck) {
			nextCheck = time.Now().Add(time.Second)
			if why := m.logDivergence(logFrom); why != "" {
				return why, nil
			}
			why, herr := m.diverged(ctx, want)
			switch {
			case why != "":
				return why, nil
			case errors.Is(herr, errPrimaryUnreachable):
				last += "; " + herr.Error()
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not streaming from %s:%s after %s (last seen: %s)", host, port, m.streamTimeout, last)
		case <-tick.C:
		}
	}
}

// logDivergence reads what the server logged since the mark (see logMark;
// nothing without local control) and says whether it reports that the
// standby's WAL has left the primary's history: the primary refusing the
// receiver's starting point, a new timeline that forked before the replay
// position, the startup process refusing the new primary's history (its
// checkpoint, its minimum recovery point or WAL it already replayed lies
// on a timeline that history left earlier), or the startup process
// finding, again and again, a record that does not chain to the previous
// one (incorrect prev-link, which is WAL of another history in the
// standby's pg_wal). The messages are PostgreSQL's in English
// (lc_messages C or an English locale).
func (m *Member) logDivergence(mark logMark) string {
	prevLink := map[string]int{}
	for line := range strings.Lines(m.logSince(mark)) {
		switch {
		case strings.Contains(line, "is not in this server's history"),
			strings.Contains(line, "is not a child of this server's history"),
			strings.Contains(line, "but previous recovered WAL file came from timeline"),
			strings.Contains(line, "forked off current database system timeline"),
			strings.Contains(line, "does not contain minimum recovery point"):
			return "the server logged: " + strings.TrimSpace(line)
		case strings.Contains(line, "incorrect prev-link"):
			_, at, _ := strings.Cut(line, "incorrect prev-link")
			prevLink[at]++
			if prevLink[at] >= 2 {
				return "the server logged again and again: " + strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// diverged compares the standby's WAL with the primary's timeline history,
// read over a replication connection (IDENTIFY_SYSTEM, TIMELINE_HISTORY):
// it returns why the standby cannot stream from the primary, or "" when it
// can (as far as the history tells). An error wrapping
// errPrimaryUnreachable says the primary could not be reached.
//
// The standby's timeline is its WAL receiver's while that runs. Otherwise
// it is not known exactly: the timeline of its last restartpoint
// (pg_control_checkpoint) lags behind a timeline switch it has replayed
// until the next restartpoint, so every timeline from that one to the
// newest whose history file the standby has is a candidate, and the
// standby has diverged only if none of them lies on the primary's history
// up to the standby's position. A divergence this misses shows when the
// standby then fails to stream (see logDivergence).
func (m *Member) diverged(ctx context.Context, primary connInfo) (string, error) {
	var (
		sysID                    string
		lsn                      string
		received, checkpoint, hi int64
	)
	err := m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT (SELECT system_identifier::text FROM pg_control_system()),
			coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0), 0)::int8,
			(SELECT timeline_id FROM pg_control_checkpoint())::int8,
			coalesce((SELECT max(('x' || substr(name, 1, 8))::bit(32)::int8) FROM pg_ls_waldir()
				WHERE name ~ '^[0-9A-F]{8}\.history$'), 0),
			greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text`).Scan(&sysID, &received, &checkpoint, &hi, &lsn)
	})
	if err != nil {
		return "", err
	}
	pos, err := ParseLSN(lsn)
	if err != nil {
		return "", err
	}
	hist, err := primaryHistory(ctx, primary, m.queryTimeout)
	if err != nil {
		return "", err
	}
	if hist.systemID != sysID {
		return "", fmt.Errorf("the primary is a different database cluster (system identifier %s, this member's %s)", hist.systemID, sysID)
	}
	candidates := []int64{received}
	if received == 0 {
		candidates = nil
		for t := max(checkpoint, hi); t >= checkpoint; t-- {
			candidates = append(candidates, t)
		}
	}
	why := ""
	for _, t := range candidates {
		w := hist.divergence(t, pos)
		if w == "" {
			return "", nil
		}
		if why == "" {
			why = w
		}
	}
	return why, nil
}

// divergence says why a standby at pos on timeline tli cannot stream from
// the primary of history h, or "" when it can.
func (h history) divergence(tli int64, pos uint64) string {
	if tli == h.timeline {
		return ""
	}
	for _, s := range h.switches {
		if s.timeline == tli {
			if pos > s.end {
				return fmt.Sprintf("the standby's WAL reaches %s on timeline %d, past %s where the primary's timeline %d forked from it",
					FormatLSN(pos), tli, FormatLSN(s.end), h.timeline)
			}
			return ""
		}
	}
	return fmt.Sprintf("the standby's timeline %d is not in the history of the primary's timeline %d", tli, h.timeline)
}

// history is a primary's timeline and the ends of the timelines before it.
type history struct {
	systemID string
	timeline int64
	switches []timelineSwitch
}

type timelineSwitch struct {
	timeline int64  // a timeline of the history
	end      uint64 // where the next timeline forked from it
}

func primaryHistory(ctx context.Context, primary connInfo, timeout time.Duration) (history, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := pgconn.ParseConfig(withoutEnvironment(primary).with("replication", "true").with("application_name", "zdt").String())
	if err != nil {
		return history{}, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return history{}, fmt.Errorf("%w: replication connection: %w", errPrimaryUnreachable, err)
	}
	defer conn.Close(context.Background())
	res, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return history{}, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 3 {
		return history{}, errors.New("IDENTIFY_SYSTEM: unexpected answer")
	}
	var h history
	h.systemID = string(res[0].Rows[0][0])
	if h.timeline, err = strconv.ParseInt(string(res[0].Rows[0][1]), 10, 64); err != nil {
		return history{}, fmt.Errorf("IDENTIFY_SYSTEM timeline: %w", err)
	}
	if h.timeline == 1 {
		return h, nil
	}
	res, err = conn.Exec(ctx, "TIMELINE_HISTORY "+strconv.FormatInt(h.timeline, 10)).ReadAll()
	if err != nil {
		return history{}, fmt.Errorf("TIMELINE_HISTORY: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 2 {
		return history{}, errors.New("TIMELINE_HISTORY: unexpected answer")
	}
	h.switches, err = parseHistory(string(res[0].Rows[0][1]))
	return h, err
}

// parseHistory parses a timeline history file: one line per earlier
// timeline, "timeline<TAB>switch LSN<TAB>reason"; # starts a comment.
func parseHistory(s string) ([]timelineSwitch, error) {
	var out []timelineSwitch
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline history line %q has no switch point", line)
		}
		tli, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("timeline history line %q: %w", line, err)
		}
		end, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history line %q: %w", line, err)
		}
		out = append(out, timelineSwitch{tli, end})
	}
	return out, nil
}

// hostPort names the server a connection string reaches, for logs.
func hostPort(ci connInfo) string {
	h := ci.get("host")
	if h == "" {
		h = ci.get("hostaddr")
	}
	return h + ":" + ci.get("port")
}

// redact prints a connection string without its password, for errors.
func redact(s string) string {
	ci, err := parseConnInfo(s)
	if err != nil {
		return "(unparsable connection string)"
	}
	if ci.get("password") != "" {
		ci = ci.with("password", "xxx")
	}
	return ci.String()
}
