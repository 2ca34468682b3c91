package config

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Service is what fails over as one unit.
type Service struct {
	Name             string
	Sites            []string // sites that may serve it, most preferred first
	Prefixes         []netip.Prefix
	ReplicationGroup string // "" if none
	Guests           []Guest
	// Addresses are the service's addresses, carried by the active site
	// on its service interface; each lies inside one of Prefixes.
	Addresses []netip.Addr
	// PrependStep is the prepends between two standby ranks.
	PrependStep int
	// RPO is how much data a promotion may lose.
	RPO RPO
	// RTO is the service's recovery time objective: how long a move of it
	// (a failover, a switchover) may take, from the op's start to its last
	// milestone. Drills measure against it; 0 means none was given.
	RTO time.Duration
}

type fileService struct {
	Name             string         `yaml:"name"`
	Sites            []string       `yaml:"sites"`
	Prefixes         []string       `yaml:"prefixes"`
	ReplicationGroup string         `yaml:"replication_group"`
	Guests           []fileGuest    `yaml:"guests"`
	Addresses        []string       `yaml:"addresses"`
	PrependStep      *int           `yaml:"prepend_step"`
	RPO              *fileRPO       `yaml:"rpo"`
	RTO              *time.Duration `yaml:"rto"`
}

// serviceChecks holds what must be unique across services.
type serviceChecks struct {
	sites    []Site
	bgp      BGP
	groups   []ReplicationGroup
	names    map[string]string // service name -> field of its first use
	prefixes []seenPrefix
	guests   map[string]string // guest name -> field of its first use
}

type seenPrefix struct {
	prefix  netip.Prefix
	field   string
	service string
}

func buildServices(c *checker, fs []fileService, sites []Site, bgp BGP, groups []ReplicationGroup) []Service {
	seen := serviceChecks{sites: sites, bgp: bgp, groups: groups, names: map[string]string{}, guests: map[string]string{}}
	paths := c.elementPaths("services", len(fs))
	services := make([]Service, len(fs))
	for i, f := range fs {
		services[i] = f.build(c, paths[i], &seen)
	}
	checkPrefixOverlaps(c, seen.prefixes)
	checkGuestsFit(c, sites, services, seen.guests)
	return services
}

func (f fileService) build(c *checker, field string, seen *serviceChecks) Service {
	s := Service{Name: f.Name, ReplicationGroup: f.ReplicationGroup}
	c.checkUniqueName(field+".name", f.Name, "service", "the service's name, like web", seen.names)
	s.Sites = seen.serviceSites(c, field+".sites", f.Sites)
	s.Prefixes = seen.servicePrefixes(c, field+".prefixes", f.Name, f.Prefixes)
	if f.ReplicationGroup != "" && c.checkName(field+".replication_group", f.ReplicationGroup) {
		seen.checkGroup(c, field+".replication_group", f.ReplicationGroup, s.Sites)
	}
	s.RPO = f.RPO.build(c, field+".rpo", f.ReplicationGroup, seen.groups)
	if f.RTO != nil {
		if *f.RTO <= 0 {
			c.add(field+".rto", "%s: want a positive duration, like 30s (how long moving the service may take), or leave rto out", *f.RTO)
		} else {
			s.RTO = *f.RTO
		}
	}
	s.Guests = buildGuests(c, field+".guests", f.Name, f.Guests, seen.guests)
	s.Addresses = c.serviceAddresses(field+".addresses", f.Addresses, s.Prefixes)
	s.PrependStep = c.prependStep(field+".prepend_step", f.PrependStep, seen.bgp.PrependStep)
	return s
}

func (seen *serviceChecks) serviceSites(c *checker, field string, names []string) []string {
	if len(names) == 0 {
		if !c.isBroken(field) {
			c.add(field, "required: the sites that may serve this service, most preferred first, like [a, b, c]")
		}
		return nil
	}
	known, checkKnown := seen.siteNames(c)
	first := map[string]string{}
	paths := c.elementPaths(field, len(names))
	for i, name := range names {
		switch {
		case first[name] != "":
			c.add(paths[i], "site %q is already listed at %s; list each site once", name, first[name])
		case checkKnown && !slices.Contains(known, name):
			c.add(paths[i], "unknown site %q (sites are %s)", name, strings.Join(known, ", "))
		}
		if first[name] == "" {
			first[name] = paths[i]
		}
	}
	return names
}

