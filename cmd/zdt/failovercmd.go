package main

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
)

func newFailoverCommand() *cobra.Command {
	var configPath, siteName, output, reason string
	var dryRun, wait bool
	var timeout time.Duration
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
			who := operatorName()
			res, err := requestOp(ctx, progress, cfg, siteName, dryRun, wait, func(snap *site.Snapshot) (*site.Op, []string) {
				return failover.PlanDeclaredFailover(cfg, snap, siteName, who, reason, time.Now())
			})
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(res); jerr != nil {
					return jerr
				}
			} else {
				writeOpRequest(cmd.OutOrStdout(), "failover", res)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "cluster config file (required)")
	cmd.Flags().StringVar(&siteName, "site", "", "the site to declare dark (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the journal and the fence record")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the op until it ends")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for etcd and, with --wait, for the op")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}
