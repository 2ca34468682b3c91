package lab

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdt-project/zdt/deploy/hypervisor"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// smallScale is the scale the tests and a quick manual run use.
func smallScale() Scale { return Scale{Services: 50, Guests: 200, Hosts: 12} }

// TestScaleTopology checks a generated topology against what ScaleTopology
// promises: the base's services kept and the new ones named, rotated and
// addressed as the plan says, the guests in the tier mix, the hosts spread
// over the sites, and the same topology every time.
func TestScaleTopology(t *testing.T) {
	t.Parallel()
	base := DefaultTopology()
	scale := smallScale()
	top, err := ScaleTopology(base, scale)
	if err != nil {
		t.Fatal(err)
	}
	if err := top.validate(); err != nil {
		t.Fatal(err)
	}
	if again, _ := ScaleTopology(base, scale); !reflect.DeepEqual(top, again) {
		t.Error("the same scale gave two topologies")
	}
	if !reflect.DeepEqual(top.Services[:len(base.Services)], base.Services) || !reflect.DeepEqual(top.Postgres, base.Postgres) {
		t.Errorf("the base's services and group changed: %+v, %+v", top.Services[:len(base.Services)], top.Postgres)
	}
	gen := top.Services[len(base.Services):]
	if len(gen) != scale.Services || gen[0].Name != "svc-0001" || gen[len(gen)-1].Name != "svc-0050" {
		t.Fatalf("%d generated services from %s to %s; want 50, svc-0001 to svc-0050", len(gen), gen[0].Name, gen[len(gen)-1].Name)
	}
	checkScaleServices(t, gen, DefaultPrefixesPerService)
	checkScaleGuests(t, gen, scale.Guests)
	checkScaleHosts(t, top, map[string]int{"a": 4, "b": 4, "c": 4})
	if top.ZoneScope != "service" {
		t.Errorf("zone scope %q; want service", top.ZoneScope)
	}
}

// checkScaleServices checks the generated services: their active sites
// take turns, and their prefixes are /48s of 2001:db8::/32, per of them
// each, in order, no two the same.
func checkScaleServices(t *testing.T, gen []ServiceSpec, per int) {
	t.Helper()
	doc := netip.MustParsePrefix("2001:db8::/32")
	actives := map[string]int{}
	seen := map[netip.Prefix]bool{}
	for i, svc := range gen {
		actives[svc.Sites[0]]++
		if want := rotated([]string{"a", "b", "c"}, i); !slices.Equal(svc.Sites, want) {
			t.Errorf("service %s's sites %v; want %v", svc.Name, svc.Sites, want)
		}
		if len(svc.Prefixes) != per {
			t.Errorf("service %s has %d prefixes; want %d", svc.Name, len(svc.Prefixes), per)
		}
		for _, p := range svc.Prefixes {
			if p.Bits() != 48 || !doc.Contains(p.Addr()) || seen[p] || p != p.Masked() {
				t.Errorf("service %s's prefix %s: want a /48 of %s of its own", svc.Name, p, doc)
			}
			seen[p] = true
		}
	}
	if first, last := gen[0].Prefixes[0], gen[len(gen)-1].Prefixes[per-1]; first.String() != "2001:db8:1000::/48" ||
		last != scalePrefix(len(gen)*per-1) {
		t.Errorf("prefixes from %s to %s; want from 2001:db8:1000::/48 to %s", first, last, scalePrefix(len(gen)*per-1))
	}
	if n := len(gen); actives["a"]-actives["c"] > 1 || actives["a"]+actives["b"]+actives["c"] != n {
		t.Errorf("active sites %v of %d services; want them even", actives, n)
	}
}

