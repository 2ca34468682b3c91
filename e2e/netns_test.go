package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdt-project/zdt/e2e/fabric"
	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/e2e/softswitch"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// The test bed: `zdt lab --netns`, a lab whose sites run in network
// namespaces of their own, each linked to the other sites (the fabric) and
// to FRR, the upstream router, which installs its best paths into its
// namespace's kernel. A client in another namespace sends a write to web's
// address every 10 ms; the site whose zdt0 carries the address answers
// with its name, after writing the request into group pg (synchronous).
// So the client's packets follow BGP, and what it records is what a
// consumer of the service sees.

// netnsClientInterval is how often the client sends a request.
const netnsClientInterval = 10 * time.Millisecond

// startNetnsLab starts a settled lab in network namespaces with a
// synchronous group. Only one such lab runs at a time (the machine's link
// to the fabric takes 198.51.100.2).
func startNetnsLab(t *testing.T, flags ...string) (*settledLab, context.Context) {
	t.Helper()
	if os.Geteuid() != 0 || fabric.CheckFRR() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: a lab in network namespaces needs root and FRR (%v)", fabric.CheckFRR())
		}
		t.Skip("a lab in network namespaces needs root and FRR (" + fabric.InstallHint + ")")
	}
	zdt, l, _ := startLabWithArgs(t, append([]string{"--netns", "--synchronous", "--timeout", "90s"}, flags...))
	if !l.InNetns() {
		t.Fatal("zdt lab --netns made a lab that does not run in network namespaces")
	}
	// The tests take a down: the test's etcd client talks to b and c.
	return settle(t, zdt, l, 3*time.Minute, "b", "c")
}

