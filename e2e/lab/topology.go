package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Topology is everything the lab's sample config says: the cluster, its
// timings, its sites and its services. DefaultTopology is the one `zdt lab`
// uses; tests move it to other addresses.
type Topology struct {
	Cluster  string
	Ports    Ports
	Timings  Timings
	Sites    []SiteSpec
	Services []ServiceSpec
}

// Ports are the TCP ports every site listens on, each on its own address.
type Ports struct {
	API        uint16 // the controller's HTTP API (/healthz, /metrics)
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
}

// SiteSpec is one site of the lab: its name and the loopback address all of
// its listeners bind to (and its certificate is valid for).
type SiteSpec struct {
	Name string
	IP   netip.Addr
}

// ServiceSpec is one service of the sample: the sites that may serve it, in
// order of preference, and its prefixes.
type ServiceSpec struct {
	Name     string
	Sites    []string
	Prefixes []netip.Prefix
}

// DefaultTopology is the lab of `zdt lab`: sites a, b and c on 127.0.0.11,
// .12 and .13, short timings so a failover is quick to watch, and two
// services that prefer different sites.
func DefaultTopology() Topology {
	return Topology{
		Cluster: "lab",
		Ports:   Ports{API: 7480, EtcdClient: 2379, EtcdPeer: 2380},
		Timings: Timings{
			LeaseTTL:            2 * time.Second,
			RenewInterval:       500 * time.Millisecond,
			SelfFenceMargin:     600 * time.Millisecond,
			EtcdHeartbeat:       100 * time.Millisecond,
			EtcdElectionTimeout: time.Second,
			BootstrapGrace:      5 * time.Second,
		},
		Sites: []SiteSpec{
			{Name: "a", IP: netip.MustParseAddr("127.0.0.11")},
			{Name: "b", IP: netip.MustParseAddr("127.0.0.12")},
			{Name: "c", IP: netip.MustParseAddr("127.0.0.13")},
		},
		Services: []ServiceSpec{
			{
				Name:  "web",
				Sites: []string{"a", "b", "c"},
				Prefixes: []netip.Prefix{
					netip.MustParsePrefix("203.0.113.0/26"),
					netip.MustParsePrefix("2001:db8:a::/48"),
				},
			},
			{
				Name:  "db",
				Sites: []string{"b", "c", "a"},
				Prefixes: []netip.Prefix{
					netip.MustParsePrefix("203.0.113.64/26"),
					netip.MustParsePrefix("2001:db8:b::/48"),
				},
			},
		},
	}
}

// API is the host:port of the site's controller API.
func (t Topology) API(s SiteSpec) string { return hostPort(s.IP, t.Ports.API) }

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
		case s.Name == caName || s.Name == clientName || s.Name == pkiDir:
			errs = append(errs, fmt.Errorf("sites[%d]: %q is taken by the lab's own files", i, s.Name))
		case strings.ContainsAny(s.Name, `/\ `) || s.Name == "." || s.Name == "..":
			errs = append(errs, fmt.Errorf("sites[%d]: %q cannot name a directory", i, s.Name))
		}
		seen[s.Name] = true
		if !s.IP.IsValid() {
			errs = append(errs, fmt.Errorf("site %q: no IP address", s.Name))
		}
	}
	for _, svc := range t.Services {
		for _, name := range svc.Sites {
			if !seen[name] {
				errs = append(errs, fmt.Errorf("service %q: unknown site %q", svc.Name, name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid lab topology: %w", err)
	}
	return nil
}

// siteNames lists the names of the sites, in order.
func (t Topology) siteNames() []string {
	names := make([]string, len(t.Sites))
	for i, s := range t.Sites {
		names[i] = s.Name
	}
	return names
}
