package reconciler

import (
	"github.com/zdt-project/zdt/replication"
	"github.com/zdt-project/zdt/site/config"
)

// GroupPolicy is the RPO policy a group's members are promoted under: the
// strictest of its services' (the one the reconciler applies). The
// coordinator uses it to choose a failover target the reconciler there will
// not refuse.
func GroupPolicy(cl *config.Cluster, group string) replication.RPOPolicy {
	var rpos []config.RPO
	for _, svc := range cl.Services {
		if svc.ReplicationGroup == group {
			rpos = append(rpos, svc.RPO)
		}
	}
	return strictest(rpos)
}
