// Package replication models the mirrored data sets that fail over with a
// service: a replication group has one member per site, one member is the
// primary and the others follow it.
//
// A driver (replication/drbd, replication/postgres) turns one member into a
// Member: it observes the member's Status and changes its role. This package
// owns what every driver shares: the Status vocabulary and the RPO policy,
// the pure decision whether a member may be promoted (Eligible) and which one
// (Choose). The decisions explain themselves in sentences an operator reads
// in the op journal, with sizes in human units.
package replication
