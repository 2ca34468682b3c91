package site

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RequestOp journals an op that a person asked for (zdt failback, ...): the
// coordinator resumes unfinished ops before anything else, so it runs the op
// next. Unlike CreateOp it needs no election guard: the steps are run by the
// coordinator, under its guard. planned is the revision of the snapshot the
// op was planned from: if any op was journaled after it (two people asking
// at once, or the coordinator starting a failover), the op is not written
// and ErrConflict says to plan again, so that of two conflicting requests
// one is journaled and the other refused, naming it. 0 skips that check.
// ErrConflict too if an op of that id exists. The request is recorded in
// the event log (kind op-requested, naming op.Who) in the same
// transaction: an audit entry for every op a person asked for.
func (s *Store) RequestOp(ctx context.Context, op *Op, planned int64) error {
	key := s.keys.Op(op.ID)
	put, err := putJSON(key, op)
	if err != nil {
		return err
	}
	at := op.Created
	if at.IsZero() {
		at = time.Now()
	}
	event, err := s.eventPut(Event{At: at, Kind: "op-requested", Op: op.ID,
		Subject: cmp.Or(op.Params["site"], op.Params["service"]), Message: requestedMessage(op)})
	if err != nil {
		return err
	}
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	if planned > 0 {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(s.keys.Ops()), "<", planned+1).WithPrefix())
	}
	resp, err := s.commit(ctx, nil, conds, []clientv3.Op{put, event})
	if err != nil {
		return fmt.Errorf("request op %s: %w", op.ID, err)
	}
	op.Rev, op.CreateRev = resp.Header.Revision, resp.Header.Revision
	return nil
}

func requestedMessage(op *Op) string {
	what := op.Kind
	if op.Runbook != "" && op.Runbook != op.Kind {
		what += " (runbook " + op.Runbook + ")"
	}
	var about []string
	for _, k := range []string{"service", "site", "to"} {
		if v := op.Params[k]; v != "" {
			about = append(about, k+" "+v)
		}
	}
	if len(about) > 0 {
		what += " of " + strings.Join(about, ", ")
	}
	return fmt.Sprintf("%s requested by %s", what, op.Who)
}

// OpRequest is what a person's request for an op did (zdt failback, zdt
// switchover, ... -o json; the API's answer).
type OpRequest struct {
	Site    string `json:"site,omitempty"`
	Service string `json:"service,omitempty"`
	// Blockers say why the op may not run now; empty when it may.
	Blockers []string `json:"blockers"`
	DryRun   bool     `json:"dry_run"`
	// Op is the planned op (dry run) or the requested one; when the
	// request waited for it, as it ended.
	Op *Op `json:"op,omitempty"`
}

// Subject is what the op is about, for people: "site b", "service db".
func (r OpRequest) Subject() string {
	if r.Service != "" {
		return "service " + r.Service
	}
	return "site " + r.Site
}

// PlanAndRequest plans an op with plan from a snapshot of the cluster and,
// unless dryRun, journals it (RequestOp). If another op was journaled
// since the snapshot, it plans again from the state with that op in it
// (which may now refuse, naming it), a few times. It returns the op, or
// why it may not run now (blockers, and no error).
func (s *Store) PlanAndRequest(ctx context.Context, dryRun bool, plan func(*Snapshot) (*Op, []string)) (*Op, []string, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		snap, err := s.Snapshot(ctx)
		if err != nil {
			return nil, nil, err
		}
		op, why := plan(snap)
		if len(why) > 0 {
			return nil, why, nil
		}
		if dryRun {
			return op, nil, nil
		}
		err = s.RequestOp(ctx, op, snap.Rev)
		if err == nil {
			return op, nil, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == attempts {
			return nil, nil, err
		}
	}
}

// ErrFencedAgain: the fence a failback was to lift was replaced by a newer
// one (the site was failed over again meanwhile).
var ErrFencedAgain = errors.New("fenced again")

// LiftFence removes a site's fence, guarded by g, if it is still the one
// written by op fencedBy ("" lifts any fence). Lifting a fence that is gone
// is not an error: the step that does it may run twice. ErrFencedAgain if a
// newer fence names the site.
func (s *Store) LiftFence(ctx context.Context, g Guard, siteName, fencedBy string) error {
	key := s.keys.Fence(siteName)
	const attempts = 3 // an operator's confirmation may rewrite the record meanwhile
	for range attempts {
		f, kv, err := get[Fence](ctx, s, key)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("lift the fence of site %s: %w", siteName, err)
		case fencedBy != "" && f.Op != fencedBy:
			return fmt.Errorf("lift the fence of site %s: it was fenced again, by op %s: %w", siteName, f.Op, ErrFencedAgain)
		}
		_, err = s.commit(ctx, &g,
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)},
			[]clientv3.Op{clientv3.OpDelete(key)})
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return fmt.Errorf("lift the fence of site %s: %w", siteName, err)
			}
			return nil
		}
	}
	return fmt.Errorf("lift the fence of site %s: %w %d times", siteName, ErrConflict, attempts)
}

// DeclareFence fences a site that may hold its lease (a failover an
// operator declared: the site is up but broken), guarded by g. Its
// controller sees the fence and fences itself. If the site is fenced
// already, it returns that record and no error.
func (s *Store) DeclareFence(ctx context.Context, g Guard, f Fence) (Fence, error) {
	key := s.keys.Fence(f.Site)
	put, err := putJSON(key, f)
	if err != nil {
		return Fence{}, err
	}
	resp, err := s.commit(ctx, &g,
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{put},
		clientv3.OpGet(key))
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, ErrConflict):
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			return decode[Fence](kvs[0])
		}
		return Fence{}, fmt.Errorf("declare site %s dark: %w", f.Site, err)
	default:
		return Fence{}, fmt.Errorf("declare site %s dark: %w", f.Site, err)
	}
}
