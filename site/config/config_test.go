package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fullYAML is the example of the package's documentation: every field set.
const fullYAML = `cluster: lab
etcd:
  endpoints: [https://127.0.0.11:2379, https://127.0.0.12:2379]
  dial_timeout: 3s
  tls:
    ca: pki/ca.pem
    cert: pki/client.pem
    key: pki/client-key.pem
timings:
  lease_ttl: 4s
  renew_interval: 1200ms
  self_fence_margin: 1s
  etcd_heartbeat: 50ms
  etcd_election_timeout: 500ms
  bootstrap_grace: 20s
sites:
  - name: a
    api: 127.0.0.11:7480
    etcd:
      client_url: https://127.0.0.11:2379
      peer_url: https://127.0.0.11:2380
      cert: pki/a.pem
      key: pki/a-key.pem
    hosts:
      - name: a1
        uri: test+unix:///default?socket=/run/zdt/a1.sock
        vcpus: 16
        memory_mib: 65536
        cpu_overcommit: 2
      - name: a2
        uri: qemu+tcp://198.51.100.5/system
    bgp:
      asn: 64601
      router_id: 192.0.2.11
      interface: svc0
      peers:
        - address: 192.0.2.1
          asn: 64500
          port: 1179
          local_address: 192.0.2.11
          password_file: secrets/a-upstream.pass
          hold_time: 6s
          keepalive: 2s
          connect_retry: 1s
          multihop: 2
          passive: true
          description: upstream router
        - {address: "2001:db8:1::1", asn: 64500}
  - name: b
    api: 127.0.0.12:7480
    etcd:
      client_url: https://127.0.0.12:2379
      peer_url: https://127.0.0.12:2380
      cert: pki/b.pem
      key: pki/b-key.pem
    bgp: {asn: 64602, router_id: 192.0.2.12, peers: [{address: 192.0.2.1, asn: 64500}]}
  - name: c
    api: "[2001:db8::13]:7480"
    etcd:
      client_url: http://127.0.0.13:2379
      peer_url: http://127.0.0.13:2380
    bgp: {asn: 64603, router_id: 192.0.2.13, peers: [{address: 192.0.2.1, asn: 64500}]}
services:
  - name: web
    sites: [a, b, c]
    prefixes: [203.0.113.0/26, "2001:db8:a::/48"]
    addresses: [203.0.113.10, "2001:db8:a::10"]
    prepend_step: 2
    replication_group: pg-web
    rpo: {max_lag_bytes: 1048576, max_lag_seconds: 2.5, require_sync: true}
    guests:
      - {name: web-1, tier: gold, zone: A, vcpus: 2, memory_mib: 4096, domain: domains/web-1.xml}
      - {name: web-2, tier: Silver, zone: none, vcpus: 1, memory_mib: 2048, domain: domains/web-2.xml}
  - name: db
    sites: [c]
placement:
  zone_scope: service
bgp:
  headroom: 3
  prepend_step: 1
  max_prepends: 12
  min_change_interval: 10s
  observer:
    asn: 64500
    router_id: 192.0.2.1
    listen: 127.0.0.10:1179
    peers:
      - {address: 127.0.0.11, asn: 64601, site: a}
      - {address: 192.0.2.254, asn: 64510}
replication:
  groups:
    - name: pg-web
      driver: postgres
      synchronous: true
      members:
        - site: a
          conn: host=127.0.0.11 port=5432 user=zdt dbname=postgres
          password_file: secrets/pg.pass
          replication_conn: host=127.0.0.11 port=5432 user=replicator
          data_dir: pg/a
          bin_dir: /usr/lib/postgresql/15/bin
          os_user: postgres
        - {site: b, conn: host=127.0.0.12 user=zdt, replication_conn: host=127.0.0.12 user=replicator}
        - {site: c, conn: host=127.0.0.13 user=zdt, replication_conn: host=127.0.0.13 user=replicator}
    - name: disk
      driver: drbd
      members: [{site: a, resource: r0}, {site: b, resource: r0}]
fencing:
  timeout: 1500ms
  require_confirmation: true
`

