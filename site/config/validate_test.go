package config

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const nameRuleMsg = `must be lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters`

// edit applies pairs of (old, new) replacements to baseYAML; each old must
// occur exactly once.
func edit(t *testing.T, edits ...string) string {
	t.Helper()
	if len(edits)%2 != 0 {
		t.Fatalf("edits must come in pairs: %q", edits)
	}
	data := baseYAML
	for i := 0; i < len(edits); i += 2 {
		if n := strings.Count(data, edits[i]); n != 1 {
			t.Fatalf("edit %q occurs %d times, want once", edits[i], n)
		}
		data = strings.Replace(data, edits[i], edits[i+1], 1)
	}
	return data
}

// problemsOf loads data as DIR/zdt.yaml and returns its problems as
// strings, with the file shortened to zdt.yaml and the directory written
// DIR in messages.
func problemsOf(t *testing.T, data string) []string {
	t.Helper()
	dir, path := writeConfig(t, data)
	c, err := Load(path)
	if err == nil {
		t.Fatalf("Load succeeded, want problems")
	}
	if c != nil {
		t.Errorf("Load returned a cluster with problems")
	}
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("Load: %v, want Problems", err)
	}
	var got, raw []string
	for _, p := range problems {
		if p.File != path {
			t.Errorf("problem %v: file %q, want %q", p, p.File, path)
		}
		raw = append(raw, p.Error())
		p.File = filepath.Base(p.File)
		p.Msg = strings.ReplaceAll(p.Msg, dir, "DIR")
		got = append(got, p.Error())
	}
	// Error() sorts; so the slice must be in that order already.
	if want := strings.Join(raw, "\n"); err.Error() != want {
		t.Errorf("err.Error() =\n%s\nwant the problems in their order:\n%s", err.Error(), want)
	}
	return got
}

