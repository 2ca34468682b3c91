package main

import (
	"time"

	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// planShipped plans the op of a built-in command (zdt switchover, evacuate,
// failback) by its shipped runbook of the same name, which the runbook
// engine runs: one implementation. Arguments with empty values are left
// out (the runbook's defaults apply). The op keeps the command's kind.
func planShipped(cfg *config.Cluster, snap *site.Snapshot, name string, args map[string]string, who string) (*site.Op, []string) {
	rb, err := runbooks.Find(name)
	if err != nil {
		return nil, []string{err.Error()}
	}
	given := map[string]string{}
	for k, v := range args {
		if v != "" {
			given[k] = v
		}
	}
	resolved, err := runbooks.Resolve(rb, cfg, given)
	if err != nil {
		return nil, []string{err.Error()}
	}
	plan, err := runbooks.MakePlan(rb, cfg, snap, resolved, runbooks.PlanOptions{Who: who, Now: time.Now(), Yes: true, Kind: name})
	switch {
	case err != nil:
		return nil, []string{err.Error()}
	case len(plan.Blockers) > 0:
		return nil, plan.Blockers
	}
	return plan.Op, nil
}
