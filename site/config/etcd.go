package config

import (
	"net/url"
	"slices"
	"time"
)

// Etcd is how the controllers reach the cluster's etcd.
type Etcd struct {
	Endpoints   []string // client URLs; by default every site's etcd client URL, in site order
	DialTimeout time.Duration
	TLS         *TLS // nil when not configured
}

// TLS is the client TLS material for etcd: absolute paths of PEM files.
type TLS struct{ CA, Cert, Key string }

type fileEtcd struct {
	Endpoints   []string       `yaml:"endpoints"`
	DialTimeout *time.Duration `yaml:"dial_timeout"`
	TLS         *fileTLS       `yaml:"tls"`
}

type fileTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

const defaultDialTimeout = 2 * time.Second

// build validates the etcd section; the endpoints default to the client
// URLs of sites.
func (f fileEtcd) build(c *checker, sites []Site) Etcd {
	e := Etcd{
		DialTimeout: c.timing("etcd.dial_timeout", f.DialTimeout, defaultDialTimeout, "", true).value,
		Endpoints:   slices.Clone(f.Endpoints),
	}
	// The first endpoint of each scheme, to say which ones conflict.
	schemes := map[string]string{}
	if len(f.Endpoints) > 0 {
		paths := c.elementPaths("etcd.endpoints", len(f.Endpoints))
		seen := map[string]string{}
		for i, raw := range f.Endpoints {
			u, ok := c.checkURL(paths[i], raw)
			if !ok {
				continue
			}
			if first, dup := seen[raw]; dup {
				c.add(paths[i], "%q is already listed at %s; list each endpoint once", raw, first)
				continue
			}
			seen[raw] = paths[i]
			if _, ok := schemes[u.Scheme]; !ok {
				schemes[u.Scheme] = raw
			}
		}
	} else {
		for _, s := range sites {
			// Invalid URLs are reported with the sites.
			if u, err := url.Parse(s.Etcd.ClientURL); err == nil && s.Etcd.ClientURL != "" {
				e.Endpoints = append(e.Endpoints, s.Etcd.ClientURL)
				if _, ok := schemes[u.Scheme]; !ok {
					schemes[u.Scheme] = s.Etcd.ClientURL
				}
			}
		}
	}
	what := "the etcd endpoints"
	if len(f.Endpoints) == 0 {
		what = "the etcd endpoints (by default the sites' client_url)"
	}
	if schemes["http"] != "" && schemes["https"] != "" {
		c.add("etcd.endpoints", "%s mix http (%s) and https (%s); use https for all, or http for all",
			what, schemes["http"], schemes["https"])
	}
	if f.TLS == nil {
		if https := schemes["https"]; https != "" && !c.isBroken("etcd.tls") {
			c.add("etcd.tls", "required because %s use https (%s): give ca, cert and key", what, https)
		}
		return e
	}
	if http := schemes["http"]; http != "" && schemes["https"] == "" {
		c.add("etcd.tls", "set, but %s use http (%s); use https endpoints, or remove tls", what, http)
	}
	e.TLS = f.TLS.build(c)
	return e
}

func (f fileTLS) build(c *checker) *TLS {
	return &TLS{
		CA:   c.requiredFile("etcd.tls.ca", f.CA, "the CA certificate (PEM) that signed the etcd members' certificates"),
		Cert: c.requiredFile("etcd.tls.cert", f.Cert, "the controller's client certificate (PEM) for etcd"),
		Key:  c.requiredFile("etcd.tls.key", f.Key, "the private key (PEM) of the client certificate"),
	}
}

// requiredFile checks a file path that must be given (what says what the
// file is) and returns it absolute.
func (c *checker) requiredFile(field, p, what string) string {
	if p == "" {
		c.add(field, "required: the path of %s", what)
		return ""
	}
	return c.checkFile(field, p)
}
