package lab

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// wantConfig is the format of package site/config, as the lab must write it.
const wantConfig = `
cluster: lab
etcd:
  tls:
    ca: pki/ca.pem
    cert: pki/client.pem
    key: pki/client-key.pem
timings:
  lease_ttl: 2s
  renew_interval: 500ms
  self_fence_margin: 600ms
  etcd_heartbeat: 100ms
  etcd_election_timeout: 1s
  bootstrap_grace: 5s
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
  - name: db
    sites: [b, c, a]
    prefixes: [203.0.113.64/26, "2001:db8:b::/48"]
`

func TestConfigParsesBack(t *testing.T) {
	t.Parallel()
	l, err := Create(t.TempDir(), Options{Binary: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatalf("the lab's zdt.yaml does not parse: %v\n%s", err, data)
	}
	if err := yaml.Unmarshal([]byte(wantConfig), &want); err != nil {
		t.Fatal(err)
	}
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
	if comments < 20 {
		t.Errorf("the lab's zdt.yaml has %d comment lines; it should explain itself", comments)
	}
	if info, err := os.Stat(l.ConfigPath()); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("zdt.yaml: %v, %v; want mode 0644", info.Mode(), err)
	}
}

func TestOpenReadsTheConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Create(dir, Options{Binary: "unused"}); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{Binary: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	want := []SiteAddrs{
		{Name: "a", API: "127.0.0.11:7480", EtcdClientURL: "https://127.0.0.11:2379"},
		{Name: "b", API: "127.0.0.12:7480", EtcdClientURL: "https://127.0.0.12:2379"},
		{Name: "c", API: "127.0.0.13:7480", EtcdClientURL: "https://127.0.0.13:2379"},
	}
	if got := l.Sites(); !reflect.DeepEqual(got, want) {
		t.Errorf("Sites() = %v; want %v", got, want)
	}
	if l.Cluster() != "lab" {
		t.Errorf("Cluster() = %q; want lab", l.Cluster())
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