// checkScaleGuests checks that the generated services have n guests, in
// the cycle's mix, with gold and silver zones paired.
func checkScaleGuests(t *testing.T, gen []ServiceSpec, n int) {
	t.Helper()
	count := map[string]int{}
	names := map[string]bool{}
	for _, svc := range gen {
		for _, g := range svc.Guests {
			count[g.Tier+"-"+g.Zone]++
			if names[g.Name] || !strings.HasPrefix(g.Name, svc.Name+"-"+g.Tier) || !plainName(g.Name) {
				t.Errorf("guest %s of service %s: want a name of its own that says its service and tier", g.Name, svc.Name)
			}
			names[g.Name] = true
		}
	}
	want := map[string]int{"gold-A": n / 10, "gold-B": n / 10, "silver-A": n / 10, "silver-B": n / 10, "silver-": n / 10, "bronze-": n / 2}
	if !maps.Equal(count, want) || len(names) != n {
		t.Errorf("%d guests by tier and zone %v; want %d: %v", len(names), count, n, want)
	}
}

// checkScaleHosts checks the hosts per site, their names and that they are
// all of one size that holds the biggest guest.
func checkScaleHosts(t *testing.T, top Topology, want map[string]int) {
	t.Helper()
	size := top.Sites[0].Hosts[0]
	for _, s := range top.Sites {
		if len(s.Hosts) != want[s.Name] {
			t.Errorf("site %s has %d hosts; want %d", s.Name, len(s.Hosts), want[s.Name])
		}
		for i, h := range s.Hosts {
			if h.Name != fmt.Sprintf("%s%d", s.Name, i+1) || h.VCPUs != size.VCPUs || h.MemoryMiB != size.MemoryMiB || h.CPUOvercommit != 2 {
				t.Errorf("site %s's host %d: %+v; want %s%d like %+v", s.Name, i, h, s.Name, i+1, size)
			}
		}
	}
	if size.VCPUs*2 < 2 || size.MemoryMiB < 4096 || size.MemoryMiB != int64(size.VCPUs)*2*scaleMiBPerVCPU {
		t.Errorf("host size %+v: want room for a gold guest and 2 GiB per usable vCPU", size)
	}
}

// TestScaleInvalid checks that a scale the lab cannot build is refused
// with a reason, and that the zero scale is the base lab.
func TestScaleInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scale Scale
		want  string
	}{
		{Scale{Services: -1}, "services: -1 is negative"},
		{Scale{Services: 1, Guests: -5, Hosts: 3}, "guests: -5 is negative"},
		{Scale{Services: 1, Hosts: -3}, "hosts: -3 is negative"},
		{Scale{Services: 1, PrefixesPerService: -2}, "prefixes per service: -2 is negative"},
		{Scale{Services: 10, Guests: 20}, "20 guests and no hosts"},
		{Scale{Guests: 20, Hosts: 3}, "20 guests and no services"},
		{Scale{Services: 1, Hosts: 2}, "2 hosts for 3 sites"},
		{Scale{Services: 6145, PrefixesPerService: 10}, "6145 services with 10 prefixes each: more /48s than the address plan (2001:db8:1000::/48 to 2001:db8:ffff::/48) has, 61440"},
		{Scale{Services: 2, PrefixesPerService: 1 << 62}, "the address plan"},
		{Scale{Services: 1, Guests: MaxScaleGuests + 1, Hosts: 3}, "guests: at most"},
		{Scale{Hosts: MaxScaleHosts + 1}, "hosts: at most"},
		{Scale{PrefixesPerService: -1}, "prefixes per service: -1 is negative"},
	} {
		_, err := ScaleTopology(DefaultTopology(), tc.scale)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ScaleTopology(%+v) = %v; want an error saying %q", tc.scale, err, tc.want)
		}
	}
	if _, err := ScaleTopology(DefaultTopology(), Scale{Services: 6144, PrefixesPerService: 10}); err != nil {
		t.Errorf("the whole address plan: %v", err)
	}
	base := DefaultTopology()
	base.Services[0].Prefixes = append(base.Services[0].Prefixes, netip.MustParsePrefix("2001:db8:8000::/33"))
	if _, err := ScaleTopology(base, Scale{Services: 1}); err == nil || !strings.Contains(err.Error(), "2001:db8:8000::/33") {
		t.Errorf("a base prefix in the plan: %v; want an error naming it", err)
	}
	for _, zero := range []Scale{{}, {PrefixesPerService: 3}} {
		if top, err := ScaleTopology(DefaultTopology(), zero); err != nil || !reflect.DeepEqual(top, DefaultTopology()) {
			t.Errorf("scale %+v: %v; want the base lab", zero, err)
		}
	}
}

