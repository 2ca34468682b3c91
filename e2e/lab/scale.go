package lab

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DefaultPrefixesPerService is how many IPv6 prefixes a generated service
// has when Scale.PrefixesPerService is 0.
const DefaultPrefixesPerService = 10

// The address plan of the generated services: IPv6 /48s taken in order
// from 2001:db8:1000::/48 to 2001:db8:ffff::/48, so that they never meet
// the default lab's (2001:db8:a::/48, 2001:db8:b::/48) or the netns lab's
// links (2001:db8:1::/64), all below 2001:db8:1000::.
const (
	scalePrefixBits  = 48
	scaleFirstPrefix = 0x1000
	// MaxScalePrefixes is how many prefixes the address plan holds.
	MaxScalePrefixes = 0x10000 - scaleFirstPrefix
)

// The generated hosts: every host is the same size, usable vCPUs twice its
// physical ones (cpu_overcommit 2), and 2 GiB of memory per usable vCPU,
// no memory overcommit. No guest wants more memory per vCPU than that, so
// a host's vCPUs run out first.
const (
	scaleCPUOvercommit = 2
	scaleMiBPerVCPU    = 2048
	// scaleHeadroom is how much more vCPUs the hosts have than every guest
	// needs, in percent: with one site of three dark the others have 80%
	// of what the guests need, so a failover must preempt.
	scaleHeadroom = 20
	// scaleVCPUStep rounds a host's usable vCPUs up, so that its physical
	// ones are even.
	scaleVCPUStep = 2 * scaleCPUOvercommit
)

// The most guests and hosts a scale may have: beyond them a lab would not
// fit one machine anyway.
const (
	MaxScaleGuests = 1_000_000
	MaxScaleHosts  = 30_000
)

// Scale is the size of a generated lab (ScaleTopology): the base's
// services plus Services generated ones, with Guests guests on Hosts
// hosts. The zero Scale is the base lab.
type Scale struct {
	// Services is how many services to add, named svc-0001, svc-0002, ...
	Services int
	// PrefixesPerService is each generated service's number of IPv6 /48
	// prefixes; 0 means DefaultPrefixesPerService.
	PrefixesPerService int
	// Guests is how many guests to add, spread over the generated services
	// in blocks; they need Services and Hosts.
	Guests int
	// Hosts replaces the base's hosts: this many, spread evenly over the
	// sites (the first sites get one more when they do not divide), at
	// least one per site. 0 keeps the base's hosts.
	Hosts int
}

// IsZero reports whether s generates nothing (no services, guests or
// hosts, whatever PrefixesPerService says): the base lab.
func (s Scale) IsZero() bool { return s.Services == 0 && s.Guests == 0 && s.Hosts == 0 }

// prefixes is the generated services' prefixes per service, default
// applied.
func (s Scale) prefixes() int {
	if s.PrefixesPerService == 0 {
		return DefaultPrefixesPerService
	}
	return s.PrefixesPerService
}

// validate checks the scale against a base with the given number of sites.
func (s Scale) validate(sites int) error {
	if err := s.checkNegative(); err != nil {
		return err
	}
	if sites == 0 && !s.IsZero() {
		return errors.New("the lab has no sites to spread services and hosts over")
	}
	return s.checkSizes(sites)
}

// checkNegative reports every negative number of the scale.
func (s Scale) checkNegative() error {
	var errs []error
	for _, n := range []struct {
		name  string
		value int
	}{{"services", s.Services}, {"prefixes per service", s.PrefixesPerService}, {"guests", s.Guests}, {"hosts", s.Hosts}} {
		if n.value < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative", n.name, n.value))
		}
	}
	return errors.Join(errs...)
}

