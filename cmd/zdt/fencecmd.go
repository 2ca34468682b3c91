package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

func newFenceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fence",
		Short: "Work with the fences of dark sites",
	}
	cmd.AddCommand(newFenceConfirmCommand())
	return cmd
}

func newFenceConfirmCommand() *cobra.Command {
	var configPath, siteName, output string
	var dryRun bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "confirm --site SITE --config FILE [--dry-run] [-o table|json]",
		Short: "Confirm that a fenced site is dark, so a failover may take over what it could not fence",
		Long: `Record on a fenced site's fence that you, a person, confirm the site is dark.

Use it only when you KNOW the site is dark: powered off, or isolated from its
clients and from the other sites, because it lets a failover take over
resources it could not fence. Before a failover promotes a replica elsewhere
or starts a guest elsewhere, it fences the dark site's resources from outside
(makes the old primary read-only, destroys its guests through their
hypervisors). A resource that does not answer may belong to a site that is
gone, or to one that merely cannot be reached and still runs; taking over
from the latter leaves two writable primaries and guests running twice. With
fencing.require_confirmation: true in the config, the failover waits for this
confirmation before it takes such resources over; without it, the failover
presumes the site dark and goes on, and the confirmation is only recorded.

The confirmation (who, when) is written in the site's fence and the event log,
and lasts until a failback lifts the fence. Confirming again changes nothing.
A site that is not fenced is refused. A fenced site whose controller holds a
lease again is confirmed with a warning: its controller converges to the
fence by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return usageErrorf("-o %q: want table or json", output)
			}
			cfg, err := readConfig(configPath)
			if err != nil {
				return err
			}
			if _, ok := cfg.Site(siteName); !ok {
				return usageErrorf("--site %q: unknown site (sites are %s)", siteName, strings.Join(cfg.SiteNames(), ", "))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			sess, err := openAPISession(cfg)
			if err != nil {
				return err
			}
			var res site.FenceConfirmation
			if sess != nil {
				res, err = sess.confirmFence(ctx, siteName, dryRun)
			} else {
				res, err = confirmFence(ctx, cfg, siteName, operatorName(), dryRun)
			}
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			writeFenceConfirm(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", configFlagHelp)
	cmd.Flags().StringVar(&siteName, "site", "", "the fenced site you know is dark (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be confirmed; change nothing")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for etcd")
	_ = cmd.MarkFlagRequired("site")
	return cmd
}

// confirmFence confirms the fence of siteName as who, or only reads it for a
// dry run (Store.ConfirmFenceAs).
func confirmFence(ctx context.Context, cfg *config.Cluster, siteName, who string, dryRun bool) (site.FenceConfirmation, error) {
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return site.FenceConfirmation{}, err
	}
	defer client.Close()
	store := site.NewStore(client, cfg.Name)
	res, err := store.ConfirmFenceAs(ctx, siteName, who, dryRun, cfg.Fencing.RequireConfirmation)
	if err != nil && !errors.Is(err, site.ErrNotFenced) {
		return res, etcdError(cfg, err)
	}
	return res, err
}

// writeFenceConfirm says what the command did, for people.
func writeFenceConfirm(w io.Writer, res site.FenceConfirmation) {
	f := res.Fence
	switch res.Action {
	case site.FenceWouldConfirm:
		fmt.Fprintf(w, "dry run: would confirm that site %s is dark, as %s; nothing changed\n", res.Site, res.Who)
	case site.FenceAlreadyConfirmed:
		fmt.Fprintf(w, "the fence of site %s was already confirmed by %s at %s; nothing changed\n",
			res.Site, f.Confirmed.By, f.Confirmed.At.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "confirmed that site %s is dark, as %s at %s\n", res.Site, f.Confirmed.By, f.Confirmed.At.UTC().Format(time.RFC3339))
	}
	fence := fmt.Sprintf("fence: by op %s", orDash(f.Op))
	if f.By != "" {
		fence += " of coordinator " + f.By
	}
	if !f.At.IsZero() {
		fence += " at " + f.At.UTC().Format(time.RFC3339)
	}
	if f.Reason != "" {
		fence += ": " + f.Reason
	}
	fmt.Fprintln(w, fence)
	if res.SiteAlive {
		fmt.Fprintf(w, "warning: site %s holds a lease again: its controller is back and converges to its fence by itself; the confirmation still says its resources are down\n", res.Site)
	}
	if res.Action == site.FenceAlreadyConfirmed {
		return
	}
	verb := "may now take"
	if res.Action == site.FenceWouldConfirm {
		verb = "could then take"
	}
	if res.RequireConfirmation {
		fmt.Fprintf(w, "a failover waiting for this confirmation (fencing.require_confirmation) %s over the resources of site %s it could not fence\n", verb, res.Site)
	} else {
		fmt.Fprintln(w, "fencing.require_confirmation is off: no failover waits for this; it is recorded in the fence")
	}
}

// operatorName is who the operator running the command is:
// operator:<user>@<host>, the user from $USER or else the uid.
func operatorName() string {
	user := os.Getenv("USER")
	if user == "" {
		user = strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return "operator:" + user + "@" + host
}