// TestScaleConfigLoads writes the lab of a small and of the scale
// (1,000 services of 10 prefixes, 10,000 guests, 300 hosts) and loads it
// with the real config package, as zdt config check does: not a single
// problem, every service, guest and host as generated, each host its own
// hypervisor. Then the placement: with every site up every guest runs;
// with any one dark every gold guest runs elsewhere, under the zone rules,
// and bronze guests stop. The large one is left out in -short mode.
func TestScaleConfigLoads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		scale Scale
		hosts map[string]int
	}{
		{"small", smallScale(), map[string]int{"a": 4, "b": 4, "c": 4}},
		{"uneven hosts", Scale{Services: 7, PrefixesPerService: 1, Guests: 31, Hosts: 5}, map[string]int{"a": 2, "b": 2, "c": 1}},
		{"a host per site", Scale{Services: 3, Guests: 10, Hosts: 3}, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"issue", Scale{Services: 1000, Guests: 10_000, Hosts: 300}, map[string]int{"a": 100, "b": 100, "c": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.scale.Guests > 1000 && testing.Short() {
				t.Skip("a large lab; not in -short mode")
			}
			top, err := ScaleTopology(DefaultTopology(), tc.scale)
			if err != nil {
				t.Fatal(err)
			}
			opts := withLibvirtd(t)
			opts.Topology = &top
			start := time.Now()
			l, err := Create(t.TempDir(), opts)
			if err != nil {
				t.Fatal(err)
			}
			created := time.Since(start)
			start = time.Now()
			c := loadConfig(t, l)
			t.Logf("%d services, %d guests, %d hosts: created in %s, loaded and validated in %s",
				len(c.Services), len(c.Guests()), len(c.Hosts()), created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			checkScaleConfig(t, l, top, c)
			checkScaleHosts(t, top, tc.hosts)
			checkScalePlacement(t, c)
		})
	}
}

// checkScaleConfig checks that the loaded config has the topology's
// services, guests and hosts, each host its own hypervisor on its node XML.
func checkScaleConfig(t *testing.T, l *Lab, top Topology, c *config.Cluster) {
	t.Helper()
	if len(c.Services) != len(top.Services) || len(c.Guests()) != len(top.Guests()) || c.Placement.ZoneScope != config.ZoneScopeService {
		t.Errorf("config: %d services, %d guests, zone scope %s; want %d, %d, service",
			len(c.Services), len(c.Guests()), c.Placement.ZoneScope, len(top.Services), len(top.Guests()))
	}
	for _, svc := range top.Services {
		got, ok := c.Service(svc.Name)
		if !ok || !slices.Equal(got.Sites, svc.Sites) || !slices.Equal(got.Prefixes, svc.Prefixes) || len(got.Guests) != len(svc.Guests) {
			t.Errorf("service %s: %+v; want sites %v, prefixes %v, %d guests", svc.Name, got, svc.Sites, svc.Prefixes, len(svc.Guests))
		}
	}
	for _, s := range top.Sites {
		cs, _ := c.Site(s.Name)
		if len(cs.Hosts) != len(s.Hosts) {
			t.Errorf("site %s: %d hosts; want %d", s.Name, len(cs.Hosts), len(s.Hosts))
			continue
		}
		for i, h := range cs.Hosts {
			checkOwnHypervisor(t, l, s, s.Hosts[i], h)
		}
	}
}

