package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/zdt-project/zdt/replication"
)

// Observe reports the member's status, read in one session at one instant.
//
// On a standby: Position is the replay position; LagBytes the WAL between
// the furthest position it knows the primary has (the primary's flushed
// position its WAL receiver last heard of, or what it received itself) and
// what it replayed; LagSeconds the time since the last replayed commit was
// made on the primary, only while LagBytes is above 0. Healthy means its WAL
// receiver is streaming. Sync is always false: a standby cannot see whether
// its primary waits for it; the primary's Standbys say so.
//
// On a primary: Position is the current WAL position, Standbys lists
// pg_stat_replication, SyncConfigured says synchronous_standby_names is set.
// A fenced primary (default_transaction_read_only on) is not Writable and
// not Healthy ("fenced: read-only").
//
// An unreachable member is an error, never a stale status.
func (m *Member) Observe(ctx context.Context) (replication.Status, error) {
	var st replication.Status
	err := m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		var err error
		st, err = observe(ctx, c)
		return err
	})
	if err != nil {
		return replication.Status{}, fmt.Errorf("observe PostgreSQL member %s: %w", m.name, err)
	}
	return st, nil
}

func observe(ctx context.Context, c *pgx.Conn) (replication.Status, error) {
	var (
		st        replication.Status
		recovery  bool
		readOnly  string
		syncNames string
	)
	err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'),
		current_setting('synchronous_standby_names'), clock_timestamp()`).Scan(&recovery, &readOnly, &syncNames, &st.ObservedAt)
	if err != nil {
		return st, err
	}
	if recovery {
		err = observeStandby(ctx, c, &st)
	} else {
		err = observePrimary(ctx, c, &st, readOnly == "on", syncNames)
	}
	return st, err
}

// standbyQuery reads a standby's positions and its WAL receiver in one
// statement; the receiver's row is absent while it is not running.
const standbyQuery = `
SELECT coalesce(pg_last_wal_replay_lsn()::text, ''),
	coalesce(r.status, ''), coalesce(r.sender_host, ''), coalesce(r.sender_port, 0),
	coalesce(pg_wal_lsn_diff(greatest(r.latest_end_lsn, r.flushed_lsn, pg_last_wal_receive_lsn()),
		pg_last_wal_replay_lsn()), 0)::int8,
	coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)::float8
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`

func observeStandby(ctx context.Context, c *pgx.Conn, st *replication.Status) error {
	var (
		status, host string
		port         int32
		lagSeconds   float64
	)
	err := c.QueryRow(ctx, standbyQuery).Scan(&st.Position, &status, &host, &port, &st.LagBytes, &lagSeconds)
	if err != nil {
		return err
	}
	st.Role = replication.RoleStandby
	st.LagBytes = max(st.LagBytes, 0)
	if st.LagBytes > 0 {
		// Clocks of two hosts may disagree by a little: never negative.
		st.LagSeconds = max(lagSeconds, 0)
	}
	switch status {
	case "streaming":
		st.Healthy = true
		st.Detail = fmt.Sprintf("streaming from %s:%d", host, port)
	case "":
		st.Detail = "no WAL receiver: not streaming from a primary"
	default:
		st.Detail = fmt.Sprintf("WAL receiver is %s, not streaming (sender %s:%d)", status, host, port)
	}
	return nil
}

// replicationQuery lists the standbys streaming from a primary.
const replicationQuery = `
SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(sync_state, ''),
	coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn), 0)::int8,
	coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0)::int8,
	coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::int8,
	coalesce(replay_lsn::text, '')
FROM pg_stat_replication ORDER BY application_name, pid`

func observePrimary(ctx context.Context, c *pgx.Conn, st *replication.Status, readOnly bool, syncNames string) error {
	if err := c.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&st.Position); err != nil {
		return err
	}
	rows, err := c.Query(ctx, replicationQuery)
	if err != nil {
		return err
	}
	standbys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (replication.StandbyStatus, error) {
		var s replication.StandbyStatus
		err := r.Scan(&s.Name, &s.State, &s.SyncState, &s.SentLagBytes, &s.FlushLagBytes, &s.ReplayLagBytes, &s.Position)
		s.Synchronous = s.SyncState == "sync" || s.SyncState == "quorum"
		return s, err
	})
	if err != nil {
		return err
	}
	st.Role = replication.RolePrimary
	st.Standbys = standbys
	st.SyncStandbys = syncNames
	st.SyncConfigured = syncNames != ""
	st.Writable = !readOnly
	st.Healthy = !readOnly
	var parts []string
	for _, s := range standbys {
		parts = append(parts, s.Name+" "+s.State+" "+s.SyncState)
	}
	switch {
	case readOnly:
		st.Detail = "fenced: read-only"
	case len(parts) == 0:
		st.Detail = "no standby streaming"
	default:
		st.Detail = "standbys: " + strings.Join(parts, ", ")
	}
	return nil
}
