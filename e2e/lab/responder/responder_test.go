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

	"github.com/jackc/pgx/v5"
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
	t.Cleanup(func() { _ = p.Close() }) // after the responder's, whose sessions it carries
	p.DelayTx(100*time.Millisecond, 0)
	p.DelayRx(100*time.Millisecond, 0)
	host, port, _ := net.SplitHostPort(from)
	conn := strings.Replace(g.Members[0].ConnString, fmt.Sprintf("host=127.0.0.1 port=%d", g.Members[0].Port), "host="+host+" port="+port, 1)
	base := startResponder(t, "a", conn)
	if got := writeUntilAcknowledged(t, base, "remote", 1); !strings.HasPrefix(got, "a ") {
		t.Fatalf("writes through a 100 ms link are not acknowledged; the last: %q", got)
	}
}

// startResponder serves site's responder, writing to conn, until the test
// ends, and returns its URL.
func startResponder(t *testing.T, site, conn string) string {
	t.Helper()
	srv, err := responder.New(site, conn, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return serve(t, srv)
}

// writeUntilAcknowledged sends writes of client, numbered from seq on,
// until one is acknowledged, ten at most (the first may come before the
// table is made, or go to a session that is refused), and returns the
// last answer.
func writeUntilAcknowledged(t *testing.T, base, client string, seq int) string {
	t.Helper()
	var got string
	for i := range 10 {
		if got = post(t, fmt.Sprintf("%s/write?client=%s&seq=%d", base, client, seq+i)); !strings.Contains(got, ": ") {
			return got // "a 42": acknowledged
		}
	}
	return got
}

// A primary fenced under the responder's sessions (read-only), and its
// standby promoted: the responder's sessions were started at the old
// primary, so the first write may be refused as read-only, but a refused
// session is closed and the next starts at the new primary
// (target_session_attrs=read-write), where the writes are acknowledged.
// Keeping its sessions, the responder refused every write until the pool
// renewed them, an hour later.
func TestResponderFollowsThePrimary(t *testing.T) {
	g := pgtest.Start(t, 2, pgtest.Options{})
	old, next := g.Members[0], g.Members[1]
	conn := strings.Replace(old.ConnString, fmt.Sprintf("host=127.0.0.1 port=%d", old.Port),
		fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d target_session_attrs=read-write", old.Port, next.Port), 1)
	base := startResponder(t, "a", conn)
	if got := writeUntilAcknowledged(t, base, "f", 1); !strings.HasPrefix(got, "a ") {
		t.Fatalf("writes to the first primary are not acknowledged; the last: %q", got)
	}
	g.WaitStreaming(old, next) // the table is at the standby too
	ctx := context.Background()
	old.Exec(ctx, `ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`)
	old.Eventually(10*time.Second, func(c *pgx.Conn) (bool, string) {
		var ro string
		err := c.QueryRow(ctx, `SHOW default_transaction_read_only`).Scan(&ro)
		return err == nil && ro == "on", fmt.Sprintf("default_transaction_read_only %s, %v", ro, err)
	})
	next.Exec(ctx, `SELECT pg_promote()`)
	if got := writeUntilAcknowledged(t, base, "f", 100); !strings.HasPrefix(got, "a ") {
		t.Fatalf("no write acknowledged by the new primary in 10 tries; the last: %q", got)
	}
	var n int
	if err := next.Connect(ctx).QueryRow(ctx, `SELECT count(*) FROM `+responder.Table+` WHERE client = 'f' AND seq >= 100`).Scan(&n); err != nil || n != 1 {
		t.Errorf("writes at the new primary: %d, %v; want the one acknowledged", n, err)
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
