package config

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
)

// The SLA tiers of guests, highest first.
const (
	TierGold   = "gold"
	TierSilver = "silver"
	TierBronze = "bronze"
)

// Guest is a virtual machine that belongs to a service.
type Guest struct {
	Name    string
	Service string
	Tier    string // TierGold, TierSilver or TierBronze
	Zone    string // "A", "B" or "" for none
	VCPUs   int
	// MemoryMiB is the guest's memory.
	MemoryMiB int64
	// Domain is the absolute path of the guest's libvirt domain XML, on
	// storage every site can read.
	Domain string
}

type fileGuest struct {
	Name      string `yaml:"name"`
	Tier      string `yaml:"tier"`
	Zone      string `yaml:"zone"`
	VCPUs     int    `yaml:"vcpus"`
	MemoryMiB int64  `yaml:"memory_mib"`
	Domain    string `yaml:"domain"`
}

// Placement holds the rules of guest placement.
type Placement struct {
	// ZoneScope is ZoneScopeCluster (Gold-Zone-A and -B guests exclude each
	// other across the whole cluster, as the SLA states it) or
	// ZoneScopeService (only guests of the same service do).
	ZoneScope string
}

// The scopes of the zone rules.
const (
	ZoneScopeCluster = "cluster"
	ZoneScopeService = "service"
)

type filePlacement struct {
	ZoneScope string `yaml:"zone_scope"`
}

func (f filePlacement) build(c *checker) Placement {
	switch f.ZoneScope {
	case "", ZoneScopeCluster:
		return Placement{ZoneScope: ZoneScopeCluster}
	case ZoneScopeService:
		return Placement{ZoneScope: ZoneScopeService}
	}
	c.add("placement.zone_scope", "unknown scope %q: want cluster (the default) or service", f.ZoneScope)
	return Placement{ZoneScope: f.ZoneScope}
}

func buildGuests(c *checker, field, service string, fs []fileGuest, seen map[string]string) []Guest {
	if len(fs) == 0 {
		return nil
	}
	paths := c.elementPaths(field, len(fs))
	guests := make([]Guest, len(fs))
	for i, f := range fs {
		guests[i] = f.build(c, paths[i], service, seen)
	}
	return guests
}

func (f fileGuest) build(c *checker, field, service string, seen map[string]string) Guest {
	g := Guest{Name: f.Name, Service: service, Tier: strings.ToLower(f.Tier), Zone: strings.ToUpper(f.Zone),
		VCPUs: f.VCPUs, MemoryMiB: f.MemoryMiB}
	c.checkUniqueName(field+".name", f.Name, "guest", "the guest's (libvirt domain's) name, like web-1", seen)
	switch g.Tier {
	case TierGold, TierSilver, TierBronze:
	case "":
		c.add(field+".tier", "required: gold, silver or bronze")
	default:
		c.add(field+".tier", "unknown tier %q: want gold, silver or bronze", f.Tier)
	}
	switch g.Zone {
	case "A", "B":
	case "", "NONE":
		g.Zone = ""
	default:
		c.add(field+".zone", "unknown zone %q: want A, B or none", f.Zone)
	}
	if f.VCPUs <= 0 {
		c.add(field+".vcpus", "required: the guest's vCPUs, a number above 0")
	}
	if f.MemoryMiB <= 0 {
		c.add(field+".memory_mib", "required: the guest's memory in MiB, a number above 0")
	}
	if f.Domain == "" {
		c.add(field+".domain", "required: the path of the guest's libvirt domain XML, on storage every site can read")
	} else {
		g.Domain = c.checkFile(field+".domain", f.Domain)
		c.checkDomainXML(field+".domain", g.Domain, f.Name)
	}
	return g
}

// checkDomainXML reports a domain XML that is not a libvirt domain, or whose
// <name> is not the guest's: the sites find and stop a guest by that name.
func (c *checker) checkDomainXML(field, path, guest string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return // checkFile said so
	}
	var d struct {
		XMLName xml.Name
		Name    string `xml:"name"`
	}
	switch err := xml.Unmarshal(data, &d); {
	case err != nil:
		c.add(field, "%s is not valid XML: %v", path, err)
	case d.XMLName.Local != "domain":
		c.add(field, "%s is not a libvirt domain: its root element is <%s>, not <domain>", path, d.XMLName.Local)
	case d.Name != guest:
		c.add(field, "%s names the domain %q; it must be the guest's name, %q", path, d.Name, guest)
	}
}

// checkGuestsFit reports guests bigger than every host, when every host's
// capacity is in the config (otherwise only the hypervisors know, and the
// deploy reconciler says so in the status).
func checkGuestsFit(c *checker, sites []Site, services []Service, fields map[string]string) {
	var hosts []Host
	for _, s := range sites {
		for _, h := range s.Hosts {
			if h.VCPUs == 0 || h.MemoryMiB == 0 {
				return
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return
	}
	for _, svc := range services {
		for _, g := range svc.Guests {
			if g.VCPUs <= 0 || g.MemoryMiB <= 0 || fitsSomewhere(g, hosts) {
				continue
			}
			c.add(fields[g.Name], "guest %s needs %d vCPUs and %d MiB: more than any host offers (%s)", g.Name, g.VCPUs, g.MemoryMiB, largestHosts(hosts))
		}
	}
}

func fitsSomewhere(g Guest, hosts []Host) bool {
	for _, h := range hosts {
		if float64(g.VCPUs) <= float64(h.VCPUs)*h.CPUOvercommit && float64(g.MemoryMiB) <= float64(h.MemoryMiB)*h.MemoryOvercommit {
			return true
		}
	}
	return false
}

func largestHosts(hosts []Host) string {
	var cpu, mem Host
	for _, h := range hosts {
		if float64(h.VCPUs)*h.CPUOvercommit > float64(cpu.VCPUs)*cpu.CPUOvercommit {
			cpu = h
		}
		if float64(h.MemoryMiB)*h.MemoryOvercommit > float64(mem.MemoryMiB)*mem.MemoryOvercommit {
			mem = h
		}
	}
	return fmt.Sprintf("most vCPUs: %s with %g, most memory: %s with %g MiB, overcommit included",
		cpu.Name, float64(cpu.VCPUs)*cpu.CPUOvercommit, mem.Name, float64(mem.MemoryMiB)*mem.MemoryOvercommit)
}
