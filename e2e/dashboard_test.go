package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdt-project/zdt/e2e/lab"
	"github.com/zdt-project/zdt/site"
)

// TestDashboard drives the dashboard in headless Chromium against a lab, as
// a NOC would watch it: signed in with the operator's token, it shows three
// sites up; when the site of web goes dark (SIGKILL of its processes) it
// shows that site dark or fenced and the failover op with its steps, without
// a reload; a switchover started from its form, dry run first, completes and
// the page shows the op succeeded and the service at its new site. A
// screenshot of the page is kept in $ZDT_TEST_ARTIFACTS (default
// e2e/artifacts/), also when the test fails.
//
// It skips without Chromium (/usr/bin/chromium, Debian's chromium), except
// when CI=true.
func TestDashboard(t *testing.T) {
	chromium := findChromium(t)
	zdt, l := startLab(t, "127.0.22.0")
	// The lab is healthy once a coordinator is elected; its bootstrap op
	// assigns the services right after.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	waitKey(ctx, t, etcdClient(t, l, l.SiteNames()...), site.NewKeys(l.Cluster()).Assignment("web"), func(int64) bool { return true })
	st := status(t, zdt, l)
	victim, watch := "", ""
	for _, s := range st.Services {
		if s.Name == "web" {
			victim = s.Active
		}
	}
	for _, name := range l.SiteNames() {
		if name != victim {
			watch = name // the page is served by a site that stays up
		}
	}
	if victim == "" || watch == "" {
		t.Fatalf("cannot choose the sites: web is at %q, the sites are %v", victim, l.SiteNames())
	}
	token, err := l.Token("operator")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, chromium)

	// Signed in, the page shows three sites up.
	b.do("open the dashboard at site "+watch+" and sign in",
		chromedp.EmulateViewport(1920, 1080),
		chromedp.Navigate(l.APIURL(watch)+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin-button")))
	b.wait("the page shows every site up", 90*time.Second,
		fmt.Sprintf(`document.querySelectorAll('#sites .site[data-state="up"]').length === %d`, len(l.SiteNames())))
	b.wait("the page says who we are", 10*time.Second,
		`document.getElementById('header').textContent.includes('(operator, by token)')`)
	b.eval(`window.__noReload = 1`)
	// Every state of the failover op the page drew, as "outcome done/total":
	// read from the nodes each mutation added, as they were drawn, since
	// one batch of mutations may hold several renderings.
	b.eval(`window.__failover = []; new MutationObserver((records) => {
		for (const r of records) for (const n of r.addedNodes) {
			if (!(n instanceof Element)) continue;
			for (const op of [n, ...n.querySelectorAll('[data-kind="failover"]')]) {
				if (op.dataset.kind !== 'failover') continue;
				const s = op.dataset.outcome + ' ' + op.dataset.done + '/' + op.dataset.total;
				if (window.__failover.at(-1) !== s) window.__failover.push(s);
			}
		}
	}).observe(document.getElementById('ops'), {childList: true, subtree: true}); 1`)

	// The site of web goes dark: the page shows it and the failover.
	if err := l.KillSite(victim); err != nil {
		t.Fatalf("take site %s dark: %v", victim, err)
	}
	t.Logf("site %s is dark (SIGKILL of its processes); the page is served by site %s", victim, watch)
	b.wait("the page shows site "+victim+" dark or fenced", 60*time.Second,
		fmt.Sprintf(`['dark', 'fenced'].includes(document.querySelector('#sites [data-site="%s"]')?.dataset.state)`, victim))
	b.wait("the page shows the failover op succeeded", 90*time.Second,
		`!!document.querySelector('#ops [data-kind="failover"][data-outcome="succeeded"]')`)
	// It was shown running, with its steps, before it ended (the page
	// streams an op from its first version: this holds however fast the
	// op ran).
	seen := b.eval(`window.__failover.join(', ')`)
	t.Logf("the failover op on the page: %s", seen)
	if !regexp.MustCompile(`running [0-9]+/[1-9]`).MatchString(seen) {
		t.Errorf("the page never showed the failover op running with its steps; it showed %q", seen)
	}
	b.wait("the page shows web moved off site "+victim, 30*time.Second,
		fmt.Sprintf(`(() => { const s = document.querySelector('#services [data-service="web"]'); return s && s.dataset.active !== '%s'; })()`, victim))
	// Each prefix row lists its own announcements: web's show its new
	// active site announcing without prepends.
	b.wait("the prefixes panel shows web's new site announcing its prefixes", 30*time.Second,
		`(() => { const act = document.querySelector('#services [data-service="web"]')?.dataset.active;
		  const rows = [...document.querySelectorAll('#prefixes tr[data-prefix]')];
		  return !!act && rows.some((r) => [...r.querySelectorAll('.seq.active')].some((s) => s.textContent === act + ' +0')); })()`)
	if n := b.eval(`String(window.__noReload)`); n != "1" {
		t.Fatalf("window.__noReload is %q after the failover: the page was reloaded", n)
	}

	// A switchover from the page's form, once no op runs.
	service, to := switchoverChoice(t, status(t, zdt, l))
	t.Logf("switchover from the page: service %s to site %s", service, to)
	b.wait("the page shows no running op", 120*time.Second, `document.querySelector('#ops .running')?.dataset.running === '0'`)
	b.wait("the switchover form offers the choice", 10*time.Second, fmt.Sprintf(
		`(() => { const s = document.getElementById('so-service'); s.value = %q; s.dispatchEvent(new Event('change'));
		  const to = document.getElementById('so-to'); to.value = %q; return s.value === %[1]q && to.value === %[2]q; })()`, service, to))
	b.dryRunUntilPossible()
	b.do("click Switch over twice (arm, confirm)", chromedp.Click(chromedp.ID("so-run")), chromedp.Click(chromedp.ID("so-run")))
	result := b.wait("the page says the switchover was accepted", 30*time.Second,
		`(() => { const r = document.getElementById('so-result').dataset; return r.result === 'accepted' ? r.op : (r.result === 'asking' ? '' : 'NOT ' + r.result); })()`)
	if strings.HasPrefix(result, "NOT ") {
		t.Fatalf("the switchover was not accepted (%s): %s", result, b.text("so-result"))
	}
	b.wait("the page shows op "+result+" succeeded", 120*time.Second,
		fmt.Sprintf(`document.querySelector('#ops [data-op="%s"]')?.dataset.outcome === 'succeeded'`, result))
	b.wait("the page shows "+service+" at site "+to, 30*time.Second,
		fmt.Sprintf(`document.querySelector('#services [data-service="%s"]')?.dataset.active === '%s'`, service, to))
	if n := b.eval(`String(window.__noReload)`); n != "1" {
		t.Fatalf("window.__noReload is %q after the switchover: the page was reloaded", n)
	}
	if stale := b.eval(`String(document.getElementById('stale').hidden)`); stale != "true" {
		t.Errorf("the page shows itself stale: %s", b.text("stale"))
	}
	b.screenshot("dashboard")

	// A viewer, in a tab of its own, sees the same and nothing to change it
	// with; an unknown token is refused.
	viewer, err := l.Token("viewer")
	if err != nil {
		t.Fatal(err)
	}
	v := b.tab(t)
	v.do("sign in with a wrong token",
		chromedp.EmulateViewport(1920, 1080),
		chromedp.Navigate(l.APIURL(watch)+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "not-a-token"),
		chromedp.Click(chromedp.ID("signin-button")))
	v.wait("the page refuses a wrong token", 10*time.Second,
		`document.getElementById('signin-error').textContent.startsWith('Not signed in')`)
	v.eval(`document.getElementById('token').value = ''; 1`)
	v.do("sign in as the viewer",
		chromedp.SendKeys(chromedp.ID("token"), viewer),
		chromedp.Click(chromedp.ID("signin-button")))
	v.wait("the viewer's page shows "+service+" at site "+to, 30*time.Second,
		fmt.Sprintf(`document.querySelector('#services [data-service="%s"]')?.dataset.active === '%s'`, service, to))
	if got := v.eval(`document.getElementById('switchover').hidden + ' ' + [...document.querySelectorAll('#board button:not(.small)')].filter((e) => e.offsetParent && !e.closest('#filter')).length`); got != "true 0" {
		t.Errorf("the viewer's page: switchover form hidden, visible buttons other than Sign out and the filter's = %s; want true 0", got)
	}

	// The filter: one service; an unknown one refused with the filter
	// before kept; everything again.
	other := "web"
	if service == other {
		other = "db"
	}
	shownServices := `[...document.querySelectorAll('#services tr[data-service]')].map((r) => r.dataset.service).join(',')`
	v.do("filter on service "+service,
		chromedp.SendKeys(chromedp.ID("filter-service"), service),
		chromedp.Click(chromedp.ID("filter-apply")))
	v.wait("the viewer's page shows service "+service+" alone", 10*time.Second, fmt.Sprintf(`%s === %q`, shownServices, service))
	v.eval(`document.getElementById('filter-service').value = 'nosuch'; 1`)
	v.do("filter on an unknown service", chromedp.Click(chromedp.ID("filter-apply")))
	v.wait("the page refuses the unknown service", 10*time.Second,
		`document.getElementById('filter-error').textContent.startsWith('Filter not applied: service "nosuch": unknown service')`)
	if got := v.eval(shownServices); got != service {
		t.Errorf("after a refused filter the page shows services %q; want %q, as the filter before kept", got, service)
	}
	v.do("show everything", chromedp.Click(chromedp.ID("filter-clear")))
	v.wait("the viewer's page shows every service", 10*time.Second,
		fmt.Sprintf(`%s.split(',').sort().join() === [%q, %q].sort().join()`, shownServices, service, other))

	// Asked for one item a list (/ui/?limit=1), the page shows one service
	// and says how many it left out; the guests are still all counted.
	placed := 0
	for _, g := range status(t, zdt, l).Guests {
		if g.Site != "" {
			placed++
		}
	}
	v.do("open the page with ?limit=1", chromedp.Navigate(l.APIURL(watch)+"/ui/?limit=1"))
	v.wait("the page shows one service of two and says so", 30*time.Second,
		`document.querySelectorAll('#services tr[data-service]').length === 1 &&
		 !!document.querySelector('#services [data-cut="services"]')?.textContent.startsWith('showing 1 of 2 services')`)
	counted := v.wait("the guests panel counts every guest", 10*time.Second,
		`String([...document.querySelectorAll('#guests tr[data-site] td:last-child')].reduce((n, td) => n + Number(td.textContent.split(' of ')[1]), 0))`)
	if counted != strconv.Itoa(placed) {
		t.Errorf("the guests panel of the page with ?limit=1 counts %s guests at the sites; the status places %d", counted, placed)
	}

	// The site that serves the page goes dark too: the page says it is
	// stale.
	if err := l.KillSite(watch); err != nil {
		t.Fatalf("take site %s dark: %v", watch, err)
	}
	b.wait("the page says it is stale", 30*time.Second,
		`!document.getElementById('stale').hidden && document.getElementById('stale').textContent.startsWith('STALE: no answer from this site for')`)
	t.Logf("the page says: %s", b.text("stale"))
}

// findChromium is Debian's chromium; without it the test skips, or fails
// when CI=true.
func findChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no chromium (CI=true): install Debian's chromium (.ci/run does): %v", err)
		}
		t.Skipf("no chromium: %v (apt-get install --no-install-recommends chromium)", err)
	}
	return path
}

