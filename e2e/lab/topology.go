package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Topology is everything the lab's sample config says: the cluster, its
// timings, its sites with their hypervisors, its services with their
// guests, and the placement rules. DefaultTopology is the one `zdt lab`
// uses; tests move it to other addresses.
type Topology struct {
	Cluster  string
	Ports    Ports
	Timings  Timings
	Sites    []SiteSpec
	Services []ServiceSpec
	// ZoneScope is the placement's zone_scope (cluster or service); it is
	// written only when there are guests.
	ZoneScope string
	// BGP is the sites' speakers and the route observer; nil means none.
	BGP *BGPSpec
	// Postgres is the replicated PostgreSQL group; nil means none.
	Postgres *PostgresSpec
	// RequireConfirmation is fencing.require_confirmation: a failover that
	// cannot fence a resource of the dark site from outside waits for
	// zdt fence confirm.
	RequireConfirmation bool
	// Netns runs the lab in network namespaces (InNetns); nil runs it on
	// loopback addresses.
	Netns *NetnsSpec
}

// NetnsSpec is what a lab in network namespaces adds: see InNetns.
type NetnsSpec struct {
	// ResponderPort is where every site's service responder listens.
	ResponderPort uint16
}

// BGPSpec is how the lab's sites announce their services' prefixes: every
// site's speaker has one session, to the route observer, which stands for
// the upstream and publishes where its best path for each prefix leads.
type BGPSpec struct {
	// ObserverListen is where the observer accepts the sites' sessions.
	ObserverListen netip.AddrPort
	// ObserverASN and ObserverRouterID are the observer's (the upstream's).
	ObserverASN      uint32
	ObserverRouterID netip.Addr
	// MinChangeInterval is bgp.min_change_interval, the flap guard.
	MinChangeInterval time.Duration
	// HoldTime, Keepalive and ConnectRetry are the sites' session timers.
	HoldTime, Keepalive, ConnectRetry time.Duration
	// Routers are upstream routers every site also has a session with,
	// from its address of the router's family.
	Routers []RouterSpec
	// Interface is the sites' bgp.interface, which carries the addresses
	// of the services a site is active for; "" for none.
	Interface string
}

// RouterSpec is an upstream router the sites announce to.
type RouterSpec struct {
	Address     netip.Addr
	ASN         uint32
	Description string
}

// PostgresSpec is the lab's replication group: one PostgreSQL server per
// site, the first site of Service its first primary, the others streaming
// standbys of it.
type PostgresSpec struct {
	Group   string // the replication group's name
	Service string // the service that uses the group
	Port    uint16 // every server's port, on its site's address
}

// Ports are the TCP ports every site listens on, each on its own address.
type Ports struct {
	API        uint16 // the controller's HTTP API (/healthz, /metrics)
	PeerAPI    uint16 // the controller's mutual-TLS listener for the other sites' controllers
	EtcdClient uint16
	EtcdPeer   uint16
}

// Timings are the cluster's lease, self-fencing and etcd timings.
type Timings struct {
	LeaseTTL            time.Duration
	RenewInterval       time.Duration
	SelfFenceMargin     time.Duration
	EtcdHeartbeat       time.Duration
	EtcdElectionTimeout time.Duration
	BootstrapGrace      time.Duration
	HostFailAfter       time.Duration
	// FenceTimeout bounds each attempt of a failover to fence a dark
	// site's resources from outside (fencing.timeout).
	FenceTimeout time.Duration
}

// ProductionTimings are the config's own defaults, those of a config that
// gives no timings: what a cluster stretched across sites runs with (zdt
// lab --default-timings), where the lab's are short so that a failover is
// quick to watch. TestProductionTimings keeps them the config's.
func ProductionTimings() Timings {
	return Timings{
		LeaseTTL:            6 * time.Second,
		RenewInterval:       2 * time.Second,
		SelfFenceMargin:     1500 * time.Millisecond,
		EtcdHeartbeat:       100 * time.Millisecond,
		EtcdElectionTimeout: time.Second,
		BootstrapGrace:      10 * time.Second,
		HostFailAfter:       10 * time.Second,
		FenceTimeout:        2 * time.Second,
	}
}

// SiteSpec is one site of the lab: its name, the loopback address all of
// its listeners bind to (and its certificate is valid for), and its
// hypervisors.
type SiteSpec struct {
	Name string
	IP   netip.Addr
	// Hosts are the site's hypervisors, all served by the site's own
	// libvirtd with the test driver: its shared test:///default, so at
	// most one, unless OwnHypervisors.
	Hosts []HostSpec
	// OwnHypervisors makes each host a hypervisor of its own: the test
	// driver opened on the host's node XML, which states its size (see
	// ownHostURI). A site may then have any number of hosts.
	OwnHypervisors bool
	// ASN and RouterID are the site's BGP speaker's, when Topology.BGP is
	// set.
	ASN      uint32
	RouterID netip.Addr
	// BGPAddr4 and BGPAddr6 are the addresses the speaker's sessions
	// leave from; an invalid BGPAddr4 means IP.
	BGPAddr4, BGPAddr6 netip.Addr
}

