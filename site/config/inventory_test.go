package config

import (
	"strings"
	"testing"
)

// TestBadInventory covers the rules of hosts, guests and placement, each
// with its exact message.
func TestBadInventory(t *testing.T) {
	const dbPrefixes = "    prefixes: [198.51.100.0/24]\n"
	const aKey = "      key: pki/a-key.pem\n  - name: b"
	withGuests := func(guests string) []string {
		return []string{dbPrefixes, dbPrefixes + "    guests:\n" + guests}
	}
	withHosts := func(hosts string) []string {
		return []string{aKey, "      key: pki/a-key.pem\n    hosts:\n" + hosts + "  - name: b"}
	}
	for _, tc := range []struct {
		name  string
		edits []string
		want  []string
	}{
		{"guest: every field wrong", withGuests("      - {name: db-1, tier: platinum, zone: C, vcpus: 0, memory_mib: -5, domain: domains/missing.xml}\n"), []string{
			`zdt.yaml:43: services[1].guests[0].domain: cannot read DIR/domains/missing.xml: no such file or directory`,
			`zdt.yaml:43: services[1].guests[0].memory_mib: required: the guest's memory in MiB, a number above 0`,
			`zdt.yaml:43: services[1].guests[0].tier: unknown tier "platinum": want gold, silver or bronze`,
			`zdt.yaml:43: services[1].guests[0].vcpus: required: the guest's vCPUs, a number above 0`,
			`zdt.yaml:43: services[1].guests[0].zone: unknown zone "C": want A, B or none`,
		}},
		{"guest: tier and domain missing", withGuests("      - {name: db-1, vcpus: 1, memory_mib: 512}\n"), []string{
			`zdt.yaml:43: services[1].guests[0].domain: required: the path of the guest's libvirt domain XML, on storage every site can read`,
			`zdt.yaml:43: services[1].guests[0].tier: required: gold, silver or bronze`,
		}},
		{"guest: duplicate name", withGuests(
			"      - {name: db-1, tier: gold, vcpus: 1, memory_mib: 512, domain: domains/db-1.xml}\n" +
				"      - {name: db-1, tier: bronze, vcpus: 1, memory_mib: 512, domain: domains/db-1.xml}\n"), []string{
			`zdt.yaml:44: services[1].guests[1].name: duplicate guest "db-1" (also at line 43)`,
		}},
		{"guest: bigger than every host", append(withHosts("      - {name: a1, uri: 'test:///default', vcpus: 8, memory_mib: 4096, cpu_overcommit: 2}\n"),
			withGuests("      - {name: db-1, tier: gold, vcpus: 32, memory_mib: 1024, domain: domains/db-1.xml}\n")...), []string{
			`zdt.yaml:45: services[1].guests[0].name: guest db-1 needs 32 vCPUs and 1024 MiB: more than any host offers (most vCPUs: a1 with 16, most memory: a1 with 4096 MiB, overcommit included)`,
		}},
		{"host: every field wrong", withHosts("      - {name: A1, vcpus: -1, memory_mib: -2, cpu_overcommit: 0.5, memory_overcommit: 0.9}\n"), []string{
			`zdt.yaml:21: sites[0].hosts[0].cpu_overcommit: 0.5 must be at least 1 (1 means no overcommit)`,
			`zdt.yaml:21: sites[0].hosts[0].memory_mib: must not be negative, not -2 (leave it out to ask the hypervisor)`,
			`zdt.yaml:21: sites[0].hosts[0].memory_overcommit: 0.9 must be at least 1 (1 means no overcommit)`,
			`zdt.yaml:21: sites[0].hosts[0].name: "A1" is not a valid name: ` + nameRuleMsg,
			`zdt.yaml:21: sites[0].hosts[0].uri: required: the hypervisor's libvirt URI, like qemu+tcp://10.0.0.5/system or test+unix:///default?socket=/run/libvirt/a1.sock`,
			`zdt.yaml:21: sites[0].hosts[0].vcpus: must not be negative, not -1 (leave it out to ask the hypervisor)`,
		}},
		{"host: duplicate name and bad URI", withHosts(
			"      - {name: a1, uri: 'test:///default'}\n      - {name: a1, uri: '::nope'}\n"), []string{
			`zdt.yaml:22: sites[0].hosts[1].name: duplicate host "a1" (also at line 21)`,
			`zdt.yaml:22: sites[0].hosts[1].uri: "::nope" is not a libvirt URI: write it like qemu+tcp://10.0.0.5/system`,
		}},
		{"guest: domain XML of another guest", withGuests("      - {name: db-2, tier: gold, vcpus: 1, memory_mib: 512, domain: domains/db-1.xml}\n"), []string{
			`zdt.yaml:43: services[1].guests[0].domain: DIR/domains/db-1.xml names the domain "db-1"; it must be the guest's name, "db-2"`,
		}},
		{"guest: domain file is not a domain", withGuests("      - {name: db-1, tier: gold, vcpus: 1, memory_mib: 512, domain: pki/ca.pem}\n"), []string{
			`zdt.yaml:43: services[1].guests[0].domain: DIR/pki/ca.pem is not valid XML: EOF`,
		}},
		{"timings: host_fail_after negative", []string{"  etcd_election_timeout: 500ms\n", "  etcd_election_timeout: 500ms\n  host_fail_after: -1s\n"}, []string{
			`zdt.yaml:12: timings.host_fail_after: must be greater than 0, not -1s`,
		}},
		{"placement: unknown scope", []string{dbPrefixes, dbPrefixes + "placement:\n  zone_scope: site\n"}, []string{
			`zdt.yaml:43: placement.zone_scope: unknown scope "site": want cluster (the default) or service`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, edit(t, tc.edits...), tc.want...)
		})
	}
}

// TestLoadWithoutDomains: the guests' domain files are read by Load, not
// by LoadWithoutDomains; every other rule holds for both.
func TestLoadWithoutDomains(t *testing.T) {
	const dbPrefixes = "    prefixes: [198.51.100.0/24]\n"
	missing := edit(t, dbPrefixes, dbPrefixes+"    guests:\n      - {name: db-1, tier: gold, vcpus: 1, memory_mib: 512, domain: domains/missing.xml}\n")
	_, path := writeConfig(t, missing)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "domains/missing.xml: no such file") {
		t.Fatalf("Load with a missing domain file: %v, want the missing file named", err)
	}
	c, err := LoadWithoutDomains(path)
	if err != nil {
		t.Fatalf("LoadWithoutDomains with a missing domain file: %v", err)
	}
	if gs := c.Guests(); len(gs) != 1 || gs[0].Name != "db-1" || gs[0].Domain == "" {
		t.Fatalf("LoadWithoutDomains: guests %+v, want db-1 with its domain path", gs)
	}
	bad := edit(t, dbPrefixes, dbPrefixes+"    guests:\n      - {name: db-1, tier: platinum, vcpus: 1, memory_mib: 512, domain: domains/missing.xml}\n")
	_, path = writeConfig(t, bad)
	if _, err := LoadWithoutDomains(path); err == nil || !strings.Contains(err.Error(), `unknown tier "platinum"`) {
		t.Fatalf("LoadWithoutDomains with a bad tier: %v, want the problem", err)
	}
}