// browser is a headless Chromium with one tab, closed when the test ends;
// it collects what the page writes to its console.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []string
}

func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,        // as root
		chromedp.IgnoreCertErrors, // the lab's CA is not the browser's
		chromedp.WindowSize(1920, 1080),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	b := &browser{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot("dashboard-failed")
			b.mu.Lock()
			t.Logf("the page's console:\n  %s", strings.Join(b.console, "\n  "))
			b.mu.Unlock()
		}
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		<-done
	})
	return b
}

// tab opens another tab of the browser, closed when the test ends.
func (b *browser) tab(t *testing.T) *browser {
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	// Open it now, with ctx: a tab lives as long as the context that
	// opened it, and the actions run with shorter ones.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// wait polls a JavaScript expression in the page until it is truthy, at
// most within, and returns its value as text; on timeout it fails the test
// with what the page shows.
func (b *browser) wait(what string, within time.Duration, expr string) string {
	b.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, within+10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[any](expr,
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(within)))
	if err != nil {
		b.t.Fatalf("waiting %s for %s: %v\nthe page shows:\n%s", within, what, err, b.text(""))
	}
	b.t.Logf("after %.1fs: %s", time.Since(start).Seconds(), what)
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// do runs actions in the page, at most for a minute.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, b.text(""))
	}
}

