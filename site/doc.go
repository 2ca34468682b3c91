// Package site is the foundation of zdt: the etcd key schema of a cluster's
// state and a typed store over it.
//
// Desired state (fences, service assignments, the op journal) is written by
// the elected coordinator; observed state (alive keys bound to each site's
// lease, site reports) is written by each site's controller. Every write the
// coordinator makes is one etcd transaction guarded by its election key
// (see Guard), and every change of a record compares the revision it was read
// at, so two coordinators can never both win.
//
// The layout under /zdt/<cluster>/:
//
//	sites/<s>/alive        bound to the site's lease; absent means the site is dark
//	sites/<s>/registered   written once, when the site first joins
//	sites/<s>/report       what the site's controller observes about itself
//	sites/<s>/hosts        when the site last reported a change of its hypervisors
//	sites/<s>/host/<h>     what the site observes of hypervisor h: its capacity, what runs
//	sites/<s>/bgp          the site's BGP sessions and service addresses
//	sites/<s>/bgp-announced/<svc>  what the site announces of the service's prefixes
//	sites/<s>/replication  the site's replication members
//	fences/<s>             the site is fenced: by which op, when, why
//	services/<svc>/assignment  active site; its mod revision is the epoch
//	guests/<g>/placement   where the guest runs (or why it does not)
//	ops/<id>               the op journal
//	events/<time>-<n>      the append-only event log
//	election/              the coordinator election
//
// Subpackages: config (the cluster's YAML file), membership (leases,
// heartbeats and self-fencing), embedetcd (a site's in-process etcd member)
// and sitetest (in-process etcd clusters for tests).
package site
