package config

import (
	"slices"
	"time"
)

// Cluster is a validated cluster config. Treat it as read-only.
type Cluster struct {
	Name      string
	Path      string // the file it was loaded from ("" for Parse with no name)
	Etcd      Etcd
	Timings   Timings
	Sites     []Site
	Services  []Service
	Placement Placement
	BGP       BGP
	// Replication holds the replication groups.
	Replication []ReplicationGroup
	Fencing     Fencing
	Retention   Retention
	Runbooks    Runbooks
	FailStatic  FailStatic
	API         API
	// InsecurePlaintext allows etcd or the API without TLS (Plaintext
	// lists what). Without it, a controller refuses to start on such a
	// config; with it, zdt status says so on every run.
	InsecurePlaintext bool
}

// fileCluster is the whole file as written.
type fileCluster struct {
	Cluster     string          `yaml:"cluster"`
	Etcd        fileEtcd        `yaml:"etcd"`
	Timings     fileTimings     `yaml:"timings"`
	Sites       []fileSite      `yaml:"sites"`
	Services    []fileService   `yaml:"services"`
	Placement   filePlacement   `yaml:"placement"`
	BGP         *fileBGP        `yaml:"bgp"`
	Replication fileReplication `yaml:"replication"`
	Fencing     fileFencing     `yaml:"fencing"`
	Retention   fileRetention   `yaml:"retention"`
	FailStatic  fileFailStatic  `yaml:"fail_static"`
	Runbooks    fileRunbooks    `yaml:"runbooks"`
	API         fileAPI         `yaml:"api"`
	// InsecurePlaintext: see Cluster.InsecurePlaintext.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
}

// build validates the whole file and returns the cluster it describes;
// the caller discards it if c has collected any problem.
func (f *fileCluster) build(c *checker) *Cluster {
	cl := &Cluster{Name: f.Cluster}
	if f.Cluster == "" {
		c.add("cluster", "required: the cluster's name, part of every etcd key (lowercase letters, digits and '-', at most 63 characters)")
	} else {
		c.checkName("cluster", f.Cluster)
	}
	var ttl timing
	cl.Timings, ttl = f.Timings.build(c)
	cl.Sites = buildSites(c, f.Sites)
	cl.Etcd = f.Etcd.build(c, cl.Sites)
	cl.BGP = f.BGP.build(c)
	cl.Replication = f.Replication.build(c, cl.Sites)
	cl.Services = buildServices(c, f.Services, cl.Sites, cl.BGP, cl.Replication)
	cl.Placement = f.Placement.build(c)
	cl.Fencing = f.Fencing.build(c, ttl)
	cl.Retention = f.Retention.build(c)
	cl.FailStatic = f.FailStatic.build(c, cl.Timings, ttl, cl.Sites, f.Sites, cl.Etcd)
	cl.Runbooks = Runbooks{AllowShell: f.Runbooks.AllowShell}
	cl.API = f.API.build(c, cl.Etcd)
	cl.InsecurePlaintext = f.InsecurePlaintext
	c.checkPlaintext(cl, f.Sites)
	c.checkBGP(cl, f.Sites)
	return cl
}

// Site returns the site called name.
func (c *Cluster) Site(name string) (Site, bool) {
	for _, s := range c.Sites {
		if s.Name == name {
			return s, true
		}
	}
	return Site{}, false
}

// Service returns the service called name. Its slices are copies.
func (c *Cluster) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			s.Sites = slices.Clone(s.Sites)
			s.Prefixes = slices.Clone(s.Prefixes)
			s.Guests = slices.Clone(s.Guests)
			s.Addresses = slices.Clone(s.Addresses)
			return s, true
		}
	}
	return Service{}, false
}

// SiteNames returns the names of the sites in the order of the file.
func (c *Cluster) SiteNames() []string {
	names := make([]string, len(c.Sites))
	for i, s := range c.Sites {
		names[i] = s.Name
	}
	return names
}

// ServiceNames lists the services' names, in the config's order.
func (c *Cluster) ServiceNames() []string {
	names := make([]string, len(c.Services))
	for i, s := range c.Services {
		names[i] = s.Name
	}
	return names
}

// MinLeaseTTL is the shortest lease TTL etcd grants with the configured
// election timeout: it silently raises a shorter TTL to this.
func (c *Cluster) MinLeaseTTL() time.Duration {
	return minLeaseTTL(c.Timings.EtcdElectionTimeout)
}

// Hosts returns every site's hypervisors, site by site.
func (c *Cluster) Hosts() []Host {
	var hosts []Host
	for _, s := range c.Sites {
		hosts = append(hosts, s.Hosts...)
	}
	return hosts
}

// Guests returns every service's guests, service by service.
func (c *Cluster) Guests() []Guest {
	var guests []Guest
	for _, s := range c.Services {
		guests = append(guests, s.Guests...)
	}
	return guests
}
