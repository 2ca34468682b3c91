package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const siteB = `  - name: b
    api: 127.0.0.12:7480
    etcd:
      client_url: https://127.0.0.12:2379
      peer_url: https://127.0.0.12:2380
      cert: pki/b.pem
      key: pki/b-key.pem
`

// TestUndecodable covers what the YAML library itself rejects: unknown
// fields, values of the wrong type and keys given twice. A value that
// cannot be decoded is reported once, without follow-on problems.
func TestUndecodable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"unknown field in a site", []string{"  - name: b\n", "  - name: b\n    zone: x\n"}, []string{
			`zdt.yaml:21: sites[1]: unknown field "zone" (known fields: name, api, peer_api, api_cert, api_key, etcd, hosts, bgp)`}},
		{"unknown field at the top", []string{"cluster: lab\n", "cluster: lab\nextra: 1\n"}, []string{
			`zdt.yaml:2: unknown field "extra" (known fields: cluster, etcd, timings, sites, services, placement, bgp, replication, fencing, retention, fail_static, runbooks, api, insecure_plaintext)`}},
		{"misspelt timing", []string{"lease_ttl: 3s", "lease_tll: 3s"}, []string{
			`zdt.yaml:9: timings: unknown field "lease_tll" (known fields: lease_ttl, renew_interval, self_fence_margin, etcd_heartbeat, etcd_election_timeout, bootstrap_grace, host_fail_after)`}},
		{"unknown field in tls", []string{"    key: pki/client-key.pem\n", "    key: pki/client-key.pem\n    password: x\n"}, []string{
			`zdt.yaml:8: etcd.tls: unknown field "password" (known fields: ca, cert, key)`}},
		{"bad duration", []string{"lease_ttl: 3s", "lease_ttl: abc"}, []string{
			`zdt.yaml:9: timings.lease_ttl: "abc" is not a duration: write a number with a unit, like 3s, 750ms or 1m30s`}},
		{"duration without unit", []string{"lease_ttl: 3s", "lease_ttl: 3"}, []string{
			`zdt.yaml:9: timings.lease_ttl: "3" is not a duration: write a number with a unit, like 3s, 750ms or 1m30s`}},
		{"long bad duration", []string{"dial_timeout: 2s", "dial_timeout: two seconds please"}, []string{
			`zdt.yaml:3: etcd.dial_timeout: "two seconds please" is not a duration: write a number with a unit, like 3s, 750ms or 1m30s`}},
		{"mapping for a duration", []string{"lease_ttl: 3s", "lease_ttl: {s: 3}"}, []string{
			`zdt.yaml:9: timings.lease_ttl: expected a duration such as 3s or 750ms, found a mapping`}},
		{"string for a list", []string{"sites: [b, a]", "sites: b"}, []string{
			`zdt.yaml:40: services[1].sites: expected a list, found "b"`}},
		{"list for a string", []string{"cluster: lab", "cluster: [lab]"}, []string{
			`zdt.yaml:1: cluster: expected a single value, found a list`}},
		{"string for a section", []string{"timings:\n  lease_ttl: 3s\n  etcd_heartbeat: 100ms\n  etcd_election_timeout: 500ms\n", "timings: fast\n"}, []string{
			`zdt.yaml:8: timings: expected a mapping with the fields lease_ttl, renew_interval, self_fence_margin, etcd_heartbeat, etcd_election_timeout, bootstrap_grace, host_fail_after, found "fast"`}},
		{"string for a site keeps later sites' lines", []string{siteB, "  - b\n", "api: 127.0.0.13:7480", "api: 127.0.0.13"}, []string{
			`zdt.yaml:20: sites[1]: expected a mapping with the fields name, api, peer_api, api_cert, api_key, etcd, hosts, bgp, found "b"`,
			`zdt.yaml:22: sites[2].api: "127.0.0.13" is not host:port: missing port in address; write it like 10.0.0.1:7480`}},
		{"mapping for a prefix keeps later prefixes' lines", []string{"prefixes: [198.51.100.0/24]", "prefixes: [{a: 1}, 198.51.100.5/24]"}, []string{
			`zdt.yaml:41: services[1].prefixes[0]: expected a single value, found a mapping`,
			`zdt.yaml:41: services[1].prefixes[1]: "198.51.100.5/24" has host bits set; did you mean 198.51.100.0/24?`}},
		{"key given twice", []string{"lease_ttl: 3s", "lease_ttl: 3s\n  lease_ttl: 4s"}, []string{
			`zdt.yaml:10: timings.lease_ttl: given twice (first at line 9); keep one`}},
		{"key given twice in a site", []string{"  - name: b\n", "  - name: b\n    name: bb\n"}, []string{
			`zdt.yaml:21: sites[1].name: given twice (first at line 20); keep one`}},
		{"second document", []string{"replication_conn: host=127.0.0.13 user=replicator}\n", "replication_conn: host=127.0.0.13 user=replicator}\n---\ncluster: other\n"}, []string{
			`zdt.yaml:50: a second YAML document starts here; the whole cluster belongs in one document`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

// TestNotAConfig covers files that are no config at all; they need no
// files beside them, so they use Parse.
func TestNotAConfig(t *testing.T) {
	const empty = `zdt.yaml:1: the file is empty; it must describe the cluster: cluster, etcd, timings, sites and services`
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"empty", "", []string{empty}},
		{"blank", "  \n\n", []string{empty}},
		{"only comments", "# cluster: lab\n", []string{empty}},
		{"empty document", "---\n", []string{empty}},
		{"syntax error", "cluster: lab\n  sites: [\n", []string{
			`zdt.yaml:2: invalid YAML: mapping values are not allowed in this context`}},
		{"unclosed list", "cluster: lab\nsites: [a, b\n", []string{
			`zdt.yaml:2: invalid YAML: did not find expected ',' or ']'`}},
		{"tab", "cluster: lab\n\tsites: []\n", []string{
			`zdt.yaml:2: invalid YAML: found a tab character that violates indentation`}},
		{"unknown anchor", "cluster: *name\n", []string{
			`zdt.yaml:1: invalid YAML: unknown anchor 'name' referenced`}},
		{"a list", "- cluster: lab\n", []string{
			`zdt.yaml:1: expected a mapping with the fields cluster, etcd, timings, sites and services, found a list`}},
		{"a string", "# a comment\nlab\n", []string{
			`zdt.yaml:2: expected a mapping with the fields cluster, etcd, timings, sites and services, found "lab"`}},
		{"root key twice", "cluster: lab\nsites: []\ncluster: lab\n", []string{
			`zdt.yaml:3: cluster: given twice (first at line 1); keep one`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("zdt.yaml", []byte(tc.data))
			var problems Problems
			if !errors.As(err, &problems) || c != nil {
				t.Fatalf("Parse = %v, %v; want problems", c, err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tc.want, "\n     "))
			}
		})
	}
}
