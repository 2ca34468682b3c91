package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newSwitchoverCommand() *cobra.Command {
	f := &opRequestFlags{}
	var within time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "switchover (--service SERVICE | --site SITE) --to SITE --config FILE [--dry-run] [--wait] [-o table|json]",
		Short: "Move services to another live site, planned, with no data lost",
		Long: `Move a service, or every service a site holds, to another site while both
sites are up: for maintenance, or to bring services back to where they
belong after a failback.

A service that shares a replication group with others moves with them: they
have one primary. The command checks first and refuses, with every reason,
unless both sites are up, the target's controller reports itself up, no
other op works on the services or the sites, the old primary is writable and
the target's member is a healthy standby of it within the services' RPO.
The coordinator then runs a journaled switchover op: it checks again,
assigns the services to the target, and waits until the target's member is
a writable primary. The sites do the moving: the old site fences its primary
at once (read-only, sessions cut); the target's standby replays up to the
old primary's last WAL position and only then is promoted, so no
acknowledged write is lost, also with asynchronous replication; the other
members follow it; the prefixes follow the assignment. If the target is not
promoted in time (--promote-within; by default ten lease TTLs, at least
30 s), its site stops being up, its member cannot be reached or refuses the
promotion before it is promoted, the op rolls back: the services are assigned to the old site
again, whose primary lifts its fence, and the op fails saying why.

Guests do not move with a service switchover: their placement stays.

--force is for services left at a fenced site: stranded there because no
site was within their RPO when it was failed over, or without a primary
after a total outage. It takes them over from the fenced site whatever the
target's lag or health (its member must answer as a standby): the target
is promoted with what it has, and the op records how far behind it was, in
bytes and seconds: what may be lost. There is nothing to roll back to.

--dry-run prints the plan and changes nothing. --wait follows the op until it
ends. The exit status is 0 when the op was requested (with --wait: when it
succeeded), 1 when it is refused or failed, 2 for a usage error.`,
		Example: `  zdt switchover --service db --to c --config zdt.yaml --dry-run
  zdt switchover --service db --to c --config zdt.yaml --wait
  zdt switchover --site b --to c --config zdt.yaml --wait
  zdt switchover --service db --to c --force --config zdt.yaml --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (f.service == "") == (f.siteName == "") {
				return usageErrorf("give either --service or --site (the site whose services move)")
			}
			if within < 0 {
				return usageErrorf("--promote-within %s: want a positive duration", within)
			}
			if f.siteName != "" && f.siteName == f.to {
				return usageErrorf("--site and --to are both %q: the services would not move", f.to)
			}
			return f.run(cmd, "switchover", func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string) {
				args := map[string]string{"service": f.service, "site": f.siteName, "to": f.to, "force": strconv.FormatBool(force)}
				if within > 0 {
					args["promote_within"] = within.String()
				}
				return runbooks.PlanShipped(cfg, snap, failover.KindSwitchover, args, who)
			}, func() (string, map[string]any) {
				body := map[string]any{"service": f.service, "site": f.siteName, "to": f.to, "force": force}
				if within > 0 {
					body["promote_within"] = within.String()
				}
				return "/switchover", body
			})
		},
	}
	f.addCommon(cmd)
	cmd.Flags().StringVar(&f.service, "service", "", "the service to move, with the services of its replication group")
	cmd.Flags().StringVar(&f.siteName, "site", "", "the site whose services all move")
	cmd.Flags().StringVar(&f.to, "to", "", "the site to move them to (required)")
	cmd.Flags().DurationVar(&within, "promote-within", 0, "roll back unless the target is promoted within this time (default: ten lease TTLs, at least 30s)")
	cmd.Flags().BoolVar(&force, "force", false, "take the services over from a fenced site whatever the target's lag or health: data may be lost, and the op records how much")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}
