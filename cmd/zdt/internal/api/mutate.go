package api

import (
	"cmp"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
)

// The bodies of the operations. Durations are Go durations ("90s").

// SwitchoverRequest asks for a switchover (zdt switchover).
type SwitchoverRequest struct {
	Service       string `json:"service"`
	Site          string `json:"site"`
	To            string `json:"to"`
	Force         bool   `json:"force"`
	PromoteWithin string `json:"promote_within"`
	DryRun        bool   `json:"dry_run"`
}

// FailoverRequest declares a site dark (zdt failover).
type FailoverRequest struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run"`
}

// FailbackRequest asks for a failback (zdt failback).
type FailbackRequest struct {
	Site   string `json:"site"`
	DryRun bool   `json:"dry_run"`
}

// EvacuateRequest asks for an evacuation (zdt evacuate).
type EvacuateRequest struct {
	Site          string `json:"site"`
	Reason        string `json:"reason"`
	PromoteWithin string `json:"promote_within"`
	DryRun        bool   `json:"dry_run"`
}

// RunbookRequest runs a shipped runbook (zdt runbook run).
type RunbookRequest struct {
	Params map[string]string `json:"params"`
	// Yes approves every confirm step in advance, in the caller's name.
	Yes    bool `json:"yes"`
	DryRun bool `json:"dry_run"`
}

// PostedRunbookRequest runs the runbook it carries (zdt runbook run FILE).
type PostedRunbookRequest struct {
	// File names the runbook in errors (the file it was read from).
	File string `json:"file"`
	// Runbook is the runbook, as its YAML file holds it.
	Runbook string            `json:"runbook"`
	Params  map[string]string `json:"params"`
	Yes     bool              `json:"yes"`
	DryRun  bool              `json:"dry_run"`
}

// PlanRequest plans a shipped runbook (zdt runbook plan).
type PlanRequest struct {
	Params map[string]string `json:"params"`
}

// PostedPlanRequest plans the runbook it carries.
type PostedPlanRequest struct {
	File    string            `json:"file"`
	Runbook string            `json:"runbook"`
	Params  map[string]string `json:"params"`
}

// Reason is the body of an approval.
type Reason struct {
	Reason string `json:"reason"`
}

// AbortRequest is the body of an abort.
type AbortRequest struct {
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run"`
}

// ConfirmFenceRequest is the body of a fence confirmation.
type ConfirmFenceRequest struct {
	DryRun bool `json:"dry_run"`
}

// planner plans an op as who from a snapshot: the op, or why not now.
type planner func(snap *site.Snapshot, who string) (*site.Op, []string)

// request plans and journals an op for who, and answers what it did: 202
// with the op when journaled, 200 for a dry run, 409 with the blockers
// when it may not run now.
func (s *Server) request(w http.ResponseWriter, r *http.Request, who apiauth.Identity, res site.OpRequest, plan planner) error {
	ctx, cancel := s.readCtx(r)
	defer cancel()
	res.Blockers = []string{}
	op, why, err := s.cfg.Store.PlanAndRequest(ctx, res.DryRun, func(snap *site.Snapshot) (*site.Op, []string) {
		return plan(snap, who.String())
	})
	switch {
	case err != nil:
		return err
	case len(why) > 0:
		return &apiError{status: http.StatusConflict, msg: res.Subject() + ": refused for now: " + strings.Join(why, "; "), blockers: why}
	}
	res.Op = op
	if res.DryRun {
		WriteJSON(w, http.StatusOK, res)
		return nil
	}
	w.Header().Set("Location", Prefix+"/ops/"+op.ID)
	WriteJSON(w, http.StatusAccepted, res)
	return nil
}

// duration reads an optional duration field.
func duration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errorf(http.StatusBadRequest, "%s %q: want a positive duration, like 90s", field, v)
	}
	return d, nil
}

// needSite refuses a missing or unknown site.
func (s *Server) needSite(field, name string) error {
	if name == "" {
		return errorf(http.StatusBadRequest, "%s: required: the name of a site (sites are %s)", field, strings.Join(s.cfg.Cluster.SiteNames(), ", "))
	}
	return s.checkNames(name, "")
}

func (s *Server) switchover(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req SwitchoverRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	within, err := duration("promote_within", req.PromoteWithin)
	switch {
	case err != nil:
		return err
	case (req.Service == "") == (req.Site == ""):
		return errorf(http.StatusBadRequest, "give either service or site (the site whose services move)")
	case req.Force:
		if err := apiauth.Authorize(who, config.RoleAdmin, "a forced switchover"); err != nil {
			return err
		}
	}
	if err := s.checkNames(req.Site, req.Service); err != nil {
		return err
	}
	if err := s.needSite("to", req.To); err != nil {
		return err
	}
	if req.Site == req.To {
		return errorf(http.StatusBadRequest, "site and to are both %q: the services would not move", req.To)
	}
	args := map[string]string{"service": req.Service, "site": req.Site, "to": req.To, "force": strconv.FormatBool(req.Force)}
	if within > 0 {
		args["promote_within"] = within.String()
	}
	return s.request(w, r, who, site.OpRequest{Site: req.Site, Service: req.Service, DryRun: req.DryRun}, s.shipped(failover.KindSwitchover, args))
}

