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
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a cluster config file and report every problem at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: cluster %s, %d sites, %d services\n", args[0], cfg.Name, len(cfg.Sites), len(cfg.Services))
			return nil
		},
	})
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
