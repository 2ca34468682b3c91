package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// wantConfig is the format of package site/config, as the lab must write it
// without libvirtd; wantHosts and wantGuests are what libvirtd adds.
const wantConfig = `
cluster: lab
etcd:
  tls:
    ca: pki/ca.pem
    cert: pki/client.pem
    key: pki/client-key.pem
api:
  identities:
    - {name: lab-admin, role: admin, cert_cn: "zdt client"}
    - {name: viewer, role: viewer, token_sha256: SUM-viewer}
    - {name: operator, role: operator, token_sha256: SUM-operator}
    - {name: admin, role: admin, token_sha256: SUM-admin}
timings:
  lease_ttl: 2s
  renew_interval: 500ms
  self_fence_margin: 500ms
  etcd_heartbeat: 50ms
  etcd_election_timeout: 500ms
  bootstrap_grace: 5s
  host_fail_after: 5s
fencing:
  timeout: 1s
  require_confirmation: false
fail_static:
  enabled: true
sites:
  - name: a
    api: 127.0.0.11:7480
    peer_api: 127.0.0.11:7481
    etcd:
      client_url: https://127.0.0.11:2379
      peer_url: https://127.0.0.11:2380
      cert: pki/a.pem
      key: pki/a-key.pem
    hosts: [{name: a1, uri: "test+unix:///default?socket=DIR/a/libvirt/libvirt-sock", vcpus: 4, memory_mib: 8192, cpu_overcommit: 1.25}]
    bgp:
      asn: 64601
      router_id: 192.0.2.11
      peers:
        - {address: 127.0.0.10, port: 1179, asn: 64500, local_address: 127.0.0.11, hold_time: 9s, keepalive: 3s, connect_retry: 1s, families: [ipv4, ipv6], description: the lab's route observer}
  - name: b
    api: 127.0.0.12:7480
    peer_api: 127.0.0.12:7481
    etcd:
      client_url: https://127.0.0.12:2379
      peer_url: https://127.0.0.12:2380
      cert: pki/b.pem
      key: pki/b-key.pem
    hosts: [{name: b1, uri: "test+unix:///default?socket=DIR/b/libvirt/libvirt-sock", vcpus: 4, memory_mib: 8192, cpu_overcommit: 1.25}]
    bgp:
      asn: 64602
      router_id: 192.0.2.12
      peers:
        - {address: 127.0.0.10, port: 1179, asn: 64500, local_address: 127.0.0.12, hold_time: 9s, keepalive: 3s, connect_retry: 1s, families: [ipv4, ipv6], description: the lab's route observer}
  - name: c
    api: 127.0.0.13:7480
    peer_api: 127.0.0.13:7481
    etcd:
      client_url: https://127.0.0.13:2379
      peer_url: https://127.0.0.13:2380
      cert: pki/c.pem
      key: pki/c-key.pem
    hosts: [{name: c1, uri: "test+unix:///default?socket=DIR/c/libvirt/libvirt-sock", vcpus: 4, memory_mib: 8192, cpu_overcommit: 1.25}]
    bgp:
      asn: 64603
      router_id: 192.0.2.13
      peers:
        - {address: 127.0.0.10, port: 1179, asn: 64500, local_address: 127.0.0.13, hold_time: 9s, keepalive: 3s, connect_retry: 1s, families: [ipv4, ipv6], description: the lab's route observer}
services:
  - name: web
    sites: [a, b, c]
    prefixes: [203.0.113.0/26, "2001:db8:a::/48"]
    rto: 30s
    guests:
      - {name: web-gold-a, tier: gold, zone: A, vcpus: 2, memory_mib: 1024, domain: domains/web-gold-a.xml}
      - {name: web-gold-b, tier: gold, zone: B, vcpus: 2, memory_mib: 1024, domain: domains/web-gold-b.xml}
      - {name: web-silver-a, tier: silver, zone: A, vcpus: 1, memory_mib: 512, domain: domains/web-silver-a.xml}
      - {name: web-silver-b, tier: silver, zone: B, vcpus: 1, memory_mib: 512, domain: domains/web-silver-b.xml}
  - name: db
    sites: [b, c, a]
    prefixes: [203.0.113.64/26, "2001:db8:b::/48"]
    rto: 30s
    guests:
      - {name: db-gold, tier: gold, vcpus: 2, memory_mib: 2048, domain: domains/db-gold.xml}
      - {name: db-bronze-1, tier: bronze, vcpus: 2, memory_mib: 1024, domain: domains/db-bronze-1.xml}
      - {name: db-bronze-2, tier: bronze, vcpus: 2, memory_mib: 1024, domain: domains/db-bronze-2.xml}
placement:
  zone_scope: cluster
bgp:
  min_change_interval: 3s
  observer:
    asn: 64500
    router_id: 192.0.2.1
    listen: 127.0.0.10:1179
    peers:
      - {address: 127.0.0.11, asn: 64601, site: a}
      - {address: 127.0.0.12, asn: 64602, site: b}
      - {address: 127.0.0.13, asn: 64603, site: c}
`

