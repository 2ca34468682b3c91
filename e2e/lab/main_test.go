package lab

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeEnv makes the test binary a fake controller: the lab's tests start
// this binary as their "zdt". Its value is a mode, optionally overridden per
// site: "up", "joining", "die", "stubborn" (ignores SIGTERM), for example
// "up,b=die".
const fakeEnv = "ZDT_LAB_FAKE_CONTROLLER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		if len(os.Args) > 1 && os.Args[1] == "observer" {
			os.Exit(fakeObserver(mode))
		}
		os.Exit(fakeController(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeController stands in for `zdt controller`: it answers /healthz on the
// site's API address like the real one, until it is killed.
func fakeController(modes string, args []string) int {
	configPath, site := flagValue(args, "--config"), flagValue(args, "--site")
	mode := siteMode(modes, site)
	fmt.Printf("fake controller %s: mode %s\n", site, mode)
	switch mode {
	case "die":
		fmt.Fprintln(os.Stderr, "fake: cannot open the etcd data")
		return 3
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	l, err := Open(filepath.Dir(configPath), Options{Binary: "unused"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := l.Site(site)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h := Health{Site: site, State: "up", Coordinator: l.SiteNames()[0]}
	status := http.StatusOK
	if mode == "joining" {
		h, status = Health{Site: site, State: "joining"}, http.StatusServiceUnavailable
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(h)
	})
	srv := &http.Server{Addr: s.API, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	dir := filepath.Dir(configPath)
	err = srv.ListenAndServeTLS(filepath.Join(dir, certPath(site)), filepath.Join(dir, keyPath(site))) // until killed
	fmt.Fprintln(os.Stderr, "fake:", err)
	return 1
}

// fakeObserver stands in for `zdt observer`: it runs until it is told to
// stop, or dies at once in mode "die" for site "observer".
func fakeObserver(modes string) int {
	mode := siteMode(modes, "observer")
	fmt.Printf("fake observer: mode %s\n", mode)
	stop := make(chan os.Signal, 1)
	switch mode {
	case "die":
		fmt.Fprintln(os.Stderr, "fake observer: cannot listen")
		return 3
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(stop, syscall.SIGINT)
	default:
		signal.Notify(stop, syscall.SIGTERM)
	}
	<-stop
	return 0
}

func siteMode(modes, site string) string {
	parts := strings.Split(modes, ",")
	mode := parts[0]
	for _, p := range parts[1:] {
		if s, m, ok := strings.Cut(p, "="); ok && s == site {
			mode = m
		}
	}
	return mode
}

// testTopology is the default lab moved to 127.0.<net>.10-13, so tests
// that run fake controllers do not collide with each other or with a lab,
// and without PostgreSQL servers, which fake controllers would not drive.
func testTopology(net byte) Topology {
	t := DefaultTopology()
	for i := range t.Sites {
		t.Sites[i].IP = netip.AddrFrom4([4]byte{127, 0, net, byte(11 + i)})
	}
	bgp := *t.BGP
	bgp.ObserverListen = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, net, 10}), bgp.ObserverListen.Port())
	t.BGP = &bgp
	return t.WithoutPostgres()
}
