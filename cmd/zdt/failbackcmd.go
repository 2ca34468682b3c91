package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// failbackResult is what `zdt failback` did, as -o json reports it.
type failbackResult struct {
	Site string `json:"site"`
	// Blockers say why the site may not be failed back now; empty when it
	// may.
	Blockers []string `json:"blockers"`
	DryRun   bool     `json:"dry_run"`
	// Op is the planned op (dry run) or the requested one; with --wait, as
	// it ended.
	Op *site.Op `json:"op,omitempty"`
}

// errNotNow: the op was refused, and the result says why.
var errNotNow = errors.New("refused")

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
			res, err := failback(ctx, cmd.OutOrStdout(), cfg, siteName, operatorName(), dryRun, wait && output == "table")
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(res); jerr != nil {
					return jerr
				}
			} else {
				writeFailback(cmd.OutOrStdout(), res)
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

// failback plans the failback of siteName and, unless dryRun, requests it;
// with wait it follows the op, showing its steps on progress (nil: quiet).
func failback(ctx context.Context, progress io.Writer, cfg *config.Cluster, siteName, who string, dryRun, follow bool) (failbackResult, error) {
	res := failbackResult{Site: siteName, DryRun: dryRun, Blockers: []string{}}
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return res, err
	}
	defer client.Close()
	store := site.NewStore(client, cfg.Name)
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("%w (etcd endpoints %s: is a quorum of sites up?)", err, strings.Join(cfg.Etcd.Endpoints, ", "))
	}
	op, why := failover.PlanFailback(cfg, snap, siteName, who, time.Now())
	if len(why) > 0 {
		res.Blockers = why
		return res, fmt.Errorf("site %s may not be failed back now: %w", siteName, errNotNow)
	}
	res.Op = op
	if dryRun {
		return res, nil
	}
	if err := store.RequestOp(ctx, op); err != nil {
		return res, err
	}
	if !follow {
		return res, nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "op %s requested; waiting for the coordinator\n", op.ID)
	}
	res.Op, err = followOp(ctx, store, op.ID, progress)
	if err != nil {
		return res, err
	}
	if res.Op.Outcome != site.OpSucceeded {
		return res, fmt.Errorf("op %s %s: %s", op.ID, res.Op.Outcome, res.Op.Error)
	}
	return res, nil
}

// followOp waits until the op has an outcome, writing each step as it ends
// to w (nil: nowhere), and returns the op as it ended.
func followOp(ctx context.Context, store *site.Store, id string, w io.Writer) (*site.Op, error) {
	shown := map[int]bool{}
	for {
		op, err := store.Op(ctx, id)
		if err != nil {
			return nil, err
		}
		for i, st := range op.Steps {
			if w != nil && !shown[i] && st.Status != site.StepPending && st.Status != site.StepRunning {
				shown[i] = true
				fmt.Fprintf(w, "  %-16s %-8s %s\n", st.Name, st.Status, st.Detail)
			}
		}
		if op.Finished() {
			return op, nil
		}
		wctx, cancel := context.WithCancel(ctx)
		watch := store.WatchKey(wctx, store.Keys().Op(id), false, op.Rev+1)
		select {
		case <-ctx.Done():
			cancel()
			return op, fmt.Errorf("op %s has not ended: %w (follow it with zdt ops watch %s)", id, ctx.Err(), id)
		case resp, ok := <-watch:
			if !ok || resp.Err() != nil { // no leader for now: read again soon
				t := time.NewTimer(200 * time.Millisecond)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
		}
		cancel()
	}
}

func writeFailback(w io.Writer, res failbackResult) {
	switch {
	case len(res.Blockers) > 0:
		fmt.Fprintf(w, "site %s may not be failed back yet:\n", res.Site)
		for _, b := range res.Blockers {
			fmt.Fprintf(w, "  - %s\n", b)
		}
	case res.Op == nil:
	case res.DryRun:
		fmt.Fprintf(w, "site %s may be failed back; the op would be (nothing was changed):\n", res.Site)
		for _, st := range res.Op.Steps {
			fmt.Fprintf(w, "  %s %s\n", st.Name, st.Params["site"])
		}
	case res.Op.Finished():
		fmt.Fprintf(w, "op %s %s", res.Op.ID, res.Op.Outcome)
		if res.Op.Error != "" {
			fmt.Fprintf(w, ": %s", res.Op.Error)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "failback of site %s requested as op %s; follow it with: zdt ops watch %s\n", res.Site, res.Op.ID, res.Op.ID)
	}
}
