// Package drbd is the DRBD 9 driver of a replication group: a Member is one
// DRBD resource on this node, observed and driven with drbd-utils.
//
// Observation parses `drbdsetup events2 --now --statistics RES` (and, for
// tools and tests, `drbdsetup status --json RES`) into a typed
// ResourceStatus, and ToStatus maps that onto replication.Status. Both
// formats are documented in drbdsetup(8) and in the DRBD 9 user's guide; the
// parsers are tested on captured output kept in testdata/ (see its README).
//
// Every command goes through one seam, the Runner, so tests assert the exact
// command lines; ExecRunner runs them for real.
package drbd
