package config

import (
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics, that it fails only with
// Problems, and that what it accepts keeps the promises of the package.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullYAML,
		baseYAML,
		"",
		"---\n",
		"cluster: lab\n---\ncluster: x\n",
		"cluster: [lab\n",
		"- a\n",
		"cluster: lab\ncluster: lab\n",
		"timings: {lease_ttl: 1.5, renew_interval: abc, self_fence_margin: -1s, etcd_heartbeat: 1ns, etcd_election_timeout: 2562047h}\n",
		"cluster: x\nsites:\n  - &s {name: a, api: 1, etcd: {client_url: 3}}\n  - *s\n  - <<: *s\n    name: b\n    foo: 1\n",
		"sites: [a, {name: b}, [c]]\nservices: [{name: s, sites: [a, a, z], prefixes: [10.0.0.1/8, 10.0.0.0/8, 10.0.0.0/7, x, {}]}]\n",
		"etcd: {endpoints: [https://a:1, http://b:2, \"https://c:3/p\", tcp://d, https://[::1]:70000], tls: {ca: /dev/null}}\n",
		"timings: {lease_ttl: 3s, etcd_election_timeout: 1s}\nfencing: {timeout: 2s}\n",
		"services:\n  - name: s\n    rpo: {max_lag_bytes: -1, max_lag_seconds: .nan}\n",
		"sites:\n  - name: a\n    etcd:\n      client_url: x\n     peer_url: y\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "zdt.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(path, data)
		if err != nil {
			var problems Problems
			if !errors.As(err, &problems) || len(problems) == 0 {
				t.Fatalf("Parse failed without problems: %v", err)
			}
			if c != nil {
				t.Fatalf("Parse returned a cluster and problems: %v", err)
			}
			for _, p := range problems {
				if p.File != path || p.Msg == "" {
					t.Fatalf("malformed problem %#v", p)
				}
			}
			return
		}
		checkInvariants(t, c)
	})
}

// checkInvariants checks what every accepted cluster promises.
func checkInvariants(t *testing.T, c *Cluster) {
	t.Helper()
	names := c.SiteNames()
	if len(names) < minSites {
		t.Fatalf("accepted %d sites", len(names))
	}
	for i, n := range names {
		if !validName(n) || slices.Contains(names[:i], n) {
			t.Fatalf("accepted site name %q in %v", n, names)
		}
	}
	if !validName(c.Name) {
		t.Fatalf("accepted cluster name %q", c.Name)
	}
	for _, s := range c.Services {
		if len(s.Sites) == 0 {
			t.Fatalf("service %q has no sites", s.Name)
		}
		for _, site := range s.Sites {
			if _, ok := c.Site(site); !ok {
				t.Fatalf("service %q names unknown site %q", s.Name, site)
			}
		}
		if s.RPO.MaxLagBytes < 0 || !(s.RPO.MaxLagSeconds >= 0) || math.IsInf(s.RPO.MaxLagSeconds, 0) {
			t.Fatalf("service %q has RPO %+v", s.Name, s.RPO)
		}
		for _, p := range s.Prefixes {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("service %q has prefix %s", s.Name, p)
			}
		}
	}
	tm := c.Timings
	if tm.SelfFenceMargin <= 0 || tm.RenewInterval <= 0 || tm.RenewInterval >= tm.LeaseTTL-tm.SelfFenceMargin ||
		tm.LeaseTTL < c.MinLeaseTTL() || tm.EtcdElectionTimeout < 5*tm.EtcdHeartbeat || tm.BootstrapGrace <= 0 {
		t.Fatalf("accepted timings %+v", tm)
	}
	if 2*tm.EtcdElectionTimeout > tm.LeaseTTL-tm.SelfFenceMargin-tm.RenewInterval {
		t.Fatalf("accepted timings %+v where an etcd leader election does not fit", tm)
	}
	if c.Fencing.Timeout <= 0 || c.Fencing.Timeout > tm.LeaseTTL/2 {
		t.Fatalf("accepted fencing %+v with lease_ttl %s", c.Fencing, tm.LeaseTTL)
	}
	if len(c.Etcd.Endpoints) == 0 || c.Etcd.DialTimeout <= 0 {
		t.Fatalf("accepted etcd %+v", c.Etcd)
	}
	if c.Etcd.TLS != nil {
		for _, p := range []string{c.Etcd.TLS.CA, c.Etcd.TLS.Cert, c.Etcd.TLS.Key} {
			if !filepath.IsAbs(p) {
				t.Fatalf("accepted relative TLS path %q", p)
			}
		}
	}
}