// shipped plans by a shipped runbook, as the CLI's commands do.
func (s *Server) shipped(name string, args map[string]string) planner {
	return func(snap *site.Snapshot, who string) (*site.Op, []string) {
		return runbooks.PlanShipped(s.cfg.Cluster, snap, name, args, who)
	}
}

func (s *Server) failover(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req FailoverRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.needSite("site", req.Site); err != nil {
		return err
	}
	return s.request(w, r, who, site.OpRequest{Site: req.Site, DryRun: req.DryRun}, func(snap *site.Snapshot, who string) (*site.Op, []string) {
		return failover.PlanDeclaredFailover(s.cfg.Cluster, snap, req.Site, who, req.Reason, time.Now())
	})
}

func (s *Server) failback(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req FailbackRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.needSite("site", req.Site); err != nil {
		return err
	}
	return s.request(w, r, who, site.OpRequest{Site: req.Site, DryRun: req.DryRun}, s.shipped(failover.KindFailback, map[string]string{"site": req.Site}))
}

func (s *Server) evacuate(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req EvacuateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	within, err := duration("promote_within", req.PromoteWithin)
	if err != nil {
		return err
	}
	if err := s.needSite("site", req.Site); err != nil {
		return err
	}
	args := map[string]string{"site": req.Site, "reason": req.Reason}
	if within > 0 {
		args["within"] = within.String()
	}
	return s.request(w, r, who, site.OpRequest{Site: req.Site, DryRun: req.DryRun}, s.shipped(failover.KindEvacuate, args))
}

func (s *Server) undrain(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req FailbackRequest // the same body: a site
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.needSite("site", req.Site); err != nil {
		return err
	}
	return s.request(w, r, who, site.OpRequest{Site: req.Site, DryRun: req.DryRun}, func(snap *site.Snapshot, who string) (*site.Op, []string) {
		return failover.PlanUndrain(s.cfg.Cluster, snap, req.Site, who, time.Now())
	})
}

// runRunbook runs a shipped runbook. One that declares a site dark, or
// forces a switchover, needs the admin role.
func (s *Server) runRunbook(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req RunbookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	rb, err := runbooks.Find(name)
	if err != nil {
		return errorf(http.StatusNotFound, "%v", err)
	}
	if adminRunbook(rb, req.Params) {
		if err := apiauth.Authorize(who, config.RoleAdmin, "runbook "+rb.Name+" (it declares a site dark or forces a move)"); err != nil {
			return err
		}
	}
	return s.runbook(w, r, who, rb, req)
}

// runPostedRunbook runs the runbook the request carries, checked as `zdt
// runbook check` checks a file. One with a failover step, or any step
// that says force, needs the admin role, whatever its name.
func (s *Server) runPostedRunbook(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req PostedRunbookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rb, err := parsePosted(req.File, req.Runbook)
	if err != nil {
		return err
	}
	for _, g := range rb.Groups {
		for _, st := range g.Steps {
			if _, force := st.With["force"]; force || st.Action == failover.KindFailover {
				if err := apiauth.Authorize(who, config.RoleAdmin, "runbook "+rb.Name+" (its step "+st.ID+" declares a site dark or forces a move)"); err != nil {
					return err
				}
			}
		}
	}
	return s.runbook(w, r, who, rb, RunbookRequest{Params: req.Params, Yes: req.Yes, DryRun: req.DryRun})
}

// parsePosted parses a runbook a request carries, checked as `zdt runbook
// check` checks a file.
func parsePosted(file, text string) (*runbooks.Runbook, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errorf(http.StatusBadRequest, "runbook: required (the runbook's YAML)")
	}
	rb, err := runbooks.Parse(cmp.Or(file, "the posted runbook"), []byte(text))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return rb, nil
}

// planRunbook plans a shipped runbook for the caller, as `zdt runbook plan`
// does, and answers the plan (runbooks.Plan), whether it may run now or
// not (its blockers say why).
func (s *Server) planRunbook(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req PlanRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rb, err := runbooks.Find(r.PathValue("name"))
	if err != nil {
		return errorf(http.StatusNotFound, "%v", err)
	}
	return s.plan(w, r, who, rb, req.Params)
}

// planPostedRunbook plans the runbook the request carries.
func (s *Server) planPostedRunbook(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var req PostedPlanRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rb, err := parsePosted(req.File, req.Runbook)
	if err != nil {
		return err
	}
	return s.plan(w, r, who, rb, req.Params)
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request, who apiauth.Identity, rb *runbooks.Runbook, params map[string]string) error {
	args, err := runbooks.Resolve(rb, s.cfg.Cluster, params)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	snap, err := s.cfg.Store.Snapshot(ctx)
	if err != nil {
		return err
	}
	plan, err := runbooks.MakePlan(rb, s.cfg.Cluster, snap, args, runbooks.PlanOptions{Who: who.String(), Now: time.Now()})
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	WriteJSON(w, http.StatusOK, plan)
	return nil
}

