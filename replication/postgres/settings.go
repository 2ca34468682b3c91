package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Settings are the server parameters that decide what the driver can do
// with a member.
type Settings struct {
	WalLogHints   bool   // wal_log_hints
	DataChecksums bool   // data_checksums (chosen at initdb)
	WalLevel      string // wal_level: replica or logical to stream
	MaxWalSenders int    // max_wal_senders: 0 means no standby can stream
	HotStandby    bool   // hot_standby: a standby answers queries (Observe)
}

// CanRewind says whether pg_rewind can rewind this member after it was
// primary: it needs wal_log_hints or data checksums.
func (s Settings) CanRewind() bool { return s.WalLogHints || s.DataChecksums }

// Problems lists, as sentences, what keeps the member from taking part in
// failover fully; none when it can.
func (s Settings) Problems() []string {
	var p []string
	if !s.CanRewind() {
		p = append(p, "neither wal_log_hints nor data checksums are on: a former primary cannot be rewound and must be cloned again (set wal_log_hints = on and restart)")
	}
	if s.WalLevel != "replica" && s.WalLevel != "logical" {
		p = append(p, fmt.Sprintf("wal_level is %s: standbys cannot stream (set it to replica and restart)", s.WalLevel))
	}
	if s.MaxWalSenders == 0 {
		p = append(p, "max_wal_senders is 0: no standby can stream from this member")
	}
	if !s.HotStandby {
		p = append(p, "hot_standby is off: the member cannot be observed while it is a standby")
	}
	return p
}

// Settings reads the member's Settings.
func (m *Member) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := m.session(ctx, m.queryTimeout, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT current_setting('wal_log_hints') = 'on', current_setting('data_checksums') = 'on',
			current_setting('wal_level'), current_setting('max_wal_senders')::int, current_setting('hot_standby') = 'on'`).
			Scan(&s.WalLogHints, &s.DataChecksums, &s.WalLevel, &s.MaxWalSenders, &s.HotStandby)
	})
	if err != nil {
		return Settings{}, fmt.Errorf("read the settings of PostgreSQL member %s: %w", m.name, err)
	}
	return s, nil
}
