package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/deploy/hypervisor/libvirtdtest"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
)

// guestLab is three sites, each with an etcd member, a controller behind
// proxies the test can cut, and a real libvirtd (test driver) as its host.
type guestLab struct {
	*testCluster
	daemons map[string]*libvirtdtest.Daemon
	hv      map[string]*hypervisor.Host // the test's own view of each host
	proxies map[string][]*sitetest.Proxy

	mu         sync.Mutex
	violations []string
}

// The inventory: 11 vCPUs of guests on 12 vCPUs of hosts, so losing a
// site forces preemptions.
type labGuest struct {
	name, tier, zone string
	vcpus            int
}

var labGuests = []labGuest{
	{"gold-a", "gold", "A", 2}, {"gold-b", "gold", "B", 2},
	{"silver-a", "silver", "A", 1}, {"silver-b", "silver", "B", 1},
	{"bronze-1", "bronze", "", 2}, {"bronze-2", "bronze", "", 2}, {"bronze-3", "bronze", "", 1},
}

func newGuestLab(t *testing.T, scope string) *guestLab {
	libvirtdtest.Need(t)
	gl := &guestLab{daemons: map[string]*libvirtdtest.Daemon{}, hv: map[string]*hypervisor.Host{}, proxies: map[string][]*sitetest.Proxy{}}
	hosts := map[string][]config.Host{}
	for _, s := range []string{"a", "b", "c"} {
		d := libvirtdtest.Start(t, libvirtdtest.Options{})
		gl.daemons[s] = d
		hosts[s] = []config.Host{{Name: s + "1", Site: s, URI: d.URI(), VCPUs: 4, MemoryMiB: 8192, CPUOvercommit: 1, MemoryOvercommit: 1}}
	}
	dir := t.TempDir()
	services := testServices()
	for _, g := range labGuests {
		path := filepath.Join(dir, g.name+".xml")
		xml := fmt.Sprintf("<domain type='test'><name>%s</name><memory unit='MiB'>512</memory><vcpu>%d</vcpu><os><type>hvm</type></os></domain>", g.name, g.vcpus)
		if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
			t.Fatal(err)
		}
		services[0].Guests = append(services[0].Guests, config.Guest{
			Name: g.name, Service: "web", Tier: g.tier, Zone: g.zone, VCPUs: g.vcpus, MemoryMiB: 512, Domain: path})
	}
	gl.testCluster = newTestClusterWith(t, sitetest.Options{Services: services, Hosts: hosts})
	gl.etcd.Config.Placement.ZoneScope = scope
	ctx := ctxFor(t, 30*time.Second)
	for _, s := range []string{"a", "b", "c"} {
		hv, err := hypervisor.Dial(ctx, gl.daemons[s].URI(), hypervisor.Options{Name: "test-" + s})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hv.Close() })
		gl.hv[s] = hv
	}
	return gl
}

// startSite runs a site's controller through its own proxies.
func (gl *guestLab) startSite(name string) *runningController {
	var endpoints []string
	for _, s := range gl.etcd.Config.Sites {
		p := gl.etcd.NewProxy(s.Name)
		gl.proxies[name] = append(gl.proxies[name], p)
		endpoints = append(endpoints, p.URL)
	}
	return gl.start(name, startOptions{endpoints: endpoints})
}

// observe lists, from libvirt itself, where each inventory guest runs and
// which are paused. It records a violation if a guest runs twice.
func (gl *guestLab) observe(ctx context.Context) (running map[string][]string, paused map[string][]string) {
	running, paused = map[string][]string{}, map[string][]string{}
	for s, hv := range gl.hv {
		if !gl.daemons[s].Running() {
			continue
		}
		domains, err := hv.List(ctx)
		if err != nil {
			continue
		}
		for _, d := range domains {
			if !slices.ContainsFunc(labGuests, func(g labGuest) bool { return g.name == d.Name }) {
				continue // the test driver's own domain "test", say
			}
			switch d.State {
			case hypervisor.StateRunning:
				running[d.Name] = append(running[d.Name], s)
			case hypervisor.StatePaused:
				paused[d.Name] = append(paused[d.Name], s)
			}
		}
	}
	for g, at := range running {
		if len(at) > 1 {
			gl.mu.Lock()
			gl.violations = append(gl.violations, fmt.Sprintf("guest %s runs at %v", g, at))
			gl.mu.Unlock()
		}
	}
	return running, paused
}

// waitUntil evaluates cond now and after every change of the cluster's
// state in etcd (the sites report what their hosts run), until it holds.
func (gl *guestLab) waitUntil(ctx context.Context, what string, cond func() bool) {
	gl.t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := gl.obs.Watch(wctx, gl.store.Keys().Root(), clientv3.WithPrefix())
	for {
		if cond() {
			return
		}
		select {
		case <-ctx.Done():
			gl.t.Fatalf("waiting until %s: %v; what the lab shows now:\n%s", what, ctx.Err(), gl.describe())
		case <-changes:
		}
	}
}

