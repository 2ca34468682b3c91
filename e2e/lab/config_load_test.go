package lab

import (
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zdt-project/zdt/failover"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// loadConfig loads the lab's zdt.yaml with the real config package; it must
// load without a single problem.
func loadConfig(t *testing.T, l *Lab) *config.Cluster {
	t.Helper()
	c, err := config.Load(l.ConfigPath())
	if problems, ok := errors.AsType[config.Problems](err); ok {
		t.Fatalf("the lab's zdt.yaml has problems:\n%v", problems)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigLoads checks the lab's zdt.yaml against the real config
// package: it must load without a single problem and say what the topology
// says, with libvirtd (hosts and guests) and without, with PostgreSQL
// (its group asynchronous unless Options.Synchronous) and without.
func TestConfigLoads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		opts     func(*testing.T) Options
		guests   bool
		postgres bool // the lab must have its group
		// synchronous is Options.Synchronous, and what the group must say.
		synchronous bool
	}{
		{"with libvirtd", withLibvirtd, true, false, false},
		{"without libvirtd", withoutLibvirtd, false, false, false},
		{"with postgres", withFakePostgres, false, true, false},
		{"with postgres, synchronous", withFakePostgres, false, true, true},
		{"without postgres, synchronous", withoutLibvirtd, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			top := DefaultTopology()
			opts := tc.opts(t)
			opts.Topology = &top
			opts.Synchronous = tc.synchronous
			l, err := Create(t.TempDir(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.guests {
				top = top.WithoutGuests()
			}
			if l.PostgresOff() != nil {
				if tc.postgres {
					t.Fatalf("the lab has no PostgreSQL: %v", l.PostgresOff())
				}
				top = top.WithoutPostgres()
			}
			checkConfig(t, l, top, tc.synchronous, loadConfig(t, l))
		})
	}
}

// checkConfig checks the loaded config against the topology; synchronous
// is what its replication group (if any) must say.
func checkConfig(t *testing.T, l *Lab, top Topology, synchronous bool, c *config.Cluster) {
	t.Helper()
	if c.Name != top.Cluster {
		t.Errorf("cluster %q; want %q", c.Name, top.Cluster)
	}
	want := config.Timings{
		LeaseTTL:            top.Timings.LeaseTTL,
		RenewInterval:       top.Timings.RenewInterval,
		SelfFenceMargin:     top.Timings.SelfFenceMargin,
		EtcdHeartbeat:       top.Timings.EtcdHeartbeat,
		EtcdElectionTimeout: top.Timings.EtcdElectionTimeout,
		BootstrapGrace:      top.Timings.BootstrapGrace,
		HostFailAfter:       top.Timings.HostFailAfter,
	}
	if c.Timings != want {
		t.Errorf("timings %+v; want %+v", c.Timings, want)
	}
	if want := (config.Fencing{Timeout: top.Timings.FenceTimeout}); c.Fencing != want {
		t.Errorf("fencing %+v; want %+v", c.Fencing, want)
	}
	if want := (config.FailStatic{Enabled: true, CheckTimeout: (top.Timings.LeaseTTL - top.Timings.SelfFenceMargin) / 5,
		CA: filepath.Join(l.Dir(), certPath(caName))}); c.FailStatic != want {
		t.Errorf("fail static %+v; want %+v", c.FailStatic, want)
	}
	if got, want := c.SiteNames(), top.siteNames(); !slices.Equal(got, want) {
		t.Errorf("sites %v; want %v", got, want)
	}
	for _, s := range top.Sites {
		got, _ := c.Site(s.Name)
		want := config.Site{
			Name:     s.Name,
			API:      top.API(s),
			PeerAPI:  top.PeerAPI(s),
			PeerCert: filepath.Join(l.Dir(), certPath(s.Name)),
			PeerKey:  filepath.Join(l.Dir(), keyPath(s.Name)),
			APICert:  filepath.Join(l.Dir(), certPath(s.Name)),
			APIKey:   filepath.Join(l.Dir(), keyPath(s.Name)),
			Etcd: config.SiteEtcd{
				ClientURL: top.EtcdClientURL(s),
				PeerURL:   top.EtcdPeerURL(s),
				Cert:      filepath.Join(l.Dir(), certPath(s.Name)),
				Key:       filepath.Join(l.Dir(), keyPath(s.Name)),
			},
		}
		for _, h := range s.Hosts {
			want.Hosts = append(want.Hosts, config.Host{
				Name: h.Name, Site: s.Name,
				URI:   "test+unix:///default?socket=" + filepath.Join(l.Dir(), s.Name, "libvirt", "libvirt-sock"),
				VCPUs: h.VCPUs, MemoryMiB: h.MemoryMiB, CPUOvercommit: h.CPUOvercommit, MemoryOvercommit: 1,
			})
		}
		if b := top.BGP; b != nil {
			want.BGP = &config.SiteBGP{ASN: s.ASN, RouterID: s.RouterID, Interface: config.DefaultBGPInterface,
				Peers: []config.BGPPeer{{
					Address: b.ObserverListen.Addr(), ASN: b.ObserverASN, Port: b.ObserverListen.Port(), LocalAddress: s.IP,
					HoldTime: b.HoldTime, Keepalive: b.Keepalive, ConnectRetry: b.ConnectRetry, Description: "the lab's route observer",
					Families: []string{"ipv4", "ipv6"},
				}}}
		}
		if !reflect.DeepEqual(got.BGP, want.BGP) {
			t.Errorf("site %s's bgp: %+v; want %+v", s.Name, got.BGP, want.BGP)
		}
		got.BGP, want.BGP = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("site %s: %+v; want %+v", s.Name, got, want)
		}
	}
	wantTLS := &config.TLS{
		CA:   filepath.Join(l.Dir(), certPath(caName)),
		Cert: filepath.Join(l.Dir(), certPath(clientName)),
		Key:  filepath.Join(l.Dir(), keyPath(clientName)),
	}
	if !reflect.DeepEqual(c.Etcd.TLS, wantTLS) {
		t.Errorf("etcd TLS %+v; want %+v", c.Etcd.TLS, wantTLS)
	}
	// The API: TLS with the CA of etcd, the client certificate is the
	// admin, and a token per role whose hash is in the config.
	if c.API.CA != wantTLS.CA || len(c.Plaintext()) != 0 || c.InsecurePlaintext {
		t.Errorf("api CA %q, plaintext %q, insecure %v; want %q, none, false", c.API.CA, c.Plaintext(), c.InsecurePlaintext, wantTLS.CA)
	}
	wantIDs := []config.Identity{{Name: "lab-admin", Role: config.RoleAdmin, CertCN: "zdt client"}}
	for _, role := range TokenRoles {
		token, err := l.Token(role)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs = append(wantIDs, config.Identity{Name: role, Role: config.Role(role), TokenSHA256: sha256.Sum256([]byte(token)), HasToken: true})
	}
	if !reflect.DeepEqual(c.API.Identities, wantIDs) {
		t.Errorf("api identities %+v; want %+v", c.API.Identities, wantIDs)
	}
	for _, svc := range top.Services {
		got, ok := c.Service(svc.Name)
		if !ok || !slices.Equal(got.Sites, svc.Sites) || !slices.Equal(got.Prefixes, svc.Prefixes) || got.RTO != 30*time.Second {
			t.Errorf("service %s: %+v; want sites %v, prefixes %v, RTO 30s", svc.Name, got, svc.Sites, svc.Prefixes)
		}
		var want []config.Guest
		for _, g := range svc.Guests {
			want = append(want, config.Guest{
				Name: g.Name, Service: svc.Name, Tier: g.Tier, Zone: g.Zone, VCPUs: g.VCPUs, MemoryMiB: g.MemoryMiB,
				Domain: filepath.Join(l.Dir(), "domains", g.Name+".xml"),
			})
		}
		if !reflect.DeepEqual(got.Guests, want) {
			t.Errorf("service %s's guests: %+v; want %+v", svc.Name, got.Guests, want)
		}
	}
	if c.Placement.ZoneScope != config.ZoneScopeCluster {
		t.Errorf("placement zone scope %q; want cluster", c.Placement.ZoneScope)
	}
	checkBGPConfig(t, top, c)
	checkReplicationConfig(t, l, top, synchronous, c)
}

func checkBGPConfig(t *testing.T, top Topology, c *config.Cluster) {
	t.Helper()
	b := top.BGP
	if b == nil {
		if c.BGP.Observer != nil || c.BGPEnabled() {
			t.Errorf("bgp %+v without a BGP topology", c.BGP)
		}
		return
	}
	want := &config.Observer{ASN: b.ObserverASN, RouterID: b.ObserverRouterID, Listen: b.ObserverListen}
	for _, s := range top.Sites {
		want.Peers = append(want.Peers, config.ObserverPeer{Address: s.IP, ASN: s.ASN, Site: s.Name})
	}
	if !reflect.DeepEqual(c.BGP.Observer, want) {
		t.Errorf("observer %+v; want %+v", c.BGP.Observer, want)
	}
	if c.BGP.MinChangeInterval != b.MinChangeInterval {
		t.Errorf("min_change_interval %s; want %s", c.BGP.MinChangeInterval, b.MinChangeInterval)
	}
}

func checkReplicationConfig(t *testing.T, l *Lab, top Topology, synchronous bool, c *config.Cluster) {
	t.Helper()
	pg := top.Postgres
	if pg == nil {
		if len(c.Replication) > 0 {
			t.Errorf("replication %+v without PostgreSQL", c.Replication)
		}
		return
	}
	if len(c.Replication) != 1 {
		t.Fatalf("replication groups %+v; want one", c.Replication)
	}
	g := c.Replication[0]
	if g.Name != pg.Group || g.Driver != config.DriverPostgres || g.Synchronous != synchronous {
		t.Errorf("group %s, driver %s, synchronous %t; want %s, postgres, synchronous %t", g.Name, g.Driver, g.Synchronous, pg.Group, synchronous)
	}
	svc, _ := c.Service(pg.Service)
	if svc.ReplicationGroup != pg.Group {
		t.Errorf("service %s's replication group %q; want %s", pg.Service, svc.ReplicationGroup, pg.Group)
	}
	for _, s := range top.Sites {
		m, ok := g.Member(s.Name)
		if !ok {
			t.Errorf("group %s has no member at site %s", g.Name, s.Name)
			continue
		}
		if want := fmt.Sprintf("host=%s port=%d user=zdt dbname=postgres", s.IP, pg.Port); m.Conn != want {
			t.Errorf("site %s: conn %q; want %q", s.Name, m.Conn, want)
		}
		if m.Password == "" || m.PasswordFile != filepath.Join(l.Dir(), "secrets", "pg.pass") {
			t.Errorf("site %s: password file %s (password %q)", s.Name, m.PasswordFile, m.Password)
		}
		if !strings.Contains(m.ReplicationConn, "passfile="+filepath.Join(l.Dir(), "secrets", "pgpass")) {
			t.Errorf("site %s: replication conn %q names no passfile", s.Name, m.ReplicationConn)
		}
		if m.DataDir != filepath.Join(l.Dir(), s.Name, "postgres", "data") || m.BinDir == "" {
			t.Errorf("site %s: data dir %s, bin dir %s", s.Name, m.DataDir, m.BinDir)
		}
	}
}

// TestDomainXML: every guest's domain XML exists where the config says and
// is a test-driver domain of its name and size.
func TestDomainXML(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), withLibvirtd(t))
	if err != nil {
		t.Fatal(err)
	}
	c := loadConfig(t, l)
	if len(c.Guests()) != len(DefaultTopology().Guests()) {
		t.Fatalf("the config has %d guests; want %d", len(c.Guests()), len(DefaultTopology().Guests()))
	}
	for _, g := range c.Guests() {
		data, err := os.ReadFile(g.Domain)
		if err != nil {
			t.Errorf("guest %s: %v", g.Name, err)
			continue
		}
		var d struct {
			XMLName xml.Name `xml:"domain"`
			Type    string   `xml:"type,attr"`
			Name    string   `xml:"name"`
			Memory  struct {
				Unit  string `xml:"unit,attr"`
				Value int64  `xml:",chardata"`
			} `xml:"memory"`
			VCPU int `xml:"vcpu"`
			OS   struct {
				Type string `xml:"type"`
			} `xml:"os"`
		}
		if err := xml.Unmarshal(data, &d); err != nil {
			t.Errorf("guest %s: %s does not parse: %v\n%s", g.Name, g.Domain, err, data)
			continue
		}
		if d.Type != "test" || d.Name != g.Name || d.Memory.Unit != "MiB" || d.Memory.Value != g.MemoryMiB || d.VCPU != g.VCPUs || d.OS.Type != "hvm" {
			t.Errorf("guest %s (%d vCPUs, %d MiB): %s says %+v", g.Name, g.VCPUs, g.MemoryMiB, g.Domain, d)
		}
	}
	if info, err := os.Stat(filepath.Join(l.Dir(), domainsDir)); err != nil || !info.IsDir() {
		t.Errorf("%s: %v", domainsDir, err)
	}
}

