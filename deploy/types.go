package deploy

import (
	"fmt"
	"math"
)

// Guest is a virtual machine to place.
type Guest struct {
	Name      string
	Service   string // the service it belongs to; decides exclusion under ScopeService
	Tier      Tier
	Zone      Zone
	VCPUs     int
	MemoryMiB int64
}

// Host is a hypervisor at a site.
type Host struct {
	Name      string
	Site      string
	VCPUs     int
	MemoryMiB int64
	// CPUOvercommit and MemoryOvercommit multiply the physical size: a host
	// offers floor(VCPUs*CPUOvercommit) vCPUs and
	// floor(MemoryMiB*MemoryOvercommit) MiB. They must be at least 1; zero
	// means 1 (no overcommit).
	CPUOvercommit    float64
	MemoryOvercommit float64
}

// UsableVCPUs is the number of vCPUs the host offers after overcommit.
func (h Host) UsableVCPUs() int {
	return int(math.Floor(float64(h.VCPUs) * ratio(h.CPUOvercommit)))
}

// UsableMemoryMiB is the memory the host offers after overcommit.
func (h Host) UsableMemoryMiB() int64 {
	return int64(math.Floor(float64(h.MemoryMiB) * ratio(h.MemoryOvercommit)))
}

func ratio(r float64) float64 {
	if r == 0 {
		return 1
	}
	return r
}

// Scope says which guests the zone rules set against each other.
type Scope int

const (
	// ScopeCluster applies the zone rules across the whole cluster, as the
	// SLA model states them: no Gold-Zone-A guest at a site with any
	// Gold-Zone-B guest, whatever their services.
	ScopeCluster Scope = iota
	// ScopeService applies them only between guests of the same service.
	ScopeService
)

func (s Scope) String() string {
	switch s {
	case ScopeCluster:
		return "cluster"
	case ScopeService:
		return "service"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// Problem is the solver's input: the whole inventory and what happened to it.
type Problem struct {
	Guests []Guest
	Hosts  []Host
	// Current maps each guest that runs now to the name of its host.
	Current map[string]string
	// Preempted names the guests stopped earlier to make room for guests of
	// a higher tier. They come back first when capacity returns. A guest that
	// is also in Current counts as running.
	Preempted []string
	// FailedSites and FailedHosts have no capacity; their guests are placed
	// again. A failed site need not have hosts in Hosts.
	FailedSites []string
	FailedHosts []string
	// DrainedSites (evacuated for maintenance) have no capacity either;
	// their guests are placed again, with that reason.
	DrainedSites []string
	// DrainedHosts (a host's rolling maintenance) have no capacity; their
	// guests are placed again, at their own site first, with that reason.
	DrainedHosts []string
	Scope        Scope
}
