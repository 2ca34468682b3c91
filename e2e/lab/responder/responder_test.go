package responder_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/pkg/v3/proxy"
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

// The responder writes to a primary a site away: every chunk between it
// and the database is held 100 ms each way, so a new connection takes a
// second or so. Its writes are acknowledged; with a bound of 300 ms on a
// whole connection, every new connection failed, and the test bed's soak
// lost its client's writes for good once the pool renewed its connections.
func TestResponderRemotePrimary(t *testing.T) {
	g := pgtest.Start(t, 1, pgtest.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	from := l.Addr().String()
	l.Close()
	p := proxy.NewServer(proxy.ServerConfig{Logger: zap.NewNop(),
		From: url.URL{Scheme: "tcp", Host: from}, To: url.URL{Scheme: "tcp", Host: fmt.Sprintf("127.0.0.1:%d", g.Members[0].Port)}})
	select {
	case <-p.Ready():
	case err := <-p.Error():
		t.Fatalf("delay proxy: %v", err)
	}
	defer p.Close()
	p.DelayTx(100*time.Millisecond, 0)
	p.DelayRx(100*time.Millisecond, 0)
	host, port, _ := net.SplitHostPort(from)
	conn := strings.Replace(g.Members[0].ConnString, fmt.Sprintf("host=127.0.0.1 port=%d", g.Members[0].Port), "host="+host+" port="+port, 1)
	srv, err := responder.New("a", conn, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := serve(t, srv)
	// The first writes may come before the table is made; a handful of
	// tries, each bounded by the responder's own write timeout.
	var got string
	for seq := 1; seq <= 10 && !strings.HasPrefix(got, "a "); seq++ {
		got = post(t, fmt.Sprintf("%s/write?client=remote&seq=%d", base, seq))
	}
	if !strings.HasPrefix(got, "a ") {
		t.Fatalf("writes through a 100 ms link are not acknowledged; the last: %q", got)
	}
}

// post sends a write request and returns the answer, whatever its status.
func post(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
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
