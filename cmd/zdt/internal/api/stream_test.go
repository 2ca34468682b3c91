package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
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
	store, base := serveAPI(t)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/events/stream", nil)
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

// serveAPI serves the API of a one-member etcd cluster on loopback, with a
// viewer whose token is "tok", heartbeats every 50ms and a ReadTimeout of
// 200ms; it returns the store and the API's base URL.
func serveAPI(t *testing.T) (*site.Store, string) {
	t.Helper()
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
	return store, "http://" + ln.Addr().String() + Prefix
}

// TestStreamOpFromCreated: an op's stream with ?from=created starts with
// each version the op had, in order, though the op ended before the
// stream opened; without it, the op as it stands; after a Last-Event-ID,
// the versions after it. A wrong from is refused, saying what it wants.
func TestStreamOpFromCreated(t *testing.T) {
	store, base := serveAPI(t)
	ctx := t.Context()
	op := site.Op{ID: "20261203T000000.000Z-failover-abcdef", Kind: "failover", Outcome: site.OpRunning,
		Created: time.Now().UTC(), Steps: []site.Step{{Name: "fence", Status: site.StepPending}}}
	var revs []int64
	for _, step := range []site.StepStatus{site.StepPending, site.StepRunning, site.StepDone} {
		op.Steps[0].Status = step
		if step == site.StepDone {
			op.Outcome = site.OpSucceeded
		}
		b, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := store.Client().Put(ctx, store.Keys().Op(op.ID), string(b))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, resp.Header.Revision)
	}

	stream := func(query, lastID string) (int, []string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, "GET", base+"/ops/"+op.ID+"/stream"+query, nil)
		req.Header.Set("Authorization", "Bearer tok")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, []string{strings.TrimSpace(string(b))}
		}
		var got []string
		var name, id string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			switch l := sc.Text(); {
			case strings.HasPrefix(l, "event: "):
				name = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "id: "):
				id = strings.TrimPrefix(l, "id: ")
			case strings.HasPrefix(l, "data: ") && name == "op":
				var o site.Op
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &o); err != nil {
					t.Fatalf("op event %q: %v", l, err)
				}
				got = append(got, fmt.Sprintf("%s@%s", o.Steps[0].Status, id))
			case strings.HasPrefix(l, "data: ") && name == "end":
				return resp.StatusCode, got
			}
		}
		t.Fatalf("the stream%s ended without an end event (%v), having sent %v", query, sc.Err(), got)
		return 0, nil
	}
	versions := func(from int) string {
		var v []string
		for i, st := range []site.StepStatus{site.StepPending, site.StepRunning, site.StepDone}[from:] {
			v = append(v, fmt.Sprintf("%s@%d", st, revs[from+i]))
		}
		return fmt.Sprint(v)
	}
	if code, got := stream("?from=created", ""); code != 200 || fmt.Sprint(got) != versions(0) {
		t.Errorf("?from=created: %d %v; want 200 %s", code, got, versions(0))
	}
	if code, got := stream("", ""); code != 200 || fmt.Sprint(got) != versions(2) {
		t.Errorf("no from: %d %v; want 200 %s", code, got, versions(2))
	}
	if code, got := stream("?from=created", strconv.FormatInt(revs[0], 10)); code != 200 || fmt.Sprint(got) != versions(1) {
		t.Errorf("Last-Event-ID %d: %d %v; want 200 %s", revs[0], code, got, versions(1))
	}
	if code, got := stream("?from=start", ""); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(got), `from \"start\": want created`) {
		t.Errorf("?from=start: %d %v; want 400 saying what from wants", code, got)
	}
}
