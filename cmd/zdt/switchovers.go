package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/ctxsleep"
)

// switchovers is how a command that moves services by several switchover
// ops (zdt failback --switch-back, zdt drill switchover) reads the cluster
// and asks for them: through a controller's API with a token, in etcd
// otherwise.
type switchovers struct {
	// standing reads, in one go, which sites are fenced and which drained
	// for maintenance now.
	standing func(ctx context.Context) (siteStanding, error)
	// assigned maps each assigned service to its site.
	assigned func(ctx context.Context) (map[string]string, error)
	// ask asks for the switchover once it may run, or until ctx ends
	// (then the last blockers, and errNotNow), and follows it to its end,
	// writing its steps to progress (nil: quietly).
	ask func(ctx context.Context, req failover.SwitchoverRequest, progress io.Writer) (opRequest, error)
	// recordDrill keeps a site's last drill.
	recordDrill func(ctx context.Context, d site.DrillRecord) error
	// failback asks for the failback of a fenced site once it may run (or
	// until ctx ends), and follows it to its end.
	failback func(ctx context.Context, siteName string, progress io.Writer) (opRequest, error)
	// failoverOf is the newest failover of a site created at since or
	// later, as it is now; nil if there is none.
	failoverOf func(ctx context.Context, siteName string, since time.Time) (*site.Op, error)
}

// siteStanding is which sites are fenced and which drained, as read at
// one instant.
type siteStanding struct {
	fenced, drained map[string]bool
}

// fenced says whether the site is fenced now.
func (sw switchovers) fenced(ctx context.Context, siteName string) (bool, error) {
	st, err := sw.standing(ctx)
	return st.fenced[siteName], err
}

// isFailoverOf reports whether op is a failover of siteName created at
// since or later.
func isFailoverOf(op *site.Op, siteName string, since time.Time) bool {
	return op.Kind == failover.KindFailover && op.Params["site"] == siteName && !op.Created.Before(since)
}

