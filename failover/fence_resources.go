package failover

import (
	"context"
	"fmt"
	"strings"

	"github.com/zdt-project/zdt/site"
)

// fenceResourcesStep fences the dark site's resources from outside before
// any of them is taken over: its primaries are made read-only through their
// own connections and its guests destroyed through their hypervisors. A
// controller that crashed or froze fences nothing itself, so without this
// step its primary would stay writable and its guests would run twice.
//
// Every resource gets one bounded attempt. One that does not answer is
// recorded as "unreachable, presumed dark" and the takeover goes on, unless
// fencing.require_confirmation is set: then the step waits until an operator
// confirms the site is dark (zdt fence confirm), or a later attempt reaches
// every resource.
func fenceResourcesStep(ctx context.Context, r *run, st *site.Step) stepResult {
	s := st.Params["site"]
	if r.c.cfg.Fencer == nil {
		return stepResult{kind: stepSkipped, detail: "no outside fencer configured"}
	}
	outs := r.c.cfg.Fencer.Fence(ctx, s)
	var fenced, unreachable, interrupted []string
	for _, o := range outs {
		switch o.Outcome {
		case site.FenceDone:
			fenced = append(fenced, o.Resource)
		case site.FenceUnreachable:
			unreachable = append(unreachable, o.Resource)
		case site.FenceInterrupted:
			interrupted = append(interrupted, o.Resource)
		}
	}
	if len(interrupted) > 0 {
		return stepResult{kind: stepRetry, err: fmt.Errorf("outside fence of site %s interrupted: %s", s, strings.Join(interrupted, ", ")), resources: outs}
	}
	summary := fenceSummary(s, len(outs), fenced, unreachable)
	if len(unreachable) > 0 && r.c.cfg.Cluster.Fencing.RequireConfirmation {
		f, err := r.c.cfg.Store.Fence(ctx, s)
		if err != nil {
			return stepResult{kind: stepRetry, err: err, resources: outs}
		}
		if f.Confirmed == nil {
			return stepResult{kind: stepWait, resources: outs, detail: fmt.Sprintf(
				"%s; waiting for an operator to confirm that site %s is dark (zdt fence confirm --site %s): fencing.require_confirmation is on",
				summary, s, s)}
		}
		summary += fmt.Sprintf("; %s confirmed the site dark at %s", f.Confirmed.By, f.Confirmed.At.UTC().Format("15:04:05Z"))
	}
	res := done("%s", summary)
	res.resources = outs
	return res
}

func fenceSummary(s string, n int, fenced, unreachable []string) string {
	switch {
	case n == 0:
		return fmt.Sprintf("site %s has no member or host to fence from outside", s)
	case len(unreachable) == 0 && len(fenced) == 0:
		return fmt.Sprintf("site %s answered: nothing to fence (%d resources)", s, n)
	}
	var parts []string
	if len(fenced) > 0 {
		parts = append(parts, "fenced from outside: "+site.Few(fenced, ", "))
	}
	if len(unreachable) > 0 {
		parts = append(parts, "unreachable, presumed dark: "+site.Few(unreachable, ", "))
	}
	return fmt.Sprintf("site %s: %s", s, strings.Join(parts, "; "))
}
