package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/site/config"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with the cluster config file",
	}
	var offline bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a cluster config file and report every problem at once",
		Long: `Check a cluster config file and report every problem at once, as
FILE:LINE: field: what is wrong (exit status 2).

A valid file's PostgreSQL replication members are then probed (unless
--offline): a warning for each setting that keeps a member from failing over
fully, above all neither wal_log_hints nor data checksums (pg_rewind could not
turn a former primary into a standby), and a note for each member it cannot
reach. Warnings do not change the exit status.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: ok: cluster %s, %d sites, %d services\n", args[0], cfg.Name, len(cfg.Sites), len(cfg.Services))
			if !offline {
				probeMembers(cmd.Context(), out, args[0], cfg)
			}
			return nil
		},
	}
	check.Flags().BoolVar(&offline, "offline", false, "do not connect to the replication members")
	cmd.AddCommand(check)
	return cmd
}

// loadConfig loads and validates the cluster config; a config with problems
// is an error listing each as FILE:LINE: field: what is wrong (exit status 2).
func loadConfig(path string) (*config.Cluster, error) {
	cfg, err := config.Load(path)
	var problems config.Problems
	if errors.As(err, &problems) {
		return nil, &exitError{code: 2, err: fmt.Errorf("%d problem(s) in %s:\n%w", len(problems), path, err)}
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}