// checkSizes reports numbers the lab cannot build: too many, or guests
// without services or hosts, or sites without hosts.
func (s Scale) checkSizes(sites int) error {
	var errs []error
	if s.Guests > MaxScaleGuests {
		errs = append(errs, fmt.Errorf("%d guests: at most %d", s.Guests, MaxScaleGuests))
	}
	if s.Hosts > MaxScaleHosts {
		errs = append(errs, fmt.Errorf("%d hosts: at most %d", s.Hosts, MaxScaleHosts))
	}
	if s.Guests > 0 && s.Services == 0 {
		errs = append(errs, fmt.Errorf("%d guests and no services: every guest belongs to a service, give some", s.Guests))
	}
	if s.Guests > 0 && s.Hosts == 0 {
		errs = append(errs, fmt.Errorf("%d guests and no hosts: give hosts to run them on", s.Guests))
	}
	if s.Hosts > 0 && s.Hosts < sites {
		errs = append(errs, fmt.Errorf("%d hosts for %d sites: every site needs a host, give at least %d", s.Hosts, sites, sites))
	}
	if per := s.prefixes(); s.Services > MaxScalePrefixes/per {
		errs = append(errs, fmt.Errorf("%d services with %d prefixes each: more /48s than the address plan (2001:db8:1000::/48 to 2001:db8:ffff::/48) has, %d; give fewer",
			s.Services, per, MaxScalePrefixes))
	}
	return errors.Join(errs...)
}

// ScaleTopology is base grown to scale s, for measuring zdt with as many
// services, prefixes, guests and hosts as a provider has:
//
//   - Services svc-0001, svc-0002, ... are added after the base's (whose
//     replication group stays as it is), each with s.PrefixesPerService
//     IPv6 /48s of the address plan (2001:db8:1000::/48 onwards, in
//     order), the RTO of every lab service, and the base's sites in an
//     order rotated by one for each service, so that the services'
//     preferred (active) sites take turns.
//   - The guests are dealt to the generated services in blocks, in a cycle
//     of ten: Gold-Zone-A, Gold-Zone-B, Silver-Zone-A, Silver-Zone-B,
//     Silver and five Bronze (20% gold, 30% silver, 50% bronze).
//   - The hosts replace the base's, a1, a2, ... b1, ..., spread evenly over
//     the sites, all of one size (scaleHost): with every site up every
//     guest runs, with one dark the gold ones still do, preempting bronze,
//     then silver guests.
//   - The zone rules hold between the guests of one service (zone_scope:
//     service): cluster-wide, all Gold-Zone-A guests would need sites
//     without any Gold-Zone-B guest, which three sites with one dark
//     cannot give both zones.
//
// The same base and scale always give the same topology.
func ScaleTopology(base Topology, s Scale) (Topology, error) {
	if err := s.validate(len(base.Sites)); err != nil {
		return base, fmt.Errorf("lab scale: %w", err)
	}
	if s.IsZero() {
		return base, nil
	}
	if err := checkPrefixPlan(base); err != nil {
		return base, fmt.Errorf("lab scale: %w", err)
	}
	t := base
	t.Services = slices.Clone(base.Services)
	t.Services = append(t.Services, scaleServices(base.siteNames(), s)...)
	if s.Hosts > 0 {
		t.Sites = scaleSites(base.Sites, s.Hosts, scaleHost(t, s.Hosts))
	}
	if s.Guests > 0 {
		t.ZoneScope = "service"
	}
	return t, nil
}

// checkPrefixPlan fails if a base service's prefix meets the address plan.
func checkPrefixPlan(base Topology) error {
	for _, svc := range base.Services {
		for _, p := range svc.Prefixes {
			for i := range MaxScalePrefixes / 0x1000 {
				plan := netip.PrefixFrom(scalePrefix(i*0x1000).Addr(), 36)
				if p.Overlaps(plan) {
					return fmt.Errorf("service %s's prefix %s is in the generated services' address plan (2001:db8:1000::/48 onwards)", svc.Name, p)
				}
			}
		}
	}
	return nil
}

// scalePrefix is the address plan's prefix number i (from 0).
func scalePrefix(i int) netip.Prefix {
	n := scaleFirstPrefix + i
	a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(n >> 8), byte(n)}
	return netip.PrefixFrom(netip.AddrFrom16(a), scalePrefixBits)
}

// scaleServices are the generated services with their guests.
func scaleServices(sites []string, s Scale) []ServiceSpec {
	out := make([]ServiceSpec, s.Services)
	width := max(4, len(strconv.Itoa(s.Services)))
	per := s.prefixes()
	for i := range out {
		svc := &out[i]
		svc.Name = fmt.Sprintf("svc-%0*d", width, i+1)
		svc.Sites = rotated(sites, i)
		for j := range per {
			svc.Prefixes = append(svc.Prefixes, scalePrefix(i*per+j))
		}
		first, end := guestBlock(i, s), guestBlock(i+1, s)
		for g := first; g < end; g++ {
			svc.Guests = append(svc.Guests, scaleGuest(svc.Name, g-first+1, g))
		}
	}
	return out
}