// withLibvirtd makes Create write hosts and guests whether or not libvirtd
// is installed: any executable will do when nothing is started.
func withLibvirtd(t *testing.T) Options {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{Binary: "unused", Libvirtd: self, Postgres: noPostgres(t)}
}

// withoutLibvirtd makes Create find no libvirtd.
func withoutLibvirtd(t *testing.T) Options {
	return Options{Binary: "unused", Libvirtd: filepath.Join(t.TempDir(), "no-libvirtd"), Postgres: noPostgres(t)}
}

// withFakePostgres makes Create write the replication group: a bin
// directory with every program will do when nothing is started. As root,
// the servers' user must reach the lab: the test's directories let it.
func withFakePostgres(t *testing.T) Options {
	t.Helper()
	bin := t.TempDir()
	for _, p := range pgPrograms {
		if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(bin), 0o711); err != nil {
		t.Fatal(err)
	}
	return Options{Binary: "unused", Libvirtd: filepath.Join(t.TempDir(), "no-libvirtd"), Postgres: bin}
}

// noPostgres is a PostgreSQL bin directory that has nothing: Create leaves
// the replication group out.
func noPostgres(t *testing.T) string { return filepath.Join(t.TempDir(), "no-postgres") }

// parseYAML parses a config into plain maps and lists.
func parseYAML(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return m
}

// withTokenSums puts the SHA-256 of the lab's tokens (random) in place of
// SUM-<role> in a config.
func withTokenSums(t *testing.T, l *Lab, config string) string {
	t.Helper()
	for _, role := range TokenRoles {
		token, err := l.Token(role)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(token))
		config = strings.ReplaceAll(config, "SUM-"+role, hex.EncodeToString(sum[:]))
	}
	return config
}

// stripGuests removes from a parsed config what libvirtd adds.
func stripGuests(m map[string]any) {
	delete(m, "placement")
	for _, s := range m["sites"].([]any) {
		delete(s.(map[string]any), "hosts")
	}
	for _, s := range m["services"].([]any) {
		delete(s.(map[string]any), "guests")
	}
}

func TestConfigParsesBack(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), withLibvirtd(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	got := parseYAML(t, data)
	want := parseYAML(t, []byte(strings.ReplaceAll(withTokenSums(t, l, wantConfig), "DIR", l.Dir())))
	if !reflect.DeepEqual(got, want) {
		gotYAML, _ := yaml.Marshal(got)
		wantYAML, _ := yaml.Marshal(want)
		t.Errorf("the lab's zdt.yaml says\n%s\nwant\n%s", gotYAML, wantYAML)
	}
	// It is the example users read: it explains itself.
	comments := 0
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			comments++
		}
	}
	if comments < 40 {
		t.Errorf("the lab's zdt.yaml has %d comment lines; it should explain itself", comments)
	}
	if info, err := os.Stat(l.ConfigPath()); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("zdt.yaml: %v, %v; want mode 0644", info.Mode(), err)
	}
}

func TestOpenReadsTheConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Create(dir, withLibvirtd(t)); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{Binary: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	want := []SiteAddrs{
		{Name: "a", API: "127.0.0.11:7480", EtcdClientURL: "https://127.0.0.11:2379", EtcdPeerURL: "https://127.0.0.11:2380"},
		{Name: "b", API: "127.0.0.12:7480", EtcdClientURL: "https://127.0.0.12:2379", EtcdPeerURL: "https://127.0.0.12:2380"},
		{Name: "c", API: "127.0.0.13:7480", EtcdClientURL: "https://127.0.0.13:2379", EtcdPeerURL: "https://127.0.0.13:2380"},
	}
	if got := l.Sites(); !reflect.DeepEqual(got, want) {
		t.Errorf("Sites() = %v; want %v", got, want)
	}
	if l.Cluster() != "lab" {
		t.Errorf("Cluster() = %q; want lab", l.Cluster())
	}
	if !l.HasHypervisors() {
		t.Error("HasHypervisors() = false; want true")
	}
	for _, name := range l.SiteNames() {
		if got, want := l.libvirtdSocket(name), filepath.Join(dir, name, "libvirt", "libvirt-sock"); got != want {
			t.Errorf("site %s's libvirtd socket %s; want %s", name, got, want)
		}
	}
	if _, err := l.Site("x"); err == nil || !strings.Contains(err.Error(), "a, b, c") {
		t.Errorf(`Site("x") = %v; want an error that lists a, b, c`, err)
	}
}