// describe says, for a test that waited in vain, what the lab shows: each
// guest's placement and where libvirt says it runs, each site's lease and
// fence, and what each site last reported of its host and of itself.
func (gl *guestLab) describe() string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(gl.t.Context()), 5*time.Second)
	defer cancel()
	var b strings.Builder
	snap, err := gl.store.Snapshot(ctx)
	if err != nil {
		return "the cluster's state cannot be read: " + err.Error()
	}
	running, paused := gl.observe(ctx)
	for _, g := range labGuests {
		p := snap.Placements[g.name]
		fmt.Fprintf(&b, "  guest %s: placed %s/%s %s (epoch %d, op %s: %s); libvirt: running at %v, paused at %v\n",
			g.name, p.Site, p.Host, p.State, p.Epoch, p.Op, p.Reason, running[g.name], paused[g.name])
	}
	gl.testCluster.mu.Lock()
	for name, r := range gl.ctrls {
		if err := r.stoppedEarly(); err != nil {
			fmt.Fprintf(&b, "  site %s's controller stopped by itself: %v\n", name, err)
		}
	}
	gl.testCluster.mu.Unlock()
	for _, s := range gl.etcd.Config.Sites {
		_, alive := snap.Alive[s.Name]
		_, fenced := snap.Fences[s.Name]
		r := snap.Reports[s.Name]
		fmt.Fprintf(&b, "  site %s: alive %t, fenced %t, controller %s (%s) at %s\n", s.Name, alive, fenced, r.State, r.Reason, r.Updated.Format(time.RFC3339Nano))
		for _, h := range snap.Hosts[s.Name].Hosts {
			var names []string
			for _, g := range h.Running {
				names = append(names, g.Name)
			}
			fmt.Fprintf(&b, "    host %s: failed %t (%s), running %v\n", h.Name, h.Failed, h.Error, names)
		}
	}
	return b.String()
}

func (gl *guestLab) placements(ctx context.Context) map[string]site.Placement {
	snap, err := gl.store.Snapshot(ctx)
	if err != nil {
		gl.t.Fatal(err)
	}
	return snap.Placements
}

// TestGuestsFollowSiteLoss cuts a site off: it pauses its guests when it
// self-fences; the coordinator fences it and starts its gold guest at a
// surviving site, honouring the zone rules and preempting bronze before
// silver; when the site comes back it destroys its stale copies. No guest
// ever runs at two places.
func TestGuestsFollowSiteLoss(t *testing.T) {
	for _, scope := range []string{config.ZoneScopeCluster, config.ZoneScopeService} {
		t.Run(scope, func(t *testing.T) { testGuestsFollowSiteLoss(t, scope) })
	}
}

func testGuestsFollowSiteLoss(t *testing.T, scope string) {
	gl := newGuestLab(t, scope)
	ctx := ctxFor(t, 90*time.Second)
	ctrls := map[string]*runningController{"c": gl.startSite("c")} // c coordinates
	if got := gl.coordinator(ctx); got != "c" {
		t.Fatalf("coordinator %s, want c", got)
	}
	ctrls["a"], ctrls["b"] = gl.startSite("a"), gl.startSite("b")

	var first map[string]site.Placement
	gl.waitUntil(ctx, "every guest runs where it is placed", func() bool {
		first = gl.placements(ctx)
		running, _ := gl.observe(ctx)
		for _, g := range labGuests {
			p := first[g.name]
			if p.State != site.GuestRunning || !slices.Equal(running[g.name], []string{p.Site}) {
				return false
			}
		}
		return true
	})
	if first["gold-a"].Site == first["gold-b"].Site {
		t.Fatalf("gold-a and gold-b share site %s", first["gold-a"].Site)
	}
	moving, other := "gold-a", "gold-b"
	if first[moving].Site == "c" {
		moving, other = other, moving
	}
	victim := first[moving].Site
	t.Logf("placed: %v; cutting off site %s, which runs %s", first, victim, moving)

	for _, p := range gl.proxies[victim] {
		p.Cut()
	}
	ctrls[victim].waitChange(t, ctx, site.ControllerSelfFenced)
	gl.waitUntil(ctx, "the self-fenced site's guests are paused", func() bool {
		running, _ := gl.observe(ctx)
		for _, at := range running {
			if slices.Contains(at, victim) {
				return false
			}
		}
		return true
	})

	var after map[string]site.Placement
	gl.waitUntil(ctx, moving+" runs at a surviving site", func() bool {
		after = gl.placements(ctx)
		running, _ := gl.observe(ctx)
		p := after[moving]
		return p.State == site.GuestRunning && p.Site != victim && slices.Equal(running[moving], []string{p.Site})
	})
	if after[moving].Site == after[other].Site {
		t.Errorf("%s and %s share site %s after the failover", moving, other, after[moving].Site)
	}
	silverStopped, bronzeRunning := false, false
	for _, g := range labGuests {
		p := after[g.name]
		switch {
		case g.tier == "gold" && p.State != site.GuestRunning:
			t.Errorf("gold guest %s: %+v; want running", g.name, p)
		case g.tier == "silver" && p.State != site.GuestRunning:
			silverStopped = true
		case g.tier == "bronze" && p.State == site.GuestRunning:
			bronzeRunning = true
		}
	}
	if silverStopped && bronzeRunning {
		t.Errorf("a silver guest was stopped while a bronze one runs: %v", after)
	}
	preempted := 0
	for _, p := range after {
		if p.State == site.GuestPreempted {
			preempted++
		}
	}
	if preempted == 0 {
		t.Errorf("no guest preempted, but the surviving hosts were full: %v", after)
	}
	for _, p := range after {
		t.Logf("%s: %s %s: %s", p.Guest, p.State, p.Host, p.Reason)
	}

	// The site comes back: it is fenced and destroys its paused copies.
	for _, p := range gl.proxies[victim] {
		p.Heal()
	}
	ctrls[victim].waitChange(t, ctx, site.ControllerFenced)
	gl.waitUntil(ctx, "the returning site runs and holds no guest", func() bool {
		running, paused := gl.observe(ctx)
		for _, at := range running {
			if slices.Contains(at, victim) {
				return false
			}
		}
		for _, at := range paused {
			if slices.Contains(at, victim) {
				return false
			}
		}
		return true
	})
	gl.mu.Lock()
	defer gl.mu.Unlock()
	if len(gl.violations) > 0 {
		t.Errorf("guests ran twice: %s", strings.Join(gl.violations, "; "))
	}
}

