package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

func newFailbackCommand() *cobra.Command {
	f := &opRequestFlags{}
	var switchBack bool
	var within time.Duration
	cmd := &cobra.Command{
		Use:   "failback --site SITE --config FILE [--switch-back [--promote-within D]] [--dry-run] [--wait] [-o table|json]",
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
may serve. --switch-back then moves back every service whose preferred site
(the first in its order) it is, each with the services of its replication
group, by a switchover each (see zdt switchover), one after the other, as
soon as the site may take them (it reports itself up, its members are
caught-up standbys); --switch-back implies --wait, and with -o json each op
is one JSON object.

--dry-run checks and prints the plan, changing nothing. --wait follows the op
until it ends. The exit status is 0 when the fence was lifted (or would be,
with --dry-run, or the op was requested, without --wait), 1 when the failback
is refused or the op failed, 2 for a usage error.`,
		Example: `  zdt failback --site a --config zdt.yaml --dry-run
  zdt failback --site a --config zdt.yaml --wait
  zdt failback --site a --config zdt.yaml --switch-back`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if within < 0 {
				return usageErrorf("--promote-within %s: want a positive duration", within)
			}
			f.wait = f.wait || switchBack
			if switchBack {
				// A site failed back already only switches back.
				fenced, err := f.fenced(cmd)
				if err != nil {
					return err
				}
				if !fenced {
					return f.switchBack(cmd, within)
				}
			}
			err := f.run(cmd, "failback", func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string) {
				return runbooks.PlanShipped(cfg, snap, failover.KindFailback, map[string]string{"site": f.siteName}, who)
			}, func() (string, map[string]any) {
				return "/failback", map[string]any{"site": f.siteName}
			})
			if err != nil || !switchBack {
				return err
			}
			return f.switchBack(cmd, within)
		},
	}
	f.add(cmd, "the fenced site to fail back")
	cmd.Flags().BoolVar(&switchBack, "switch-back", false, "then switch the services that prefer the site back to it")
	cmd.Flags().DurationVar(&within, "promote-within", 0, "with --switch-back: roll a move back unless its target is promoted within this time")
	return cmd
}

// fenced says whether f.siteName is fenced now.
func (f *opRequestFlags) fenced(cmd *cobra.Command) (bool, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	cfg, err := f.loadSiteConfig()
	if err != nil {
		return false, err
	}
	sw, done, err := openSwitchovers(cfg)
	if err != nil {
		return false, err
	}
	defer done()
	return sw.fenced(ctx, f.siteName)
}

// loadSiteConfig loads the config and checks --site against it.
func (f *opRequestFlags) loadSiteConfig() (*config.Cluster, error) {
	cfg, err := readConfig(f.configPath)
	if err != nil {
		return nil, err
	}
	if _, ok := cfg.Site(f.siteName); !ok {
		return nil, usageErrorf("--site %q: unknown site (sites are %s)", f.siteName, strings.Join(cfg.SiteNames(), ", "))
	}
	return cfg, nil
}

// switchBack moves back to f.siteName, by one switchover op each, the
// services that prefer it, each once it may run (or the timeout ends).
func (f *opRequestFlags) switchBack(cmd *cobra.Command, within time.Duration) error {
	cfg, err := f.loadSiteConfig()
	if err != nil {
		return err
	}
	src, done, err := openSwitchovers(cfg)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	assigned, err := src.assigned(ctx)
	if err != nil {
		return err
	}
	reqs := failover.SwitchBackOf(cfg, assigned, f.siteName)
	out := cmd.OutOrStdout()
	if len(reqs) == 0 || f.dryRun {
		if f.output == "table" {
			fmt.Fprintf(out, "switch back to site %s: %s\n", f.siteName, switchBackList(reqs, f.dryRun))
		}
		return nil
	}
	var progress io.Writer
	if f.output == "table" {
		progress = out
	}
	for _, req := range reqs {
		req.PromoteWithin = within
		res, err := src.ask(ctx, req, progress)
		if jerr := f.write(out, "switchover", res); jerr != nil {
			return jerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// switchBackList says, for people, which services a switch-back moves.
func switchBackList(reqs []failover.SwitchoverRequest, dryRun bool) string {
	if len(reqs) == 0 {
		return "no service that prefers it is elsewhere"
	}
	var names []string
	for _, r := range reqs {
		names = append(names, r.Service)
	}
	verb := "moving "
	if dryRun {
		verb = "would move "
	}
	return verb + strings.Join(names, ", ") + " (each with the services of its replication group), once the fence is lifted"
}

// awaitRequest plans from a snapshot, and again on every change of the
// cluster's state, until the plan has no blockers, and then journals the op
// (RequestOp: planned again if another op was journaled meanwhile); or,
// when ctx ends first, it returns the last blockers. A read that a member
// could not serve (it restarts: a site failed back a moment ago) is made
// again, to another member, until ctx ends; a write that failed is not, for
// it may have landed.
func awaitRequest(ctx context.Context, store *site.Store, plan func(*site.Snapshot) (*site.Op, []string)) (*site.Op, []string, error) {
	backoff := ctxsleep.NewBackoff(50*time.Millisecond, time.Second)
	for {
		snap, err := store.Snapshot(ctx)
		if status.Code(err) == codes.Unavailable && backoff.Wait(ctx) == nil {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		backoff.Reset()
		op, why := plan(snap)
		if len(why) == 0 {
			// Journaled only if no op was journaled since the plan's
			// snapshot; otherwise plan again.
			err := store.RequestOp(ctx, op, snap.Rev)
			if errors.Is(err, site.ErrConflict) {
				continue
			}
			return op, nil, err
		}
		wctx, stop := context.WithCancel(ctx)
		changes := store.WatchKey(wctx, store.Keys().Root(), true, snap.Rev+1)
		select {
		case <-ctx.Done():
			stop()
			return nil, why, nil
		case <-changes:
		}
		stop()
	}
}
