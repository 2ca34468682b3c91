package config

import (
	"strings"
	"testing"
	"time"
)

// bgpYAML is baseYAML with a speaker at every site, service addresses and
// an observer: the base of the BGP cases.
func bgpYAML(t *testing.T) string {
	t.Helper()
	data := baseYAML
	for i, s := range []string{"a", "b", "c"} {
		key := "      key: pki/" + s + "-key.pem\n"
		n := string(rune('1' + i))
		data = strings.Replace(data, key, key+
			"    bgp:\n"+
			"      asn: 6460"+n+"\n"+
			"      router_id: 192.0.2.1"+n+"\n"+
			"      peers:\n"+
			"        - address: 192.0.2.1\n"+
			"          asn: 64500\n"+
			"          password_file: secrets/a-upstream.pass\n", 1)
	}
	data = strings.Replace(data, "    replication_group: pg-web\n", "    replication_group: pg-web\n    addresses: [203.0.113.10]\n", 1)
	return data + "bgp:\n  observer:\n    asn: 64500\n    router_id: 192.0.2.1\n    listen: 127.0.0.10:1179\n    peers: [{address: 127.0.0.11, asn: 64601, site: a}]\n"
}

func TestBGPConfigDefaults(t *testing.T) {
	c, _ := mustLoad(t, bgpYAML(t))
	if !c.BGPEnabled() {
		t.Fatal("BGPEnabled() = false with a speaker at every site")
	}
	if c.BGP.Headroom != DefaultBGPHeadroom || c.BGP.PrependStep != 1 || c.BGP.MaxPrepends != 10 || c.BGP.MinChangeInterval != DefaultBGPMinChangeInterval {
		t.Errorf("BGP = %+v, want the defaults", c.BGP)
	}
	b := c.Sites[1].BGP
	if b.ASN != 64602 || b.Interface != DefaultBGPInterface || b.Peers[0].Password != "s3cret" || b.Peers[0].HoldTime != DefaultBGPHoldTime ||
		b.Peers[0].Keepalive != DefaultBGPHoldTime/3 || b.Peers[0].ConnectRetry != DefaultBGPConnectRetry {
		t.Errorf("site b's speaker = %+v", b)
	}
	if got := b.MaxHoldTime(); got != DefaultBGPHoldTime {
		t.Errorf("MaxHoldTime() = %s", got)
	}
	if s, _ := c.Service("web"); len(s.Addresses) != 1 || s.PrependStep != 1 {
		t.Errorf("service web = %+v", s)
	}
}

func TestBadBGPConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"unknown peer field", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          pasword_file: x\n  - name: b"}, []string{
			`zdt.yaml:26: sites[0].bgp.peers[0]: unknown field "pasword_file" (known fields: address, asn, port, local_address, password_file, hold_time, keepalive, connect_retry, multihop, passive, description, families)`}},
		{"ASN zero", []string{"      asn: 64601\n", "      asn: 0\n"}, []string{
			`zdt.yaml:21: sites[0].bgp.asn: required: an AS number from 1 to 4294967295 (private: 64512-65534, 4200000000-4294967294)`}},
		{"ASN too big", []string{"      asn: 64601\n", "      asn: 4294967296\n"}, []string{
			`zdt.yaml:21: sites[0].bgp.asn: 4294967296 is not an AS number: it must be from 1 to 4294967295`}},
		{"ASN AS_TRANS", []string{"asn: 64602", "asn: 23456"}, []string{
			`zdt.yaml:35: sites[1].bgp.asn: 23456 is AS_TRANS (RFC 6793), reserved for 2-byte speakers; no speaker may use it`}},
		{"ASN not a number", []string{"asn: 64603", "asn: sixty"}, []string{
			`zdt.yaml:49: sites[2].bgp.asn: expected an integer, found "sixty"`}},
		{"password file missing", []string{"          password_file: secrets/a-upstream.pass\n  - name: c", "          password_file: secrets/nope.pass\n  - name: c"}, []string{
			`zdt.yaml:40: sites[1].bgp.peers[0].password_file: cannot read DIR/secrets/nope.pass: no such file or directory`}},
		{"router id IPv6", []string{"router_id: 192.0.2.11", "router_id: \"2001:db8::1\""}, []string{
			`zdt.yaml:22: sites[0].bgp.router_id: 2001:db8::1 is not IPv4: a BGP router id is a 32-bit number written as an IPv4 address, even on an IPv6-only speaker`}},
		{"router id duplicate", []string{"router_id: 192.0.2.12", "router_id: 192.0.2.11"}, []string{
			`zdt.yaml:36: sites[1].bgp.router_id: router id 192.0.2.11 is also site a's; every speaker needs its own`}},
		{"peer address bad", []string{"router_id: 192.0.2.11\n      peers:\n        - address: 192.0.2.1\n", "router_id: 192.0.2.11\n      peers:\n        - address: 192.0.2.300\n"}, []string{
			`zdt.yaml:24: sites[0].bgp.peers[0].address: "192.0.2.300" is not an IP address: the upstream router's address, like 192.0.2.1`}},
		{"hold time too short", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          hold_time: 2s\n  - name: b"}, []string{
			`zdt.yaml:26: sites[0].bgp.peers[0].hold_time: 2s must be 0 (no keepalives) or at least 3s (RFC 4271)`}},
		{"keepalive not below hold", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          hold_time: 3s\n          keepalive: 3s\n  - name: b"}, []string{
			`zdt.yaml:27: sites[0].bgp.peers[0].keepalive: 3s must be shorter than the hold time 3s (a third of it is usual)`}},
		{"timer not whole seconds", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          connect_retry: 1500ms\n  - name: b"}, []string{
			`zdt.yaml:26: sites[0].bgp.peers[0].connect_retry: 1.5s is not a whole number of seconds, which is what BGP counts in`}},
		{"multihop too big", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          multihop: 256\n  - name: b"}, []string{
			`zdt.yaml:26: sites[0].bgp.peers[0].multihop: 256 is not a TTL: 0 (directly connected, the default) to 255`}},
		{"families unknown and twice", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          families: [ipv4, ipv6, ipv6, ip6]\n  - name: b"}, []string{
			`zdt.yaml:26: sites[0].bgp.peers[0].families: ipv6 is listed twice`,
			`zdt.yaml:26: sites[0].bgp.peers[0].families: "ip6": want ipv4 or ipv6`}},
		{"families empty", []string{"          password_file: secrets/a-upstream.pass\n  - name: b", "          families: []\n  - name: b"}, []string{
			`zdt.yaml:26: sites[0].bgp.peers[0].families: empty: list ipv4, ipv6 or both, or leave families out for the family of the peer's address`}},
		{"IPv4 over IPv6", []string{"router_id: 192.0.2.11\n      peers:\n        - address: 192.0.2.1\n", "router_id: 192.0.2.11\n      peers:\n        - address: \"2001:db8::1\"\n          families: [ipv4, ipv6]\n"}, []string{
			`zdt.yaml:25: sites[0].bgp.peers[0].families: ipv4 over an IPv6 session (2001:db8::1) is not supported: it needs an IPv4 next hop; add an IPv4 session for the IPv4 prefixes`}},
		{"site without speaker", []string{"    bgp:\n      asn: 64603\n      router_id: 192.0.2.13\n      peers:\n        - address: 192.0.2.1\n          asn: 64500\n          password_file: secrets/a-upstream.pass\n", ""}, []string{
			`zdt.yaml:12: sites: sites [a b] have a bgp section but [c] have none: either every site announces its services' prefixes or none does`}},
		{"service address outside prefixes", []string{"addresses: [203.0.113.10]", "addresses: [192.0.2.10]"}, []string{
			`zdt.yaml:60: services[0].addresses[0]: 192.0.2.10 is not inside any of the service's prefixes; the site that announces the prefix must be the one that carries the address`}},
		{"observer unknown site", []string{"site: a}]", "site: x}]"}, []string{
			`zdt.yaml:77: bgp.observer.peers[0].site: unknown site "x"`}},
		{"observer listen bad", []string{"listen: 127.0.0.10:1179", "listen: 127.0.0.10"}, []string{
			`zdt.yaml:76: bgp.observer.listen: "127.0.0.10" is not an address:port, like 127.0.0.10:1179 or [2001:db8::10]:1179`}},
		{"headroom zero", []string{"bgp:\n  observer:", "bgp:\n  headroom: 0\n  observer:"}, []string{
			`zdt.yaml:73: bgp.headroom: must be at least 1, not 0: a takeover announces 0 prepends and must beat the active site's path (2, the default, also lets a takeover beat a planned move's new site)`}},
		{"ladder above max prepends", []string{"addresses: [203.0.113.10]", "addresses: [203.0.113.10]\n    prepend_step: 5"}, []string{
			`zdt.yaml:61: services[0].prepend_step: the ladder of service web over 3 sites needs up to headroom 2 + 2 × step 5 = 12 prepends, above bgp.max_prepends 10: raise max_prepends or lower the step`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bgpYAML(t)
			for i := 0; i < len(tc.edits); i += 2 {
				if n := strings.Count(data, tc.edits[i]); n != 1 {
					t.Fatalf("edit %q occurs %d times, want once", tc.edits[i], n)
				}
				data = strings.Replace(data, tc.edits[i], tc.edits[i+1], 1)
			}
			checkProblems(t, data, tc.want...)
		})
	}
}

func TestBadReplicationConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"unknown driver", []string{"driver: postgres", "driver: mysql"}, []string{
			`zdt.yaml:45: replication.groups[0].driver: unknown driver "mysql": want postgres or drbd`}},
		{"member at unknown site", []string{"{site: c, conn", "{site: d, conn"}, []string{
			`zdt.yaml:38: services[0].replication_group: group pg-web has no member at site c, which may serve this service: the site could not be made primary`,
			`zdt.yaml:49: replication.groups[0].members[2].site: unknown site "d" (sites are a, b, c)`}},
		{"two members at one site", []string{"{site: c, conn", "{site: b, conn"}, []string{
			`zdt.yaml:38: services[0].replication_group: group pg-web has no member at site c, which may serve this service: the site could not be made primary`,
			`zdt.yaml:49: replication.groups[0].members[2].site: site b already has a member (line 48); a group has one member per site`}},
		{"bad conninfo", []string{"conn: host=127.0.0.12 user=zdt", "conn: host=127.0.0.12 port=notaport"}, []string{
			`zdt.yaml:48: replication.groups[0].members[1].conn: not a valid conninfo: invalid port`}},
		{"require sync of an async group", []string{"    replication_group: pg-web\n", "    replication_group: pg-web\n    rpo: {require_sync: true}\n"}, []string{
			`zdt.yaml:39: services[0].rpo.require_sync: group pg-web is not synchronous: set synchronous: true on it, or nothing could ever be promoted`}},
		{"unknown group", []string{"replication_group: pg-web", "replication_group: pg-db"}, []string{
			`zdt.yaml:38: services[0].replication_group: unknown replication group "pg-db"; define it under replication.groups`}},
		{"rto not positive", []string{"    replication_group: pg-web\n", "    replication_group: pg-web\n    rto: 0s\n"}, []string{
			`zdt.yaml:39: services[0].rto: 0s: want a positive duration, like 30s (how long moving the service may take), or leave rto out`}},
		{"rto not a duration", []string{"    replication_group: pg-web\n", "    replication_group: pg-web\n    rto: soon\n"}, []string{
			`zdt.yaml:39: services[0].rto: "soon" is not a duration: write a number with a unit, like 3s, 750ms or 1m30s`}},
		{"rpo without group", []string{"    prefixes: [198.51.100.0/24]\n", "    prefixes: [198.51.100.0/24]\n    rpo: {max_lag_bytes: 0}\n"}, []string{
			`zdt.yaml:42: services[1].rpo: a service without a replication_group has nothing to promote; drop rpo or set replication_group`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

// TestBGPFamilies: a session lists the families it carries; one that lists
// none carries its address's family (Families nil).
func TestBGPFamilies(t *testing.T) {
	data := strings.Replace(bgpYAML(t), "          password_file: secrets/a-upstream.pass\n  - name: b",
		"          password_file: secrets/a-upstream.pass\n          families: [ipv4, ipv6]\n  - name: b", 1)
	c, _ := mustLoad(t, data)
	a, _ := c.Site("a")
	b, _ := c.Site("b")
	if got := a.BGP.Peers[0].Families; len(got) != 2 || got[0] != "ipv4" || got[1] != "ipv6" {
		t.Errorf("site a's session carries %v; want [ipv4 ipv6]", got)
	}
	if got := b.BGP.Peers[0].Families; got != nil {
		t.Errorf("site b's session, which lists no families, has %v; want nil (its address's family)", got)
	}
}

// TestServiceRTO: a service's RTO target is read; without one it is 0.
func TestServiceRTO(t *testing.T) {
	c, _ := mustLoad(t, edit(t, "    replication_group: pg-web\n", "    replication_group: pg-web\n    rto: 45s\n"))
	if svc := c.Services[0]; svc.RTO != 45*time.Second || c.Services[1].RTO != 0 {
		t.Errorf("RTOs %s and %s; want 45s and none", svc.RTO, c.Services[1].RTO)
	}
}