// siteNames returns the names of the sites, and whether they are all
// known: a site whose name is missing, invalid, a duplicate or could not
// be decoded may be any of the sites services name, so no service site
// is reported unknown then.
func (seen *serviceChecks) siteNames(c *checker) ([]string, bool) {
	return knownSites(c, seen.sites)
}

// knownSites returns the names of sites, and whether they are all known
// (see serviceChecks.siteNames).
func knownSites(c *checker, sites []Site) ([]string, bool) {
	names := make([]string, len(sites))
	ok := !c.isBroken("sites")
	for i, s := range sites {
		names[i] = s.Name
		ok = ok && validName(s.Name) && !slices.Contains(names[:i], s.Name)
	}
	return names, ok
}

func (seen *serviceChecks) servicePrefixes(c *checker, field, service string, raws []string) []netip.Prefix {
	var prefixes []netip.Prefix
	paths := c.elementPaths(field, len(raws))
	for i, raw := range raws {
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			c.add(paths[i], "%q is not a valid prefix: %s", raw, prefixErr(err, raw))
			continue
		}
		if p != p.Masked() {
			c.add(paths[i], "%q has host bits set; did you mean %s?", raw, p.Masked())
			continue
		}
		prefixes = append(prefixes, p)
		seen.prefixes = append(seen.prefixes, seenPrefix{prefix: p, field: paths[i], service: service})
	}
	return prefixes
}

// checkPrefixOverlaps reports every prefix that is also, or overlaps, a
// prefix listed before it (in any service), at the later one. Two prefixes
// overlap when one contains the other, so in the order of their first
// address (the shorter first where they start together) each prefix
// overlaps exactly those before it whose range it starts inside: a sweep
// that keeps the open ranges on a stack finds every pair in O(n log n)
// plus the pairs, where comparing all pairs took O(n²) (10,000 prefixes:
// 50 million comparisons, a second of CPU).
func checkPrefixOverlaps(c *checker, seen []seenPrefix) {
	order := make([]int, len(seen))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		pa, pb := seen[a].prefix, seen[b].prefix
		return cmp.Or(pa.Addr().Compare(pb.Addr()), cmp.Compare(pa.Bits(), pb.Bits()), cmp.Compare(a, b))
	})
	earlier := make([][]int, len(seen)) // by prefix: the earlier-listed ones it overlaps
	var open []int                      // prefixes containing the current one, outermost first
	for _, j := range order {
		p := seen[j].prefix
		for len(open) > 0 && !seen[open[len(open)-1]].prefix.Contains(p.Addr()) {
			open = open[:len(open)-1]
		}
		for _, i := range open { // each contains p
			earlier[max(i, j)] = append(earlier[max(i, j)], min(i, j))
		}
		open = append(open, j)
	}
	for j, is := range earlier {
		slices.Sort(is)
		p := seen[j].prefix
		for _, i := range is {
			o := seen[i]
			if o.prefix == p {
				c.add(seen[j].field, "duplicate prefix %s (also in service %q, line %d)", p, o.service, c.line(o.field))
			} else {
				c.add(seen[j].field, "%s overlaps %s of service %q (line %d)", p, o.prefix, o.service, c.line(o.field))
			}
		}
	}
}

// prefixErr drops the `netip.ParsePrefix("...")` that netip puts before
// its reason; the message quotes the prefix already.
func prefixErr(err error, raw string) string {
	if a, aerr := netip.ParseAddr(raw); aerr == nil {
		return "it has no /length; for the one address write " + netip.PrefixFrom(a.WithZone(""), a.BitLen()).String()
	}
	msg := err.Error()
	return strings.TrimPrefix(msg, "netip.ParsePrefix("+strconv.Quote(raw)+"): ")
}
