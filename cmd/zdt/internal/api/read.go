package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zdt-project/zdt/cmd/zdt/internal/statustable"
	"github.com/zdt-project/zdt/runbooks"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
)

// status reads the cluster's status as `zdt status -o json` has it.
func (s *Server) status(r *http.Request) (site.Status, error) {
	ctx, cancel := s.readCtx(r)
	defer cancel()
	return s.cfg.Store.StatusFrom(ctx, s.cfg.Cluster, s.cfg.View)
}

// serveView answers one part of the status.
func serveView[T any](s *Server, w http.ResponseWriter, r *http.Request, part func(site.Status) T) error {
	st, err := s.status(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, part(st))
	return nil
}

// StatusTable is the answer of /status?format=table: the table zdt status
// shows, and the whole cluster's health, whatever the filters.
type StatusTable struct {
	Health site.Health `json:"health"`
	Table  string      `json:"table"`
}

// LimitedStatus is the answer of /status?limit=N: the status with its
// long lists cut to N items each, and what the cut left out.
type LimitedStatus struct {
	site.Status
	Shown statustable.Shown `json:"shown"`
}

// serveStatus answers the status as zdt status -o json has it, cut by
// ?service= and ?site= (each a comma-separated list, or given more than
// once) and ?problems=true as zdt status's flags cut it, and with
// ?limit=N (0 for all) its long lists cut to N items each, those with a
// problem first: what a dashboard can take every few seconds. With
// ?format=table, the table zdt status shows instead (?all=true lists every
// item, summarising no section), a few KB where the whole status of a
// large cluster is megabytes.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	view, table, err := s.statusQuery(r.URL.Query())
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		return err
	}
	if limit > 0 && table {
		return errorf(http.StatusBadRequest, "limit=%d: the table summarises long sections itself; limit is for format=json", limit)
	}
	st, err := s.status(r)
	if err != nil {
		return err
	}
	switch {
	case limit > 0:
		cut, shown := statustable.Limit(view.Filter.Cut(st), limit)
		WriteJSON(w, http.StatusOK, LimitedStatus{Status: cut, Shown: shown})
		return nil
	case !table:
		WriteJSON(w, http.StatusOK, view.Filter.Cut(st))
		return nil
	}
	var b strings.Builder
	if err := statustable.Write(&b, st, view); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, StatusTable{Health: st.Health, Table: b.String()})
	return nil
}

// statusQuery reads /status's query: the filters, all, and whether the
// format is the table.
func (s *Server) statusQuery(q url.Values) (view statustable.View, table bool, err error) {
	flag := func(key string) (bool, error) {
		v := q.Get(key)
		if v == "" {
			return false, nil
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return false, errorf(http.StatusBadRequest, "%s=%q: want true or false", key, v)
		}
		return on, nil
	}
	problems, err := flag("problems")
	if err != nil {
		return view, false, err
	}
	if view.All, err = flag("all"); err != nil {
		return view, false, err
	}
	switch f := q.Get("format"); f {
	case "", "json":
	case "table":
		table = true
	default:
		return view, false, errorf(http.StatusBadRequest, "format=%q: want json or table", f)
	}
	view.Filter, err = statustable.NewFilter(s.cfg.Cluster, queryList(q, "service"), queryList(q, "site"), problems)
	return view, table, unknownName(err)
}

func (s *Server) serveSites(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	return serveView(s, w, r, func(st site.Status) []site.SiteStatus { return st.Sites })
}

func (s *Server) serveServices(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	return serveView(s, w, r, func(st site.Status) []site.ServiceStatus { return st.Services })
}

func (s *Server) serveReplication(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	return serveView(s, w, r, func(st site.Status) []site.GroupStatus { return st.Replication })
}

