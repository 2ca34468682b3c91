package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newFailbackCommand() *cobra.Command {
	f := &opRequestFlags{}
	cmd := &cobra.Command{
		Use:   "failback --site SITE --config FILE [--dry-run] [--wait] [-o table|json]",
		Short: "Lift the fence of a site that came back, once it is back clean",
		Long: `Lift the fence of a site that was failed over and has come back, so that it
may serve again.

A fenced site serves nothing until a person fails it back. zdt refuses, and
says every reason, until the site is back clean: its controller holds its
lease and reports itself fenced; each of its replication members is a healthy
standby that follows its group's current primary (an old primary is rewound
by its controller first); no guest runs at its hosts; no op for it is still
running. Then the coordinator runs a journaled failback op: it checks the same
again, from the state as it is then, and lifts the fence.

Failing back moves no service: the site becomes a standby for the services it
may serve. Switching a service back to its preferred site is a switch-over.

--dry-run checks and prints the plan, changing nothing. --wait follows the op
until it ends. The exit status is 0 when the fence was lifted (or would be,
with --dry-run, or the op was requested, without --wait), 1 when the failback
is refused or the op failed, 2 for a usage error.`,
		Example: `  zdt failback --site a --config zdt.yaml --dry-run
  zdt failback --site a --config zdt.yaml --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, "failback", func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string) {
				return failover.PlanFailback(cfg, snap, f.siteName, who, time.Now())
			})
		},
	}
	f.add(cmd, "the fenced site to fail back")
	return cmd
}
