package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
)

// execute carries out an op from its first unfinished step, journaling each
// step before and after it runs. It returns an error when the op must be
// resumed later (a passing failure, or the election was lost); the op then
// stays running in the journal.
func (c *Coordinator) execute(ctx context.Context, g site.Guard, op *site.Op, dog *watchdog) error {
	c.running.Store(op.ID)
	defer c.running.Store("")
	r := &run{c: c, g: g, op: op, dog: dog}
	log := c.log.With(zap.String("op", op.ID), zap.String("kind", op.Kind))
	if n := len(op.Coordinators); n == 0 || op.Coordinators[n-1] != c.cfg.Site {
		if n > 0 {
			log.Info("resuming op of a previous coordinator", zap.Strings("coordinators", op.Coordinators))
			c.event(ctx, "op-resumed", op.ID, "", fmt.Sprintf("op %s resumed by %s after coordinator %s", op.ID, c.cfg.Site, op.Coordinators[n-1]))
		}
		op.Coordinators = append(op.Coordinators, c.cfg.Site)
		if err := r.journal(ctx); err != nil {
			return err
		}
	}
	for i := 0; i < len(op.Steps); i++ {
		st := &op.Steps[i]
		if st.Status != site.StepPending && st.Status != site.StepRunning {
			continue
		}
		if st.Rollback && op.RollingBack == "" {
			continue // it runs only when a failed step names it
		}
		if op.AbortRequested != nil {
			abortOp(op, i, c.now())
			log.Info("op aborted on request", zap.String("by", op.AbortRequested.By), zap.String("reason", op.AbortRequested.Reason), zap.String("step", st.Name))
			break
		}
		if st.Status == site.StepPending && st.When != nil {
			res, run := whenStep(ctx, r, st)
			if res.kind == stepRetry {
				return fmt.Errorf("op %s step %d (%s): %w", op.ID, i, st.Name, res.err)
			}
			if !run {
				st.Status, st.Detail = site.StepSkipped, res.detail
				log.Info("step skipped", zap.String("step", stepLabel(st)), zap.String("detail", res.detail))
				if err := r.journal(ctx); err != nil {
					return err
				}
				continue
			}
		}
		if row := assignRow(op, i); len(row) > 1 {
			n, err := c.executeAssigns(ctx, r, row, log)
			if err != nil {
				return err
			}
			if n > 0 {
				i-- // the steps it ended are passed over
				continue
			}
		}
		if st.Status != site.StepRunning || st.By != c.cfg.Site {
			// A step this coordinator already runs (a retry, a wait) keeps
			// its start; one it takes over is journaled as started anew.
			st.Status, st.By, st.Started, st.Ended, st.Detail = site.StepRunning, c.cfg.Site, c.now(), time.Time{}, ""
			if err := r.journal(ctx); err != nil {
				return err
			}
		}
		if c.cfg.BeforeStep != nil {
			if err := c.cfg.BeforeStep(ctx, op, i); err != nil {
				return err
			}
		}
		res, out := timedOut(r, st)
		switch {
		case out:
		case isMacroStep(st):
			res = expandStep(ctx, r, i)
		default:
			fn, ok := stepFor(st.Name)
			res = stepResult{kind: stepFailed, detail: fmt.Sprintf("unknown step %q", st.Name)}
			if ok {
				res = fn(ctx, r, st)
			}
		}
		switch res.kind {
		case stepRetry:
			log.Warn("step will be retried", zap.String("step", st.Name), zap.Error(res.err))
			return fmt.Errorf("op %s step %d (%s): %w", op.ID, i, st.Name, res.err)
		case stepWait:
			return r.journalWait(ctx, st, res)
		case stepExpanded:
			// op.Steps[i] is now the first step of the macro's op.
			log.Info("macro step planned", zap.String("step", stepLabel(&op.Steps[i])))
			if err := r.journal(ctx); err != nil {
				return err
			}
			i--
			continue
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
			if res.kind == stepFailed && len(st.OnFailure) > 0 {
				startRollback(op, i)
				log.Warn("step failed; its rollback runs", zap.String("step", stepLabel(st)), zap.Strings("rollback", st.OnFailure), zap.String("detail", res.detail))
				break
			}
			failOp(op, i, res.kind == stepAbort)
		}
		log.Info("step ended", zap.String("step", st.Name), zap.String("status", string(st.Status)), zap.String("detail", res.detail))
		if op.Finished() {
			break
		}
		if err := r.journal(ctx); err != nil {
			return err
		}
		c.event(ctx, "step", op.ID, st.Params["service"]+st.Params["site"], res.detail)
	}
	if !op.Finished() {
		succeed(op)
	}
	op.Ended = c.now()
	if err := r.journal(ctx); err != nil {
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

// failOp ends the op after its step i failed (aborted: its premise no
// longer holds), skipping the steps after it.
func failOp(op *site.Op, i int, aborted bool) {
	st := &op.Steps[i]
	op.Outcome = site.OpFailed
	if aborted {
		op.Outcome = site.OpAborted
	}
	if op.RollingBack != "" {
		op.Error += fmt.Sprintf("; its rollback failed too, at step %s: %s", stepLabel(st), st.Detail)
	} else {
		op.Error = st.Detail
	}
	for j := i + 1; j < len(op.Steps); j++ {
		if op.Steps[j].Status == site.StepPending {
			op.Steps[j].Status, op.Steps[j].Detail = site.StepSkipped, "not run: the op "+string(op.Outcome)
		}
	}
}

// startRollback selects the rollback steps that the failed step i names,
// and skips every other step that has not run.
func startRollback(op *site.Op, i int) {
	failed := &op.Steps[i]
	label := stepLabel(failed)
	if op.RollingBack == "" {
		op.Error = fmt.Sprintf("step %s failed: %s", label, failed.Detail)
	} else {
		op.Error += fmt.Sprintf("; rollback step %s failed: %s", label, failed.Detail)
	}
	op.RollingBack = label
	for j := range op.Steps {
		s := &op.Steps[j]
		switch {
		case s.Status != site.StepPending:
		case !s.Rollback:
			s.Status, s.Detail = site.StepSkipped, "not run: step "+label+" failed, its rollback runs instead"
		case !slices.Contains(failed.OnFailure, s.ID):
			s.Status, s.Detail = site.StepSkipped, "not run: not a rollback of step "+label
		}
	}
}

// succeed ends an op whose steps have all run: succeeded, or failed and
// rolled back. The rollback steps no step needed are marked so.
func succeed(op *site.Op) {
	op.Outcome = site.OpSucceeded
	if op.RollingBack != "" {
		op.Outcome = site.OpFailed
		op.Error += "; rolled back"
	}
	for j := range op.Steps {
		if s := &op.Steps[j]; s.Status == site.StepPending {
			s.Status, s.Detail = site.StepSkipped, "not needed: no step failed"
		}
	}
}

// stepLabel names a step for people: its runbook ID, or its action.
func stepLabel(st *site.Step) string {
	if st.ID != "" {
		return st.ID
	}
	return st.Name
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
func (r *run) journalWait(ctx context.Context, st *site.Step, res stepResult) error {
	if st.Detail == res.detail {
		return errWaiting
	}
	st.Detail, st.Resources = res.detail, res.resources
	if err := r.journal(ctx); err != nil {
		return err
	}
	r.c.log.Warn("op waits", zap.String("op", r.op.ID), zap.String("step", st.Name), zap.String("detail", res.detail))
	r.c.event(ctx, "op-waiting", r.op.ID, st.Params["service"]+st.Params["site"], res.detail)
	return errWaiting
}

// journal writes the op as it stands, guarded by the coordinator's
// election; a write that lands is progress.
func (r *run) journal(ctx context.Context) error {
	if err := r.c.cfg.Store.UpdateOp(ctx, r.g, r.op); err != nil {
		return err
	}
	r.dog.progress()
	return nil
}
