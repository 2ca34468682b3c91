package api

import (
	"bufio"
	"crypto/sha256"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/apiauth"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// TestStreamOutlivesReadTimeout: an event stream served by a server with a
// short ReadTimeout (the controller's bounds slow request bodies) stays
// open past it, with heartbeats, and carries an event written later.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	cl := sitetest.New(t, sitetest.Options{})
	cfg := cl.Config
	cfg.API.Identities = []config.Identity{{Name: "v", Role: config.RoleViewer, TokenSHA256: sha256.Sum256([]byte("tok")), HasToken: true}}
	auth, err := apiauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := site.NewStore(cl.Client(), cfg.Name)
	s := New(Config{Cluster: cfg, Site: "a", Store: store, Auth: auth, Heartbeat: 50 * time.Millisecond})
	mux := http.NewServeMux()
	s.Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second, ReadTimeout: 200 * time.Millisecond}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+ln.Addr().String()+Prefix+"/events/stream", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// Heartbeats for ten times the ReadTimeout.
	beats := 0
	deadline := time.After(10 * time.Second)
	for beats < 20 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended after %d heartbeats", beats)
			}
			if l == ": heartbeat" {
				beats++
			}
		case <-deadline:
			t.Fatalf("%d heartbeats in 10s", beats)
		}
	}
	if err := store.AppendEvent(t.Context(), site.Event{At: time.Now(), Kind: "test", Message: "later"}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended before the event")
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"message":"later"`) {
				return
			}
		case <-deadline:
			t.Fatal("no event in 10s")
		}
	}
}
