package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newEvacuateCommand() *cobra.Command {
	f := &opRequestFlags{}
	var reason string
	var within time.Duration
	cmd := &cobra.Command{
		Use:   "evacuate --site SITE --config FILE [--reason TEXT] [--promote-within D] [--dry-run] [--wait] [-o table|json]",
		Short: "Empty a live site for maintenance and keep it drained",
		Long: `Empty a site that is up, for maintenance: switch every service it holds
over to another site, move its guests away, and mark it drained.

The site is drained first: from then on no failover, switchover target
choice or guest placement picks it while another site will do (zdt status
shows it drained). Each service goes to the first site in its order that is
up, not drained, and whose member may take over, with the services of its
replication group, exactly as zdt switchover moves them: the old primary is
fenced, the target promoted once it has replayed all of it, and the move
rolls back if the target is not promoted in time. Then the guests are placed
again off the drained site; each one stops there before it starts at its
new site.

The site keeps serving as a standby (its members follow the new primaries)
until zdt undrain --site makes it a candidate again; undrain moves nothing
back (zdt switchover does).

--dry-run prints the plan and changes nothing. --wait follows the op until it
ends. The exit status is 0 when the op was requested (with --wait: when it
succeeded), 1 when it is refused or failed, 2 for a usage error.`,
		Example: `  zdt evacuate --site b --config zdt.yaml --reason "power work in hall 2" --dry-run
  zdt evacuate --site b --config zdt.yaml --reason "power work in hall 2" --wait
  zdt undrain --site b --config zdt.yaml --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if within < 0 {
				return usageErrorf("--promote-within %s: want a positive duration", within)
			}
			return f.run(cmd, "evacuation", func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string) {
				args := map[string]string{"site": f.siteName, "reason": reason}
				if within > 0 {
					args["within"] = within.String()
				}
				return runbooks.PlanShipped(cfg, snap, failover.KindEvacuate, args, who)
			}, func() (string, map[string]any) {
				body := map[string]any{"site": f.siteName, "reason": reason}
				if within > 0 {
					body["promote_within"] = within.String()
				}
				return "/evacuate", body
			})
		},
	}
	f.add(cmd, "the site to empty")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the journal and the drain record")
	cmd.Flags().DurationVar(&within, "promote-within", 0, "roll a service's move back unless its target is promoted within this time (default: ten lease TTLs, at least 30s)")
	return cmd
}

func newUndrainCommand() *cobra.Command {
	f := &opRequestFlags{}
	cmd := &cobra.Command{
		Use:   "undrain --site SITE --config FILE [--dry-run] [--wait] [-o table|json]",
		Short: "Make a drained site a candidate for services and guests again",
		Long: `Remove a site's drain (zdt evacuate): failovers, switchover target choices
and guest placement may pick it again. It moves nothing back: use zdt
switchover for the services; guests stay where they run.

The exit status is 0 when the op was requested (with --wait: when it
succeeded), 1 when it is refused or failed, 2 for a usage error.`,
		Example: `  zdt undrain --site b --config zdt.yaml --wait`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, "undrain", func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string) {
				return failover.PlanUndrain(cfg, snap, f.siteName, who, time.Now())
			}, func() (string, map[string]any) {
				return "/undrain", map[string]any{"site": f.siteName}
			})
		},
	}
	f.add(cmd, "the drained site")
	return cmd
}