func TestFlowList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "[]"},
		{[]string{"a", "b"}, "[a, b]"},
		{[]string{"203.0.113.0/26", "2001:db8:a::/48"}, `[203.0.113.0/26, "2001:db8:a::/48"]`},
		{[]string{"", "x y", "#"}, `["", "x y", "#"]`},
	} {
		if got := flowList(tc.in); got != tc.want {
			t.Errorf("flowList(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

func TestTopologyValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*Topology)
		want   string // "" for valid
	}{
		{"default", func(*Topology) {}, ""},
		{"no sites", func(t *Topology) { t.Sites = nil }, "no sites"},
		{"twice", func(t *Topology) { t.Sites[1].Name = "a" }, "appears twice"},
		{"reserved", func(t *Topology) { t.Sites[0].Name = "client" }, "taken"},
		{"path", func(t *Topology) { t.Sites[0].Name = "../x" }, "cannot name a directory"},
		{"unknown service site", func(t *Topology) { t.Services[0].Sites = []string{"z"} }, `unknown site "z"`},
		{"two hosts", func(t *Topology) { t.Sites[0].Hosts = append(t.Sites[0].Hosts, labHost("a2")) }, "at most one"},
		{"guest path", func(t *Topology) { t.Services[0].Guests[0].Name = "../x" }, "plain name"},
		{"without guests", func(t *Topology) { *t = t.WithoutGuests() }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := DefaultTopology()
			tc.change(&top)
			err := top.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate() = %v; want an error about %q", err, tc.want)
			}
		})
	}
}

// TestConfigWithoutLibvirtd: without libvirtd the lab has no hosts and no
// guests, and its config says what to install.
func TestConfigWithoutLibvirtd(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), withoutLibvirtd(t))
	if err != nil {
		t.Fatal(err)
	}
	if l.HasHypervisors() {
		t.Error("HasHypervisors() = true without libvirtd")
	}
	data, err := os.ReadFile(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	want := parseYAML(t, []byte(withTokenSums(t, l, wantConfig)))
	stripGuests(want)
	if got := parseYAML(t, data); !reflect.DeepEqual(got, want) {
		gotYAML, _ := yaml.Marshal(got)
		wantYAML, _ := yaml.Marshal(want)
		t.Errorf("the lab's zdt.yaml says\n%s\nwant\n%s", gotYAML, wantYAML)
	}
	if !strings.Contains(string(data), InstallLibvirtd) {
		t.Errorf("the lab's zdt.yaml does not say to run %q:\n%s", InstallLibvirtd, data)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), domainsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s without guests: %v; want none", domainsDir, err)
	}
}

// TestSocketDir: a lab directory too long for libvirtd's sockets has them
// in a short directory elsewhere, which the URI names.
func TestSocketDir(t *testing.T) {
	t.Parallel()
	short := "/tmp/zdt-lab-1"
	if got, err := socketDir(short, "a"); err != nil || got != short+"/a/libvirt" {
		t.Errorf("socketDir(%s, a) = %s, %v; want %s/a/libvirt", short, got, err, short)
	}
	long := "/tmp/" + strings.Repeat("x", 90)
	got, err := socketDir(long, "a")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(got, long) || len(got+"/libvirt-admin-sock") > 107 {
		t.Errorf("socketDir(long, a) = %s; want a short path outside the lab", got)
	}
	if other, _ := socketDir(long+"y", "a"); other == got {
		t.Errorf("two labs share the socket directory %s", got)
	}
	uri := hostURI("/tmp/a+b c")
	if sock, err := socketOf(uri); err != nil || sock != "/tmp/a+b c/libvirt-sock" {
		t.Errorf("socketOf(%s) = %s, %v; want /tmp/a+b c/libvirt-sock", uri, sock, err)
	}
}