// BGPAddr is the address the site's IPv4 sessions leave from.
func (s SiteSpec) BGPAddr() netip.Addr {
	if s.BGPAddr4.IsValid() {
		return s.BGPAddr4
	}
	return s.IP
}

// HostSpec is a hypervisor of a site. Its URI is the site's libvirtd, which
// depends on the lab's directory: the config writer fills it in.
type HostSpec struct {
	Name string
	// VCPUs and MemoryMiB are the capacity the config states, so that the
	// placement does not depend on what the test driver reports.
	VCPUs     int
	MemoryMiB int64
	// CPUOvercommit multiplies VCPUs; 0 leaves it out of the config (1).
	CPUOvercommit float64
}

// ServiceSpec is one service of the sample: the sites that may serve it, in
// order of preference, its prefixes and its guests.
type ServiceSpec struct {
	Name     string
	Sites    []string
	Prefixes []netip.Prefix
	// Addresses are the service's host addresses, which its active site's
	// interface carries (with BGPSpec.Interface).
	Addresses []netip.Addr
	Guests    []GuestSpec
}

// GuestSpec is a guest of a service. The lab writes its domain XML to
// DIR/domains/NAME.xml.
type GuestSpec struct {
	Name      string
	Tier      string // gold, silver or bronze
	Zone      string // A, B or "" for none
	VCPUs     int
	MemoryMiB int64
}

// DefaultTopology is the lab of `zdt lab`: sites a, b and c on 127.0.0.11,
// .12 and .13, short timings so a failover is quick to watch, and two
// services that prefer different sites.
//
// Each site has one hypervisor (a1, b1, c1) with room for 5 vCPUs (4 with a
// 1.25 CPU overcommit), and the services have 12 vCPUs of guests: with every
// site up all of them run, and losing any one site leaves 10 vCPUs, so a
// bronze guest stops (is preempted) for the gold ones. Silver-Zone-A and -B guests
// never share a host, so each silver guest's host keeps a vCPU nothing
// else fits in: without the overcommit (12 vCPUs for 12) one bronze guest
// could never run.
func DefaultTopology() Topology {
	return Topology{
		Cluster: "lab",
		Ports:   Ports{API: 7480, PeerAPI: 7481, EtcdClient: 2379, EtcdPeer: 2380},
		// Loopback timings. An etcd leader election (up to about two
		// election timeouts) must fit in lease_ttl - self_fence_margin -
		// renew_interval (1s here), or losing the site that holds the etcd
		// leader makes the surviving sites fence themselves too.
		Timings: Timings{
			LeaseTTL:            2 * time.Second,
			RenewInterval:       500 * time.Millisecond,
			SelfFenceMargin:     500 * time.Millisecond,
			EtcdHeartbeat:       50 * time.Millisecond,
			EtcdElectionTimeout: 500 * time.Millisecond,
			BootstrapGrace:      5 * time.Second,
			HostFailAfter:       5 * time.Second,
			FenceTimeout:        time.Second,
		},
		Sites: []SiteSpec{
			{Name: "a", IP: netip.MustParseAddr("127.0.0.11"), Hosts: []HostSpec{labHost("a1")},
				ASN: 64601, RouterID: netip.MustParseAddr("192.0.2.11")},
			{Name: "b", IP: netip.MustParseAddr("127.0.0.12"), Hosts: []HostSpec{labHost("b1")},
				ASN: 64602, RouterID: netip.MustParseAddr("192.0.2.12")},
			{Name: "c", IP: netip.MustParseAddr("127.0.0.13"), Hosts: []HostSpec{labHost("c1")},
				ASN: 64603, RouterID: netip.MustParseAddr("192.0.2.13")},
		},
		Services: []ServiceSpec{
			{
				Name:  "web",
				Sites: []string{"a", "b", "c"},
				Prefixes: []netip.Prefix{
					netip.MustParsePrefix("203.0.113.0/26"),
					netip.MustParsePrefix("2001:db8:a::/48"),
				},
				Guests: []GuestSpec{
					{Name: "web-gold-a", Tier: "gold", Zone: "A", VCPUs: 2, MemoryMiB: 1024},
					{Name: "web-gold-b", Tier: "gold", Zone: "B", VCPUs: 2, MemoryMiB: 1024},
					{Name: "web-silver-a", Tier: "silver", Zone: "A", VCPUs: 1, MemoryMiB: 512},
					{Name: "web-silver-b", Tier: "silver", Zone: "B", VCPUs: 1, MemoryMiB: 512},
				},
			},
			{
				Name:  "db",
				Sites: []string{"b", "c", "a"},
				Prefixes: []netip.Prefix{
					netip.MustParsePrefix("203.0.113.64/26"),
					netip.MustParsePrefix("2001:db8:b::/48"),
				},
				Guests: []GuestSpec{
					{Name: "db-gold", Tier: "gold", VCPUs: 2, MemoryMiB: 2048},
					{Name: "db-bronze-1", Tier: "bronze", VCPUs: 2, MemoryMiB: 1024},
					{Name: "db-bronze-2", Tier: "bronze", VCPUs: 2, MemoryMiB: 1024},
				},
			},
		},
		ZoneScope: "cluster",
		// The observer is the sites' upstream: 127.0.0.10, beside them.
		// Short timers and flap guard, so that a failover is quick to see.
		BGP: &BGPSpec{
			ObserverListen:    netip.MustParseAddrPort("127.0.0.10:1179"),
			ObserverASN:       64500,
			ObserverRouterID:  netip.MustParseAddr("192.0.2.1"),
			MinChangeInterval: 3 * time.Second,
			HoldTime:          9 * time.Second,
			Keepalive:         3 * time.Second,
			ConnectRetry:      time.Second,
		},
		// db prefers b: its first primary is b's server, and taking b
		// down shows a standby promoted at c.
		Postgres: &PostgresSpec{Group: "pg", Service: "db", Port: 15432},
	}
}

