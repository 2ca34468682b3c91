package config

import (
	"net"
	"strings"
)

// Site is one data centre: its controller and its etcd member.
type Site struct {
	Name string
	API  string // host:port of the controller's HTTP listener (healthz, metrics, JSON API)
	// PeerAPI is host:port of the controller's mutual-TLS listener for the
	// other sites' controllers (fail static); "" when not set. PeerCert
	// and PeerKey are the certificate and key it presents there, as server
	// and as client: the site's etcd member certificate.
	PeerAPI, PeerCert, PeerKey string
	// APICert and APIKey are the certificate and key the API serves TLS
	// with: api_cert and api_key, by default the site's etcd member
	// certificate. "" when the API has none (plaintext).
	APICert, APIKey string
	Etcd            SiteEtcd
	// Hosts are the site's hypervisors.
	Hosts []Host
	// BGP is the site's speaker, nil if the cluster announces nothing.
	BGP *SiteBGP
}

// SiteEtcd is the site's etcd member, used when the controller embeds it.
// Cert and Key are absolute paths of the member's serving certificate and
// key (for client and peer TLS), or "" without TLS.
type SiteEtcd struct{ ClientURL, PeerURL, Cert, Key string }

type fileSite struct {
	Name string `yaml:"name"`
	API  string `yaml:"api"`
	// PeerAPI: see Site.PeerAPI.
	PeerAPI string       `yaml:"peer_api"`
	APICert string       `yaml:"api_cert"`
	APIKey  string       `yaml:"api_key"`
	Etcd    fileSiteEtcd `yaml:"etcd"`
	Hosts   []fileHost   `yaml:"hosts"`
	BGP     *fileSiteBGP `yaml:"bgp"`
}

type fileSiteEtcd struct {
	ClientURL string `yaml:"client_url"`
	PeerURL   string `yaml:"peer_url"`
	Cert      string `yaml:"cert"`
	Key       string `yaml:"key"`
}

// minSites is the fewest sites with which etcd keeps a quorum after
// losing one.
const minSites = 3

// siteChecks holds what must be unique across sites.
type siteChecks struct {
	names map[string]string // site name -> field of its first use
	addrs map[string]string // host:port -> field of its first use
	hosts map[string]string // hypervisor name -> field of its first use
}

func buildSites(c *checker, fs []fileSite) []Site {
	if have := len(fs) + c.dropped("sites"); have < minSites {
		c.add("sites", "need at least %d sites, have %d: with fewer, losing one site leaves the etcd cluster without a quorum (with two sites, 2 of 2 are needed), so nothing could fail over",
			minSites, have)
	}
	seen := siteChecks{names: map[string]string{}, addrs: map[string]string{}, hosts: map[string]string{}}
	paths := c.elementPaths("sites", len(fs))
	sites := make([]Site, len(fs))
	for i, f := range fs {
		sites[i] = f.build(c, paths[i], &seen)
	}
	return sites
}

func (f fileSite) build(c *checker, field string, seen *siteChecks) Site {
	s := Site{Name: f.Name, API: f.API, PeerAPI: f.PeerAPI}
	c.checkUniqueName(field+".name", f.Name, "site", "a short name for the site, like a, b or dc1", seen.names)

	if api := field + ".api"; f.API == "" {
		c.add(api, "required: the host:port of this site's controller API (healthz, metrics, JSON API), like 10.0.0.1:7480")
	} else if c.checkHostPort(api, f.API) {
		host, port, _ := net.SplitHostPort(f.API)
		seen.address(c, api, f.API, host, port)
	}

	if f.PeerAPI != "" && c.checkHostPort(field+".peer_api", f.PeerAPI) {
		host, port, _ := net.SplitHostPort(f.PeerAPI)
		seen.address(c, field+".peer_api", f.PeerAPI, host, port)
	}

	s.Etcd = f.Etcd.build(c, field+".etcd", seen)
	s.APICert, s.APIKey = f.apiCert(c, field, s.Etcd)
	s.Hosts = buildHosts(c, field+".hosts", f.Name, f.Hosts, seen.hosts)
	if f.BGP != nil {
		s.BGP = f.BGP.build(c, field+".bgp")
	}
	return s
}

func (f fileSiteEtcd) build(c *checker, field string, seen *siteChecks) SiteEtcd {
	e := SiteEtcd{ClientURL: f.ClientURL, PeerURL: f.PeerURL}
	https := false
	for _, u := range []struct{ field, raw, what string }{
		{field + ".client_url", f.ClientURL, "the URL clients use to reach this site's etcd member, like https://10.0.0.1:2379"},
		{field + ".peer_url", f.PeerURL, "the URL the other etcd members use to reach this one, like https://10.0.0.1:2380"},
	} {
		if u.raw == "" {
			c.add(u.field, "required: %s", u.what)
			continue
		}
		if strings.HasPrefix(strings.ToLower(u.raw), "https:") {
			https = true
		}
		if parsed, ok := c.checkURL(u.field, u.raw); ok {
			seen.address(c, u.field, u.raw, parsed.Hostname(), parsed.Port())
		}
	}

	cert, key := field+".cert", field+".key"
	switch {
	case https:
		if f.Cert == "" {
			c.add(cert, "required because this site's etcd URLs use https: the member's certificate (PEM) for client and peer TLS")
		}
		if f.Key == "" {
			c.add(key, "required because this site's etcd URLs use https: the private key (PEM) of the member's certificate")
		}
	case f.Cert == "" && f.Key != "":
		c.add(cert, "required when key is set: give both cert and key, or neither")
	case f.Cert != "" && f.Key == "":
		c.add(key, "required when cert is set: give both cert and key, or neither")
	}
	if f.Cert != "" {
		e.Cert = c.checkFile(cert, f.Cert)
	}
	if f.Key != "" {
		e.Key = c.checkFile(key, f.Key)
	}
	return e
}

// address reports a host:port that another listener of any site (API,
// etcd client or peer URL) already uses.
func (s *siteChecks) address(c *checker, field, raw, host, port string) {
	k := addressKey(host, port)
	if first, dup := s.addrs[k]; dup {
		c.add(field, "%s is already used by %s (line %d); every listener needs its own host:port", raw, first, c.line(first))
		return
	}
	s.addrs[k] = field
}

// apiCert returns the certificate and key the site's API serves: api_cert
// and api_key, both or neither; by default the etcd member's.
func (f fileSite) apiCert(c *checker, field string, e SiteEtcd) (cert, key string) {
	switch {
	case f.APICert == "" && f.APIKey == "":
		return e.Cert, e.Key
	case f.APICert == "":
		c.add(field+".api_cert", "required when api_key is set: give both api_cert and api_key, or neither (the etcd member's certificate is then used)")
	case f.APIKey == "":
		c.add(field+".api_key", "required when api_cert is set: give both api_cert and api_key, or neither (the etcd member's certificate is then used)")
	default:
		return c.checkFile(field+".api_cert", f.APICert), c.checkFile(field+".api_key", f.APIKey)
	}
	return "", ""
}
