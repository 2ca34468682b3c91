package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
)

// execute carries out an op from its first unfinished step, journaling each
// step before and after it runs. It returns an error when the op must be
// resumed later (a passing failure, or the election was lost); the op then
// stays running in the journal.
func (c *Coordinator) execute(ctx context.Context, g site.Guard, op *site.Op) error {
	c.running.Store(op.ID)
	defer c.running.Store("")
	r := &run{c: c, g: g, op: op}
	log := c.log.With(zap.String("op", op.ID), zap.String("kind", op.Kind))
	if n := len(op.Coordinators); n == 0 || op.Coordinators[n-1] != c.cfg.Site {
		if n > 0 {
			log.Info("resuming op of a previous coordinator", zap.Strings("coordinators", op.Coordinators))
			c.event(ctx, "op-resumed", op.ID, "", fmt.Sprintf("op %s resumed by %s after coordinator %s", op.ID, c.cfg.Site, op.Coordinators[n-1]))
		}
		op.Coordinators = append(op.Coordinators, c.cfg.Site)
		if err := c.cfg.Store.UpdateOp(ctx, g, op); err != nil {
			return err
		}
	}
	for i := range op.Steps {
		st := &op.Steps[i]
		if st.Status != site.StepPending && st.Status != site.StepRunning {
			continue
		}
		if op.AbortRequested != nil {
			abortOp(op, i, c.now())
			log.Info("op aborted on request", zap.String("by", op.AbortRequested.By), zap.String("reason", op.AbortRequested.Reason), zap.String("step", st.Name))
			break
		}
		if st.Status != site.StepRunning || st.By != c.cfg.Site {
			// A step this coordinator already runs (a retry, a wait) keeps
			// its start; one it takes over is journaled as started anew.
			st.Status, st.By, st.Started, st.Ended, st.Detail = site.StepRunning, c.cfg.Site, c.now(), time.Time{}, ""
			if err := c.cfg.Store.UpdateOp(ctx, g, op); err != nil {
				return err
			}
		}
		if c.cfg.BeforeStep != nil {
			if err := c.cfg.BeforeStep(ctx, op, i); err != nil {
				return err
			}
		}
		fn, ok := stepFor(st.Name)
		res := stepResult{kind: stepFailed, detail: fmt.Sprintf("unknown step %q", st.Name)}
		if ok {
			res = fn(ctx, r, st)
		}
		switch res.kind {
		case stepRetry:
			log.Warn("step will be retried", zap.String("step", st.Name), zap.Error(res.err))
			return fmt.Errorf("op %s step %d (%s): %w", op.ID, i, st.Name, res.err)
		case stepWait:
			return c.journalWait(ctx, g, op, st, res)
		}
		st.Ended, st.Detail = c.now(), res.detail
		if res.resources != nil {
			st.Resources = res.resources
		}
		switch res.kind {
		case stepDone:
			st.Status = site.StepDone
		case stepSkipped:
			st.Status = site.StepSkipped
		case stepFailed, stepAbort:
			st.Status = site.StepFailed
			op.Outcome, op.Error = site.OpFailed, res.detail
			if res.kind == stepAbort {
				op.Outcome = site.OpAborted
			}
			for j := i + 1; j < len(op.Steps); j++ {
				op.Steps[j].Status, op.Steps[j].Detail = site.StepSkipped, "not run: the op "+string(op.Outcome)
			}
		}
		log.Info("step ended", zap.String("step", st.Name), zap.String("status", string(st.Status)), zap.String("detail", res.detail))
		if op.Finished() {
			break
		}
		if err := c.cfg.Store.UpdateOp(ctx, g, op); err != nil {
			return err
		}
		c.event(ctx, "step", op.ID, st.Params["service"]+st.Params["site"], res.detail)
	}
	if !op.Finished() {
		op.Outcome = site.OpSucceeded
	}
	op.Ended = c.now()
	if err := c.cfg.Store.UpdateOp(ctx, g, op); err != nil {
		return err
	}
	msg := fmt.Sprintf("op %s (%s) %s", op.ID, op.Kind, op.Outcome)
	if op.Error != "" {
		msg += ": " + op.Error
	}
	log.Info("op ended", zap.String("outcome", string(op.Outcome)), zap.String("error", op.Error))
	c.event(ctx, "op-"+string(op.Outcome), op.ID, op.Params["site"], msg)
	return nil
}

// abortOp ends an op a person asked to abort (zdt ops abort), before its
// step i runs: a step already started (the coordinator was in it or waits
// in it) is marked failed, as what it did stays done; the steps after it are
// skipped, not run.
func abortOp(op *site.Op, i int, now time.Time) {
	why := "aborted by " + op.AbortRequested.By
	if op.AbortRequested.Reason != "" {
		why += ": " + op.AbortRequested.Reason
	}
	op.Outcome, op.Error = site.OpAborted, why
	for j := i; j < len(op.Steps); j++ {
		switch st := &op.Steps[j]; st.Status {
		case site.StepRunning:
			st.Status, st.Ended, st.Detail = site.StepFailed, now, "interrupted: "+why+earlier(st.Detail)
		case site.StepPending:
			st.Status, st.Detail = site.StepSkipped, "not run: "+why
		}
	}
}

// earlier is "; before that: detail", or "" without a detail.
func earlier(detail string) string {
	if detail == "" {
		return ""
	}
	return "; before that: " + detail
}

// errWaiting: the op waits for something outside the coordinator; the pass
// ends quietly and the step runs again on the next one.
var errWaiting = errors.New("op waits")

// journalWait records why a step waits, once per change of reason, with an
// event for the people who must act, and ends the pass.
func (c *Coordinator) journalWait(ctx context.Context, g site.Guard, op *site.Op, st *site.Step, res stepResult) error {
	if st.Detail == res.detail {
		return errWaiting
	}
	st.Detail, st.Resources = res.detail, res.resources
	if err := c.cfg.Store.UpdateOp(ctx, g, op); err != nil {
		return err
	}
	c.log.Warn("op waits", zap.String("op", op.ID), zap.String("step", st.Name), zap.String("detail", res.detail))
	c.event(ctx, "op-waiting", op.ID, st.Params["service"]+st.Params["site"], res.detail)
	return errWaiting
}
