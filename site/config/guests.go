package config

import (
	"encoding/xml"
	"fmt"
	"runtime"
	"strings"
	"sync"
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
		g.Domain = c.absPath(f.Domain)
		c.domains = append(c.domains, domainFile{field: field + ".domain", path: g.Domain, guest: f.Name})
	}
	return g
}

// domainFile is a guest's domain XML, to check once the file is read.
type domainFile struct {
	field, path, guest string
}

// checkDomains checks every guest's domain XML (checkDomainXML), several
// at a time: a provider's inventory has thousands of them, and most of the
// time goes to reading the files.
func (c *checker) checkDomains() {
	msgs := make([]string, len(c.domains))
	workers := min(len(c.domains), 4*runtime.GOMAXPROCS(0))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				d := c.domains[i]
				msgs[i] = checkDomainXML(d.path, d.guest)
			}
		})
	}
	for i := range c.domains {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, msg := range msgs {
		if msg != "" {
			c.add(c.domains[i].field, "%s", msg)
		}
	}
	c.domains = nil
}

// checkDomainXML says what is wrong with a guest's domain XML, "" when
// nothing is: a file that cannot be read, or is not a libvirt domain, or
// whose <name> is not the guest's (the sites find and stop a guest by that
// name).
func checkDomainXML(path, guest string) string {
	data, err := readFile(path)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", path, err)
	}
	var d struct {
		XMLName xml.Name
		Name    string `xml:"name"`
	}
	switch err := xml.Unmarshal(data, &d); {
	case err != nil:
		return fmt.Sprintf("%s is not valid XML: %v", path, err)
	case d.XMLName.Local != "domain":
		return fmt.Sprintf("%s is not a libvirt domain: its root element is <%s>, not <domain>", path, d.XMLName.Local)
	case d.Name != guest:
		return fmt.Sprintf("%s names the domain %q; it must be the guest's name, %q", path, d.Name, guest)
	}
	return ""
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
