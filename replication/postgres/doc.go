// Package postgres is the PostgreSQL (15 and later) driver of a replication
// group: a Member is one server, a primary or a streaming physical standby,
// observed and driven over SQL with pgx and, when the controller runs on the
// server's host, with pg_ctl and pg_rewind.
//
// # Observe
//
// One session reads, at one instant, whether the server is in recovery and
// then either the standby's replay position, its WAL receiver
// (pg_stat_wal_receiver) and the time of the last replayed commit, or the
// primary's WAL position and its standbys (pg_stat_replication). A standby's
// lag is the WAL between what it knows the primary has and what it replayed;
// its lag in seconds counts only while that is above zero (PostgreSQL's own
// *_lag intervals go NULL when nothing is written). A standby cannot see
// whether its primary waits for it: its Status.Sync is false, and the
// primary's Status.Standbys carry each standby's sync_state, which the
// reconciler joins by name (the standby's application_name is its member
// name).
//
// # Promote
//
// pg_promote(wait => true) on a standby, a CHECKPOINT so that pg_rewind
// sees the new timeline when the old primary rejoins, then the fence is
// lifted.
//
// # Fence
//
// A fenced primary is read-only: Fence runs
//
//	ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf()
//
// waits until the server has applied it, then terminates every other client
// session and waits until they have exited. Sessions that start afterwards
// begin read-only; sessions that existed, which may be inside a read-write
// transaction, are gone, so nothing they began commits. Both parts run on
// every call: a read-only primary may be one whose fence was cut short
// before its sessions were, so only a Fence that returned nil says the
// member is fenced. The setting lives in postgresql.auto.conf, so
// a fenced primary that is restarted (by systemd, by an operator) comes back
// read-only, and it is not WAL-logged, so it does not reach the standbys.
// Observe reports a fenced primary as neither writable nor healthy
// ("fenced: read-only"); Promote lifts the fence.
//
// The fence binds clients that leave the default alone, which is every
// application that does not know about it. It does not stop a client that
// deliberately overrides it: default_transaction_read_only is a per-session
// parameter any role may change (SET default_transaction_read_only = off,
// BEGIN READ WRITE). PostgreSQL 15 has no read-only mode a session cannot
// leave, and the stronger means were rejected: ALTER ROLE ... NOLOGIN or
// ALTER DATABASE ... SET are catalog changes, replicated to the standbys and
// into the next primary, where they would have to be undone; rewriting
// pg_hba.conf needs the host and edits a file operators own; holding commits
// with a synchronous standby that never comes is also overridable per
// session (synchronous_commit = local) and hangs clients. A controller that
// must exclude even such clients stops the old primary (Follow does, when
// it has local control) or fences it at the network.
//
// # Follow
//
// A running standby is re-pointed with ALTER SYSTEM SET primary_conninfo
// and a reload, which restarts its WAL receiver (PostgreSQL 13 and later);
// Follow waits until it streams from the new primary. Before waiting,
// Follow reads the new primary's timeline history over a replication
// connection: a standby that received WAL past the point where the new
// primary's timeline forked cannot follow it and is rewound. A primary
// that cannot be reached is an error, never a reason to rewind: the
// standby keeps running, and so does a member whose pg_rewind failed (it is
// restarted as a standby). Not streaming within the stream timeout is an
// error too; divergence that shows only while waiting (the server's log
// reporting the primary refusing its position, a timeline forked before
// it, or a record that does not chain) is rewound at once. A primary, a
// stopped server and a diverged standby are rewound with pg_rewind, which
// needs local control (Config.DataDir, BinDir, OSUser), wal_log_hints or
// data checksums, and the old WAL still on the new primary (wal_keep_size or
// a slot). Follow puts the member's own configuration files back after
// pg_rewind, which copies the primary's.
//
// Connections to the primary take their settings from its
// ReplicationConnInfo and libpq's defaults, never from the controller's PG*
// environment variables: pg_rewind and pg_ctl (so the server and its WAL
// receiver) run without them, and the driver's own replication connections
// ignore them. A PGPASSWORD in the shell that started the controller would
// otherwise beat the conninfo's passfile.
//
// Every method is idempotent, as replication.Member requires.
package postgres