// baseYAML is a small valid config that relies on the defaults. The bad
// config cases edit it; the line numbers they expect are those below.
const baseYAML = `cluster: lab
etcd:
  dial_timeout: 2s
  tls:
    ca: pki/ca.pem
    cert: pki/client.pem
    key: pki/client-key.pem
timings:
  lease_ttl: 3s
  etcd_heartbeat: 100ms
  etcd_election_timeout: 500ms
sites:
  - name: a
    api: 127.0.0.11:7480
    etcd:
      client_url: https://127.0.0.11:2379
      peer_url: https://127.0.0.11:2380
      cert: pki/a.pem
      key: pki/a-key.pem
  - name: b
    api: 127.0.0.12:7480
    etcd:
      client_url: https://127.0.0.12:2379
      peer_url: https://127.0.0.12:2380
      cert: pki/b.pem
      key: pki/b-key.pem
  - name: c
    api: 127.0.0.13:7480
    etcd:
      client_url: https://127.0.0.13:2379
      peer_url: https://127.0.0.13:2380
      cert: pki/c.pem
      key: pki/c-key.pem
services:
  - name: web
    sites: [a, b, c]
    prefixes: [203.0.113.0/26, "2001:db8:a::/48"]
    replication_group: pg-web
  - name: db
    sites: [b, a]
    prefixes: [198.51.100.0/24]
replication:
  groups:
    - name: pg-web
      driver: postgres
      members:
        - {site: a, conn: host=127.0.0.11 user=zdt, replication_conn: host=127.0.0.11 user=replicator}
        - {site: b, conn: host=127.0.0.12 user=zdt, replication_conn: host=127.0.0.12 user=replicator}
        - {site: c, conn: host=127.0.0.13 user=zdt, replication_conn: host=127.0.0.13 user=replicator}
`

var pkiFiles = []string{"ca.pem", "client.pem", "client-key.pem", "a.pem", "a-key.pem", "b.pem", "b-key.pem", "c.pem", "c-key.pem"}

