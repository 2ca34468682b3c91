package reconciler

import (
	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site/config"
)

// GroupPolicy is the RPO policy a group's members are promoted under: the
// strictest of its services' (the one the reconciler applies). The
// coordinator uses it to choose a failover target the reconciler there will
// not refuse.
//
// A synchronous group promises that a failover loses no acknowledged
// commit, so it is promoted as if its services required synchronous
// replication: only the standby sure to hold every commit the old primary
// acknowledged (with 'ANY 1 (...)', the furthest of the standbys it waited
// for) may be promoted; a lag within the limits is not enough.
func GroupPolicy(cl *config.Cluster, group string) replication.RPOPolicy {
	var rpos []config.RPO
	for _, svc := range cl.Services {
		if svc.ReplicationGroup == group {
			rpos = append(rpos, svc.RPO)
		}
	}
	p := strictest(rpos)
	for _, g := range cl.Replication {
		if g.Name == group && g.Synchronous {
			p.RequireSync = true
		}
	}
	return p
}
