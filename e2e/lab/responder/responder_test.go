package responder_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/lab/responder"
	"github.com/zdt-project/zdt/replication/postgres/pgtest"
)

// The responder answers with its site and writes each write request into
// the database, making its table on first use; without a database it
// refuses writes; bad requests and a bad URL get clear errors.
func TestResponder(t *testing.T) {
	g := pgtest.Start(t, 1, pgtest.Options{})
	srv, err := responder.New("b", g.Members[0].ConnString, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := serve(t, srv)

	if got := do(t, http.MethodGet, base+"/site", http.StatusOK); got != "b" {
		t.Errorf("GET /site = %q; want b", got)
	}
	for seq, want := range []string{"b 1", "b 2"} {
		if got := do(t, http.MethodPost, base+"/write?client=c1&seq="+string(rune('1'+seq)), http.StatusOK); got != want {
			t.Errorf("write %d = %q; want %q", seq+1, got, want)
		}
	}
	ctx := context.Background()
	var n int
	if err := g.Members[0].Connect(ctx).QueryRow(ctx, `SELECT count(*) FROM `+responder.Table+` WHERE client = 'c1' AND site = 'b'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows of c1: %d, %v; want 2", n, err)
	}
	if got := do(t, http.MethodPost, base+"/write?client=c1", http.StatusBadRequest); !strings.Contains(got, "seq") {
		t.Errorf("a write without seq: %q; want it to say what is missing", got)
	}

	bare, err := responder.New("c", "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if got := do(t, http.MethodPost, serve(t, bare)+"/write?client=c1&seq=1", http.StatusServiceUnavailable); !strings.Contains(got, "no database") {
		t.Errorf("a write without a database: %q", got)
	}
	if _, err := responder.New("c", "postgres://zdt:secret@[::1", zap.NewNop()); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("a bad URL: %v; want an error without the password", err)
	}
}

func serve(t *testing.T, srv *responder.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + l.Addr().String()
}

func do(t *testing.T, method, url string, want int) string {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("%s %s: %s %s; want status %d", method, url, resp.Status, body, want)
	}
	return strings.TrimSpace(string(body))
}
