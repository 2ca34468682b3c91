package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

// opRequest is what a command that asks the coordinator for an op did, as
// -o json reports it; the API answers the same.
type opRequest = site.OpRequest

// errNotNow: the op was refused, and the result says why.
var errNotNow = errors.New("refused")

// requestOp plans an op from a snapshot of the cluster and, unless
// res.DryRun, journals it for the coordinator; with follow it waits until
// the op ends, writing its steps to progress as they end (nil: quietly).
// res says what is asked (Site, Service, DryRun); requestOp fills in the rest.
func requestOp(ctx context.Context, progress io.Writer, cfg *config.Cluster, res opRequest, follow bool,
	plan func(*site.Snapshot) (*site.Op, []string)) (opRequest, error) {
	res.Blockers = []string{}
	dryRun := res.DryRun
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return res, err
	}
	defer client.Close()
	store := site.NewStore(client, cfg.Name)
	op, why, err := store.PlanAndRequest(ctx, dryRun, plan)
	switch {
	case err != nil && errors.Is(err, site.ErrConflict):
		return res, err
	case err != nil:
		return res, fmt.Errorf("%w (etcd endpoints %s: is a quorum of sites up?)", err, strings.Join(cfg.Etcd.Endpoints, ", "))
	case len(why) > 0:
		res.Blockers = why
		return res, fmt.Errorf("%s: %w", strings.Join(why, "; "), errNotNow)
	}
	res.Op = op
	if dryRun {
		return res, nil
	}
	if !follow {
		return res, nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "op %s (%s) requested; waiting for the coordinator\n", op.ID, op.Kind)
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
				_ = ctxsleep.For(ctx, 200*time.Millisecond)
			}
		}
		cancel()
	}
}

// writeOpRequest writes what a request did, for people.
func writeOpRequest(w io.Writer, what string, res opRequest) {
	switch {
	case len(res.Blockers) > 0:
		fmt.Fprintf(w, "%s of %s is refused for now:\n", what, res.Subject())
		for _, b := range res.Blockers {
			fmt.Fprintf(w, "  - %s\n", b)
		}
	case res.Op == nil:
	case res.DryRun:
		fmt.Fprintf(w, "%s of %s may run; the op would be (nothing was changed):\n", what, res.Subject())
		for _, st := range res.Op.Steps {
			target := cmp.Or(st.Params["service"], st.Params["group"], st.Params["services"], st.Params["site"])
			if from, to := st.Params["from"], st.Params["to"]; from != "" && to != "" {
				target += fmt.Sprintf(" (%s to %s)", from, to)
			}
			fmt.Fprintf(w, "  %-16s %s\n", st.Name, target)
		}
	case res.Op.Finished():
		fmt.Fprintf(w, "op %s %s", res.Op.ID, res.Op.Outcome)
		if res.Op.Error != "" {
			fmt.Fprintf(w, ": %s", res.Op.Error)
		}
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "%s of %s requested as op %s; follow it with: zdt ops watch %s\n", what, res.Subject(), res.Op.ID, res.Op.ID)
	}
}

// opRequestFlags are the flags of a command that asks for an op (zdt
// failback, zdt failover, zdt switchover).
type opRequestFlags struct {
	configPath, siteName, output string
	// service is the service the op is about, for a command that takes
	// one (zdt switchover --service).
	service string
	// to is the site the op moves things to (zdt switchover --to).
	to           string
	dryRun, wait bool
	timeout      time.Duration
}

// add adds the flags of a command about one site, --site required.
func (f *opRequestFlags) add(cmd *cobra.Command, siteHelp string) {
	f.addCommon(cmd)
	cmd.Flags().StringVar(&f.siteName, "site", "", siteHelp+" (required)")
	_ = cmd.MarkFlagRequired("site")
}

// addCommon adds the flags every op request has.
func (f *opRequestFlags) addCommon(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.configPath, "config", "", configFlagHelp)
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "check and print the plan; change nothing")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the op until it ends")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for etcd and, with --wait, for the op")
}

// remoteOp is an op request through the API: the route and the body
// (without dry_run).
type remoteOp func() (path string, body map[string]any)

// run checks the flags, plans the op with plan (given the config and who
// asks) and requests it, and writes what it did as a table or JSON. With a
// token ($ZDT_TOKEN), it asks a controller's API instead, as remote says.
func (f *opRequestFlags) run(cmd *cobra.Command, what string,
	plan func(cfg *config.Cluster, who string, snap *site.Snapshot) (*site.Op, []string), remote remoteOp) error {
	if f.output != "table" && f.output != "json" {
		return usageErrorf("-o %q: want table or json", f.output)
	}
	cfg, err := readConfig(f.configPath)
	if err != nil {
		return err
	}
	if _, ok := cfg.Site(f.siteName); f.siteName != "" && !ok {
		return usageErrorf("--site %q: unknown site (sites are %s)", f.siteName, strings.Join(cfg.SiteNames(), ", "))
	}
	if _, ok := cfg.Site(f.to); f.to != "" && !ok {
		return usageErrorf("--to %q: unknown site (sites are %s)", f.to, strings.Join(cfg.SiteNames(), ", "))
	}
	if _, ok := cfg.Service(f.service); f.service != "" && !ok {
		return usageErrorf("--service %q: unknown service (services are %s)", f.service, strings.Join(cfg.ServiceNames(), ", "))
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	progress := cmd.OutOrStdout()
	if f.output == "json" {
		progress = nil
	}
	asked := opRequest{Site: f.siteName, Service: f.service, DryRun: f.dryRun}
	sess, err := openAPISession(cfg)
	if err != nil {
		return err
	}
	var res opRequest
	if sess != nil {
		path, body := remote()
		res, err = sess.requestOp(ctx, progress, asked, f.wait, path, body)
	} else {
		who := operatorName()
		res, err = requestOp(ctx, progress, cfg, asked, f.wait, func(snap *site.Snapshot) (*site.Op, []string) {
			return plan(cfg, who, snap)
		})
	}
	if jerr := f.write(cmd.OutOrStdout(), what, res); jerr != nil {
		return jerr
	}
	return err
}

// write writes what a request did as a table or JSON.
func (f *opRequestFlags) write(w io.Writer, what string, res opRequest) error {
	if f.output == "json" {
		return writeJSON(w, res)
	}
	writeOpRequest(w, what, res)
	return nil
}

// writeJSON writes v as indented JSON, as every -o json does.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