// writeConfig writes data as zdt.yaml into a new directory with the
// (empty) PEM files the examples name, and returns the directory and the
// file's path.
func writeConfig(t testing.TB, data string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pki"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range pkiFiles {
		if err := os.WriteFile(filepath.Join(dir, "pki", f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "domains"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2", "db-1"} {
		xml := "<domain type='test'><name>" + name + "</name></domain>"
		if err := os.WriteFile(filepath.Join(dir, "domains", name+".xml"), []byte(xml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"a-upstream.pass": "s3cret\n", "pg.pass": "pgpass\n"} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "zdt.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func mustLoad(t *testing.T, data string) (*Cluster, string) {
	t.Helper()
	dir, path := writeConfig(t, data)
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, dir
}

func TestLoadFull(t *testing.T) {
	c, dir := mustLoad(t, fullYAML)
	pki := func(f string) string { return filepath.Join(dir, "pki", f) }
	want := &Cluster{
		Name: "lab",
		Path: filepath.Join(dir, "zdt.yaml"),
		Etcd: Etcd{
			Endpoints:   []string{"https://127.0.0.11:2379", "https://127.0.0.12:2379"},
			DialTimeout: 3 * time.Second,
			TLS:         &TLS{CA: pki("ca.pem"), Cert: pki("client.pem"), Key: pki("client-key.pem")},
		},
		Timings: Timings{
			LeaseTTL:            4 * time.Second,
			RenewInterval:       1200 * time.Millisecond,
			SelfFenceMargin:     time.Second,
			EtcdHeartbeat:       50 * time.Millisecond,
			EtcdElectionTimeout: 500 * time.Millisecond,
			BootstrapGrace:      20 * time.Second,
			HostFailAfter:       10 * time.Second,
		},
		Sites: []Site{
			{Name: "a", API: "127.0.0.11:7480", APICert: pki("a.pem"), APIKey: pki("a-key.pem"), Etcd: SiteEtcd{
				ClientURL: "https://127.0.0.11:2379", PeerURL: "https://127.0.0.11:2380", Cert: pki("a.pem"), Key: pki("a-key.pem")},
				Hosts: []Host{
					{Name: "a1", Site: "a", URI: "test+unix:///default?socket=/run/zdt/a1.sock", VCPUs: 16, MemoryMiB: 65536, CPUOvercommit: 2, MemoryOvercommit: 1},
					{Name: "a2", Site: "a", URI: "qemu+tcp://198.51.100.5/system", CPUOvercommit: 1, MemoryOvercommit: 1},
				},
				BGP: &SiteBGP{ASN: 64601, RouterID: addr("192.0.2.11"), Interface: "svc0", Peers: []BGPPeer{
					{Address: addr("192.0.2.1"), ASN: 64500, Port: 1179, LocalAddress: addr("192.0.2.11"),
						Password: "s3cret", PasswordFile: filepath.Join(dir, "secrets", "a-upstream.pass"),
						HoldTime: 6 * time.Second, Keepalive: 2 * time.Second, ConnectRetry: time.Second, Multihop: 2, Passive: true,
						Description: "upstream router"},
					{Address: addr("2001:db8:1::1"), ASN: 64500, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: 5 * time.Second},
				}}},
			{Name: "b", API: "127.0.0.12:7480", APICert: pki("b.pem"), APIKey: pki("b-key.pem"), Etcd: SiteEtcd{
				ClientURL: "https://127.0.0.12:2379", PeerURL: "https://127.0.0.12:2380", Cert: pki("b.pem"), Key: pki("b-key.pem")},
				BGP: &SiteBGP{ASN: 64602, RouterID: addr("192.0.2.12"), Interface: "zdt0", Peers: []BGPPeer{
					{Address: addr("192.0.2.1"), ASN: 64500, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: 5 * time.Second}}}},
			{Name: "c", API: "[2001:db8::13]:7480", Etcd: SiteEtcd{
				ClientURL: "http://127.0.0.13:2379", PeerURL: "http://127.0.0.13:2380"},
				BGP: &SiteBGP{ASN: 64603, RouterID: addr("192.0.2.13"), Interface: "zdt0", Peers: []BGPPeer{
					{Address: addr("192.0.2.1"), ASN: 64500, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: 5 * time.Second}}}},
		},
		Services: []Service{
			{
				Name:             "web",
				Sites:            []string{"a", "b", "c"},
				Prefixes:         []netip.Prefix{netip.MustParsePrefix("203.0.113.0/26"), netip.MustParsePrefix("2001:db8:a::/48")},
				ReplicationGroup: "pg-web",
				Guests: []Guest{
					{Name: "web-1", Service: "web", Tier: TierGold, Zone: "A", VCPUs: 2, MemoryMiB: 4096, Domain: filepath.Join(dir, "domains", "web-1.xml")},
					{Name: "web-2", Service: "web", Tier: TierSilver, VCPUs: 1, MemoryMiB: 2048, Domain: filepath.Join(dir, "domains", "web-2.xml")},
				},
				Addresses:   []netip.Addr{addr("203.0.113.10"), addr("2001:db8:a::10")},
				PrependStep: 2,
				RPO:         RPO{MaxLagBytes: 1 << 20, MaxLagSeconds: 2.5, RequireSync: true},
			},
			{Name: "db", Sites: []string{"c"}, PrependStep: 1, RPO: RPO{MaxLagBytes: DefaultMaxLagBytes, MaxLagSeconds: DefaultMaxLagSeconds}},
		},
		Placement: Placement{ZoneScope: ZoneScopeService},
		BGP: BGP{Headroom: 3, PrependStep: 1, MaxPrepends: 12, MinChangeInterval: 10 * time.Second, Observer: &Observer{
			ASN: 64500, RouterID: addr("192.0.2.1"), Listen: netip.MustParseAddrPort("127.0.0.10:1179"),
			Peers: []ObserverPeer{{Address: addr("127.0.0.11"), ASN: 64601, Site: "a"}, {Address: addr("192.0.2.254"), ASN: 64510}}}},
		Replication: []ReplicationGroup{
			{Name: "pg-web", Driver: DriverPostgres, Synchronous: true, Members: []ReplicationMember{
				{Site: "a", Conn: "host=127.0.0.11 port=5432 user=zdt dbname=postgres", Password: "pgpass", PasswordFile: filepath.Join(dir, "secrets", "pg.pass"),
					ReplicationConn: "host=127.0.0.11 port=5432 user=replicator", DataDir: filepath.Join(dir, "pg", "a"),
					BinDir: "/usr/lib/postgresql/15/bin", OSUser: "postgres"},
				{Site: "b", Conn: "host=127.0.0.12 user=zdt", ReplicationConn: "host=127.0.0.12 user=replicator"},
				{Site: "c", Conn: "host=127.0.0.13 user=zdt", ReplicationConn: "host=127.0.0.13 user=replicator"},
			}},
			{Name: "disk", Driver: DriverDRBD, Members: []ReplicationMember{{Site: "a", Resource: "r0"}, {Site: "b", Resource: "r0"}}},
		},
		Fencing:    Fencing{Timeout: 1500 * time.Millisecond, RequireConfirmation: true},
		Retention:  Retention{OpsMaxAge: DefaultOpsMaxAge, OpsMaxCount: DefaultOpsMaxCount, EventsMaxAge: DefaultEventsMaxAge, EventsMaxCount: DefaultEventsMaxCount},
		FailStatic: FailStatic{CheckTimeout: 600 * time.Millisecond},
		API:        API{CA: pki("ca.pem")},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", c, want)
	}
	if got := c.MinLeaseTTL(); got != time.Second {
		t.Errorf("MinLeaseTTL() = %s, want 1s (1.5 x 500ms rounded up)", got)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestLoadDefaults(t *testing.T) {
	c, dir := mustLoad(t, baseYAML)
	want := Timings{
		LeaseTTL:            3 * time.Second,
		RenewInterval:       time.Second,
		SelfFenceMargin:     750 * time.Millisecond,
		EtcdHeartbeat:       100 * time.Millisecond,
		EtcdElectionTimeout: 500 * time.Millisecond,
		BootstrapGrace:      10 * time.Second,
		HostFailAfter:       10 * time.Second,
	}
	if c.Timings != want {
		t.Errorf("Timings = %+v, want %+v", c.Timings, want)
	}
	wantEndpoints := []string{"https://127.0.0.11:2379", "https://127.0.0.12:2379", "https://127.0.0.13:2379"}
	if !slices.Equal(c.Etcd.Endpoints, wantEndpoints) {
		t.Errorf("Etcd.Endpoints = %v, want the sites' client URLs %v", c.Etcd.Endpoints, wantEndpoints)
	}
	if c.Etcd.DialTimeout != 2*time.Second {
		t.Errorf("Etcd.DialTimeout = %s, want 2s", c.Etcd.DialTimeout)
	}
	for _, p := range []string{c.Etcd.TLS.CA, c.Etcd.TLS.Cert, c.Etcd.TLS.Key, c.Sites[2].Etcd.Cert, c.Sites[2].Etcd.Key} {
		if !filepath.IsAbs(p) || !strings.HasPrefix(p, dir) {
			t.Errorf("path %q is not absolute in %s", p, dir)
		}
	}
	if got := c.MinLeaseTTL(); got != time.Second {
		t.Errorf("MinLeaseTTL() = %s, want 1s (1.5 x 500ms rounded up)", got)
	}
	if want := (Fencing{Timeout: time.Second}); c.Fencing != want {
		t.Errorf("Fencing = %+v, want %+v (the timeout lease_ttl/3)", c.Fencing, want)
	}
}

func TestLoadMinimal(t *testing.T) {
	// No etcd section, no timings, plain http, a service without prefixes.
	const data = `cluster: x
sites:
  - {name: a, api: "10.0.0.1:7480", etcd: {client_url: "http://10.0.0.1:2379", peer_url: "http://10.0.0.1:2380"}}
  - {name: b, api: "10.0.0.2:7480", etcd: {client_url: "http://10.0.0.2:2379", peer_url: "http://10.0.0.2:2380"}}
  - {name: c, api: "10.0.0.3:7480", etcd: {client_url: "http://10.0.0.3:2379", peer_url: "http://10.0.0.3:2380"}}
services:
  - {name: web, sites: [c]}
`
	c, err := Parse("", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Path != "" || c.Etcd.TLS != nil || len(c.Etcd.Endpoints) != 3 {
		t.Errorf("Parse = %+v", c)
	}
	// The default timings leave an etcd leader election (2 x 1s) room in
	// lease_ttl - self_fence_margin - renew_interval: 6s - 1.5s - 2s = 2.5s.
	want := Timings{
		LeaseTTL:            6 * time.Second,
		RenewInterval:       2 * time.Second,
		SelfFenceMargin:     1500 * time.Millisecond,
		EtcdHeartbeat:       100 * time.Millisecond,
		EtcdElectionTimeout: time.Second,
		BootstrapGrace:      10 * time.Second,
		HostFailAfter:       10 * time.Second,
	}
	if c.Timings != want {
		t.Errorf("Timings = %+v, want the defaults %+v", c.Timings, want)
	}
	if want := (Fencing{Timeout: 2 * time.Second}); c.Fencing != want {
		t.Errorf("Fencing = %+v, want the default %+v", c.Fencing, want)
	}
	if s, _ := c.Service("web"); len(s.Prefixes) != 0 {
		t.Errorf("service web has prefixes %v, want none", s.Prefixes)
	}
}

func TestClusterLookups(t *testing.T) {
	c, _ := mustLoad(t, baseYAML)
	if got := c.SiteNames(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("SiteNames() = %v", got)
	}
	if s, ok := c.Site("b"); !ok || s.API != "127.0.0.12:7480" {
		t.Errorf(`Site("b") = %+v, %v`, s, ok)
	}
	if _, ok := c.Site("d"); ok {
		t.Error(`Site("d") found a site`)
	}
	s, ok := c.Service("db")
	if !ok || !slices.Equal(s.Sites, []string{"b", "a"}) {
		t.Errorf(`Service("db") = %+v, %v`, s, ok)
	}
	s.Sites[0] = "changed"
	if again, _ := c.Service("db"); again.Sites[0] != "b" {
		t.Error("changing the result of Service changed the cluster")
	}
	if _, ok := c.Service("nope"); ok {
		t.Error(`Service("nope") found a service`)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestMinLeaseTTL(t *testing.T) {
	for _, tc := range []struct{ election, want time.Duration }{
		{0, 0},
		{100 * time.Millisecond, time.Second},
		{time.Second, 2 * time.Second},
		{2 * time.Second, 3 * time.Second},
		{1333333334 * time.Nanosecond, 3 * time.Second},
		{1333333333 * time.Nanosecond, 2 * time.Second},
		{50 * time.Second, 75 * time.Second},
	} {
		if got := minLeaseTTL(tc.election); got != tc.want {
			t.Errorf("minLeaseTTL(%s) = %s, want %s", tc.election, got, tc.want)
		}
	}
}