// runbook plans rb with the request's parameters, checked against the
// cluster, and journals it.
func (s *Server) runbook(w http.ResponseWriter, r *http.Request, who apiauth.Identity, rb *runbooks.Runbook, req RunbookRequest) error {
	args, err := runbooks.Resolve(rb, s.cfg.Cluster, req.Params)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	var planErr error
	err = s.request(w, r, who, site.OpRequest{Site: args["site"], Service: args["service"], DryRun: req.DryRun}, func(snap *site.Snapshot, who string) (*site.Op, []string) {
		plan, err := runbooks.MakePlan(rb, s.cfg.Cluster, snap, args, runbooks.PlanOptions{Who: who, Now: time.Now(), Yes: req.Yes})
		if err != nil {
			planErr = err
			return nil, []string{err.Error()}
		}
		return plan.Op, plan.Blockers
	})
	if planErr != nil {
		return errorf(http.StatusBadRequest, "%v", planErr)
	}
	return err
}

// adminRunbook reports whether a runbook, with the parameters given, does
// what only an admin may: a declared failover, or a forced switchover. A
// drill (a shipped runbook named *-drill) is the operator's, forced
// switchovers aside: running drills is what the role is for.
func adminRunbook(rb *runbooks.Runbook, params map[string]string) bool {
	if strings.EqualFold(params["force"], "true") {
		return true
	}
	if strings.HasSuffix(rb.Name, "-drill") {
		return false
	}
	for _, g := range rb.Groups {
		for _, st := range g.Steps {
			if st.Action == failover.KindFailover || st.With["force"] == "true" {
				return true
			}
		}
	}
	return false
}

// opOfRequest decodes the request's body into v and reads the op its path
// names (by ID or unique prefix).
func (s *Server) opOfRequest(r *http.Request, v any) (*site.Op, error) {
	if err := decode(r, v); err != nil {
		return nil, err
	}
	return s.opByID(r)
}

// siteOfRequest decodes the request's body into v and returns the site its
// path names: 404 when the config has none of that name.
func (s *Server) siteOfRequest(r *http.Request, v any) (string, error) {
	if err := decode(r, v); err != nil {
		return "", err
	}
	name := r.PathValue("site")
	if err := s.checkNames(name, ""); err != nil {
		return "", errorf(http.StatusNotFound, "%v", err)
	}
	return name, nil
}

// abort asks for a running op to be aborted, and answers what it did
// (site.AbortResult): 409 when the op has ended.
func (s *Server) abort(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var body AbortRequest
	op, err := s.opOfRequest(r, &body)
	if err != nil {
		return err
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	res, err := s.cfg.Store.Abort(ctx, op.ID, site.Request{By: who.String(), Reason: strings.TrimSpace(body.Reason)}, body.DryRun)
	switch {
	case errors.Is(err, site.ErrOpEnded):
		return errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, site.ErrNotFound):
		return errorf(http.StatusNotFound, "op %s was removed from the journal just now", op.ID)
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusOK, res)
	return nil
}

// approve approves the confirm step a running op waits at, and answers the
// op: 409 when it has ended or waits for no approval.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var body Reason
	op, err := s.opOfRequest(r, &body)
	if err != nil {
		return err
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	op, err = s.cfg.Store.ApproveStep(ctx, op.ID, site.Request{By: who.String(), Reason: strings.TrimSpace(body.Reason)})
	switch {
	case errors.Is(err, site.ErrOpEnded), errors.Is(err, site.ErrNotWaiting):
		return errorf(http.StatusConflict, "%v", err)
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusOK, op)
	return nil
}

// confirmFence confirms a fenced site dark, and answers what it did
// (site.FenceConfirmation): 409 when the site is not fenced.
func (s *Server) confirmFence(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var body ConfirmFenceRequest
	name, err := s.siteOfRequest(r, &body)
	if err != nil {
		return err
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	res, err := s.cfg.Store.ConfirmFenceAs(ctx, name, who.String(), body.DryRun, s.cfg.Cluster.Fencing.RequireConfirmation)
	switch {
	case errors.Is(err, site.ErrNotFenced):
		return errorf(http.StatusConflict, "%v", err)
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusOK, res)
	return nil
}

// recordDrill keeps a drill as its site's last (zdt drill through the
// API), and answers the record as kept.
func (s *Server) recordDrill(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error {
	var d site.DrillRecord
	name, err := s.siteOfRequest(r, &d)
	if err != nil {
		return err
	}
	switch {
	case d.Site != "" && d.Site != name:
		return errorf(http.StatusBadRequest, "site %q: the body says %q; they must agree", name, d.Site)
	case d.Kind == "":
		return errorf(http.StatusBadRequest, "kind: required (switchover)")
	case d.Started.IsZero() || d.Ended.Before(d.Started):
		return errorf(http.StatusBadRequest, "started, ended: want the drill's start, and an end no earlier")
	}
	d.Site = name
	if d.Who == "" {
		d.Who = who.String()
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	if err := s.cfg.Store.RecordDrill(ctx, d); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, d)
	return nil
}