// serveGuests answers the guests, filtered by ?site= (where they run or
// are placed), ?service= and ?tier=.
func (s *Server) serveGuests(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	q := r.URL.Query()
	siteName, service, tier := q.Get("site"), q.Get("service"), q.Get("tier")
	if err := s.checkNames(siteName, service); err != nil {
		return err
	}
	onSite := func(g site.GuestStatus) bool {
		if siteName == "" || g.Site == siteName {
			return true
		}
		me, _ := s.cfg.Cluster.Site(siteName)
		return slices.ContainsFunc(me.Hosts, func(h config.Host) bool { return slices.Contains(g.RunningOn, h.Name) })
	}
	return serveView(s, w, r, func(st site.Status) []site.GuestStatus {
		out := []site.GuestStatus{}
		for _, g := range st.Guests {
			if onSite(g) &&
				(service == "" || g.Service == service) && (tier == "" || g.Tier == tier) {
				out = append(out, g)
			}
		}
		return out
	})
}

// Prefixes is the answer of /prefixes: what the sites announce, their BGP
// sessions, and what the upstream's routers chose (empty without an
// observer).
type Prefixes struct {
	Announced []site.AnnouncementStatus `json:"announced"`
	Peers     []site.PeerStatus         `json:"peers"`
	Upstream  []site.UpstreamStatus     `json:"upstream"`
}

func (s *Server) servePrefixes(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	return serveView(s, w, r, func(st site.Status) Prefixes {
		return Prefixes{Announced: nonNil(st.Announcements), Peers: nonNil(st.Peers), Upstream: nonNil(st.Upstream)}
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// checkNames refuses (400) a site or service the config does not have,
// saying which there are (among many, how many and those like it).
func (s *Server) checkNames(siteName, service string) error {
	var sites, services []string
	if siteName != "" {
		sites = []string{siteName}
	}
	if service != "" {
		services = []string{service}
	}
	_, err := statustable.NewFilter(s.cfg.Cluster, services, sites, false)
	return unknownName(err)
}

// unknownName makes a *statustable.NameError a 400 that names the name.
func unknownName(err error) error {
	if nameErr := (*statustable.NameError)(nil); errors.As(err, &nameErr) {
		return errorf(http.StatusBadRequest, "%s %q: unknown %s (%s)", nameErr.Kind, nameErr.Name, nameErr.Kind, nameErr.Known)
	}
	return err
}

// OpList is the answer of /ops and /drills.
type OpList struct {
	Ops []site.OpSummary `json:"ops"`
	// Left counts the finished ops left out by the limit.
	Left int `json:"left"`
}

// serveOps answers the journal as `zdt ops list` shows it: the running ops
// and the newest ?limit= (default 20, 0 for all) finished ones, newest
// first, of ?kind= if given.
func (s *Server) serveOps(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	return s.serveOpList(w, r, func(*site.Op) bool { return true })
}

// serveDrills answers the drills: ops of kind drill, and runbooks whose
// name ends in -drill.
func (s *Server) serveDrills(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	return s.serveOpList(w, r, func(op *site.Op) bool {
		return op.Kind == "drill" || strings.HasSuffix(op.Runbook, "-drill")
	})
}

func (s *Server) serveOpList(w http.ResponseWriter, r *http.Request, keep func(*site.Op) bool) error {
	limit, err := intParam(r, "limit", 20)
	if err != nil {
		return err
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	journal, err := s.cfg.Store.Ops(ctx)
	if err != nil {
		return err
	}
	journal = slices.DeleteFunc(journal, func(op *site.Op) bool { return !keep(op) })
	shown, left := site.ListOps(journal, r.URL.Query().Get("kind"), limit)
	now := time.Now()
	res := OpList{Ops: []site.OpSummary{}, Left: left}
	for _, op := range shown {
		res.Ops = append(res.Ops, site.Summarize(op, now))
	}
	WriteJSON(w, http.StatusOK, res)
	return nil
}

// intParam reads a non-negative integer query parameter.
func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "%s=%q: want a whole number, 0 or more", name, v)
	}
	return n, nil
}

// opByID reads an op by its id or a unique prefix of it, as the CLI does.
func (s *Server) opByID(r *http.Request) (*site.Op, error) {
	ctx, cancel := s.readCtx(r)
	defer cancel()
	ids, err := s.cfg.Store.OpIDs(ctx)
	if err != nil {
		return nil, err
	}
	id, err := site.ResolveOpID(ids, r.PathValue("id"))
	var idErr *site.OpIDError
	switch {
	case errors.As(err, &idErr) && len(idErr.Matches) > 1:
		return nil, errorf(http.StatusBadRequest, "%v", err)
	case err != nil:
		return nil, errorf(http.StatusNotFound, "%v", err)
	}
	return s.cfg.Store.Op(ctx, id)
}

func (s *Server) serveOp(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	op, err := s.opByID(r)
	if err != nil {
		return err
	}
	w.Header().Set(RevisionHeader, strconv.FormatInt(op.Rev, 10))
	WriteJSON(w, http.StatusOK, op)
	return nil
}

// RevisionHeader carries the etcd revision an answer was read at: of
// /events, the revision to follow the log from (GET
// /events/stream?after=) so that no event is missed; of /ops/{id}, the
// revision the op was last written at.
const RevisionHeader = "Zdt-Revision"

// serveEvents answers the newest ?limit= (default 100, 0 for all) events
// that match the filters (eventFilter), oldest first, and the revision
// they were read at in RevisionHeader.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, _ apiauth.Identity) error {
	limit, err := intParam(r, "limit", 100)
	if err != nil {
		return err
	}
	f, err := s.eventFilter(r)
	if err != nil {
		return err
	}
	if f.Since, err = site.ParseSince(r.URL.Query().Get("since"), time.Now()); err != nil {
		return errorf(http.StatusBadRequest, "since=%q: %v", r.URL.Query().Get("since"), err)
	}
	ctx, cancel := s.readCtx(r)
	defer cancel()
	events, rev, err := s.cfg.Store.EventsSince(ctx, f.Since, limit, f.Match)
	if err != nil {
		return err
	}
	w.Header().Set(RevisionHeader, strconv.FormatInt(rev, 10))
	WriteJSON(w, http.StatusOK, nonNil(events))
	return nil
}

