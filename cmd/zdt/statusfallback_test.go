package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/cmd/zdt/internal/controller"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestStatusWithoutEtcd: when etcd does not answer, zdt status asks each
// site's controller instead, says which fail static and since when, shows
// a silent controller as such, and exits non-zero, in both formats.
func TestStatusWithoutEtcd(t *testing.T) {
	since := time.Now().Add(-42 * time.Second)
	serve := func(h controller.Health) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(h)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	static := "FAIL STATIC: etcd has no working majority: no leader is followed by a majority of the members"
	a := serve(controller.Health{Site: "a", State: site.ControllerUp, FailStatic: static, FailStaticSince: &since, LeaseRemainingMS: 0})
	b := serve(controller.Health{Site: "b", State: site.ControllerUp, FailStatic: static, FailStaticSince: &since})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := ln.Addr().String()
	_ = ln.Close() // nothing listens: site c's controller is down
	hole := sitetest.Blackhole(t)
	cfg := fmt.Sprintf(`cluster: t
etcd:
  endpoints: ["http://%s"]
  dial_timeout: 200ms
sites:
  - {name: a, api: "%s", etcd: {client_url: "http://127.0.0.1:2001", peer_url: "http://127.0.0.1:3001"}}
  - {name: b, api: "%s", etcd: {client_url: "http://127.0.0.1:2002", peer_url: "http://127.0.0.1:3002"}}
  - {name: c, api: "%s", etcd: {client_url: "http://127.0.0.1:2003", peer_url: "http://127.0.0.1:3003"}}
services:
  - {name: web, sites: [a, b], prefixes: [203.0.113.0/24]}
`, hole, a, b, c)
	path := filepath.Join(t.TempDir(), "zdt.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := runZDT(t, "status", "--config", path, "--timeout", "500ms")
	t.Logf("zdt status:\n%s", out)
	if err == nil {
		t.Errorf("zdt status exited 0 without etcd:\n%s", out)
	}
	for _, want := range []string{
		"etcd does not answer:",
		"FAIL STATIC at a, b: etcd has failed for every site",
		"etcd has no working majority: no leader is followed by a majority of the members",
		"(no answer)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("zdt status without etcd does not say %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`since \S+ \(4\ds\)`).MatchString(out) {
		t.Errorf("zdt status does not say how long the sites have failed static:\n%s", out)
	}

	out, err = runZDT(t, "status", "--config", path, "--timeout", "500ms", "-o", "json")
	if err == nil {
		t.Error("zdt status -o json exited 0 without etcd")
	}
	var cs controllersStatus
	if jerr := json.Unmarshal([]byte(out), &cs); jerr != nil {
		t.Fatalf("zdt status -o json without etcd: %v\n%s", jerr, out)
	}
	if got := cs.failingStatic(); strings.Join(got, ",") != "a,b" || cs.Etcd == "" || cs.Sites[2].Error == "" {
		t.Errorf("json without etcd: %+v", cs)
	}
}

// TestStatusAtTheQuota: etcd answers reads at its quota, so zdt status
// shows the cluster as usual, but says loudly that etcd refuses writes and
// which sites fail static (their controllers say so).
func TestStatusAtTheQuota(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	since := time.Now()
	static := "FAIL STATIC: etcd refuses writes (its database is at the quota)"
	apis := map[string]string{}
	for _, s := range cl.Config.Sites {
		h := controller.Health{Site: s.Name, State: site.ControllerUp, FailStatic: static, FailStaticSince: &since}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(h) }))
		t.Cleanup(srv.Close)
		apis[s.Name] = strings.TrimPrefix(srv.URL, "http://")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: %s\nsites:\n", cl.Config.Name)
	for _, s := range cl.Config.Sites {
		fmt.Fprintf(&b, "  - {name: %s, api: %q, etcd: {client_url: %q, peer_url: %q}}\n", s.Name, apis[s.Name], s.Etcd.ClientURL, s.Etcd.PeerURL)
	}
	b.WriteString("services:\n  - {name: web, sites: [a, b, c], prefixes: [203.0.113.0/26]}\n")
	path := filepath.Join(t.TempDir(), "zdt.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetNoSpace(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	// No controller runs: web is served nowhere, and the exit status says
	// so.
	out, err := runZDT(t, "status", "--config", path)
	if exitCode(err) != exitDown || !strings.Contains(err.Error(), "etcd alarm NOSPACE") || !strings.Contains(err.Error(), "failing static at a, b, c") {
		t.Fatalf("zdt status at the quota: %v (exit %d), want down (exit %d), naming the alarm and fail static\n%s", err, exitCode(err), exitDown, out)
	}
	for _, want := range []string{"ETCD ALARM NOSPACE", "refuses every write", "FAIL STATIC at a, b, c"} {
		if !strings.Contains(out, want) {
			t.Errorf("zdt status at the quota does not say %q:\n%s", want, out)
		}
	}
	if err := cl.SetNoSpace(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if out, err := runZDT(t, "status", "--config", path); exitCode(err) != exitDown || strings.Contains(out, "ETCD ALARM") || strings.Contains(err.Error(), "NOSPACE") {
		t.Errorf("zdt status after the alarm was cleared: %v\n%s", err, out)
	}
}