// eval evaluates an expression in the page and returns it as text.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// text is the visible text of an element of the page ("": the whole
// page), or why not.
func (b *browser) text(id string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(%q ? document.getElementById(%[1]q) : document.body)?.innerText ?? ''`, id)))
	if err != nil {
		return fmt.Sprintf("(cannot read #%s: %v)", id, err)
	}
	return s
}

// dryRunUntilPossible clicks Dry run until the API says the switchover may
// run (a failover's last placements may still hold the sites for a moment),
// at most for a minute.
func (b *browser) dryRunUntilPossible() {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b.do("click Dry run", chromedp.Click(chromedp.ID("so-dry")))
		got := b.wait("the answer to the dry run", 30*time.Second,
			`(() => { const r = document.getElementById('so-result').dataset.result; return r && r !== 'asking' ? r : ''; })()`)
		if got == "dry-run" {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the dry run says %s for a minute:\n%s", got, b.text("so-result"))
		}
		b.t.Logf("dry run: %s: %s; trying again after the next update", got, b.text("so-result"))
		at := b.eval(`document.getElementById('updated').dataset.at`)
		b.wait("the next update of the page", 10*time.Second,
			fmt.Sprintf(`document.getElementById('updated').dataset.at !== %q`, at))
	}
}

// screenshot saves the page as PNG in the artifacts directory: the whole
// page, 1920 pixels wide and as high as it is (the wall shows the top 1080).
func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	height, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`window.scrollTo(0, 0); document.documentElement.scrollHeight`))
	if err == nil {
		err = chromedp.Do(ctx, chromedp.EmulateViewport(1920, max(1080, height)))
	}
	var png []byte
	if err == nil {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080))
	}
	if err != nil {
		b.t.Errorf("screenshot: %v", err)
		return
	}
	dir := os.Getenv("ZDT_TEST_ARTIFACTS")
	if dir == "" {
		dir = "artifacts" // e2e/artifacts: the test runs in e2e/
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Errorf("screenshot: %v", err)
		return
	}
	path, err := filepath.Abs(filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, time.Now().Format("20060102-150405.000"))))
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		b.t.Errorf("screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

// switchoverChoice picks a service at a site that is up and, of its sites
// in the topology's order, the first other one that is up.
func switchoverChoice(t *testing.T, st labStatus) (service, to string) {
	t.Helper()
	up := map[string]bool{}
	for _, s := range st.Sites {
		up[s.Name] = s.State == "up"
	}
	active := map[string]string{}
	for _, s := range st.Services {
		active[s.Name] = s.Active
	}
	for _, svc := range lab.DefaultTopology().Services {
		if !up[active[svc.Name]] {
			continue
		}
		i := slices.IndexFunc(svc.Sites, func(s string) bool { return up[s] && s != active[svc.Name] })
		if i >= 0 {
			return svc.Name, svc.Sites[i]
		}
	}
	raw, _ := json.Marshal(st)
	t.Fatalf("no service can switch over to another site that is up: %s", raw)
	return "", ""
}