// TestGuestPlannedMoveStopsFirst: when a guest's placement moves from one
// live site to another (a planned move: no site is dark or fenced), the
// new site starts it only once the old site reports its copy gone, so it
// never runs at two places. The order is read from the sites' hosts
// reports in etcd: the new site's first report of the guest running comes
// at a later revision than the old site's report without it.
func TestGuestPlannedMoveStopsFirst(t *testing.T) {
	gl := newGuestLab(t, config.ZoneScopeCluster)
	ctx := ctxFor(t, 90*time.Second)
	for _, s := range []string{"c", "a", "b"} {
		gl.startSite(s)
	}
	const moving = "bronze-3" // 1 vCPU, no zone: fits the one free vCPU
	var placed map[string]site.Placement
	gl.waitUntil(ctx, "every guest runs where it is placed", func() bool {
		placed = gl.placements(ctx)
		running, _ := gl.observe(ctx)
		for _, g := range labGuests {
			if p := placed[g.name]; p.State != site.GuestRunning || !slices.Equal(running[g.name], []string{p.Site}) {
				return false
			}
		}
		return true
	})
	from := placed[moving].Site
	used := map[string]int{}
	for _, g := range labGuests {
		used[placed[g.name].Site] += g.vcpus
	}
	to := ""
	for _, s := range []string{"a", "b", "c"} {
		if s != from && used[s] < 4 {
			to = s
		}
	}
	if to == "" {
		t.Fatalf("no site but %s has room for %s: used %v", from, moving, used)
	}

	start, err := gl.obs.Get(ctx, gl.store.Keys().Root(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	p := site.Placement{Guest: moving, Site: to, Host: to + "1", State: site.GuestRunning, Reason: "moved by the test", Op: "test", At: time.Now()}
	b, _ := json.Marshal(p)
	if _, err := gl.obs.Put(ctx, gl.store.Keys().Placement(moving), string(b)); err != nil {
		t.Fatal(err)
	}
	gl.waitUntil(ctx, moving+" runs at "+to+" only", func() bool {
		running, _ := gl.observe(ctx)
		return slices.Equal(running[moving], []string{to})
	})

	// The host records since the move, in revision order (one host a
	// site in this lab: its record is the site's whole report).
	lists := func(h site.HostReport) bool {
		return slices.ContainsFunc(h.Running, func(g site.RunningGuest) bool { return g.Name == moving })
	}
	k := gl.store.Keys()
	var goneAt, startedAt int64
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range gl.obs.Watch(wctx, k.Sites(), clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1)) {
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			var h site.HostReport
			if ev.Type != clientv3.EventTypePut || json.Unmarshal(ev.Kv.Value, &h) != nil {
				continue
			}
			switch {
			case strings.HasPrefix(key, k.SiteHostPrefix(from)) && !lists(h) && goneAt == 0:
				goneAt = ev.Kv.ModRevision
			case strings.HasPrefix(key, k.SiteHostPrefix(to)) && lists(h) && startedAt == 0:
				startedAt = ev.Kv.ModRevision
			}
		}
		if goneAt != 0 && startedAt != 0 {
			break
		}
	}
	if goneAt == 0 || startedAt == 0 || startedAt < goneAt {
		t.Errorf("%s reported gone at %s at revision %d, running at %s at revision %d: want it gone first", moving, from, goneAt, to, startedAt)
	}
	gl.mu.Lock()
	defer gl.mu.Unlock()
	if len(gl.violations) > 0 {
		t.Errorf("a guest ran at two places: %q", gl.violations)
	}
	t.Logf("%s moved from %s to %s: gone at revision %d, running at revision %d", moving, from, to, goneAt, startedAt)
}
