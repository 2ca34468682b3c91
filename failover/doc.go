// Package failover is the coordinator: the one controller that holds the
// etcd election detects dark sites, plans what to do about them and carries
// it out as journaled ops.
//
// Deciding is a pure function of the cluster's state (Decide); carrying out
// is an op of named, idempotent steps (see Steps) whose progress is journaled
// before and after each step. Every write is guarded by the coordinator's
// election key, so a coordinator that lost the election cannot write, and the
// next coordinator resumes any unfinished op from the journal.
package failover