// serviceAnswers asks web's responder, through the client's namespace,
// which site serves it, over IPv4 and IPv6, until both say want.
func serviceAnswers(ctx context.Context, t *testing.T, l *lab.Lab, service, want string) {
	t.Helper()
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DialContext: l.Fabric().Client.DialContext, DisableKeepAlives: true},
	}
	for _, family := range []int{4, 6} {
		u, err := l.ServiceURL(service, family)
		if err != nil {
			t.Fatal(err)
		}
		var last string
		for {
			resp, err := client.Get(u + "/site")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				last = strings.TrimSpace(string(body))
				if last == want {
					break
				}
			} else {
				last = err.Error()
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the client never reached %s's responder at %s (IPv%d) served by %s; last: %s", service, u, family, want, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// startClient starts the client: a probe of web's responder, from the
// client's namespace, whose acknowledged writes are checked in group pg.
func startClient(ctx context.Context, t *testing.T, l *lab.Lab, name string) (probe *drill.Probe, stop func() *drill.ProbeResult) {
	t.Helper()
	return startClientWith(ctx, t, l, name, 250*time.Millisecond)
}

// startClientWith is startClient with a timeout of its own for each
// request.
func startClientWith(ctx context.Context, t *testing.T, l *lab.Lab, name string, timeout time.Duration) (probe *drill.Probe, stop func() *drill.ProbeResult) {
	t.Helper()
	u, err := l.ServiceURL("web", 4)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := l.ClientProbeOptions()
	if err != nil {
		t.Fatal(err)
	}
	probe, err = drill.NewProbeWith(ctx, u, name, netnsClientInterval, timeout, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		probe.Run(runCtx)
	}()
	stopped := false
	stop = func() *drill.ProbeResult {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		<-done
		res, err := probe.Result(context.WithoutCancel(ctx))
		probe.Close()
		if err != nil {
			t.Fatalf("the client's result: %v", err)
		}
		return res
	}
	t.Cleanup(func() { stop() })
	return probe, stop
}

// waitServedBy waits until the client's last n requests all succeeded,
// answered by a site other than dark, and returns that site.
func waitServedBy(ctx context.Context, t *testing.T, probe *drill.Probe, dark string, n int) string {
	t.Helper()
	for {
		h := probe.History()
		if len(h) >= n {
			last := h[len(h)-n:]
			site := last[0].Site
			ok := site != "" && site != dark
			for _, r := range last {
				ok = ok && r.Err == nil && r.Site == site
			}
			if ok {
				return site
			}
		}
		select {
		case <-ctx.Done():
			var tail []string
			for _, r := range h[max(0, len(h)-5):] {
				tail = append(tail, fmt.Sprintf("#%d %q %v", r.Seq, r.Site, r.Err))
			}
			t.Fatalf("the client was not served by a site other than %s for %d requests in a row; its last requests: %s", dark, n, strings.Join(tail, "; "))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// finalStateWrong says what is wrong with the cluster after a failover:
// the upstream's best paths must lead to the active sites, group pg have
// one writable primary (at db's active site), every guest run at most
// once and every gold guest run, and Gold-Zone-A and -B guests be at
// different sites.
func finalStateWrong(s *settledLab, st labStatus) []string {
	var wrong []string
	wrong = append(wrong, upstreamAtActive(st)...)
	active := map[string]string{}
	for _, svc := range st.Services {
		active[svc.Name] = svc.Active
	}
	for _, g := range st.Replication {
		var primaries []string
		for _, m := range g.Members {
			if m.Role == "primary" || m.Writable {
				primaries = append(primaries, m.Site)
			}
		}
		if len(primaries) != 1 || primaries[0] != active["db"] {
			wrong = append(wrong, fmt.Sprintf("group %s's primaries are %v; want one, at db's active site %s", g.Group, primaries, active["db"]))
		}
	}
	zoneSite := map[string]string{}
	for _, g := range st.Guests {
		if len(g.RunningOn) > 1 {
			wrong = append(wrong, fmt.Sprintf("guest %s runs on %v: more than once", g.Name, g.RunningOn))
		}
		spec, ok := s.guests.guest(g.Name)
		if !ok || spec.Tier != "gold" {
			continue
		}
		if len(g.RunningOn) != 1 {
			wrong = append(wrong, fmt.Sprintf("gold guest %s runs on %v; want one host", g.Name, g.RunningOn))
		}
		if spec.Zone != "" {
			if other, ok := zoneSite[g.Site]; ok && other != spec.Zone {
				wrong = append(wrong, fmt.Sprintf("gold guests of zones %s and %s share site %s", other, spec.Zone, g.Site))
			}
			zoneSite[g.Site] = spec.Zone
		}
	}
	return wrong
}

// netnsSiteLoss takes site a, web's active site, down with fault, while
// two clients write through the upstream, and checks that the clients'
// outage ends by itself, served by a surviving site, that no acknowledged
// write is lost, and that the checkers find nothing: the takeover checker
// over each client's history, porcupine over the ids the database gave
// both clients' writes, and the final state.
func netnsSiteLoss(t *testing.T, fault func(l *lab.Lab) error) {
	netnsSiteLossFrom(t, fault, nil)
}

// netnsSiteLossFrom is netnsSiteLoss for a fault that leaves site a
// serving for a while: a may answer until darkSince (which the test learns
// after the failover), not after. With nil, a is dark from the fault on.
func netnsSiteLossFrom(t *testing.T, fault func(l *lab.Lab) error, darkSince func(l *lab.Lab) time.Time) {
	s, ctx := startNetnsLab(t)
	serviceAnswers(ctx, t, s.l, "web", "a")
	probe, stop := startClient(ctx, t, s.l, "netns-"+t.Name())
	other, stopOther := startClient(ctx, t, s.l, "netns-"+t.Name()+"-2")
	waitServedBy(ctx, t, probe, "", 50)

	if err := fault(s.l); err != nil {
		t.Fatal(err)
	}
	// The fault is done: a request that began before (the site's processes
	// are stopped one after the other) may still have been answered.
	faultAt := time.Now()
	taker := waitServedBy(ctx, t, probe, "a", 200)
	waitServedBy(ctx, t, other, "a", 20)
	res, otherRes := stop(), stopOther()
	logClient(t, res)

	dark := faultAt
	if darkSince != nil {
		if dark = darkSince(s.l); dark.IsZero() {
			t.Fatal("site a never went dark")
		}
		t.Logf("site a went dark %s after the fault", dark.Sub(faultAt).Round(time.Millisecond))
	}
	for _, p := range []*drill.Probe{probe, other} {
		if wrong := drill.CheckTakeover(p.History(), "a", dark, time.Time{}); len(wrong) > 0 {
			t.Errorf("a client's history:\n  %s", strings.Join(wrong, "\n  "))
		}
	}
	if wrong := drill.CheckSequence(probe.History(), other.History()); len(wrong) > 0 {
		t.Errorf("the clients' writes: %s", strings.Join(wrong, "; "))
	}
	for _, r := range []*drill.ProbeResult{res, otherRes} {
		if r.Missing != 0 || r.Acknowledged == 0 {
			t.Errorf("%d of %d acknowledged writes of %s are missing; want none lost with a synchronous group", r.Missing, r.Acknowledged, r.Target)
		}
	}
	st := status(t, s.zdt, s.l)
	if errs := st.activeAt("web", taker); len(errs) > 0 {
		t.Errorf("the client is served by %s, but %s", taker, errs[0])
	}
	// Guests take a moment longer than the traffic.
	waitStatus(ctx, t, s.cli, s.zdt, s.l, "the cluster settled after the failover", func(st labStatus) []string {
		return finalStateWrong(s, st)
	})
}

// Site a goes dark: its links are cut and its processes killed.
func TestNetnsSiteLossLinksCut(t *testing.T) {
	netnsSiteLoss(t, func(l *lab.Lab) error { return l.KillSite("a") })
}

// The link between sites a and b is cut while b's etcd member leads: a
// loses the leader but not the upstream or site c, so a must fence itself
// and withdraw, and the others take its services over, b's and c's
// keeping theirs. zdt status, run from the machine, which reaches all three
// members, must still answer (a's member has no leader).
func TestNetnsInterSiteLinkCut(t *testing.T) {
	netnsSiteLoss(t, func(l *lab.Lab) error {
		moveEtcdLeader(t.Context(), t, l, "b")
		return l.SetLink(t.Context(), lab.SiteLink{A: "a", B: "b", Link: softswitch.Link{Cut: true}})
	})
}

// Site a freezes (SIGSTOP of all its processes, links up): its BGP
// sessions stay up until the upstream's hold timer, and the surviving
// sites' announcements must win before that. a's etcd member leads, so
// the surviving sites lose etcd for an election too.
func TestNetnsSiteLossFrozen(t *testing.T) {
	netnsSiteLoss(t, func(l *lab.Lab) error {
		moveEtcdLeader(t.Context(), t, l, "a")
		if _, err := l.HangSite("a"); err != nil {
			return err
		}
		t.Cleanup(func() { _, _ = l.ThawSite("a") })
		return nil
	})
}

// Site a, whose etcd member leads, is cut off from the other sites, not
// from the upstream: it must fence itself and withdraw before the others
// take its services over, so the client never sees a answer once another
// site has (the history checker), and its controller logged its
// self-fence before the others recorded their fence of a. b and c lose
// etcd for an election too, and may fence themselves for a moment; b,
// which holds db's primary and takes web over, must then serve again with
// everything it runs reported (the final-state checker: a report whose
// write failed once was taken for written, and b's guests stayed
// "starting" in etcd while they ran).
func TestNetnsSiteIsolated(t *testing.T) {
	var l *lab.Lab
	netnsSiteLoss(t, func(lb *lab.Lab) error {
		l = lb
		moveEtcdLeader(t.Context(), t, l, "a")
		return l.IsolateSite("a")
	})
	if !t.Failed() {
		checkSelfFencedFirst(t, l, "a")
	}
}

// Site a's etcd member is cut off from the others (their peer port
// blocked between a and each other site) while a's controller, PostgreSQL
// and links live on: the member has no leader, but nothing a serves has
// failed, so nothing may fail over. a's controller renews its lease
// through the other sites' members: its beats land for three lease TTLs
// and more, zdt status shows a's member without a leader (or unread), no site fences
// itself or is fenced, no op runs, and the client is served by a all along
// with no acknowledged write lost. Once the member is back with its peers,
// the final-state checker finds nothing.
func TestNetnsEtcdMemberLost(t *testing.T) {
	s, ctx := startNetnsLab(t)
	serviceAnswers(ctx, t, s.l, "web", "a")
	opsBefore := opIDs(ctx, t, s.cli, s.keys)
	probe, stop := startClient(ctx, t, s.l, "netns-"+t.Name())
	waitServedBy(ctx, t, probe, "", 50)

	// The loss of a's member alone, without an election: the one the
	// leader's loss brings is TestNetnsSiteLossFrozen's.
	moveEtcdLeader(ctx, t, s.l, "b")
	beats := s.cli.Watch(ctx, s.keys.Beat("a"))
	if err := s.l.LoseEtcdMember(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	cfg, err := config.Load(s.l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	ttl := cfg.Timings.LeaseTTL
	for last := lost; last.Sub(lost) < 3*ttl; {
		select {
		case <-ctx.Done():
			t.Fatalf("site a's last beat came %s after its etcd member was lost, %s ago", last.Sub(lost).Round(time.Millisecond), time.Since(lost).Round(time.Millisecond))
		case resp := <-beats:
			if err := resp.Err(); err != nil {
				t.Fatalf("watch a's beats: %v", err)
			}
			if len(resp.Events) > 0 {
				last = time.Now()
			}
		}
	}
	// What is wrong shows: a's member has no leader, or (as a member
	// without one does not answer its status in time) cannot be read.
	var members struct {
		EtcdMembers []site.EtcdMember `json:"etcd_members"`
	}
	st := status(t, s.zdt, s.l)
	if err := json.Unmarshal([]byte(st.raw), &members); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(members.EtcdMembers, func(m site.EtcdMember) bool { return m.Name == "a" }); i < 0 ||
		!members.EtcdMembers[i].NoLeader && members.EtcdMembers[i].Error == "" {
		t.Errorf("zdt status while a's member is lost does not say that it has no leader or cannot be read:\n%s", st.raw)
	}
	for _, other := range []string{"b", "c"} {
		if err := s.l.SetLink(ctx, lab.SiteLink{A: "a", B: other}); err != nil {
			t.Fatal(err)
		}
	}
	waitServedBy(ctx, t, probe, "", 50)
	res := stop()
	logClient(t, res)
	servedAllAlong(t, res, "a")
	if wrong := drill.CheckSequence(probe.History()); len(wrong) > 0 {
		t.Errorf("the client's writes: %s", strings.Join(wrong, "; "))
	}
	nothingFailedOver(ctx, t, s, opsBefore)
	waitStatus(ctx, t, s.cli, s.zdt, s.l, "the cluster as before, a's etcd member back", func(st labStatus) []string {
		return append(st.activeAt("web", "a"), finalStateWrong(s, st)...)
	})
}

// logClient logs what a client saw.
func logClient(t *testing.T, res *drill.ProbeResult) {
	t.Helper()
	t.Logf("client: %d requests, %d failed, longest outage %s, %d writes acknowledged, %d missing; answered by %+v",
		res.Sent, res.Failed, res.LongestOutage().Round(time.Millisecond), res.Acknowledged, res.Missing, res.AnsweredBy)
}

// servedAllAlong checks that the client was answered by site alone, web
// never moving, and that none of its acknowledged writes is missing (the
// group is synchronous).
func servedAllAlong(t *testing.T, res *drill.ProbeResult, site string) {
	t.Helper()
	for _, run := range res.AnsweredBy {
		if run.Site != site {
			t.Errorf("site %s answered %d requests from %s: web moved while nothing it needs failed", run.Site, run.Answers, run.First.Format(time.TimeOnly))
		}
	}
	if res.Missing != 0 || res.Acknowledged == 0 {
		t.Errorf("%d of %d acknowledged writes are missing; want none lost with a synchronous group", res.Missing, res.Acknowledged)
	}
}

// checkSelfFencedFirst checks that the site's controller logged its
// self-fence before the other sites recorded their fence of it.
func checkSelfFencedFirst(t *testing.T, l *lab.Lab, name string) {
	t.Helper()
	selfFenced := firstLogLine(t, l.LogPath(name), "self-fenced")
	var others []string
	for _, s := range l.SiteNames() {
		if s != name {
			others = append(others, s)
		}
	}
	cli := etcdClient(t, l, others...)
	resp, err := cli.Get(t.Context(), site.NewKeys(l.Cluster()).Fence(name))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read %s's fence: %v, %d keys", name, err, len(resp.Kvs))
	}
	var fence site.Fence
	if err := json.Unmarshal(resp.Kvs[0].Value, &fence); err != nil {
		t.Fatal(err)
	}
	if selfFenced.IsZero() || !selfFenced.Before(fence.At) {
		t.Errorf("%s fenced itself at %v, the others fenced it at %v: want %s first", name, selfFenced, fence.At, name)
	}
	t.Logf("%s fenced itself %s before the others fenced it", name, fence.At.Sub(selfFenced).Round(time.Millisecond))
}

// firstLogLine is the time of the first line of a controller's log (JSON
// lines) whose message is msg; zero if there is none.
func firstLogLine(t *testing.T, path, msg string) time.Time {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		var entry struct {
			Msg string    `json:"msg"`
			TS  time.Time `json:"ts"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == msg {
			return entry.TS
		}
	}
	return time.Time{}
}

// TestNetnsDrillSiteLoss runs `zdt drill site-loss` in a lab in network
// namespaces: site a goes dark (links cut, processes killed) under the
// client, fails over, comes back, is failed back and its services switched
// back. The drill must pass, write its three reports, and record itself as
// a's last drill; headless Chromium opens the HTML (no network) and finds
// the timeline drawn: a mark per milestone reached and a bar per outage
// the client saw. A screenshot is kept as an artifact.
func TestNetnsDrillSiteLoss(t *testing.T) {
	chromium := findChromium(t)
	s, ctx := startNetnsLab(t)
	out := t.TempDir()
	stdout, stderr, code := runZDT(ctx, t, s.zdt, "drill", "site-loss", "--site", "a", "--lab", s.l.Dir(), "--out", out, "--timeout", "4m")
	t.Logf("zdt drill site-loss:\n%s%s", stdout, stderr)
	if code != 0 {
		t.Fatalf("zdt drill site-loss: exit %d", code)
	}
	base, r := readDrillReport(t, out, "a")
	var phases []string
	for _, p := range r.Phases {
		phases = append(phases, p.Name)
	}
	if !r.Passed || r.Kind != "site-loss" || r.Fault == nil || r.Fault.Kind != "down" || r.Fault.Restored.IsZero() ||
		strings.Join(phases, ",") != "failover,failback,back" {
		t.Fatalf("the report: passed %t, kind %s, fault %+v, phases %v; want a passed site-loss drill: failover, failback, back\n%s",
			r.Passed, r.Kind, r.Fault, phases, readFile(base+".md"))
	}
	for _, op := range r.Ops() {
		if op.Outcome != site.OpSucceeded {
			t.Errorf("op %s (%s): %s", op.ID, op.Kind, op.Outcome)
		}
	}
	pr := r.Probe
	if pr == nil || !pr.Writes || pr.Acknowledged == 0 || pr.Missing != 0 || len(pr.AnsweredBy) < 3 {
		t.Fatalf("the client: %+v; want writes acknowledged, none missing, answered by a, another site, then a again", pr)
	}
	if first, last := pr.AnsweredBy[0].Site, pr.AnsweredBy[len(pr.AnsweredBy)-1].Site; first != "a" || last != "a" {
		t.Errorf("the client was answered first by %s, last by %s; want a both times", first, last)
	}
	if a := assignmentOf(ctx, t, s.cli, s.keys, "web"); a.Site != "a" {
		t.Errorf("after the drill web is at %s; want a", a.Site)
	}
	table, _, code := runZDT(ctx, t, s.zdt, "status", "--config", s.l.ConfigPath())
	if (code != 0 && code != 3) || !strings.Contains(table, "site-loss PASSED at ") {
		t.Errorf("the status table (exit %d) does not show the drill as a's last:\n%s", code, table)
	}
	t.Logf("site-loss drill: failover began %s after the fault, its RTO %s; the client's longest outage %s, %d writes acknowledged, %d missing",
		r.Detection().Round(time.Millisecond), r.Phases[0].Ops[0].RTO().Round(time.Millisecond), pr.LongestOutage().Round(time.Millisecond), pr.Acknowledged, pr.Missing)

	b := newBrowser(t, chromium)
	checkReportPage(t, b, base, r, "site-loss-drill-report")

	// The dashboard's drills panel shows it as a's last drill.
	token, err := s.l.Token("viewer")
	if err != nil {
		t.Fatal(err)
	}
	b.do("open the dashboard at site b and sign in",
		chromedp.Navigate(s.l.APIURL("b")+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin-button")))
	b.wait("the drills panel shows a's last drill, passed", 30*time.Second,
		`(() => { const d = document.querySelector('#drills .last-drill[data-site="a"]');
			return d !== null && d.dataset.passed === 'true' && d.textContent.includes('site-loss'); })()`)
}

// A flapping site is not a lost site: a's links go down for 300 ms and up
// again for 700 ms, ten times, under the client. Nothing failed for longer
// than the lease allows, so there must be no failover and no self-fence:
// web stays at a, every answer comes from a, the client is served at the
// end, and no acknowledged write is lost.
func TestNetnsSiteFlaps(t *testing.T) {
	s, ctx := startNetnsLab(t)
	serviceAnswers(ctx, t, s.l, "web", "a")
	probe, stop := startClient(ctx, t, s.l, "netns-"+t.Name())
	waitServedBy(ctx, t, probe, "", 50)
	began := time.Now()
	for range 10 {
		if err := s.l.CutSite("a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the fault itself: links down this long
		if err := s.l.HealSite("a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	waitServedBy(ctx, t, probe, "", 100)
	res := stop()
	logClient(t, res)
	servedAllAlong(t, res, "a")
	if op := opSince(ctx, t, s.cli, s.keys, "failover", began); op != nil {
		t.Errorf("failover %s while a only flapped", op.ID)
	}
	if ts := firstLogLine(t, s.l.LogPath("a"), "self-fenced"); !ts.IsZero() {
		t.Errorf("a fenced itself at %s while its links only flapped", ts.Format(time.TimeOnly))
	}
	st := status(t, s.zdt, s.l)
	if wrong := append(st.activeAt("web", "a"), upstreamAtActive(st)...); len(wrong) > 0 {
		t.Errorf("after the flaps: %v", wrong)
	}
}
