package deploy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrInvalid marks an error from Validate (and so from Solve): the Problem
// is inconsistent and nothing was solved.
var ErrInvalid = errors.New("invalid placement problem")

// Validate checks the Problem before it is solved and reports everything
// wrong with it, each problem on its own line, wrapped in ErrInvalid.
func (p Problem) Validate() error {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }

	hosts := make(map[string]bool, len(p.Hosts))
	for i, h := range p.Hosts {
		if h.Name == "" {
			add("host #%d has no name", i+1)
			continue
		}
		if hosts[h.Name] {
			add("host %q is listed twice", h.Name)
		}
		hosts[h.Name] = true
		for _, msg := range hostProblems(h) {
			add("host %q: %s", h.Name, msg)
		}
	}
	caps := usableHosts(p.Hosts)
	guests := make(map[string]bool, len(p.Guests))
	for i, g := range p.Guests {
		if g.Name == "" {
			add("guest #%d has no name", i+1)
			continue
		}
		if guests[g.Name] {
			add("guest %q is listed twice", g.Name)
		}
		guests[g.Name] = true
		for _, msg := range guestProblems(g) {
			add("guest %q: %s", g.Name, msg)
		}
		if g.VCPUs > 0 && g.MemoryMiB > 0 {
			if msg := tooBig(g, caps); msg != "" {
				add("guest %q: %s", g.Name, msg)
			}
		}
	}
	if p.Scope != ScopeCluster && p.Scope != ScopeService {
		add("unknown %s: want ScopeCluster or ScopeService", p.Scope)
	}
	for _, g := range sortedKeys(p.Current) {
		h := p.Current[g]
		if !guests[g] {
			add("current placement names unknown guest %q (on host %q)", g, h)
		}
		if !hosts[h] {
			add("current placement of guest %q names unknown host %q", g, h)
		}
	}
	for _, g := range p.Preempted {
		if !guests[g] {
			add("preempted guests name unknown guest %q", g)
		}
	}
	for _, h := range p.FailedHosts {
		if !hosts[h] {
			add("failed hosts name unknown host %q", h)
		}
	}
	for _, h := range p.DrainedHosts {
		if !hosts[h] {
			add("drained hosts name unknown host %q", h)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n%s", ErrInvalid, strings.Join(bad, "\n"))
}

func hostProblems(h Host) []string {
	var bad []string
	if h.Site == "" {
		bad = append(bad, "no site")
	}
	if h.VCPUs <= 0 {
		bad = append(bad, fmt.Sprintf("vCPUs must be positive, got %d", h.VCPUs))
	}
	if h.MemoryMiB <= 0 {
		bad = append(bad, fmt.Sprintf("memory must be positive, got %d MiB", h.MemoryMiB))
	}
	for _, o := range []struct {
		what string
		r    float64
	}{{"CPU overcommit", h.CPUOvercommit}, {"memory overcommit", h.MemoryOvercommit}} {
		switch {
		case math.IsNaN(o.r) || math.IsInf(o.r, 0):
			bad = append(bad, fmt.Sprintf("%s %v is not a number", o.what, o.r))
		case o.r != 0 && o.r < 1:
			bad = append(bad, fmt.Sprintf("%s %g is below 1 (1 means none)", o.what, o.r))
		}
	}
	return bad
}

func guestProblems(g Guest) []string {
	var bad []string
	if !g.Tier.Valid() {
		if g.Tier == 0 {
			bad = append(bad, "no tier: want gold, silver or bronze")
		} else {
			bad = append(bad, fmt.Sprintf("unknown tier %d: want gold, silver or bronze", int(g.Tier)))
		}
	}
	if !g.Zone.Valid() {
		bad = append(bad, fmt.Sprintf("unknown zone %q: want A, B or none", string(g.Zone)))
	}
	if g.VCPUs <= 0 {
		bad = append(bad, fmt.Sprintf("vCPUs must be positive, got %d", g.VCPUs))
	}
	if g.MemoryMiB <= 0 {
		bad = append(bad, fmt.Sprintf("memory must be positive, got %d MiB", g.MemoryMiB))
	}
	return bad
}

// hostCap is a valid host's usable size.
type hostCap struct {
	name string
	cpu  int
	mem  int64
}

// usableHosts lists the usable sizes of the valid hosts, by name.
func usableHosts(hosts []Host) []hostCap {
	caps := make([]hostCap, 0, len(hosts))
	for _, h := range hosts {
		if h.Name != "" && len(hostProblems(h)) == 0 {
			caps = append(caps, hostCap{h.Name, h.UsableVCPUs(), h.UsableMemoryMiB()})
		}
	}
	slices.SortFunc(caps, func(a, b hostCap) int { return strings.Compare(a.name, b.name) })
	return caps
}

// tooBig says how a guest misses the host closest to holding it (the least
// short in vCPUs and memory, each relative to what the guest needs), or ""
// when some host, failed or not, could hold it or there are no valid hosts.
func tooBig(g Guest, caps []hostCap) string {
	best, bestGap := -1, math.Inf(1)
	for i, h := range caps {
		if h.cpu >= g.VCPUs && h.mem >= g.MemoryMiB {
			return ""
		}
		gap := max(0, float64(g.VCPUs-h.cpu)/float64(g.VCPUs)) +
			max(0, float64(g.MemoryMiB-h.mem)/float64(g.MemoryMiB))
		if gap < bestGap {
			best, bestGap = i, gap
		}
	}
	if best < 0 {
		return ""
	}
	h := caps[best]
	var short []string
	if g.VCPUs > h.cpu {
		short = append(short, fmt.Sprintf("%d vCPUs", g.VCPUs-h.cpu))
	}
	if g.MemoryMiB > h.mem {
		short = append(short, fmt.Sprintf("%d MiB", g.MemoryMiB-h.mem))
	}
	return fmt.Sprintf("needs %d vCPUs / %d MiB, more than any host offers: the closest, %s, offers %d vCPUs / %d MiB (%s short)",
		g.VCPUs, g.MemoryMiB, h.name, h.cpu, h.mem, strings.Join(short, " and "))
}