// rotated is sites starting at sites[i mod len].
func rotated(sites []string, i int) []string {
	k := i % len(sites)
	return append(slices.Clone(sites[k:]), sites[:k]...)
}

// guestBlock is the first guest (counted over all generated guests) of
// generated service i; service i has the guests up to guestBlock(i+1).
func guestBlock(i int, s Scale) int {
	return int(int64(i) * int64(s.Guests) / int64(s.Services))
}

// scaleGuestKind is one guest of the cycle the generated guests follow.
type scaleGuestKind struct {
	tier, zone string
	vcpus      int
	memoryMiB  int64
}

// scaleGuestKinds is the mix of the generated guests, dealt in this order:
// per ten guests 2 gold (2 vCPUs, 4 GiB), 3 silver (2 vCPUs, 2 GiB) and 5
// bronze (1 vCPU, 1 GiB): 15 vCPUs.
func scaleGuestKinds() [10]scaleGuestKind {
	gold := func(zone string) scaleGuestKind { return scaleGuestKind{"gold", zone, 2, 4096} }
	silver := func(zone string) scaleGuestKind { return scaleGuestKind{"silver", zone, 2, 2048} }
	bronze := scaleGuestKind{"bronze", "", 1, 1024}
	return [10]scaleGuestKind{gold("A"), gold("B"), silver("A"), silver("B"), silver(""), bronze, bronze, bronze, bronze, bronze}
}

// scaleGuest is generated guest g (counted over all generated guests),
// the n-th of its service: svc-0001-gold-a-1, svc-0001-bronze-7.
func scaleGuest(service string, n, g int) GuestSpec {
	kinds := scaleGuestKinds()
	k := kinds[g%len(kinds)]
	name := service + "-" + k.tier
	if k.zone != "" {
		name += "-" + strings.ToLower(k.zone)
	}
	return GuestSpec{Name: name + "-" + strconv.Itoa(n), Tier: k.tier, Zone: k.zone, VCPUs: k.vcpus, MemoryMiB: k.memoryMiB}
}

// scaleSites is sites with n hosts of the given size spread over them,
// named after their site (a1, a2, ...), each a hypervisor of its own.
func scaleSites(sites []SiteSpec, n int, host HostSpec) []SiteSpec {
	out := slices.Clone(sites)
	for i := range out {
		count := hostsAt(i, len(out), n)
		out[i].OwnHypervisors = true
		out[i].Hosts = make([]HostSpec, count)
		for j := range count {
			h := host
			h.Name = out[i].Name + strconv.Itoa(j+1)
			out[i].Hosts[j] = h
		}
	}
	return out
}

// hostsAt is how many of n hosts site i of sites has.
func hostsAt(i, sites, n int) int {
	count := n / sites
	if i < n%sites {
		count++
	}
	return count
}

// scaleHost is the size of each of n hosts for t's guests: usable vCPUs
// the most of
//
//   - every guest's vCPUs with scaleHeadroom, over all hosts;
//   - every gold guest's vCPUs over the hosts of the smallest site: with a
//     site dark a gold guest may only go to one of the others (its service's
//     guest of the other zone is at the third), so one site may have to
//     hold every gold guest;
//   - the biggest guest's;
//
// rounded up to scaleVCPUStep.
func scaleHost(t Topology, n int) HostSpec {
	var all, gold, biggest int
	for _, g := range t.Guests() {
		all += g.VCPUs
		biggest = max(biggest, g.VCPUs, int(math.Ceil(float64(g.MemoryMiB)/scaleMiBPerVCPU)))
		if g.Tier == "gold" {
			gold += g.VCPUs
		}
	}
	smallest := n / len(t.Sites)
	usable := max(ceilDiv(all*(100+scaleHeadroom), 100*n), ceilDiv(gold, smallest), biggest, 1)
	usable = ceilDiv(usable, scaleVCPUStep) * scaleVCPUStep
	return HostSpec{VCPUs: usable / scaleCPUOvercommit, MemoryMiB: int64(usable) * scaleMiBPerVCPU, CPUOvercommit: scaleCPUOvercommit}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