// TestSampleGuestsPlacement runs the coordinator's placement on the sample:
// with every site up every guest runs; when any one site goes dark, every
// gold guest runs at another site, the zone rules hold, and a bronze guest
// stops for want of room (preempted, or unplaced if it ran at the dark
// site).
func TestSampleGuestsPlacement(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), withLibvirtd(t))
	if err != nil {
		t.Fatal(err)
	}
	c := loadConfig(t, l)
	up := &site.Snapshot{Alive: map[string]site.Alive{}, Fences: map[string]site.Fence{}, Placements: map[string]site.Placement{}, Hosts: map[string]site.HostsReport{}}
	for _, name := range c.SiteNames() {
		up.Alive[name] = site.Alive{Site: name}
	}
	place(t, c, up)
	for _, g := range c.Guests() {
		if p := up.Placements[g.Name]; p.State != site.GuestRunning {
			t.Errorf("every site up: guest %s is %s (%s); want running", g.Name, p.State, p.Reason)
		}
	}
	for _, dark := range c.SiteNames() {
		t.Run("without "+dark, func(t *testing.T) {
			snap := &site.Snapshot{Alive: map[string]site.Alive{}, Fences: map[string]site.Fence{dark: {Site: dark}},
				Placements: maps.Clone(up.Placements), Hosts: map[string]site.HostsReport{}}
			maps.Copy(snap.Alive, up.Alive)
			place(t, c, snap)
			sites := map[string]string{}
			stopped := 0
			for _, g := range c.Guests() {
				p := snap.Placements[g.Name]
				sites[g.Name] = p.Site
				switch {
				case g.Tier == config.TierGold && (p.State != site.GuestRunning || p.Site == dark):
					t.Errorf("gold guest %s is %s at %q (%s); want running at a site other than %s", g.Name, p.State, p.Site, p.Reason, dark)
				case g.Tier == config.TierBronze && p.State != site.GuestRunning:
					stopped++
				}
			}
			if sites["web-gold-a"] == sites["web-gold-b"] {
				t.Errorf("web-gold-a and web-gold-b both at site %s", sites["web-gold-a"])
			}
			if stopped == 0 {
				t.Errorf("every bronze guest still runs: %+v", snap.Placements)
			}
		})
	}
}