// checkOwnHypervisor checks that a generated host is the site's libvirtd
// opening the test driver on the host's node XML, which states the host's
// size.
func checkOwnHypervisor(t *testing.T, l *Lab, s SiteSpec, want HostSpec, h config.Host) {
	t.Helper()
	target, err := hypervisor.ParseURI(h.URI)
	if err != nil {
		t.Fatalf("host %s: %v", h.Name, err)
	}
	node := filepath.Join(l.Dir(), s.Name, "libvirt", "node-"+h.Name+".xml")
	if target.Address != filepath.Join(l.Dir(), s.Name, "libvirt", "libvirt-sock") {
		t.Errorf("host %s dials %s; want its site's libvirtd", h.Name, target.Address)
	}
	if target.URI != "test://"+node {
		t.Errorf("host %s opens %s; want test://%s", h.Name, target.URI, node)
	}
	if h.VCPUs != want.VCPUs || h.MemoryMiB != want.MemoryMiB || h.CPUOvercommit != want.CPUOvercommit {
		t.Errorf("host %s: %+v; want %+v", h.Name, h, want)
	}
	data, err := os.ReadFile(node)
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Cores  int   `xml:"cpu>cores"`
		Active int   `xml:"cpu>active"`
		Memory int64 `xml:"memory"`
	}
	if err := xml.Unmarshal(data, &n); err != nil || n.Cores != want.VCPUs || n.Active != want.VCPUs || n.Memory != want.MemoryMiB*1024 {
		t.Errorf("host %s's node XML %s (%v): %+v; want %d cores, %d KiB", h.Name, data, err, n, want.VCPUs, want.MemoryMiB*1024)
	}
}

// checkScalePlacement runs the coordinator's placement on the config:
// every guest runs with every site up; with any one site dark every gold
// guest runs at another, no two gold guests of a service and of the two
// zones share a site, and bronze guests stop if and only if the other
// sites are short of vCPUs.
func checkScalePlacement(t *testing.T, c *config.Cluster) {
	t.Helper()
	up := &site.Snapshot{Alive: map[string]site.Alive{}, Fences: map[string]site.Fence{}, Placements: map[string]site.Placement{}, Hosts: map[string]site.HostsReport{}}
	for _, name := range c.SiteNames() {
		up.Alive[name] = site.Alive{Site: name}
	}
	place(t, c, up)
	for _, g := range c.Guests() {
		if p := up.Placements[g.Name]; p.State != site.GuestRunning {
			t.Fatalf("every site up: guest %s is %s (%s); want running", g.Name, p.State, p.Reason)
		}
	}
	for _, dark := range c.SiteNames() {
		snap := &site.Snapshot{Alive: maps.Clone(up.Alive), Fences: map[string]site.Fence{dark: {Site: dark}},
			Placements: maps.Clone(up.Placements), Hosts: map[string]site.HostsReport{}}
		place(t, c, snap)
		stopped := 0
		type goldKey struct{ service, zone, site string }
		goldAt := map[goldKey]string{} // the gold guests with a zone, by service, zone and site
		for _, g := range c.Guests() {
			p := snap.Placements[g.Name]
			switch {
			case g.Tier == config.TierGold && (p.State != site.GuestRunning || p.Site == dark):
				t.Errorf("without %s: gold guest %s is %s at %q (%s); want running elsewhere", dark, g.Name, p.State, p.Site, p.Reason)
			case g.Tier == config.TierGold && g.Zone != "":
				goldAt[goldKey{g.Service, g.Zone, p.Site}] = g.Name
			case g.Tier == config.TierBronze && p.State != site.GuestRunning:
				stopped++
			}
		}
		for k, name := range goldAt {
			if other, ok := goldAt[goldKey{k.service, map[string]string{"A": "B", "B": "A"}[k.zone], k.site}]; ok && k.zone == "A" {
				t.Errorf("without %s: gold guests %s and %s of service %s share site %s", dark, name, other, k.service, k.site)
			}
		}
		if short := survivorsShort(c, dark); short != (stopped > 0) {
			t.Errorf("without %s: %d bronze guests stopped; the other sites are short of vCPUs: %t", dark, stopped, short)
		}
	}
}

// TestOwnHostURI checks that a host's URI leads to its site's socket and
// opens the test driver on its node XML, whatever the lab's path holds.
func TestOwnHostURI(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"/tmp/lab", "/tmp/a+b c&d=e%f:g"} {
		node := dir + "/a/libvirt/node-a1.xml"
		uri := ownHostURI(dir+"/a/libvirt", node)
		target, err := hypervisor.ParseURI(uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		if target.Network != "unix" || target.Address != dir+"/a/libvirt/libvirt-sock" {
			t.Errorf("%s dials %s %s; want unix %s/a/libvirt/libvirt-sock", uri, target.Network, target.Address, dir)
		}
		name, err := url.Parse(target.URI)
		if err != nil || name.Scheme != "test" || name.Host != "" || name.Path != node {
			t.Errorf("%s opens %s (%v); want the test driver on %s", uri, target.URI, err, node)
		}
	}
}

