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

// assignRow lists the steps from i on that the engine may run together as
// assign steps: a row of assign steps to run (pending, or left running by
// a coordinator that died in them), with no condition, timeout or
// rollback role of their own.
func assignRow(op *site.Op, i int) []int {
	var row []int
	for j := i; j < len(op.Steps); j++ {
		st := &op.Steps[j]
		if st.Name != StepAssign || (st.Status != site.StepPending && st.Status != site.StepRunning) ||
			st.When != nil || st.Timeout > 0 || st.Rollback {
			break
		}
		row = append(row, j)
	}
	return row
}

// executeAssigns runs a row of assign steps (assignRow) from one read of
// the cluster's state, writing the assignments with their events (and move
// records) up to site.MaxAssignWrites etcd writes per transaction, and
// journaling the op at most every assignJournalEvery and when the row
// ends: a failover of a thousand services commits in a few dozen writes,
// not thousands. It returns how many of the steps it ended.
//
// What it cannot do in a row it leaves to the engine's step by step path,
// which ends steps one at a time with all their cases: a step that fails
// ends the row before it; a transaction that meets a changed assignment
// ends the row at its first step. A coordinator that dies in the middle
// leaves assignments written and steps not yet journaled: the next one
// plans those steps again and finds them done by this op (planAssign), so
// each service is moved once.
func (c *Coordinator) executeAssigns(ctx context.Context, r *run, row []int, log *zap.Logger) (int, error) {
	op := r.op
	now := c.now()
	for _, i := range row {
		if st := &op.Steps[i]; st.Status != site.StepRunning || st.By != c.cfg.Site {
			st.Status, st.By, st.Started, st.Ended, st.Detail = site.StepRunning, c.cfg.Site, now, time.Time{}, ""
		}
	}
	if err := r.journal(ctx); err != nil {
		return 0, err
	}
	if c.cfg.BeforeStep != nil {
		for _, i := range row {
			if err := c.cfg.BeforeStep(ctx, op, i); err != nil {
				return 0, err
			}
		}
	}
	snap, err := c.snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("op %s: assign %d services: %w", op.ID, len(row), err)
	}
	r.dog.progress()
	plans := make([]plannedAssign, 0, len(row))
	for _, i := range row {
		p := planAssign(ctx, r, &op.Steps[i], snap)
		if p.res.kind == stepFailed || p.res.kind == stepRetry {
			break // the step by step path ends it
		}
		plans = append(plans, p)
	}
	ended := 0
	journaled := c.now()
	for ended < len(plans) {
		n, err := c.writeAssigns(ctx, r, row[ended:len(plans)], plans[ended:], log)
		ended += n
		if err != nil {
			return ended, err
		}
		// The journal is written when the row ends and otherwise at most
		// every assignJournalEvery: each write is the whole op. The
		// assignments are the record of what was done; a coordinator
		// that dies before the journal says so finds them (planAssign).
		if n == 0 || ended == len(plans) || c.now().Sub(journaled) >= assignJournalEvery {
			if err := r.journal(ctx); err != nil {
				return ended, err
			}
			journaled = c.now()
		}
		if n == 0 {
			break
		}
	}
	return ended, nil
}

// assignJournalEvery is how often a row of assign steps journals the op
// while it writes: often enough for a person to see it go.
const assignJournalEvery = 250 * time.Millisecond

// writeAssigns ends the steps of row as planned, in order, until one
// transaction's worth of assignments is written: the steps before and
// among them that write nothing, and those whose assignments it writes.
// It returns how many steps it ended (0 when the transaction met a changed
// assignment).
func (c *Coordinator) writeAssigns(ctx context.Context, r *run, row []int, plans []plannedAssign, log *zap.Logger) (int, error) {
	var writes []site.AssignWrite
	var wrote []int // the indexes in plans of the writes
	n := 0
	used := 0 // etcd writes
	for ; n < len(plans); n++ {
		if w := plans[n].write; w != nil {
			w.Event = site.Event{At: w.Next.At, Site: c.cfg.Site, Kind: "step", Op: r.op.ID, Subject: w.Next.Service, Message: plans[n].what + plans[n].why}
			if used+w.Writes() > site.MaxAssignWrites {
				break
			}
			used += w.Writes()
			writes = append(writes, *w)
			wrote = append(wrote, n)
		}
	}
	var epochs []site.Assignment
	if len(writes) > 0 {
		var err error
		epochs, err = c.cfg.Store.AssignAll(ctx, r.g, writes)
		switch {
		case errors.Is(err, site.ErrConflict):
			// Someone moved one of them: the step by step path reads
			// each again.
			log.Info("a service was moved while its row of assign steps was planned; assigning one at a time", zap.Error(err))
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("op %s: %w", r.op.ID, err)
		}
		r.dog.progress()
	}
	ended := c.now()
	for k := range n {
		st, p := &r.op.Steps[row[k]], plans[k]
		res := p.res
		if p.write == nil && res.kind == stepSkipped {
			c.event(ctx, "step", r.op.ID, st.Params["service"], res.detail)
		}
		if j := slices.Index(wrote, k); j >= 0 {
			res = done("%s (epoch %d)%s", p.what, epochs[j].Epoch, p.why)
		}
		st.Ended, st.Detail = ended, res.detail
		st.Status = site.StepDone
		if res.kind == stepSkipped {
			st.Status = site.StepSkipped
		}
	}
	log.Info("assign steps ended", zap.Int("steps", n), zap.Int("assignments", len(writes)))
	return n, nil
}
