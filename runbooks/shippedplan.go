package runbooks

import (
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// PlanShipped plans the op of a built-in operation (switchover, evacuate,
// failback) by its shipped runbook of the same name, which the runbook
// engine runs: one implementation for the CLI and the API. Arguments with
// empty values are left out (the runbook's defaults apply). The op keeps
// the operation's kind. It returns the op, or why it may not run now.
func PlanShipped(cfg *config.Cluster, snap *site.Snapshot, name string, args map[string]string, who string) (*site.Op, []string) {
	rb, err := Find(name)
	if err != nil {
		return nil, []string{err.Error()}
	}
	given := map[string]string{}
	for k, v := range args {
		if v != "" {
			given[k] = v
		}
	}
	resolved, err := Resolve(rb, cfg, given)
	if err != nil {
		return nil, []string{err.Error()}
	}
	plan, err := MakePlan(rb, cfg, snap, resolved, PlanOptions{Who: who, Now: time.Now(), Yes: true, Kind: name})
	switch {
	case err != nil:
		return nil, []string{err.Error()}
	case len(plan.Blockers) > 0:
		return nil, plan.Blockers
	}
	return plan.Op, nil
}
