package controller

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/cmd/zdt/internal/api"
	"github.com/zdt-project/zdt/cmd/zdt/internal/dashboard"
	"github.com/zdt-project/zdt/site"
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
	return mux
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
