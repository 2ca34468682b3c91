package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// promoteWait is how long pg_promote waits for the promotion to finish
// when ctx has no earlier deadline.
const promoteWait = 60 * time.Second

// Promote makes the member the primary: on a standby it runs
// `SELECT pg_promote(wait => true, wait_seconds => N)`, which returns once
// the server accepts writes, then a CHECKPOINT so that the new timeline is
// in pg_control (pg_rewind reads it there when the old primary rejoins).
// On every member it then lifts the fence (ALTER SYSTEM RESET
// default_transaction_read_only) and checks that the member is writable. On
// a member that is already primary only the fence is lifted.
func (m *Member) Promote(ctx context.Context) error {
	if err := m.promote(ctx); err != nil {
		return fmt.Errorf("promote PostgreSQL member %s: %w", m.name, err)
	}
	return nil
}

func (m *Member) promote(ctx context.Context) error {
	wait := promoteWait
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	secs := max(int(wait/time.Second), 1)
	promoted := false
	err := m.session(ctx, wait+m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		var recovery bool
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
			return err
		}
		if !recovery {
			return nil
		}
		var ok bool
		if err := c.QueryRow(ctx, `SELECT pg_promote(true, $1)`, secs).Scan(&ok); err != nil {
			return fmt.Errorf("pg_promote: %w", err)
		}
		if !ok {
			return fmt.Errorf("pg_promote: the server did not finish promoting within %ds; see its log", secs)
		}
		promoted = true
		if _, err := c.Exec(ctx, `CHECKPOINT`); err != nil {
			return fmt.Errorf("checkpoint after promotion: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if promoted {
		m.log.Info("promoted", zap.String("op", "promote"))
	}
	return m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		if err := setSystem(ctx, c, "default_transaction_read_only", ""); err != nil {
			return fmt.Errorf("lift the fence: %w", err)
		}
		var writable bool
		err := c.QueryRow(ctx, `SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'`).Scan(&writable)
		if err != nil {
			return err
		}
		if !writable {
			return errors.New("the member is still not writable after promotion")
		}
		return nil
	})
}

// Fence stops the member from accepting writes: on a primary it runs
// `ALTER SYSTEM SET default_transaction_read_only = on` and reloads the
// configuration, waits until the server applies it, then terminates every
// other client session (pg_terminate_backend) and waits until they have
// exited, so that no transaction begun before the fence commits after Fence
// returns. On a standby, which takes no writes, it does nothing.
//
// Both parts run on every call, whatever the member looks like: a
// read-only primary is not a fenced one, since a fence interrupted after
// the reload (its context cancelled, its controller killed) leaves the
// sessions opened before it, and their transactions, alive. Fence returns
// nil only when both parts are done; an error means the fence may be half
// done, and Fence is to be called again. The package documentation says
// what this fence does not stop.
func (m *Member) Fence(ctx context.Context) error {
	if err := m.fence(ctx); err != nil {
		return fmt.Errorf("fence PostgreSQL member %s: %w", m.name, err)
	}
	return nil
}

func (m *Member) fence(ctx context.Context) error {
	cut := -1
	err := m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		var recovery bool
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
			return err
		}
		if recovery {
			return nil
		}
		if err := setSystem(ctx, c, "default_transaction_read_only", "on"); err != nil {
			return err
		}
		if m.betweenFenceParts != nil {
			m.betweenFenceParts(ctx)
		}
		// This session sees the new value only after the postmaster has
		// reloaded, so every session started from now on is read-only; the
		// ones started before, which may be inside a read-write
		// transaction, are cut.
		n, err := cutSessions(ctx, c)
		if err != nil {
			return fmt.Errorf("cut the client sessions: %w", err)
		}
		cut = n
		return nil
	})
	if err != nil {
		return err
	}
	if cut >= 0 {
		m.log.Info("fenced", zap.String("op", "fence"), zap.Int("sessions_cut", cut))
	}
	return nil
}

