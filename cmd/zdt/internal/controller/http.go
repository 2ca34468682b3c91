package controller

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/cmd/zdt/internal/dashboard"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// Health is the body of /healthz.
type Health struct {
	Site  string               `json:"site"`
	State site.ControllerState `json:"state"`
	// Reason says why the site is in its state.
	Reason string `json:"reason,omitempty"`
	// Coordinator is the site whose controller coordinates, "" when unknown.
	Coordinator string `json:"coordinator"`
	// LeaseRemainingMS is the time before the lease can expire at the
	// majority.
	LeaseRemainingMS int64 `json:"lease_remaining_ms"`
	// FailStatic, when set, says why the site serves on although it
	// cannot renew its lease: etcd has failed for every site. Since is
	// when that began.
	FailStatic      string     `json:"fail_static,omitempty"`
	FailStaticSince *time.Time `json:"fail_static_since,omitempty"`
}

// handler serves /healthz, /metrics and the dashboard's assets (package
// dashboard) to anyone, and the API (package api) to the identities of the
// config.
func (c *Controller) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", c.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.cfg.Registry, promhttp.HandlerOpts{}))
	c.api.Register(mux)
	dashboard.Register(mux)
	if c.cfg.Profiles {
		mux.Handle("GET /debug/pprof/", c.api.Guard(config.RoleAdmin, "the Go profiles", profiles()))
	}
	return mux
}

// profiles serves net/http/pprof's handlers under /debug/pprof/: the
// index and the named profiles (heap, goroutine, ...), and the CPU
// profile, the trace, the command line and the symbols.
func profiles() http.Handler {
	special := map[string]http.HandlerFunc{
		"cmdline": pprof.Cmdline,
		"profile": pprof.Profile,
		"symbol":  pprof.Symbol,
		"trace":   pprof.Trace,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := special[strings.TrimPrefix(r.URL.Path, "/debug/pprof/")]; ok {
			h(w, r)
			return
		}
		pprof.Index(w, r)
	})
}

// serveHealth answers 200 while the site is up (holds its lease, not
// fenced), 503 otherwise, with the state and why.
func (c *Controller) serveHealth(w http.ResponseWriter, r *http.Request) {
	info := c.member.Info()
	h := Health{Site: c.site.Name, State: info.State, Reason: info.Reason, FailStatic: info.FailStatic}
	if info.FailStatic != "" {
		since := info.FailStaticSince
		h.FailStatic = "FAIL STATIC: " + info.FailStatic
		h.FailStaticSince = &since
	}
	if !info.LeaseExpiry.IsZero() {
		h.LeaseRemainingMS = max(0, time.Until(info.LeaseExpiry).Milliseconds())
	}
	h.Coordinator = c.coordinator(r.Context())
	code := http.StatusOK
	if info.State != site.ControllerUp {
		code = http.StatusServiceUnavailable
	}
	api.WriteJSON(w, code, h)
}

func (c *Controller) coordinator(ctx context.Context) string {
	if c.Leading() {
		return c.site.Name
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	resp, err := c.store.Client().Get(ctx, c.store.Keys().Election(), clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}
