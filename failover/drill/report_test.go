package drill

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/zdt-project/zdt/site"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// switchoverOp is a switchover of web from a to b: promoted at 1.5s, its
// prefix moved at 2.4s.
func switchoverOp(id string, created int, from, to string) *site.Op {
	step := func(name string, end int) site.Step {
		return site.Step{Name: name, Params: map[string]string{"service": "web", "from": from, "to": to},
			Status: site.StepDone, Started: at(created), Ended: at(end)}
	}
	return &site.Op{ID: id, Kind: "switchover", Outcome: site.OpSucceeded, Created: at(created), Ended: at(created + 2400),
		Params: map[string]string{"service": "web", "to": to},
		Steps:  []site.Step{step("check-switchover", created+100), step("await-primary", created+1500), step("assign", created+2000), step("await-prefixes", created+2400)}}
}

func sampleReport() *Report {
	r := &Report{Kind: "switchover", Site: "a", Cluster: "lab", Who: "operator:ann@noc1", Started: t0}
	away := NewOpResult(switchoverOp("op-away", 100, "a", "b"))
	away.TargetRTOSeconds = 30
	r.Phases = []Phase{{Name: "away", Ops: []OpResult{away}}, {Name: "back", Ops: []OpResult{NewOpResult(switchoverOp("op-back", 5000, "b", "a"))}}}
	r.Probe = &ProbeResult{Target: "tcp://203.0.113.10:80", IntervalMillis: 10, Started: at(0), Ended: at(8000), Sent: 700, Failed: 12,
		Outages: []Outage{{Start: at(900), End: at(1600), Failures: 12, LastError: "connection refused"}}}
	r.Checks = []Check{{Name: "web back at a", OK: true, Detail: "web is at a"}}
	r.Finish(at(8000))
	return r
}

func TestReportFigures(t *testing.T) {
	r := sampleReport()
	if !r.Passed {
		t.Fatalf("a drill whose ops succeeded and checks held did not pass: %+v", r.Failed())
	}
	if got := r.Phases[0].Ops[0].RTO(); got != 2400*time.Millisecond {
		t.Errorf("RTO of the away op = %v; want 2.4s (its creation to its last milestone)", got)
	}
	if got := r.Probe.LongestOutage(); got != 700*time.Millisecond {
		t.Errorf("longest outage = %v; want 700ms", got)
	}
	r.CheckRTO()
	if c := r.Checks[len(r.Checks)-1]; !c.OK || c.Detail != "op op-away: 2.4s, target 30s" {
		t.Errorf("the RTO check of the away op: %+v; want ok, 2.4s of 30s", c)
	}
	r.Phases[1].Ops[0].TargetRTOSeconds = 2
	r.CheckRTO()
	if c := r.Checks[len(r.Checks)-1]; c.OK || c.Name != "RTO within target: web" {
		t.Errorf("the RTO check of the back op, 2.4s against 2s: %+v; want it failed", c)
	}
	r.Checks = append(r.Checks, Check{Name: "no acknowledged write lost", OK: false, Detail: "3 missing"})
	r.Finish(at(8000))
	if r.Passed || len(r.Failed()) != 2 {
		t.Errorf("a failed check: passed %t, failed %+v", r.Passed, r.Failed())
	}
}

func TestReportRecord(t *testing.T) {
	r := sampleReport()
	d := r.Record()
	if d.Site != "a" || d.Kind != "switchover" || !d.Passed || d.RTOSeconds != 2.4 || !d.Probed || d.OutageSeconds != 0.7 || d.LostWrites != -1 || d.Failed != "" {
		t.Errorf("record %+v; want a passed switchover of a, RTO 2.4s, outage 0.7s, no writes probed", d)
	}
	r.Probe.Writes, r.Probe.Missing = true, 2
	r.Checks = append(r.Checks, Check{Name: "no acknowledged write lost", Detail: "40 acknowledged, 2 missing"})
	r.Finish(at(8000))
	if d := r.Record(); d.Passed || d.LostWrites != 2 || d.Failed != "no acknowledged write lost: 40 acknowledged, 2 missing" {
		t.Errorf("record of a failed drill %+v", d)
	}
}

func TestReportMarkdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"# Drill: switchover of site a — PASSED",
		"| away | `op-away` | web | succeeded | 2.4s | 30s |",
		"| back | `op-back` | web | succeeded | 2.4s | - |",
		"Probe `tcp://203.0.113.10:80`, every 10ms: 700 requests, 12 failed; longest outage 700ms.",
		"| 2026-12-03T10:00:00.900Z | 2026-12-03T10:00:01.600Z | 700ms | 12 | connection refused |",
		"| web back at a | ok | web is at a |",
		"| promoted | 1.5s | done |",
		"| prefix moved | 2.4s | done |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown report lacks %q:\n%s", want, md)
		}
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Markdown() != r.Markdown() {
		t.Errorf("the report read back from JSON reads differently:\n%s\nwant\n%s", back.Markdown(), r.Markdown())
	}
}

// TestReportHTMLSelfContained: the page fetches nothing (no script, no
// link, no src, no URL but the SVG namespace) and its timeline has a mark
// per milestone reached and a bar per outage.
func TestReportHTMLSelfContained(t *testing.T) {
	page, err := sampleReport().HTML()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		t.Fatal(err)
	}
	marks, outages := 0, 0
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "img", "iframe", "object":
				t.Errorf("the page has a <%s>", n.Data)
			case "circle":
				marks++
			case "rect":
				outages++
			}
			for _, a := range n.Attr {
				if a.Key == "src" || a.Key == "href" || (strings.Contains(a.Val, "://") && a.Key != "xmlns") {
					t.Errorf("<%s %s=%q> points elsewhere", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if marks != 10 || outages != 1 {
		t.Errorf("the timeline has %d marks and %d outage bars; want 10 (started, check-switchover, promoted, assigned, prefix moved; twice) and 1", marks, outages)
	}
	if !strings.Contains(string(page), "PASSED") {
		t.Errorf("the page does not say the drill passed")
	}
}

// TestTCPProbeSeesAnOutage probes a real listener, closes it for a while
// and opens it again on the same port: one outage, of the failed requests
// in a row.
func TestTCPProbeSeesAnOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go acceptAll(ln)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, err := NewProbe(ctx, "tcp://"+addr, "drill-1", 10*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { pr.Run(rctx); close(done) }()

	waitSent(t, pr, 5)
	ln.Close()
	waitFailed(t, pr, 5)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	defer ln.Close()
	go acceptAll(ln)
	sent := sentSoFar(pr)
	waitSent(t, pr, sent+5)
	stop()
	<-done
	res, err := pr.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outages) != 1 || res.Outages[0].Failures < 5 || res.Failed != res.Outages[0].Failures || res.Writes {
		t.Fatalf("outages %+v, %d failed; want one outage of every failed request", res.Outages, res.Failed)
	}
	if o := res.Outages[0]; !o.End.After(o.Start) || !strings.Contains(o.LastError, "refused") {
		t.Errorf("outage %+v; want it to end after it began, refused", o)
	}
}

func TestNewProbeRefusesBadURLs(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://203.0.113.10/", "want http://HOST:PORT"},
		{"http://203.0.113.10:80/x", "want http://HOST:PORT"},
		{"ftp://203.0.113.10:21", "want tcp://HOST:PORT, http://HOST:PORT or postgres://..."},
		{"tcp://203.0.113.10", "want tcp://HOST:PORT"},
		{"tcp://203.0.113.10:80/x", "want tcp://HOST:PORT"},
		{"postgres://zdt:secret@[::1", "--probe"},
	} {
		_, err := NewProbe(context.Background(), tc.url, "d", 10*time.Millisecond, 100*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewProbe(%q) = %v; want an error saying %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("NewProbe(%q) shows the password: %v", tc.url, err)
		}
	}
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func sentSoFar(pr *Probe) int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.res.Sent
}

func waitSent(t *testing.T, pr *Probe, n int) {
	t.Helper()
	waitFor(t, pr, func(r ProbeResult) bool { return r.Sent >= n }, "requests sent")
}

func waitFailed(t *testing.T, pr *Probe, n int) {
	t.Helper()
	waitFor(t, pr, func(r ProbeResult) bool { return r.Failed >= n }, "requests failed")
}

// waitFor waits, request by request, until the probe's counts are ok; at
// most 10s.
func waitFor(t *testing.T, pr *Probe, ok func(ProbeResult) bool, what string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		pr.mu.Lock()
		res, noted := pr.res, pr.noted
		pr.mu.Unlock()
		if ok(res) {
			return
		}
		select {
		case <-noted:
		case <-timeout:
			t.Fatalf("no %s within 10s", what)
		}
	}
}
