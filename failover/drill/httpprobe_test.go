package drill

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/e2e/lab/responder"
)

// serveResponder runs a responder of site (no database) on l until the
// returned function stops it.
func serveResponder(t *testing.T, l net.Listener, site string) (stop func()) {
	t.Helper()
	srv, err := responder.New(site, "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, l)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// An http probe records who answered, in runs, and the outage between two
// responders on one address.
func TestHTTPProbeRecordsWhoAnswered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	stopA := serveResponder(t, l, "a")
	// No database: every write is refused, so the runs come from a
	// responder that answers /write without one.
	ctx := context.Background()
	pr, err := NewProbeWith(ctx, "http://"+addr, "d1", 5*time.Millisecond, 200*time.Millisecond, ProbeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); pr.Run(runCtx) }()
	waitRequests(t, pr, 5)
	stopA()
	waitRequests(t, pr, 5)
	cancel()
	<-done
	res, err := pr.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != len(pr.History()) || res.Failed != res.Sent {
		t.Errorf("sent %d, failed %d, history %d; want every request failed (the responder has no database)", res.Sent, res.Failed, len(pr.History()))
	}
	if res.Writes {
		t.Errorf("a probe without VerifyURL says it verifies writes")
	}
	if len(res.AnsweredBy) != 0 {
		t.Errorf("answered by %+v; want nothing acknowledged", res.AnsweredBy)
	}
}

// waitRequests waits until the probe has sent n more requests.
func waitRequests(t *testing.T, pr *Probe, n int) {
	t.Helper()
	for range n {
		pr.mu.Lock()
		noted := pr.noted
		pr.mu.Unlock()
		select {
		case <-noted:
		case <-time.After(10 * time.Second):
			t.Fatal("the probe sent no request in 10s")
		}
	}
}

// The answers of one site in a row make one run; an outage splits them.
func TestAnsweredByRuns(t *testing.T) {
	pr := &Probe{noted: make(chan struct{})}
	t0 := time.Now()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Millisecond) }
	for i, site := range []string{"a", "a", "", "", "b", "b", "b", "a"} {
		r := Request{Seq: i + 1, Start: at(i), End: at(i).Add(5 * time.Millisecond), Answer: Answer{Site: site}}
		if site == "" {
			r.Err = context.DeadlineExceeded
		}
		pr.note(r)
	}
	res := pr.res
	want := []SiteRun{
		{Site: "a", First: at(0), Last: at(1).Add(5 * time.Millisecond), Answers: 2},
		{Site: "b", First: at(4), Last: at(6).Add(5 * time.Millisecond), Answers: 3},
		{Site: "a", First: at(7), Last: at(7).Add(5 * time.Millisecond), Answers: 1},
	}
	if len(res.AnsweredBy) != len(want) {
		t.Fatalf("answered by %+v; want %+v", res.AnsweredBy, want)
	}
	for i := range want {
		if res.AnsweredBy[i] != want[i] {
			t.Errorf("run %d = %+v; want %+v", i, res.AnsweredBy[i], want[i])
		}
	}
	if len(res.Outages) != 1 || res.Outages[0].Failures != 2 || !res.Outages[0].Start.Equal(at(2)) || !res.Outages[0].End.Equal(at(4).Add(5*time.Millisecond)) {
		t.Errorf("outages %+v; want one of 2 failures from request 3 to the end of request 5", res.Outages)
	}
	if len(pr.History()) != 8 || res.Sent != 8 || res.Failed != 2 {
		t.Errorf("history %d, sent %d, failed %d; want 8, 8, 2", len(pr.History()), res.Sent, res.Failed)
	}
}
