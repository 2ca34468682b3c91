package config

import "time"

// FailStatic configures how a controller that cannot renew its lease
// tells "etcd failed" from "this site is cut off" (package failstatic):
// before its self-fence deadline it asks every other site's controller at
// its peer_api, over mutual TLS with the sites' etcd member certificates.
type FailStatic struct {
	Enabled bool
	// CheckTimeout bounds one of the check's two rounds.
	CheckTimeout time.Duration
	// CA is the CA that signed the sites' member certificates.
	CA string
}

type fileFailStatic struct {
	Enabled      bool           `yaml:"enabled"`
	CheckTimeout *time.Duration `yaml:"check_timeout"`
	CA           string         `yaml:"ca"`
}

// The check timeout defaults to (lease_ttl - self_fence_margin)/5 and may
// be at most a quarter of it: the check starts 2.5 timeouts before the
// deadline, and a verdict that holds lasts lease_ttl - self_fence_margin -
// check_timeout from when it asked, which must leave room for the next
// check before it runs out.
const (
	checkTimeoutPerRoom    = 5
	maxCheckTimeoutPerRoom = 4
)

// build checks the fail_static section against the timings, the sites and
// the etcd section.
func (f fileFailStatic) build(c *checker, t Timings, ttl timing, sites []Site, fileSites []fileSite, etcd Etcd) FailStatic {

	room := t.LeaseTTL - t.SelfFenceMargin
	field := "fail_static.check_timeout"
	timeout := c.timing(field, f.CheckTimeout, room/checkTimeoutPerRoom, "(lease_ttl - self_fence_margin)/5", ttl.ok)
	fs := FailStatic{Enabled: f.Enabled, CheckTimeout: timeout.value}
	if !f.Enabled {
		return fs
	}
	for i := range sites {
		sites[i].PeerCert, sites[i].PeerKey = sites[i].Etcd.Cert, sites[i].Etcd.Key
	}
	if timeout.ok && ttl.ok && room > 0 && timeout.value > room/maxCheckTimeoutPerRoom {
		c.add(field, "%s is longer than (lease_ttl - self_fence_margin)/4 (%s/4 = %s): the check starts 2.5 timeouts before the self-fence deadline, "+
			"and a verdict that holds must last long enough for the next check to start before it runs out; lower it to at most %s",
			timeout, room, room/maxCheckTimeoutPerRoom, room/maxCheckTimeoutPerRoom)
	}
	switch {
	case f.CA != "":
		fs.CA = c.checkFile("fail_static.ca", f.CA)
	case etcd.TLS != nil:
		fs.CA = etcd.TLS.CA
	default:
		c.add("fail_static.ca", "required with fail_static enabled and no etcd.tls: the CA (PEM) that signed the sites' etcd member certificates, with which the controllers authenticate each other")
	}
	paths := c.elementPaths("sites", len(fileSites))
	for i, s := range sites {
		if i >= len(paths) {
			break
		}
		if s.PeerAPI == "" {
			c.add(paths[i]+".peer_api", "required with fail_static enabled: the host:port where this site's controller answers the other sites' controllers (mutual TLS), like 10.0.0.1:7481")
		}
		if s.Etcd.Cert == "" || s.Etcd.Key == "" {
			c.add(paths[i]+".etcd.cert", "required with fail_static enabled: the controllers authenticate each other with their sites' etcd member certificates (cert and key)")
		}
	}
	return fs
}
