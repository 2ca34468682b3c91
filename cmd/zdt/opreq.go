package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// opRequest is what a command that asks the coordinator for an op (zdt
// failback, zdt failover) did, as -o json reports it.
type opRequest struct {
	Site string `json:"site"`
	// Blockers say why the op may not run now; empty when it may.
	Blockers []string `json:"blockers"`
	DryRun   bool     `json:"dry_run"`
	// Op is the planned op (dry run) or the requested one; with --wait, as
	// it ended.
	Op *site.Op `json:"op,omitempty"`
}

// errNotNow: the op was refused, and the result says why.
var errNotNow = errors.New("refused")

// requestOp plans an op from a snapshot of the cluster and, unless dryRun,
// journals it for the coordinator; with follow it waits until the op ends,
// writing its steps to progress as they end (nil: quietly).
func requestOp(ctx context.Context, progress io.Writer, cfg *config.Cluster, siteName string, dryRun, follow bool,
	plan func(*site.Snapshot) (*site.Op, []string)) (opRequest, error) {
	res := opRequest{Site: siteName, DryRun: dryRun, Blockers: []string{}}
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
	op, why := plan(snap)
	if len(why) > 0 {
		res.Blockers = why
		return res, fmt.Errorf("%s: %w", strings.Join(why, "; "), errNotNow)
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

// writeOpRequest writes what a request did, for people.
func writeOpRequest(w io.Writer, what string, res opRequest) {
	switch {
	case len(res.Blockers) > 0:
		fmt.Fprintf(w, "%s of site %s is refused for now:\n", what, res.Site)
		for _, b := range res.Blockers {
			fmt.Fprintf(w, "  - %s\n", b)
		}
	case res.Op == nil:
	case res.DryRun:
		fmt.Fprintf(w, "%s of site %s may run; the op would be (nothing was changed):\n", what, res.Site)
		for _, st := range res.Op.Steps {
			target := st.Params["site"]
			if svc := st.Params["service"]; svc != "" {
				target = svc
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
		fmt.Fprintf(w, "%s of site %s requested as op %s; follow it with: zdt ops watch %s\n", what, res.Site, res.Op.ID, res.Op.ID)
	}
}
