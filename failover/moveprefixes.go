package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// StepMovePrefixes moves the prefixes of the services a planned op moved,
// make-before-break, each phase driven by what the route observer (or,
// for a prefix it does not see, the sites' reports) shows: the new site
// announces to beat the old one once its member is promoted (the step runs
// after await-primary); once the new path leads the upstream, the old site
// steps back to its standby rank; once that raise is seen, the move is
// over. The phases live in each service's move record, which every site's
// BGP announcer reads; the step is done when every move is.
const StepMovePrefixes = "move-prefixes"

// movePrefixesStep advances the move of each service this op moved, a phase
// at a time, as the upstream shows the last one in place.
func movePrefixesStep(ctx context.Context, r *run, st *site.Step) stepResult {
	snap, upstream, err := r.c.state(ctx)
	if err != nil {
		return stepResult{kind: stepRetry, err: err}
	}
	cfg := r.c.cfg.Cluster
	var pending []string
	n := 0
	for _, name := range strings.Split(st.Params["services"], ",") {
		svc, ok := cfg.Service(name)
		a, assigned := snap.Assignments[name]
		if !ok || !assigned || a.Op != r.op.ID || len(svc.Prefixes) == 0 {
			continue
		}
		mv, recorded := snap.Moves[name]
		if !recorded || !mv.Of(a) {
			// No move record (the services went back to the old site, or
			// the assignment was written without one): the sites move the
			// prefixes on their own; wait until they lead there.
			m, p := prefixesPending(cfg, snap, upstream, r.op.ID, []string{name})
			n, pending = n+m, append(pending, p...)
			continue
		}
		n++
		for range 3 { // at most prepare → announce → release → done
			next, why := nextMovePhase(cfg, snap, upstream, svc, mv)
			if next == mv.Phase {
				if why != "" {
					pending = append(pending, fmt.Sprintf("service %s (%s): %s", name, mv.Phase, why))
				}
				break
			}
			if err := r.c.cfg.Store.SetMovePhase(ctx, r.g, &mv, next, r.c.now()); err != nil {
				if errors.Is(err, site.ErrConflict) {
					err = fmt.Errorf("%w: the move record of service %s changed meanwhile", err, name)
				}
				return stepResult{kind: stepRetry, err: err}
			}
			r.c.event(ctx, "move-phase", r.op.ID, name, fmt.Sprintf("service %s: the prefixes' move from site %s to site %s is in phase %s", name, mv.From, mv.To, next))
		}
	}
	if n == 0 {
		return stepResult{kind: stepSkipped, detail: "no prefix moved by this op"}
	}
	return r.awaited(st, "the prefixes to move make-before-break", someOf(pending),
		fmt.Sprintf("the prefixes of %s moved make-before-break", st.Params["services"]))
}

// nextMovePhase is the phase a planned move of svc goes to now, and, while
// it stays, what it waits for. A new site without a BGP speaker has nothing
// to move.
func nextMovePhase(cfg *config.Cluster, snap *site.Snapshot, upstream map[string]site.UpstreamRoute, svc config.Service, mv site.Move) (site.MovePhase, string) {
	if s, ok := cfg.Site(mv.To); !ok || s.BGP == nil {
		return site.MoveDone, ""
	}
	switch mv.Phase {
	case site.MovePrepare:
		return site.MoveAnnounce, ""
	case site.MoveAnnounce:
		var why []string
		for _, p := range svc.Prefixes {
			if w := newPathNotThere(snap, upstream, cfg.BGP.Headroom, svc.Name, p.String(), mv.From, mv.To); w != "" {
				why = append(why, w)
			}
		}
		if len(why) == 0 {
			return site.MoveRelease, ""
		}
		return mv.Phase, "waiting for the new path: " + strings.Join(why, "; ")
	case site.MoveRelease:
		var why []string
		for _, p := range svc.Prefixes {
			if w := notRaised(snap, upstream, cfg.BGP.Headroom, svc.Name, p.String(), mv.From, mv.To); w != "" {
				why = append(why, w)
			}
		}
		if len(why) == 0 {
			return site.MoveDone, ""
		}
		return mv.Phase, "waiting for the old site to step back: " + strings.Join(why, "; ")
	}
	return mv.Phase, ""
}

// newPathNotThere says why the new site's move-in path for the prefix is
// not in place at the upstream yet, "" when it is. With an observer
// record, the best path must lead to the new site and be shorter than the
// old site's: the new site announces a rung below the headroom the old one
// holds. A path of the new site that only ties with the old one is not its
// move-in announcement but a stale one: after a failover from the new site
// and its quick return, the upstream may still hold the path it announced
// at the headroom before it went dark, on a session whose hold time has not
// run out yet. Releasing the old site on that path would leave the traffic
// with no site to serve it once the stale session ends. Without a record,
// the new site's report decides (prefixNotThere).
func newPathNotThere(snap *site.Snapshot, upstream map[string]site.UpstreamRoute, headroom int, service, prefix, from, to string) string {
	if w := prefixNotThere(snap, upstream, headroom, service, prefix, to); w != "" {
		return w
	}
	rec, ok := upstream[prefix]
	if !ok {
		return ""
	}
	old, ok := shortestPath(rec, from)
	if !ok {
		return ""
	}
	if mine, ok := shortestPath(rec, to); ok && mine >= old {
		return fmt.Sprintf("%s: the observer's path from site %s (%d AS hops) is not shorter than site %s's (%d): not yet the one announced for the move",
			prefix, to, mine, from, old)
	}
	return ""
}

// shortestPath is the length of the shortest AS path the observer holds
// from the site for the record's prefix (false: none).
func shortestPath(rec site.UpstreamRoute, from string) (int, bool) {
	n, ok := 0, false
	for _, p := range rec.Paths {
		if p.Site == from && (!ok || len(p.ASPath) < n) {
			n, ok = len(p.ASPath), true
		}
	}
	return n, ok
}

// notRaised says why the old site's path for the prefix is not yet seen
// behind the new one, "" when it is (or is gone). With an observer record:
// the old path is at least two AS hops longer than the new site's (the new
// site stays a rung below the headroom until the move ends; the old one
// goes to a standby rank above it). Without one: the old site's report
// announces the prefix above the headroom, or not at all.
func notRaised(snap *site.Snapshot, upstream map[string]site.UpstreamRoute, headroom int, service, prefix, from, to string) string {
	if rec, ok := upstream[prefix]; ok {
		i := slices.IndexFunc(rec.Paths, func(p site.UpstreamPath) bool { return p.Site == from })
		if i < 0 {
			return ""
		}
		j := slices.IndexFunc(rec.Paths, func(p site.UpstreamPath) bool { return p.Site == to })
		if j >= 0 && len(rec.Paths[i].ASPath) >= len(rec.Paths[j].ASPath)+2 {
			return ""
		}
		return fmt.Sprintf("%s: the observer sees site %s's path at %d AS hops", prefix, from, len(rec.Paths[i].ASPath))
	}
	if an, ok := snap.Announcement(from, service, prefix); ok && an.Prepends <= headroom {
		return fmt.Sprintf("%s: site %s announces it with %d prepends", prefix, from, an.Prepends)
	}
	return ""
}
