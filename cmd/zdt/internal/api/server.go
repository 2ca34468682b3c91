// Package api is the controllers' HTTP API, version 1 (/api/v1): the
// cluster's state (status, sites, services, replication, guests, prefixes,
// ops, events, drills), live streams of ops and events, and the operations
// people ask for (switchover, failover, failback, evacuation, runbooks,
// approvals, aborts, fence confirmations).
//
// Every site's controller serves the same answers: they are read from etcd,
// and an operation is planned and journaled exactly as the CLI does it, for
// the coordinator to run. Each request is authenticated (package apiauth)
// and each route needs a role; every accepted operation is recorded in the
// op (its Who) and in the event log with the caller's identity.
//
// The routes are described in openapi.yaml, served at /api/v1/openapi.yaml;
// the tests check the handlers against it.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the API's OpenAPI document (YAML).
func OpenAPI() []byte { return openAPI }

// Config configures a Server.
type Config struct {
	Cluster *config.Cluster
	// Site is the site whose controller serves the API.
	Site  string
	Store *site.Store
	// View, when set, is the controller's view of the cluster's state:
	// the status is built from it instead of read and decoded anew.
	View *site.View
	Auth *apiauth.Authenticator
	Log  *zap.Logger
	// ReadTimeout bounds each read of etcd (default 5s).
	ReadTimeout time.Duration
	// Heartbeat is how often a quiet stream sends a comment, so that
	// proxies keep it open (default 15s).
	Heartbeat time.Duration
}

// Server serves the API.
type Server struct {
	cfg    Config
	routes []route
	// paths matches a request's path to a route's path whatever its
	// method, to answer 405 rather than 404.
	paths   *http.ServeMux
	methods map[string][]string
}

// route is one endpoint: its method and path (http.ServeMux pattern
// syntax, which is also OpenAPI's), the role it needs ("" for none), and
// its handler.
type route struct {
	method, path string
	role         config.Role
	handle       func(w http.ResponseWriter, r *http.Request, who apiauth.Identity) error
}

// New builds the server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	s := &Server{cfg: cfg, paths: http.NewServeMux(), methods: map[string][]string{}}
	s.routes = s.table()
	for _, rt := range s.routes {
		if _, ok := s.methods[rt.path]; !ok {
			s.paths.HandleFunc(rt.path, func(http.ResponseWriter, *http.Request) {})
		}
		s.methods[rt.path] = append(s.methods[rt.path], rt.method)
	}
	return s
}

func (s *Server) table() []route {
	v, op, adm := config.RoleViewer, config.RoleOperator, config.RoleAdmin
	return []route{
		{"GET", Prefix + "/openapi.yaml", "", s.serveOpenAPI},
		{"GET", Prefix + "/whoami", v, s.serveWhoami},
		{"GET", Prefix + "/status", v, s.serveStatus},
		{"GET", Prefix + "/sites", v, s.serveSites},
		{"GET", Prefix + "/services", v, s.serveServices},
		{"GET", Prefix + "/replication", v, s.serveReplication},
		{"GET", Prefix + "/guests", v, s.serveGuests},
		{"GET", Prefix + "/prefixes", v, s.servePrefixes},
		{"GET", Prefix + "/ops", v, s.serveOps},
		{"GET", Prefix + "/ops/{id}", v, s.serveOp},
		{"GET", Prefix + "/ops/{id}/stream", v, s.streamOp},
		{"GET", Prefix + "/events", v, s.serveEvents},
		{"GET", Prefix + "/events/stream", v, s.streamEvents},
		{"GET", Prefix + "/drills", v, s.serveDrills},
		{"GET", Prefix + "/runbooks", v, s.serveRunbooks},
		{"POST", Prefix + "/switchover", op, s.switchover},
		{"POST", Prefix + "/failover", adm, s.failover},
		{"POST", Prefix + "/failback", op, s.failback},
		{"POST", Prefix + "/evacuate", op, s.evacuate},
		{"POST", Prefix + "/undrain", op, s.undrain},
		{"POST", Prefix + "/runbooks/{name}/run", op, s.runRunbook},
		{"POST", Prefix + "/runbooks/run", op, s.runPostedRunbook},
		{"POST", Prefix + "/runbooks/{name}/plan", v, s.planRunbook},
		{"POST", Prefix + "/runbooks/plan", v, s.planPostedRunbook},
		{"POST", Prefix + "/ops/{id}/approve", op, s.approve},
		{"POST", Prefix + "/ops/{id}/abort", op, s.abort},
		{"POST", Prefix + "/sites/{site}/confirm-fence", adm, s.confirmFence},
		{"POST", Prefix + "/sites/{site}/drills", op, s.recordDrill},
	}
}