// eventFilter reads the filters of /events and /events/stream: ?site=,
// ?service= and ?kind= (op-* for every op- kind), each given more than
// once or as a comma-separated list.
func (s *Server) eventFilter(r *http.Request) (site.EventFilter, error) {
	q := r.URL.Query()
	f := site.EventFilter{Sites: queryList(q, "site"), Services: queryList(q, "service"), Kinds: queryList(q, "kind")}
	for _, name := range f.Sites {
		if err := s.checkNames(name, ""); err != nil {
			return f, err
		}
	}
	for _, name := range f.Services {
		if err := s.checkNames("", name); err != nil {
			return f, err
		}
	}
	for _, k := range f.Kinds {
		if err := site.CheckEventKind(k); err != nil {
			return f, errorf(http.StatusBadRequest, "kind=%q: %v", k, err)
		}
	}
	return f, nil
}

// RunbookInfo is one shipped runbook, as /runbooks lists it.
type RunbookInfo struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Params      []ParamInfo `json:"params"`
}

// ParamInfo is one parameter of a runbook.
type ParamInfo struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required"`
	Default     string `json:"default,omitempty"`
}

func (s *Server) serveRunbooks(w http.ResponseWriter, _ *http.Request, _ apiauth.Identity) error {
	shipped, err := runbooks.Shipped()
	if err != nil {
		return err
	}
	out := []RunbookInfo{}
	for _, rb := range shipped {
		info := RunbookInfo{Name: rb.Name, Description: rb.Description, Params: []ParamInfo{}}
		for _, p := range rb.Params {
			info.Params = append(info.Params, ParamInfo{Name: p.Name, Type: string(p.Type), Description: p.Description, Required: p.Required, Default: p.Default})
		}
		out = append(out, info)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// queryList is a query parameter's values, each given more than once or as
// a comma-separated list, without blanks.
func queryList(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}