func checkProblems(t *testing.T, data string, want ...string) {
	t.Helper()
	if got := problemsOf(t, data); !slices.Equal(got, want) {
		t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

const siteC = `  - name: c
    api: 127.0.0.13:7480
    etcd:
      client_url: https://127.0.0.13:2379
      peer_url: https://127.0.0.13:2380
      cert: pki/c.pem
      key: pki/c-key.pem
`

const tlsSection = `  tls:
    ca: pki/ca.pem
    cert: pki/client.pem
    key: pki/client-key.pem
`

// withEndpoints adds etcd.endpoints on line 3, moving every later line
// down by one.
func withEndpoints(list string) []string {
	return []string{"etcd:\n  dial_timeout", "etcd:\n  endpoints: " + list + "\n  dial_timeout"}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		// cluster
		{"cluster missing", []string{"cluster: lab\n", ""}, []string{
			`zdt.yaml:1: cluster: required: the cluster's name, part of every etcd key (lowercase letters, digits and '-', at most 63 characters)`}},
		{"cluster name invalid", []string{"cluster: lab", "cluster: Lab_1"}, []string{
			`zdt.yaml:1: cluster: "Lab_1" is not a valid name: ` + nameRuleMsg}},
		{"cluster name ends with dash", []string{"cluster: lab", "cluster: lab-"}, []string{
			`zdt.yaml:1: cluster: "lab-" is not a valid name: ` + nameRuleMsg}},
		{"cluster name too long", []string{"cluster: lab", "cluster: " + strings.Repeat("a", 64)}, []string{
			`zdt.yaml:1: cluster: "` + strings.Repeat("a", 64) + `" is not a valid name: ` + nameRuleMsg}},

		// sites
		{"two sites", []string{siteC, "", "sites: [a, b, c]", "sites: [a, b]"}, []string{
			`zdt.yaml:12: sites: need at least 3 sites, have 2: with fewer, losing one site leaves the etcd cluster without a quorum (with two sites, 2 of 2 are needed), so nothing could fail over`,
			`zdt.yaml:42: replication.groups[0].members[2].site: unknown site "c" (sites are a, b)`}},
		{"site name missing", []string{"  - name: c\n    api", "  - api"}, []string{
			`zdt.yaml:27: sites[2].name: required: a short name for the site, like a, b or dc1`}},
		{"site name invalid", []string{"name: c\n", "name: C\n"}, []string{
			`zdt.yaml:27: sites[2].name: "C" is not a valid name: ` + nameRuleMsg}},
		{"site name duplicate", []string{"name: c\n", "name: a\n"}, []string{
			`zdt.yaml:27: sites[2].name: duplicate site "a" (also at line 13)`}},
		{"api missing", []string{"    api: 127.0.0.13:7480\n", ""}, []string{
			`zdt.yaml:27: sites[2].api: required: the host:port of this site's controller API (healthz, metrics, JSON API), like 10.0.0.1:7480`}},
		{"api without port", []string{"api: 127.0.0.13:7480", "api: 127.0.0.13"}, []string{
			`zdt.yaml:28: sites[2].api: "127.0.0.13" is not host:port: missing port in address; write it like 10.0.0.1:7480`}},
		{"api port out of range", []string{"api: 127.0.0.13:7480", "api: 127.0.0.13:70000"}, []string{
			`zdt.yaml:28: sites[2].api: "127.0.0.13:70000": port "70000" must be a number from 1 to 65535`}},
		{"api port zero", []string{"api: 127.0.0.13:7480", "api: 127.0.0.13:0"}, []string{
			`zdt.yaml:28: sites[2].api: "127.0.0.13:0": port "0" must be a number from 1 to 65535`}},
		{"api port by name", []string{"api: 127.0.0.13:7480", "api: 127.0.0.13:http"}, []string{
			`zdt.yaml:28: sites[2].api: "127.0.0.13:http": port "http" must be a number from 1 to 65535`}},
		{"api without host", []string{"api: 127.0.0.13:7480", `api: ":7480"`}, []string{
			`zdt.yaml:28: sites[2].api: ":7480" has no host; other sites and the CLI connect to it, so give the address, like 10.0.0.1:7480`}},
		{"api duplicate", []string{"api: 127.0.0.13:7480", "api: 127.0.0.11:7480"}, []string{
			`zdt.yaml:28: sites[2].api: 127.0.0.11:7480 is already used by sites[0].api (line 14); every listener needs its own host:port`}},
		{"client_url missing", []string{"      client_url: https://127.0.0.13:2379\n", ""}, []string{
			`zdt.yaml:29: sites[2].etcd.client_url: required: the URL clients use to reach this site's etcd member, like https://10.0.0.1:2379`}},
		{"peer_url missing", []string{"      peer_url: https://127.0.0.13:2380\n", ""}, []string{
			`zdt.yaml:29: sites[2].etcd.peer_url: required: the URL the other etcd members use to reach this one, like https://10.0.0.1:2380`}},
		{"client_url not a URL", []string{"client_url: https://127.0.0.13:2379", "client_url: 127.0.0.13:2379"}, []string{
			`zdt.yaml:30: sites[2].etcd.client_url: "127.0.0.13:2379" must be a URL starting with http:// or https://, like https://10.0.0.1:2379`}},
		{"client_url scheme", []string{"client_url: https://127.0.0.13:2379", "client_url: unix://127.0.0.13:2379"}, []string{
			`zdt.yaml:30: sites[2].etcd.client_url: "unix://127.0.0.13:2379" must start with http:// or https://`}},
		{"client_url unparsable", []string{"client_url: https://127.0.0.13:2379", `client_url: "https://127.0.0.13:23 79"`}, []string{
			`zdt.yaml:30: sites[2].etcd.client_url: "https://127.0.0.13:23 79" is not a valid URL: invalid port ":23 79" after host`}},
		{"peer_url without port", []string{"peer_url: https://127.0.0.13:2380", "peer_url: https://127.0.0.13"}, []string{
			`zdt.yaml:31: sites[2].etcd.peer_url: "https://127.0.0.13" has no port; add one (etcd uses 2379 for clients, 2380 for peers)`}},
		{"peer_url without host", []string{"peer_url: https://127.0.0.13:2380", "peer_url: https://:2380"}, []string{
			`zdt.yaml:31: sites[2].etcd.peer_url: "https://:2380" has no host; write it like https://10.0.0.1:2379`}},
		{"peer_url with path", []string{"peer_url: https://127.0.0.13:2380", "peer_url: https://127.0.0.13:2380/"}, []string{
			`zdt.yaml:31: sites[2].etcd.peer_url: "https://127.0.0.13:2380/" must be only scheme, host and port (etcd refuses a path); write https://127.0.0.13:2380`}},
		{"peer_url duplicate across sites", []string{"peer_url: https://127.0.0.13:2380", "peer_url: https://127.0.0.12:2380"}, []string{
			`zdt.yaml:31: sites[2].etcd.peer_url: https://127.0.0.12:2380 is already used by sites[1].etcd.peer_url (line 24); every listener needs its own host:port`}},
		{"peer_url same as client_url", []string{"peer_url: https://127.0.0.13:2380", "peer_url: https://127.0.0.13:2379"}, []string{
			`zdt.yaml:31: sites[2].etcd.peer_url: https://127.0.0.13:2379 is already used by sites[2].etcd.client_url (line 30); every listener needs its own host:port`}},
		{"site cert missing with https", []string{"      cert: pki/c.pem\n", ""}, []string{
			`zdt.yaml:29: sites[2].etcd.cert: required because this site's etcd URLs use https: the member's certificate (PEM) for client and peer TLS`}},
		{"site key missing with https", []string{"      key: pki/c-key.pem\n", ""}, []string{
			`zdt.yaml:29: sites[2].etcd.key: required because this site's etcd URLs use https: the private key (PEM) of the member's certificate`}},
		{"site cert without key", append(withEndpoints("[https://127.0.0.11:2379, https://127.0.0.12:2379]"),
			"client_url: https://127.0.0.13:2379", "client_url: http://127.0.0.13:2379",
			"peer_url: https://127.0.0.13:2380", "peer_url: http://127.0.0.13:2380",
			"      key: pki/c-key.pem\n", ""), []string{
			`zdt.yaml:30: sites[2].etcd.key: required when cert is set: give both cert and key, or neither`}},
		{"site key without cert", append(withEndpoints("[https://127.0.0.11:2379, https://127.0.0.12:2379]"),
			"client_url: https://127.0.0.13:2379", "client_url: http://127.0.0.13:2379",
			"peer_url: https://127.0.0.13:2380", "peer_url: http://127.0.0.13:2380",
			"      cert: pki/c.pem\n", ""), []string{
			`zdt.yaml:30: sites[2].etcd.cert: required when key is set: give both cert and key, or neither`}},
		{"site cert file missing", []string{"cert: pki/c.pem", "cert: pki/nope.pem"}, []string{
			`zdt.yaml:32: sites[2].etcd.cert: cannot read DIR/pki/nope.pem: no such file or directory`}},
		{"site key is a directory", []string{"key: pki/c-key.pem", "key: pki"}, []string{
			`zdt.yaml:33: sites[2].etcd.key: cannot read DIR/pki: is a directory`}},
		{"site cert absolute path missing", []string{"cert: pki/c.pem", "cert: /nonexistent/c.pem"}, []string{
			`zdt.yaml:32: sites[2].etcd.cert: cannot read /nonexistent/c.pem: no such file or directory`}},

		// etcd
		{"endpoint not a URL", withEndpoints("[https://127.0.0.11:2379, 127.0.0.12:2379]"), []string{
			`zdt.yaml:3: etcd.endpoints[1]: "127.0.0.12:2379" must be a URL starting with http:// or https://, like https://10.0.0.1:2379`}},
		{"endpoint with path", withEndpoints("[https://127.0.0.11:2379/v3]"), []string{
			`zdt.yaml:3: etcd.endpoints[0]: "https://127.0.0.11:2379/v3" must be only scheme, host and port (etcd refuses a path); write https://127.0.0.11:2379`}},
		{"endpoint duplicate", withEndpoints("[https://127.0.0.11:2379, https://127.0.0.11:2379]"), []string{
			`zdt.yaml:3: etcd.endpoints[1]: "https://127.0.0.11:2379" is already listed at etcd.endpoints[0]; list each endpoint once`}},
		{"endpoints mix http and https", withEndpoints("[https://127.0.0.11:2379, http://127.0.0.12:2379]"), []string{
			`zdt.yaml:3: etcd.endpoints: the etcd endpoints mix http (http://127.0.0.12:2379) and https (https://127.0.0.11:2379); use https for all, or http for all`}},
		{"default endpoints mix http and https", []string{
			"client_url: https://127.0.0.13:2379", "client_url: http://127.0.0.13:2379"}, []string{
			`zdt.yaml:2: etcd.endpoints: the etcd endpoints (by default the sites' client_url) mix http (http://127.0.0.13:2379) and https (https://127.0.0.11:2379); use https for all, or http for all`}},
		{"https endpoints without tls", []string{tlsSection, ""}, []string{
			`zdt.yaml:2: etcd.tls: required because the etcd endpoints (by default the sites' client_url) use https (https://127.0.0.11:2379): give ca, cert and key`}},
		{"tls with http endpoints", withEndpoints("[http://127.0.0.11:2379]"), []string{
			`zdt.yaml:5: etcd.tls: set, but the etcd endpoints use http (http://127.0.0.11:2379); use https endpoints, or remove tls`}},
		{"tls ca missing", []string{"    ca: pki/ca.pem\n", ""}, []string{
			`zdt.yaml:4: etcd.tls.ca: required: the path of the CA certificate (PEM) that signed the etcd members' certificates`}},
		{"tls cert missing", []string{"    cert: pki/client.pem\n", ""}, []string{
			`zdt.yaml:4: etcd.tls.cert: required: the path of the controller's client certificate (PEM) for etcd`}},
		{"tls key missing", []string{"    key: pki/client-key.pem\n", ""}, []string{
			`zdt.yaml:4: etcd.tls.key: required: the path of the private key (PEM) of the client certificate`}},
		{"tls ca unreadable", []string{"ca: pki/ca.pem", "ca: pki/missing.pem"}, []string{
			`zdt.yaml:5: etcd.tls.ca: cannot read DIR/pki/missing.pem: no such file or directory`}},
		{"dial_timeout zero", []string{"dial_timeout: 2s", "dial_timeout: 0s"}, []string{
			`zdt.yaml:3: etcd.dial_timeout: must be greater than 0, not 0s`}},

		// timings
		{"lease_ttl not whole seconds", []string{"lease_ttl: 3s", "lease_ttl: 2500ms"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 2.5s is not a whole number of seconds: etcd lease TTLs are whole seconds; use 2s or 3s`}},
		{"lease_ttl below etcd's minimum", []string{"lease_ttl: 3s", "lease_ttl: 1s", "etcd_election_timeout: 500ms", "etcd_election_timeout: 1s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 1s is shorter than etcd's minimum lease TTL of 2s for etcd_election_timeout 1s (1.5 x the election timeout, rounded up to whole seconds): ` +
				`etcd would silently grant 2s and the self-fence timing would be wrong; raise lease_ttl to at least 2s or lower etcd_election_timeout`}},
		{"lease_ttl zero", []string{"lease_ttl: 3s", "lease_ttl: 0s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: must be greater than 0, not 0s`}},
		{"lease_ttl negative", []string{"lease_ttl: 3s", "lease_ttl: -3s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: must be greater than 0, not -3s`}},
		{"self_fence_margin not below lease_ttl", []string{"lease_ttl: 3s", "lease_ttl: 3s\n  self_fence_margin: 3s"}, []string{
			`zdt.yaml:10: timings.self_fence_margin: 3s must be smaller than lease_ttl (3s): the controller must fence itself before its lease can expire`}},
		{"self_fence_margin zero", []string{"lease_ttl: 3s", "lease_ttl: 3s\n  self_fence_margin: 0s"}, []string{
			`zdt.yaml:10: timings.self_fence_margin: must be greater than 0, not 0s`}},
		{"renew_interval too long", []string{"lease_ttl: 3s", "lease_ttl: 3s\n  renew_interval: 2250ms"}, []string{
			`zdt.yaml:10: timings.renew_interval: 2.25s must be smaller than lease_ttl - self_fence_margin (3s - 750ms = 2.25s), otherwise the controller self-fences between two renewals`}},
		{"default renew_interval too long", []string{"lease_ttl: 3s", "lease_ttl: 3s\n  self_fence_margin: 2500ms"}, []string{
			`zdt.yaml:8: timings.renew_interval: 1s (the default, lease_ttl/3) must be smaller than lease_ttl - self_fence_margin (3s - 2.5s = 500ms), otherwise the controller self-fences between two renewals`}},
		{"renew_interval negative", []string{"lease_ttl: 3s", "lease_ttl: 3s\n  renew_interval: -1s"}, []string{
			`zdt.yaml:10: timings.renew_interval: must be greater than 0, not -1s`}},
		{"etcd_heartbeat zero", []string{"etcd_heartbeat: 100ms", "etcd_heartbeat: 0s"}, []string{
			`zdt.yaml:10: timings.etcd_heartbeat: must be greater than 0, not 0s`}},
		{"etcd_heartbeat not whole milliseconds", []string{"etcd_heartbeat: 100ms", "etcd_heartbeat: 50500us"}, []string{
			`zdt.yaml:10: timings.etcd_heartbeat: 50.5ms is not a whole number of milliseconds, which is what etcd counts in`}},
		{"election timeout below 5 heartbeats", []string{"etcd_election_timeout: 500ms", "etcd_election_timeout: 400ms"}, []string{
			`zdt.yaml:11: timings.etcd_election_timeout: 400ms must be at least 5 x etcd_heartbeat (5 x 100ms = 500ms), or etcd refuses to start`}},
		{"election timeout too long", []string{"etcd_election_timeout: 500ms", "etcd_election_timeout: 60s"}, []string{
			`zdt.yaml:9: timings.lease_ttl: 3s is shorter than etcd's minimum lease TTL of 1m30s for etcd_election_timeout 1m0s (1.5 x the election timeout, rounded up to whole seconds): ` +
				`etcd would silently grant 1m30s and the self-fence timing would be wrong; raise lease_ttl to at least 1m30s or lower etcd_election_timeout`,
			`zdt.yaml:11: timings.etcd_election_timeout: 1m0s is longer than etcd allows (50s)`}},
		{"bootstrap_grace negative", []string{"etcd_election_timeout: 500ms", "etcd_election_timeout: 500ms\n  bootstrap_grace: -1s"}, []string{
			`zdt.yaml:12: timings.bootstrap_grace: must be greater than 0, not -1s`}},

		// services
		{"service name missing", []string{"  - name: db\n    sites", "  - sites"}, []string{
			`zdt.yaml:39: services[1].name: required: the service's name, like web`}},
		{"service name invalid", []string{"name: db", "name: DB"}, []string{
			`zdt.yaml:39: services[1].name: "DB" is not a valid name: ` + nameRuleMsg}},
		{"service name duplicate", []string{"name: db", "name: web"}, []string{
			`zdt.yaml:39: services[1].name: duplicate service "web" (also at line 35)`}},
		{"service sites missing", []string{"    sites: [b, a]\n", ""}, []string{
			`zdt.yaml:39: services[1].sites: required: the sites that may serve this service, most preferred first, like [a, b, c]`}},
		{"service sites empty", []string{"sites: [b, a]", "sites: []"}, []string{
			`zdt.yaml:40: services[1].sites: required: the sites that may serve this service, most preferred first, like [a, b, c]`}},
		{"service site unknown", []string{"sites: [a, b, c]", "sites: [a, d, c]"}, []string{
			`zdt.yaml:36: services[0].sites[1]: unknown site "d" (sites are a, b, c)`}},
		{"service site twice", []string{"sites: [b, a]", "sites: [b, a, b]"}, []string{
			`zdt.yaml:40: services[1].sites[2]: site "b" is already listed at services[1].sites[0]; list each site once`}},
		{"prefix invalid", []string{"prefixes: [198.51.100.0/24]", "prefixes: [198.51.100.0/24, 203.0.113.0/33]"}, []string{
			`zdt.yaml:41: services[1].prefixes[1]: "203.0.113.0/33" is not a valid prefix: prefix length out of range`}},
		{"prefix not an address", []string{"prefixes: [198.51.100.0/24]", "prefixes: [db.example/24]"}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: "db.example/24" is not a valid prefix: ParseAddr("db.example"): unexpected character (at "db.example")`}},
		{"prefix without length", []string{"prefixes: [198.51.100.0/24]", "prefixes: [198.51.100.7]"}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: "198.51.100.7" is not a valid prefix: it has no /length; for the one address write 198.51.100.7/32`}},
		{"prefix with host bits", []string{"prefixes: [198.51.100.0/24]", "prefixes: [198.51.100.5/24]"}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: "198.51.100.5/24" has host bits set; did you mean 198.51.100.0/24?`}},
		{"prefix duplicate", []string{"prefixes: [198.51.100.0/24]", "prefixes: [203.0.113.0/26]"}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: duplicate prefix 203.0.113.0/26 (also in service "web", line 37)`}},
		{"prefix overlaps another service's", []string{"prefixes: [198.51.100.0/24]", "prefixes: [203.0.113.0/24]"}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: 203.0.113.0/24 overlaps 203.0.113.0/26 of service "web" (line 37)`}},
		{"IPv6 prefix overlaps another service's", []string{"prefixes: [198.51.100.0/24]", `prefixes: ["2001:db8:a:1::/64"]`}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: 2001:db8:a:1::/64 overlaps 2001:db8:a::/48 of service "web" (line 37)`}},
		{"prefixes overlap within a service", []string{"prefixes: [198.51.100.0/24]", "prefixes: [198.51.100.0/24, 198.51.100.128/25]"}, []string{
			`zdt.yaml:41: services[1].prefixes[1]: 198.51.100.128/25 overlaps 198.51.100.0/24 of service "db" (line 41)`}},
		{"replication_group invalid", []string{"replication_group: pg-web", "replication_group: pg_web"}, []string{
			`zdt.yaml:38: services[0].replication_group: "pg_web" is not a valid name: ` + nameRuleMsg}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

func TestServiceWithoutPrefixes(t *testing.T) {
	c, _ := mustLoad(t, edit(t, "    prefixes: [198.51.100.0/24]\n", ""))
	if s, ok := c.Service("db"); !ok || len(s.Prefixes) != 0 {
		t.Errorf(`Service("db") = %+v, %v; want it without prefixes`, s, ok)
	}
}

func TestSeveralProblemsInLineOrder(t *testing.T) {
	data := edit(t,
		"cluster: lab", "cluster: Lab",
		"lease_ttl: 3s", "lease_ttl: 2500ms",
		"api: 127.0.0.12:7480", "api: 127.0.0.12",
		"sites: [a, b, c]", "sites: [a, d, c]",
		"prefixes: [198.51.100.0/24]", "prefixes: [203.0.113.0/24, 198.51.100.5/24]",
		"name: db", "name: web",
	)
	checkProblems(t, data,
		`zdt.yaml:1: cluster: "Lab" is not a valid name: `+nameRuleMsg,
		`zdt.yaml:9: timings.lease_ttl: 2.5s is not a whole number of seconds: etcd lease TTLs are whole seconds; use 2s or 3s`,
		`zdt.yaml:21: sites[1].api: "127.0.0.12" is not host:port: missing port in address; write it like 10.0.0.1:7480`,
		`zdt.yaml:36: services[0].sites[1]: unknown site "d" (sites are a, b, c)`,
		`zdt.yaml:39: services[1].name: duplicate service "web" (also at line 35)`,
		`zdt.yaml:41: services[1].prefixes[0]: 203.0.113.0/24 overlaps 203.0.113.0/26 of service "web" (line 37)`,
		`zdt.yaml:41: services[1].prefixes[1]: "198.51.100.5/24" has host bits set; did you mean 198.51.100.0/24?`,
	)
}

func TestProblemsError(t *testing.T) {
	ps := Problems{
		{File: "z.yaml", Line: 9, Field: "b", Msg: "second"},
		{File: "z.yaml", Line: 3, Msg: "invalid YAML: bad"},
		{File: "z.yaml", Line: 9, Field: "a", Msg: "first"},
		{Line: 4, Field: "f", Msg: "no file"},
		{File: "z.yaml", Msg: "no line"},
	}
	want := "z.yaml: no line\n" +
		"z.yaml:3: invalid YAML: bad\n" +
		"line 4: f: no file\n" +
		"z.yaml:9: a: first\n" +
		"z.yaml:9: b: second"
	if got := ps.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if ps[0].Field != "b" {
		t.Error("Error() sorted the problems in place")
	}
}