// Register mounts the API on mux.
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	mux.HandleFunc(Prefix+"/", s.notFound)
}

// Routes lists the API's routes as "METHOD PATH", for the tests.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.method + " " + rt.path
	}
	return out
}

// Guard serves h to the identities whose role allows need; what names it
// in a refusal. The controller uses it for what it serves beside the API
// (the Go profiles).
func (s *Server) Guard(need config.Role, what string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.cfg.Auth.Authenticate(r)
		if err == nil {
			err = apiauth.Authorize(id, need, what)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// wrap authenticates and authorizes a request, then runs the route; an
// error it returns is written as JSON with its status.
func (s *Server) wrap(rt route) http.Handler {
	what := rt.method + " " + strings.TrimPrefix(rt.path, Prefix)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var who apiauth.Identity
		if rt.role != "" {
			id, err := s.cfg.Auth.Authenticate(r)
			if err == nil {
				err = apiauth.Authorize(id, rt.role, what)
			}
			if err != nil {
				s.fail(w, r, err)
				return
			}
			who = id
		}
		if err := rt.handle(w, r, who); err != nil {
			s.fail(w, r, err)
		}
	})
}

// notFound answers a path under the API that no route has: 405 when the
// path exists with other methods, 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.paths.Handler(r); pattern != "" {
		allowed := strings.Join(s.methods[pattern], ", ")
		w.Header().Set("Allow", allowed)
		s.fail(w, r, errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allowed))
		return
	}
	s.fail(w, r, errorf(http.StatusNotFound, "%s: no such endpoint (see %s/openapi.yaml)", r.URL.Path, Prefix))
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
	// Blockers say why an operation may not run now (409).
	Blockers []string `json:"blockers,omitempty"`
}

// apiError is an error with the status to answer.
type apiError struct {
	status   int
	msg      string
	blockers []string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// fail writes err as JSON: its status if it carries one, 503 when etcd
// cannot answer, 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	body := Error{Error: err.Error()}
	status := http.StatusInternalServerError
	var ae *apiError
	var auth *apiauth.Error
	switch {
	case errors.As(err, &ae):
		status, body.Blockers = ae.status, ae.blockers
	case errors.As(err, &auth):
		status = auth.Status
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zdt"`)
		}
	case errors.Is(err, site.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded), site.Transient(err):
		status = http.StatusServiceUnavailable
		body.Error = fmt.Sprintf("etcd did not answer in time: %v (is a quorum of sites up?)", err)
	}
	if status >= 500 {
		s.cfg.Log.Warn("api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
	}
	WriteJSON(w, status, body)
}

// WriteJSON answers v as indented JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// decode reads a JSON body into v: unknown fields, trailing data and
// oversized bodies are refused with 400 saying what is wrong. An empty body
// is an empty object.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: want application/json", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading the body: %v", err)
	}
	if len(body) > maxBody {
		return errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", maxBody)
	}
	if strings.TrimSpace(string(body)) == "" {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return errorf(http.StatusBadRequest, "body is not valid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return errorf(http.StatusBadRequest, "body field %q: want %s, got %s", typ.Field, typ.Type, typ.Value)
		default:
			return errorf(http.StatusBadRequest, "body: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "body: more than one JSON value")
	}
	return nil
}

// readCtx bounds a read of etcd.
func (s *Server) readCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.ReadTimeout)
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ apiauth.Identity) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(openAPI)
	return err
}

func (s *Server) serveWhoami(w http.ResponseWriter, _ *http.Request, who apiauth.Identity) error {
	WriteJSON(w, http.StatusOK, who)
	return nil
}
