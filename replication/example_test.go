package replication_test

import (
	"fmt"

	"github.com/zdt-project/zdt/replication"
)

func ExampleChoose() {
	policy := replication.RPOPolicy{MaxLagBytes: 8 << 20, MaxLagSeconds: 30}
	candidates := map[string]replication.Status{
		"b": {Role: replication.RoleStandby, Healthy: true, LagBytes: 12 << 20},
		"c": {Role: replication.RoleStandby, Healthy: true, LagBytes: 1 << 20, LagSeconds: 2},
	}
	site, why := replication.Choose(policy, candidates, []string{"a", "b", "c"})
	fmt.Println("promote:", site)
	for _, s := range []string{"a", "b", "c"} {
		fmt.Printf("%s: %s\n", s, why[s])
	}
	// Output:
	// promote: c
	// a: no status observed for this site
	// b: lag 12 MiB exceeds the limit of 8 MiB
	// c: asynchronous replication, lag 1 MiB within the limit of 8 MiB, lag 2s within the limit of 30s
}