// openSwitchovers opens the cluster of cfg for switchovers; done releases
// it.
func openSwitchovers(cfg *config.Cluster) (src switchovers, done func(), err error) {
	sess, err := openAPISession(cfg)
	if err != nil {
		return src, nil, err
	}
	if sess != nil {
		src.standing = func(ctx context.Context) (siteStanding, error) {
			var sites []site.SiteStatus
			if err := sess.call(ctx, http.MethodGet, "/sites", nil, &sites); err != nil {
				return siteStanding{}, err
			}
			st := siteStanding{fenced: map[string]bool{}, drained: map[string]bool{}}
			for _, s := range sites {
				st.fenced[s.Name], st.drained[s.Name] = s.Fence != nil, s.Drain != nil
			}
			return st, nil
		}
		src.assigned = func(ctx context.Context) (map[string]string, error) {
			var services []site.ServiceStatus
			if err := sess.call(ctx, http.MethodGet, "/services", nil, &services); err != nil {
				return nil, err
			}
			assigned := map[string]string{}
			for _, svc := range services {
				if svc.Active != "" {
					assigned[svc.Name] = svc.Active
				}
			}
			return assigned, nil
		}
		src.ask = func(ctx context.Context, req failover.SwitchoverRequest, progress io.Writer) (opRequest, error) {
			body := map[string]any{"to": req.To}
			if req.Service != "" {
				body["service"] = req.Service
			} else {
				body["site"] = req.Site
			}
			if req.PromoteWithin > 0 {
				body["promote_within"] = req.PromoteWithin.String()
			}
			return requestWhenPossible(ctx, sess, progress, opRequest{Site: req.Site, Service: req.Service}, "/switchover", body)
		}
		src.recordDrill = func(ctx context.Context, d site.DrillRecord) error {
			return sess.call(ctx, http.MethodPost, "/sites/"+url.PathEscape(d.Site)+"/drills", d, nil)
		}
		src.failback = func(ctx context.Context, siteName string, progress io.Writer) (opRequest, error) {
			return requestWhenPossible(ctx, sess, progress, opRequest{Site: siteName}, "/failback", map[string]any{"site": siteName})
		}
		src.failoverOf = func(ctx context.Context, siteName string, since time.Time) (*site.Op, error) {
			var list struct {
				Ops []site.OpSummary `json:"ops"`
			}
			if err := sess.call(ctx, http.MethodGet, "/ops?kind="+failover.KindFailover+"&limit=10", nil, &list); err != nil {
				return nil, err
			}
			var newest *site.Op
			for _, sum := range list.Ops {
				op := &site.Op{ID: sum.ID, Kind: sum.Kind, Params: sum.Params, Created: sum.Created}
				if !isFailoverOf(op, siteName, since) || (newest != nil && !op.Created.After(newest.Created)) {
					continue
				}
				var full site.Op
				if err := sess.call(ctx, http.MethodGet, "/ops/"+url.PathEscape(sum.ID), nil, &full); err != nil {
					return nil, err
				}
				newest = &full
			}
			return newest, nil
		}
		return src, func() {}, nil
	}
	client, err := site.NewClient(cfg, nil, zap.NewNop())
	if err != nil {
		return src, nil, err
	}
	store := site.NewStore(client, cfg.Name)
	src.standing = func(ctx context.Context) (siteStanding, error) {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			return siteStanding{}, etcdError(cfg, err)
		}
		st := siteStanding{fenced: map[string]bool{}, drained: map[string]bool{}}
		for _, name := range cfg.SiteNames() {
			_, st.fenced[name] = snap.Fences[name]
			st.drained[name] = snap.Drained(name)
		}
		return st, nil
	}
	src.assigned = func(ctx context.Context) (map[string]string, error) {
		snap, err := store.Snapshot(ctx)
		if err != nil {
			return nil, etcdError(cfg, err)
		}
		assigned := map[string]string{}
		for svc, a := range snap.Assignments {
			assigned[svc] = a.Site
		}
		return assigned, nil
	}
	who := operatorName()
	src.ask = func(ctx context.Context, req failover.SwitchoverRequest, progress io.Writer) (opRequest, error) {
		res := opRequest{Site: req.Site, Service: req.Service, Blockers: []string{}}
		return awaitAndFollow(ctx, cfg, store, res, progress, func(snap *site.Snapshot) (*site.Op, []string) {
			return failover.PlanSwitchover(cfg, snap, req, who, time.Now())
		})
	}
	src.recordDrill = func(ctx context.Context, d site.DrillRecord) error {
		if err := store.RecordDrill(ctx, d); err != nil {
			return etcdError(cfg, err)
		}
		return nil
	}
	src.failback = func(ctx context.Context, siteName string, progress io.Writer) (opRequest, error) {
		return awaitAndFollow(ctx, cfg, store, opRequest{Site: siteName, Blockers: []string{}}, progress, func(snap *site.Snapshot) (*site.Op, []string) {
			return runbooks.PlanShipped(cfg, snap, failover.KindFailback, map[string]string{"site": siteName}, who)
		})
	}
	src.failoverOf = func(ctx context.Context, siteName string, since time.Time) (*site.Op, error) {
		journal, err := store.Ops(ctx)
		if err != nil {
			return nil, etcdError(cfg, err)
		}
		var newest *site.Op
		for _, op := range journal {
			if isFailoverOf(op, siteName, since) && (newest == nil || op.Created.After(newest.Created)) {
				newest = op
			}
		}
		return newest, nil
	}
	return src, func() { client.Close() }, nil
}

// awaitAndFollow journals the op that plan makes once it has no blockers
// (or returns the last blockers when ctx ends, with errNotNow), and
// follows it to its end.
func awaitAndFollow(ctx context.Context, cfg *config.Cluster, store *site.Store, res opRequest, progress io.Writer, plan func(*site.Snapshot) (*site.Op, []string)) (opRequest, error) {
	op, why, err := awaitRequest(ctx, store, plan)
	switch {
	case err != nil:
		return res, etcdError(cfg, err)
	case len(why) > 0:
		res.Blockers = why
		return res, fmt.Errorf("%s: %w", strings.Join(why, "; "), errNotNow)
	}
	res.Op = op
	if progress != nil {
		fmt.Fprintf(progress, "op %s (%s) requested; waiting for the coordinator\n", op.ID, op.Kind)
	}
	if res.Op, err = followOp(ctx, store, op.ID, progress); err == nil && res.Op.Outcome != site.OpSucceeded {
		err = fmt.Errorf("op %s %s: %s", op.ID, res.Op.Outcome, res.Op.Error)
	}
	return res, err
}

// requestWhenPossible asks the API for an op, again every second while it
// is refused for now (errNotNow) until ctx ends, and follows it to its end.
func requestWhenPossible(ctx context.Context, sess *apiSession, progress io.Writer, req opRequest, path string, body map[string]any) (opRequest, error) {
	for {
		res, err := sess.requestOp(ctx, progress, req, true, path, body)
		if !errors.Is(err, errNotNow) || ctxsleep.For(ctx, time.Second) != nil {
			return res, err
		}
	}
}