// place solves the placement and applies it to the snapshot.
func place(t *testing.T, c *config.Cluster, snap *site.Snapshot) {
	t.Helper()
	changes, err := failover.PlanPlacement(c, snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range changes {
		snap.Placements[p.Guest] = p
	}
}

// TestNetnsConfigLoads checks the zdt.yaml of a lab in network namespaces
// (without building one, which needs root): it loads without a problem,
// the sites listen on their fabric addresses, every site's speaker has its
// sessions with the observer and with the upstream router over IPv4 and
// IPv6 from its own upstream addresses, and every service has an address
// in each of its prefixes, carried by zdt0.
func TestNetnsConfigLoads(t *testing.T) {
	t.Parallel()
	top, err := DefaultTopology().WithoutGuests().WithoutPostgres().InNetns()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := errors.Join(writePKI(dir, top, time.Now()), writeConfig(dir, top, configExtras{tokenSums: map[string]string{
		"viewer": strings.Repeat("a", 64), "operator": strings.Repeat("b", 64), "admin": strings.Repeat("c", 64)}})); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(filepath.Join(dir, configName))
	if err != nil {
		t.Fatalf("the netns lab's zdt.yaml: %v", err)
	}
	if c.BGP.Observer == nil || c.BGP.Observer.Listen.String() != "192.0.2.4:1179" {
		t.Errorf("observer %+v; want it on 192.0.2.4:1179", c.BGP.Observer)
	}
	for i, s := range c.Sites {
		n := 11 + i
		if want := fmt.Sprintf("198.51.100.%d:7480", n); s.API != want {
			t.Errorf("site %s's api %q; want %q", s.Name, s.API, want)
		}
		if s.BGP == nil || s.BGP.Interface != "zdt0" || len(s.BGP.Peers) != 3 {
			t.Errorf("site %s's bgp %+v; want interface zdt0 and three peers", s.Name, s.BGP)
			continue
		}
		var got []string
		for _, p := range s.BGP.Peers {
			got = append(got, fmt.Sprintf("%s:%d from %s", p.Address, p.Port, p.LocalAddress))
		}
		want := []string{
			fmt.Sprintf("192.0.2.4:1179 from 192.0.2.%d", n),
			fmt.Sprintf("192.0.2.1:0 from 192.0.2.%d", n),
			fmt.Sprintf("2001:db8:1::1:0 from 2001:db8:1::%d", n),
		}
		if !slices.Equal(got, want) {
			t.Errorf("site %s's peers %v; want %v", s.Name, got, want)
		}
	}
	for _, svc := range c.Services {
		if len(svc.Addresses) != len(svc.Prefixes) {
			t.Errorf("service %s: addresses %v for prefixes %v; want one in each", svc.Name, svc.Addresses, svc.Prefixes)
		}
	}
}

// TestProductionTimings: a lab with ProductionTimings loads with the same
// timings as its config without any, which are the config's defaults.
func TestProductionTimings(t *testing.T) {
	t.Parallel()
	top := DefaultTopology()
	top.Timings = ProductionTimings()
	opts := withLibvirtd(t)
	opts.Topology = &top
	l, err := Create(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	given := loadConfig(t, l)
	data, err := os.ReadFile(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	m := parseYAML(t, data)
	delete(m, "timings")
	if f, ok := m["fencing"].(map[string]any); ok {
		delete(f, "timeout")
	}
	bare, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(l.Dir(), "no-timings.yaml") // beside zdt.yaml: its paths are relative
	if err := os.WriteFile(path, bare, 0o644); err != nil {
		t.Fatal(err)
	}
	defaults, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if given.Timings != defaults.Timings || given.Fencing.Timeout != defaults.Fencing.Timeout {
		t.Errorf("ProductionTimings load as %+v, fencing.timeout %s; the config's defaults are %+v, %s",
			given.Timings, given.Fencing.Timeout, defaults.Timings, defaults.Fencing.Timeout)
	}
	if given.Timings.LeaseTTL == DefaultTopology().Timings.LeaseTTL {
		t.Errorf("ProductionTimings keep the lab's lease_ttl %s", given.Timings.LeaseTTL)
	}
}
