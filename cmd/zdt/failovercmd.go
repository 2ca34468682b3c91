package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newFailoverCommand() *cobra.Command {
	f := &opRequestFlags{}
	var reason string
	cmd := &cobra.Command{
		Use:   "failover --site SITE --config FILE [--reason TEXT] [--dry-run] [--wait] [-o table|json]",
		Short: "Declare a site dark by hand and fail it over (it is up, but broken)",
		Long: `Declare a site dark and fail it over, although its controller is up: for a
site whose storage, network or hosts are broken in a way zdt cannot see.

A site that goes dark on its own is failed over automatically once its lease
expires; this command is for the one that does not. The coordinator runs a
journaled failover op: it fences the site (its controller sees the fence and
fences itself: withdraws its prefixes, makes its primaries read-only, stops
its guests), waits until the site reports that it did (at most two lease
TTLs), fences what still answers from outside, then moves each service the
site serves to the next site in the service's order whose standby is within
its RPO, and places the guests again. The site stays fenced until a
failback (zdt failback).

--dry-run prints the plan and changes nothing. --wait follows the op until it
ends. The exit status is 0 when the op was requested (with --wait: when it
succeeded), 1 when it is refused or failed, 2 for a usage error.`,
		Example: `  zdt failover --site b --config zdt.yaml --reason "storage array lost" --dry-run
  zdt failover --site b --config zdt.yaml --reason "storage array lost" --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, "failover", func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string) {
				return failover.PlanDeclaredFailover(cfg, snap, f.siteName, who, reason, time.Now())
			}, func() (string, map[string]any) {
				return "/failover", map[string]any{"site": f.siteName, "reason": reason}
			})
		},
	}
	f.add(cmd, "the site to declare dark")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the journal and the fence record")
	return cmd
}
