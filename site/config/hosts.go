package config

import (
	"net/url"
	"strings"
)

// Host is a hypervisor at a site.
type Host struct {
	Name string
	Site string
	// URI is the libvirt URI of the hypervisor, as libvirt's tools take it
	// (test+unix:///default?socket=..., qemu+tcp://10.0.0.5/system).
	URI string
	// VCPUs and MemoryMiB are the host's capacity; 0 means "ask the
	// hypervisor".
	VCPUs     int
	MemoryMiB int64
	// CPUOvercommit and MemoryOvercommit multiply the capacity; 1 means
	// none.
	CPUOvercommit    float64
	MemoryOvercommit float64
}

type fileHost struct {
	Name             string  `yaml:"name"`
	URI              string  `yaml:"uri"`
	VCPUs            int     `yaml:"vcpus"`
	MemoryMiB        int64   `yaml:"memory_mib"`
	CPUOvercommit    float64 `yaml:"cpu_overcommit"`
	MemoryOvercommit float64 `yaml:"memory_overcommit"`
}

// buildHosts checks a site's hosts; host names are unique across the
// cluster (seen).
func buildHosts(c *checker, field, site string, fs []fileHost, seen map[string]string) []Host {
	if len(fs) == 0 {
		return nil
	}
	paths := c.elementPaths(field, len(fs))
	hosts := make([]Host, len(fs))
	for i, f := range fs {
		hosts[i] = f.build(c, paths[i], site, seen)
	}
	return hosts
}

func (f fileHost) build(c *checker, field, site string, seen map[string]string) Host {
	h := Host{Name: f.Name, Site: site, URI: f.URI, VCPUs: f.VCPUs, MemoryMiB: f.MemoryMiB,
		CPUOvercommit: f.CPUOvercommit, MemoryOvercommit: f.MemoryOvercommit}
	c.checkUniqueName(field+".name", f.Name, "host", "the hypervisor's name, like a1", seen)
	if f.URI == "" {
		c.add(field+".uri", "required: the hypervisor's libvirt URI, like qemu+tcp://10.0.0.5/system or test+unix:///default?socket=/run/libvirt/a1.sock")
	} else if u, err := url.Parse(f.URI); err != nil || u.Scheme == "" || strings.Contains(u.Scheme, "..") {
		c.add(field+".uri", "%q is not a libvirt URI: write it like qemu+tcp://10.0.0.5/system", f.URI)
	}
	if f.VCPUs < 0 {
		c.add(field+".vcpus", "must not be negative, not %d (leave it out to ask the hypervisor)", f.VCPUs)
	}
	if f.MemoryMiB < 0 {
		c.add(field+".memory_mib", "must not be negative, not %d (leave it out to ask the hypervisor)", f.MemoryMiB)
	}
	h.CPUOvercommit = c.overcommit(field+".cpu_overcommit", f.CPUOvercommit)
	h.MemoryOvercommit = c.overcommit(field+".memory_overcommit", f.MemoryOvercommit)
	return h
}

// overcommit checks a ratio: absent means 1 (none); below 1 is refused.
func (c *checker) overcommit(field string, v float64) float64 {
	switch {
	case v == 0:
		return 1
	case v < 1 || v != v: // v != v: NaN
		c.add(field, "%v must be at least 1 (1 means no overcommit)", v)
	}
	return v
}