// labHost is the one hypervisor of a site of the default lab.
func labHost(name string) HostSpec {
	return HostSpec{Name: name, VCPUs: 4, MemoryMiB: 8192, CPUOvercommit: 1.25}
}

// WithoutGuests is the topology without hypervisors and guests: the lab of
// a machine without libvirtd.
func (t Topology) WithoutGuests() Topology {
	t.Sites = slices.Clone(t.Sites)
	for i := range t.Sites {
		t.Sites[i].Hosts = nil
	}
	t.Services = slices.Clone(t.Services)
	for i := range t.Services {
		t.Services[i].Guests = nil
	}
	return t
}

// WithoutPostgres is the topology without its replication group: the lab
// of a machine without PostgreSQL.
func (t Topology) WithoutPostgres() Topology {
	t.Postgres = nil
	return t
}

// HasGuests reports whether any site has a hypervisor or any service a
// guest.
func (t Topology) HasGuests() bool {
	for _, s := range t.Sites {
		if len(s.Hosts) > 0 {
			return true
		}
	}
	for _, svc := range t.Services {
		if len(svc.Guests) > 0 {
			return true
		}
	}
	return false
}

// Guests lists every guest of every service, in order.
func (t Topology) Guests() []GuestSpec {
	var out []GuestSpec
	for _, svc := range t.Services {
		out = append(out, svc.Guests...)
	}
	return out
}

// API is the host:port of the site's controller API.
func (t Topology) API(s SiteSpec) string { return hostPort(s.IP, t.Ports.API) }

// PeerAPI is the site's controller's listener for the other sites'
// controllers (fail static).
func (t Topology) PeerAPI(s SiteSpec) string { return hostPort(s.IP, t.Ports.PeerAPI) }

// EtcdClientURL is the URL the site's etcd member serves clients on.
func (t Topology) EtcdClientURL(s SiteSpec) string {
	return "https://" + hostPort(s.IP, t.Ports.EtcdClient)
}

// EtcdPeerURL is the URL the site's etcd member serves its peers on.
func (t Topology) EtcdPeerURL(s SiteSpec) string {
	return "https://" + hostPort(s.IP, t.Ports.EtcdPeer)
}

func hostPort(ip netip.Addr, port uint16) string {
	return netip.AddrPortFrom(ip, port).String()
}

