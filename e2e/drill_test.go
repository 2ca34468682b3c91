package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/failover/drill"
	"github.com/zdt-project/zdt/site"
)

// TestLabDrillSwitchover runs `zdt drill switchover` of site b (db and its
// group's primary) with a probe that writes to the group through a client
// URL of every member (target_session_attrs=read-write), as an
// application would. The drill must pass: db away to c and back by two
// switchover ops that succeeded, back at b, the client served at the end,
// every acknowledged write there afterwards; and it writes its report as
// JSON, Markdown and HTML. Headless Chromium opens the HTML from the file
// (no network): the timeline has a mark per milestone reached and a bar
// per outage the client saw; a screenshot is kept as an artifact.
func TestLabDrillSwitchover(t *testing.T) {
	chromium := findChromium(t)
	s, ctx := startSettledLab(t, "127.0.30.0", 240*time.Second, "a", "b", "c")
	zdt, l := s.zdt, s.l
	probeURL, err := os.ReadFile(filepath.Join(l.Dir(), lab.PostgresClientURLFile))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stdout, stderr, code := runZDT(ctx, t, zdt, "drill", "switchover", "--site", "b", "--config", l.ConfigPath(),
		"--probe", strings.TrimSpace(string(probeURL)), "--out", out, "--timeout", "3m")
	if code != 0 {
		t.Fatalf("zdt drill switchover: exit %d\n%s%s", code, stdout, stderr)
	}
	if pw := strings.TrimSpace(readFile(filepath.Join(l.Dir(), "secrets", "pg.pass"))); pw == "" || strings.Contains(stdout+stderr, pw) {
		t.Errorf("the drill's output shows the database password (or the lab has none):\n%s%s", stdout, stderr)
	}
	base, r := readDrillReport(t, out, "b")
	if !r.Passed || r.Kind != "switchover" || r.Site != "b" || len(r.Phases) != 2 {
		t.Fatalf("the report: passed %t, kind %s, site %s, %d phases; want a passed switchover drill of b, away and back\n%s", r.Passed, r.Kind, r.Site, len(r.Phases), readFile(base+".md"))
	}
	for _, op := range r.Ops() {
		if op.Kind != "switchover" || op.Outcome != site.OpSucceeded || len(op.Services) == 0 {
			t.Errorf("op %s: %s %s with %d services; want a switchover that succeeded", op.ID, op.Kind, op.Outcome, len(op.Services))
		}
	}
	pr := r.Probe
	if pr == nil || !pr.Writes || pr.Acknowledged == 0 || pr.Missing != 0 || pr.Sent < pr.Acknowledged {
		t.Fatalf("the probe: %+v; want writes acknowledged, none missing", pr)
	}
	if a := assignmentOf(ctx, t, s.cli, s.keys, "db"); a.Site != "b" {
		t.Errorf("after the drill db is at %s; want b", a.Site)
	}
	// zdt status shows it as b's last drill.
	var st struct {
		Sites []site.SiteStatus `json:"sites"`
	}
	if err := json.Unmarshal([]byte(status(t, zdt, l).raw), &st); err != nil {
		t.Fatal(err)
	}
	for _, si := range st.Sites {
		if d := si.LastDrill; (si.Name == "b") != (d != nil) || (d != nil && (!d.Passed || d.LostWrites != 0 || !d.Started.Equal(r.Started))) {
			t.Errorf("zdt status: site %s's last drill %+v; want b's alone, this one, passed, no write lost", si.Name, d)
		}
	}
	table, _, code := runZDT(ctx, t, zdt, "status", "--config", l.ConfigPath()) // 3: degraded is an answer too
	if (code != 0 && code != 3) || !strings.Contains(table, "LAST DRILL") || !strings.Contains(table, "switchover PASSED at ") {
		t.Errorf("the status table (exit %d) does not show the drill:\n%s", code, table)
	}
	t.Logf("drill: away RTO %s, back RTO %s; the client: %d requests, %d failed, longest outage %s, %d writes acknowledged",
		r.Phases[0].Ops[0].RTO(), r.Phases[1].Ops[0].RTO(), pr.Sent, pr.Failed, pr.LongestOutage(), pr.Acknowledged)

	checkReportPage(t, newBrowser(t, chromium), base, r, "drill-report")
}

// readDrillReport finds the report a drill of siteName wrote into dir, as
// .json, .md and .html, and returns its path without the extension and
// the report the JSON holds.
func readDrillReport(t *testing.T, dir, siteName string) (base string, r drill.Report) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "drill-"+siteName+"-*"))
	if len(paths) != 3 {
		t.Fatalf("the drill wrote %v; want its report as .json, .md and .html", paths)
	}
	base = strings.TrimSuffix(paths[0], filepath.Ext(paths[0]))
	if err := json.Unmarshal([]byte(readFile(base+".json")), &r); err != nil {
		t.Fatalf("the JSON report: %v", err)
	}
	return base, r
}

// checkReportPage opens a drill's HTML report (base.html) from its file, no
// network, and checks that its timeline draws a mark per milestone the
// report's ops reached and a bar per outage its client saw, and that it
// says PASSED; a screenshot named name is kept as an artifact.
func checkReportPage(t *testing.T, b *browser, base string, r drill.Report, name string) {
	t.Helper()
	milestones, outages := 0, 0
	for _, op := range r.Ops() {
		for _, svc := range op.Services {
			for _, m := range svc.Milestones {
				if m.Reached {
					milestones++
				}
			}
		}
	}
	if r.Probe != nil {
		outages = len(r.Probe.Outages)
	}
	b.do("open the HTML report", chromedp.Navigate("file://"+base+".html"))
	marks := b.eval(`document.querySelectorAll('#timeline circle.mark').length`)
	bars := b.eval(`document.querySelectorAll('#timeline rect.outage').length`)
	if marks != strconv.Itoa(milestones) || bars != strconv.Itoa(outages) {
		t.Errorf("the timeline draws %s marks and %s outage bars; want %d and %d", marks, bars, milestones, outages)
	}
	if verdict := b.eval(`document.querySelector('h1 .verdict').textContent`); verdict != "PASSED" {
		t.Errorf("the page says %q; want PASSED", verdict)
	}
	b.screenshot(name)
}