// cutSessions terminates every client session but c's own and waits, until
// ctx ends, for them to exit: a session in the middle of a commit finishes
// it before it goes, so only once it is gone can nothing it began commit.
// It returns how many sessions it cut.
func cutSessions(ctx context.Context, c *pgx.Conn) (int, error) {
	var (
		pids []int32
		at   time.Time
	)
	err := c.QueryRow(ctx, `SELECT coalesce(array_agg(pid) FILTER (WHERE pg_terminate_backend(pid)), '{}'), clock_timestamp()
		FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&pids, &at)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	// A backend exits soon after the signal and gives no event to wait on.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var left int
		// backend_start: a pid a new session took over is not waited for.
		err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1) AND backend_start <= $2`, pids, at).Scan(&left)
		if err != nil {
			return 0, err
		}
		if left == 0 {
			return len(pids), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d of the %d sessions cut have not exited yet: %w", left, len(pids), ctx.Err())
		case <-tick.C:
		}
	}
}

// SetSynchronous makes the member, as primary, wait before acknowledging a
// commit until num of the named standbys have flushed it:
// synchronous_standby_names = 'ANY num (s1, s2, ...)', set with ALTER SYSTEM
// and applied with a configuration reload. No standbys makes replication
// asynchronous (synchronous_standby_names = ”). On a standby the setting
// takes effect when it is promoted.
//
// With a quorum (num below the number of standbys) no single standby is sure
// to hold every acknowledged commit: of any len(standbys)-num+1 of them, the
// one with the furthest position does.
func (m *Member) SetSynchronous(ctx context.Context, standbys []string, num int) error {
	value, err := syncStandbyNames(standbys, num)
	if err == nil {
		err = m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
			return setSystem(ctx, c, "synchronous_standby_names", value)
		})
	}
	if err != nil {
		return fmt.Errorf("set synchronous standbys of PostgreSQL member %s: %w", m.name, err)
	}
	m.log.Info("synchronous standbys set", zap.String("op", "set-synchronous"), zap.String("synchronous_standby_names", value))
	return nil
}

// syncStandbyNames is the value of synchronous_standby_names for a quorum
// of num among standbys.
func syncStandbyNames(standbys []string, num int) (string, error) {
	if len(standbys) == 0 {
		return "", nil
	}
	if num < 1 || num > len(standbys) {
		return "", fmt.Errorf("%d of %d standbys cannot be a quorum: num must be between 1 and %d", num, len(standbys), len(standbys))
	}
	quoted := make([]string, len(standbys))
	for i, s := range standbys {
		if s == "" {
			return "", errors.New("a standby name is empty")
		}
		quoted[i] = quoteIdent(s)
	}
	return fmt.Sprintf("ANY %d (%s)", num, strings.Join(quoted, ", ")), nil
}

// setSystem sets a parameter with ALTER SYSTEM (value "" resets it), reloads
// the configuration and waits until this session sees the new value, which
// it does only after the postmaster has reloaded.
func setSystem(ctx context.Context, c *pgx.Conn, name, value string) error {
	stmt := "ALTER SYSTEM SET " + name + " = " + quoteLiteral(value)
	if value == "" && name == "default_transaction_read_only" {
		stmt = "ALTER SYSTEM RESET " + name
	}
	if _, err := c.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		return fmt.Errorf("pg_reload_conf: %w", err)
	}
	want := value
	if want == "" && name == "default_transaction_read_only" {
		want = "off"
	}
	return waitSetting(ctx, c, name, want)
}

// waitSetting polls, until ctx ends, for the session's value of a parameter
// to become want. A backend applies a reload between statements, so there
// is no event to wait on.
func waitSetting(ctx context.Context, c *pgx.Conn, name, want string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var got, source string
	for {
		err := c.QueryRow(ctx, `SELECT setting, source || coalesce(' ' || sourcefile || ':' || sourceline, '')
			FROM pg_settings WHERE name = $1`, name).Scan(&got, &source)
		if err != nil {
			return err
		}
		if got == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is still %q, not %q, after the configuration reload (set by %s)", name, got, want, source)
		case <-tick.C:
		}
	}
}

// quoteLiteral quotes s as an SQL string literal that means the same
// whatever standard_conforming_strings is.
func quoteLiteral(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
