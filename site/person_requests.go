package site

import (
	"context"
	"errors"
	"fmt"
)

// The actions of an abort request (`zdt ops abort`, POST
// /ops/{id}/abort), as AbortResult reports them.
const (
	AbortRequested        = "requested"
	AbortAlreadyRequested = "already-requested"
	AbortWouldRequest     = "would-request"
)

// AbortResult is what an abort request did. The CLI and the API answer it
// alike.
type AbortResult struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	DryRun bool   `json:"dry_run"`
	// Who is the person asking; the request in Op may be an earlier one,
	// by someone else.
	Who    string `json:"who"`
	Reason string `json:"reason,omitempty"`
	// Coordinator is the site that coordinates, "" when none does: the op
	// is aborted when one does.
	Coordinator string `json:"coordinator"`
	Op          *Op    `json:"op"`
}

// Abort asks for the op id to be aborted as req.By (RequestAbort), or for a
// dry run only says what it would ask. An op that has ended is ErrOpEnded,
// with its outcome; an unknown one ErrNotFound.
func (s *Store) Abort(ctx context.Context, id string, req Request, dryRun bool) (AbortResult, error) {
	res := AbortResult{ID: id, DryRun: dryRun, Who: req.By, Reason: req.Reason}
	op, err := s.Op(ctx, id)
	if err != nil {
		return res, err
	}
	res.Op = op
	if res.Coordinator, err = s.Coordinator(ctx); err != nil {
		return res, err
	}
	switch {
	case op.Finished():
		return res, endedError(op)
	case op.AbortRequested != nil:
		res.Action = AbortAlreadyRequested
		return res, nil
	case dryRun:
		res.Action = AbortWouldRequest
		return res, nil
	}
	now, err := s.RequestAbort(ctx, id, req)
	switch {
	case errors.Is(err, ErrOpEnded):
		return res, endedError(now) // it ended since it was read
	case err != nil:
		return res, err
	}
	res.Op, res.Action = now, AbortRequested
	if r := now.AbortRequested; r.By != req.By || r.Reason != req.Reason {
		res.Action = AbortAlreadyRequested // someone was quicker
	}
	return res, nil
}

// endedError says that op has ended, how, and that there is nothing to
// abort; it is ErrOpEnded.
func endedError(op *Op) error {
	msg := fmt.Sprintf("op %s has ended already: %s at %s", op.ID, op.Outcome, op.Ended.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	if op.Error != "" {
		msg += ": " + op.Error
	}
	return opEndedError(msg + "; there is nothing to abort")
}

// opEndedError is ErrOpEnded in words that say how the op ended.
type opEndedError string

func (e opEndedError) Error() string { return string(e) }
func (e opEndedError) Unwrap() error { return ErrOpEnded }

// The actions of a fence confirmation (`zdt fence confirm`, POST
// /sites/{site}/confirm-fence), as FenceConfirmation reports them.
const (
	FenceConfirmed        = "confirmed"
	FenceAlreadyConfirmed = "already-confirmed"
	FenceWouldConfirm     = "would-confirm"
)

// FenceConfirmation is what a fence confirmation did. The CLI and the API
// answer it alike.
type FenceConfirmation struct {
	Site   string `json:"site"`
	Action string `json:"action"`
	DryRun bool   `json:"dry_run"`
	// Who is the person confirming.
	Who string `json:"who"`
	// SiteAlive: the fenced site holds a lease again.
	SiteAlive bool `json:"site_alive"`
	// RequireConfirmation is the config's fencing.require_confirmation.
	RequireConfirmation bool  `json:"require_confirmation"`
	Fence               Fence `json:"fence"`
}

// ConfirmFenceAs confirms the fence of siteName as who (ConfirmFence), or
// for a dry run only reads it; requireConfirmation is the config's
// fencing.require_confirmation, for the result. ErrNotFenced when the site
// has no fence.
func (s *Store) ConfirmFenceAs(ctx context.Context, siteName, who string, dryRun, requireConfirmation bool) (FenceConfirmation, error) {
	res := FenceConfirmation{Site: siteName, DryRun: dryRun, Who: who, RequireConfirmation: requireConfirmation}
	var err error
	res.Fence, res.SiteAlive, err = s.FenceToConfirm(ctx, siteName)
	switch {
	case err != nil:
		return res, err
	case res.Fence.Confirmed != nil:
		res.Action = FenceAlreadyConfirmed
		return res, nil
	case dryRun:
		res.Action = FenceWouldConfirm
		return res, nil
	}
	if res.Fence, err = s.ConfirmFence(ctx, siteName, who); err != nil {
		return res, err // ErrNotFenced: lifted since it was read
	}
	res.Action = FenceConfirmed
	if res.Fence.Confirmed.By != who {
		res.Action = FenceAlreadyConfirmed // another person was quicker
	}
	return res, nil
}
