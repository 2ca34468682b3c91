package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site/config"
)

// Shell completion. cobra completes the commands and flags (zdt completion
// bash|zsh|fish|powershell writes the script); addCompletions adds the
// names a cluster has: its sites for --site and --to, its services for
// --service, the shipped runbooks for the runbook commands, and the ids
// of the newest ops for the commands that take one. The names come from
// the config the command would use (--config, $ZDT_CONFIG or
// /etc/zdt/zdt.yaml); op ids from etcd, or from the API with $ZDT_TOKEN.

// addCompletions registers the completions on every command under root.
func addCompletions(root *cobra.Command) {
	walk(root, func(cmd *cobra.Command) {
		for flag, names := range map[string]func(*config.Cluster) []string{
			"site": (*config.Cluster).SiteNames, "to": (*config.Cluster).SiteNames, "service": (*config.Cluster).ServiceNames,
		} {
			if cmd.Flags().Lookup(flag) != nil {
				_ = cmd.RegisterFlagCompletionFunc(flag, completeFromConfig(names))
			}
		}
	})
}

func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		walk(c, fn)
	}
}

// completionConfig loads the config the command would use; nil when there
// is none, or it does not load.
func completionConfig(cmd *cobra.Command) *config.Cluster {
	if defaultConfig(cmd, os.Getenv(configEnv), DefaultConfigPath) != nil {
		return nil
	}
	path, err := cmd.Flags().GetString("config")
	if err != nil || path == "" {
		return nil
	}
	cfg, err := config.LoadWithoutDomains(path)
	if err != nil {
		return nil
	}
	return cfg
}

// completeFromConfig completes a flag with names of the cluster.
func completeFromConfig(names func(*config.Cluster) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		cfg := completionConfig(cmd)
		if cfg == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return withPrefix(names(cfg), prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

func withPrefix(names []string, prefix string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !strings.HasPrefix(n, prefix) })
}

// completeRunbook completes the first argument with the shipped runbooks'
// names, and files (a runbook may be a file).
func completeRunbook(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	shipped, err := runbooks.Shipped()
	if err != nil {
		return nil, cobra.ShellCompDirectiveDefault
	}
	var names []string
	for _, rb := range shipped {
		names = append(names, rb.Name)
	}
	return withPrefix(names, prefix), cobra.ShellCompDirectiveDefault
}

// completeOpID completes the first argument with the ids of the running
// ops and the newest finished ones, newest first, read within a second.
func completeOpID(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	cfg := completionConfig(cmd)
	if len(args) > 0 || cfg == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ids, err := recentOpIDs(ctx, cfg)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return withPrefix(ids, prefix), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// recentOpIDs are the ids of the newest ops, newest first: from the API
// with a token, from etcd otherwise.
func recentOpIDs(ctx context.Context, cfg *config.Cluster) ([]string, error) {
	const most = 30
	sess, err := openAPISession(cfg)
	if err != nil {
		return nil, err
	}
	if sess != nil {
		var list api.OpList
		if err := sess.call(ctx, http.MethodGet, "/ops?limit="+strconv.Itoa(most), nil, &list); err != nil {
			return nil, err
		}
		var ids []string
		for _, op := range list.Ops {
			ids = append(ids, op.ID)
		}
		return ids, nil
	}
	store, closeStore, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	ids, err := store.OpIDs(ctx)
	if err != nil {
		return nil, err
	}
	slices.Reverse(ids) // ids sort by time
	return ids[:min(len(ids), most)], nil
}
