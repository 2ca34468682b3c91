package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newFailbackCommand() *cobra.Command {
	var configPath, siteName, output string
	var dryRun, wait bool
	var timeout time.Duration
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
			if output != "table" && output != "json" {
				return usageErrorf("-o %q: want table or json", output)
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if _, ok := cfg.Site(siteName); !ok {
				return usageErrorf("--site %q: unknown site (sites are %s)", siteName, strings.Join(cfg.SiteNames(), ", "))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			progress := cmd.OutOrStdout()
			if output == "json" {
				progress = nil
			}
			res, err := failback(ctx, progress, cfg, siteName, operatorName(), dryRun, wait)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(res); jerr != nil {
					return jerr
				}
			} else {
				writeOpRequest(cmd.OutOrStdout(), "failback", res)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "cluster config file (required)")
	cmd.Flags().StringVar(&siteName, "site", "", "the fenced site to fail back (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check and print the plan; change nothing")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the op until it ends")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for etcd and, with --wait, for the op")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}

// failback plans the failback of siteName and, unless dryRun, requests it.
func failback(ctx context.Context, progress io.Writer, cfg *config.Cluster, siteName, who string, dryRun, follow bool) (opRequest, error) {
	return requestOp(ctx, progress, cfg, siteName, dryRun, follow, func(snap *site.Snapshot) (*site.Op, []string) {
		return failover.PlanFailback(cfg, snap, siteName, who, time.Now())
	})
}