// validate catches the mistakes a test's edited topology could make before
// anything is written.
func (t Topology) validate() error {
	var errs []error
	if t.Cluster == "" {
		errs = append(errs, errors.New("no cluster name"))
	}
	if len(t.Sites) == 0 {
		errs = append(errs, errors.New("no sites"))
	}
	seen := make(map[string]bool, len(t.Sites))
	for i, s := range t.Sites {
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("sites[%d]: no name", i))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("sites[%d]: site %q appears twice", i, s.Name))
		case s.Name == caName || s.Name == clientName || s.Name == pkiDir || s.Name == domainsDir ||
			s.Name == observerDirName || s.Name == secretsDirName:
			errs = append(errs, fmt.Errorf("sites[%d]: %q is taken by the lab's own files", i, s.Name))
		case strings.ContainsAny(s.Name, `/\ `) || s.Name == "." || s.Name == "..":
			errs = append(errs, fmt.Errorf("sites[%d]: %q cannot name a directory", i, s.Name))
		}
		seen[s.Name] = true
		if !s.IP.IsValid() {
			errs = append(errs, fmt.Errorf("site %q: no IP address", s.Name))
		}
	}
	for _, s := range t.Sites {
		if len(s.Hosts) > 1 && !s.OwnHypervisors {
			errs = append(errs, fmt.Errorf("site %q: %d hosts would be one hypervisor, the site's test:///default, so at most one, unless each is a hypervisor of its own (OwnHypervisors)",
				s.Name, len(s.Hosts)))
		}
		for _, h := range s.Hosts {
			if !plainName(h.Name) {
				errs = append(errs, fmt.Errorf("site %q: host %q: want a plain name like a1", s.Name, h.Name))
			}
		}
	}
	for _, svc := range t.Services {
		for _, name := range svc.Sites {
			if !seen[name] {
				errs = append(errs, fmt.Errorf("service %q: unknown site %q", svc.Name, name))
			}
		}
		for _, g := range svc.Guests {
			if !plainName(g.Name) {
				// It names a file, DIR/domains/NAME.xml.
				errs = append(errs, fmt.Errorf("service %q: guest %q: want a plain name like web-1", svc.Name, g.Name))
			}
		}
	}
	errs = append(errs, t.validateBGP()...)
	errs = append(errs, t.validatePostgres()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid lab topology: %w", err)
	}
	return nil
}

func (t Topology) validateBGP() []error {
	if t.BGP == nil {
		return nil
	}
	var errs []error
	if !t.BGP.ObserverListen.IsValid() || t.BGP.ObserverListen.Port() == 0 {
		errs = append(errs, errors.New("bgp: the observer has no address and port"))
	}
	for _, s := range t.Sites {
		if s.ASN == 0 || !s.RouterID.Is4() {
			errs = append(errs, fmt.Errorf("site %q: BGP needs an ASN and an IPv4 router id", s.Name))
		}
	}
	return errs
}

func (t Topology) validatePostgres() []error {
	pg := t.Postgres
	if pg == nil {
		return nil
	}
	var errs []error
	if !plainName(pg.Group) {
		errs = append(errs, fmt.Errorf("postgres: group %q: want a plain name like pg", pg.Group))
	}
	if pg.Port == 0 {
		errs = append(errs, errors.New("postgres: no port"))
	}
	if !slices.ContainsFunc(t.Services, func(s ServiceSpec) bool { return s.Name == pg.Service && len(s.Sites) > 0 }) {
		errs = append(errs, fmt.Errorf("postgres: unknown service %q", pg.Service))
	}
	return errs
}

// Service returns the named service.
func (t Topology) Service(name string) (ServiceSpec, bool) {
	for _, s := range t.Services {
		if s.Name == name {
			return s, true
		}
	}
	return ServiceSpec{}, false
}

// siteNames lists the names of the sites, in order.
func (t Topology) siteNames() []string {
	names := make([]string, len(t.Sites))
	for i, s := range t.Sites {
		names[i] = s.Name
	}
	return names
}

var plainNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// plainName reports whether name is safe as a file name and in XML.
func plainName(name string) bool { return plainNameRE.MatchString(name) }

// OnNet moves the topology's addresses to another loopback /24: the site
// and observer addresses keep their last byte, so that several labs (a
// person's, a test's, a soak's) can run on one machine at once. net must be
// an IPv4 loopback address ending in 0, like 127.0.1.0.
func (t Topology) OnNet(net netip.Addr) (Topology, error) {
	b := net.As4()
	if !net.Is4() || !net.IsLoopback() || b[3] != 0 {
		return t, fmt.Errorf("lab network %s: give an IPv4 loopback address ending in 0, like 127.0.1.0 (127.0.0.0/8 is loopback)", net)
	}
	move := func(a netip.Addr) netip.Addr {
		x := a.As4()
		return netip.AddrFrom4([4]byte{b[0], b[1], b[2], x[3]})
	}
	t.Sites = slices.Clone(t.Sites)
	for i := range t.Sites {
		t.Sites[i].IP = move(t.Sites[i].IP)
	}
	if t.BGP != nil {
		bgp := *t.BGP
		bgp.ObserverListen = netip.AddrPortFrom(move(bgp.ObserverListen.Addr()), bgp.ObserverListen.Port())
		t.BGP = &bgp
	}
	return t, nil
}