// TestScaleLibvirtd runs a real libvirtd per site with 100 hosts each (and
// fake controllers): every host of site a answers at once, each with the
// size of its node XML, and each is a hypervisor of its own: a guest
// started on one is not on another.
func TestScaleLibvirtd(t *testing.T) {
	t.Parallel()
	needLibvirtd(t)
	top, err := ScaleTopology(testTopology(41), Scale{Services: 3, Hosts: 300})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Create(t.TempDir(), Options{Env: []string{fakeEnv + "=up"}, Topology: &top})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopFakeLab(t, l) })
	if err := l.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, l)
	c := loadConfig(t, l)
	a, _ := c.Site("a")
	if len(a.Hosts) != 100 {
		t.Fatalf("site a has %d hosts; want 100", len(a.Hosts))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	hosts := dialHosts(ctx, t, a.Hosts)
	for i, h := range hosts {
		vcpus, mem, err := h.Capacity(ctx)
		if err != nil || vcpus != a.Hosts[i].VCPUs || mem != a.Hosts[i].MemoryMiB {
			t.Errorf("host %s: %d vCPUs, %d MiB (%v); want %d, %d", h.Name(), vcpus, mem, err, a.Hosts[i].VCPUs, a.Hosts[i].MemoryMiB)
		}
	}
	guest := GuestSpec{Name: "lonely", VCPUs: 1, MemoryMiB: 256}
	if _, err := hosts[0].Define(ctx, domainXML(guest)); err != nil {
		t.Fatal(err)
	}
	if err := hosts[0].Start(ctx, guest.Name); err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts[:2] {
		doms, err := h.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if has := slices.ContainsFunc(doms, func(d hypervisor.Domain) bool { return d.Name == guest.Name }); has != (i == 0) {
			t.Errorf("host %s lists %v; want guest %s on %s alone", h.Name(), doms, guest.Name, hosts[0].Name())
		}
	}
}

// dialHosts connects to every host at once and waits until each answers.
func dialHosts(ctx context.Context, t *testing.T, hosts []config.Host) []*hypervisor.Host {
	t.Helper()
	out := make([]*hypervisor.Host, len(hosts))
	for i, h := range hosts {
		hv, err := hypervisor.Dial(ctx, h.URI, hypervisor.Options{Name: h.Name, FailAfter: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hv.Close() })
		out[i] = hv
	}
	var silent []error
	for _, hv := range out {
		if _, err := hv.Await(ctx, func(h hypervisor.Health) bool { return h.Connected }); err != nil {
			silent = append(silent, fmt.Errorf("host %s: %w (%v)", hv.Name(), err, hv.Health().Err))
		}
	}
	if err := errors.Join(silent...); err != nil {
		t.Fatalf("not every host answers: %v", err)
	}
	return out
}

// survivorsShort reports whether the sites other than dark have fewer
// usable vCPUs than every guest needs.
func survivorsShort(c *config.Cluster, dark string) bool {
	var room, need float64
	for _, h := range c.Hosts() {
		if h.Site != dark {
			room += float64(h.VCPUs) * h.CPUOvercommit
		}
	}
	for _, g := range c.Guests() {
		need += float64(g.VCPUs)
	}
	return room < need
}

// BenchmarkLoadScaleConfig loads the zdt.yaml of the scale lab:
// 1,000 services with 10,000 prefixes, 10,000 guests, 300 hosts.
func BenchmarkLoadScaleConfig(b *testing.B) {
	top, err := ScaleTopology(DefaultTopology(), Scale{Services: 1000, Guests: 10_000, Hosts: 300})
	if err != nil {
		b.Fatal(err)
	}
	l, err := Create(b.TempDir(), Options{Topology: &top, Libvirtd: "/bin/true", Postgres: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := config.Load(l.ConfigPath())
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Guests()) < 10_000 {
			b.Fatalf("%d guests; want 10,000", len(c.Guests()))
		}
	}
}
