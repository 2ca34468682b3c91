package fabric

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Path is one BGP path of a prefix as FRR holds it.
type Path struct {
	ASPath  []uint32   // AS numbers in order; members of an AS set flattened in
	Peer    netip.Addr // the neighbor it came from; invalid when local
	NextHop netip.Addr // the global next hop; invalid when local
	Best    bool       // FRR's best path for the prefix
}

// The JSON of `show bgp ipv4|ipv6 unicast PREFIX json` (FRR 8.4).
type routeJSON struct {
	Prefix string     `json:"prefix"`
	Paths  []pathJSON `json:"paths"`
}

type pathJSON struct {
	ASPath struct {
		String   string `json:"string"`
		Segments []struct {
			Type string   `json:"type"`
			List []uint32 `json:"list"`
		} `json:"segments"`
	} `json:"aspath"`
	Bestpath *struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
	Nexthops []nexthopJSON `json:"nexthops"`
	Peer     struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
}

type nexthopJSON struct {
	IP    string `json:"ip"`
	Scope string `json:"scope"` // IPv6 only: "global" or "link-local"
}

// The JSON of `show bgp ipv4|ipv6 unicast json` (FRR 8.4): the paths of
// every prefix, each with its AS path as a string.
type tableJSON struct {
	Routes map[string][]tablePathJSON `json:"routes"`
}

type tablePathJSON struct {
	Valid    bool          `json:"valid"`
	Bestpath bool          `json:"bestpath"`
	PeerID   string        `json:"peerId"`
	Path     string        `json:"path"`
	Nexthops []nexthopJSON `json:"nexthops"`
}

// The JSON of `show bgp neighbors json`: neighbor → its state.
type neighborJSON struct {
	BGPState string `json:"bgpState"`
}

// parseRoute parses the paths of one prefix. A prefix without paths is
// printed as {}: no paths, no error.
func parseRoute(data []byte) ([]Path, error) {
	var r routeJSON
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse bgp route: %w", err)
	}
	paths := make([]Path, 0, len(r.Paths))
	for _, pj := range r.Paths {
		p := Path{
			Peer:    parseAddr(pj.Peer.PeerID),
			NextHop: globalNextHop(pj.Nexthops),
			Best:    pj.Bestpath != nil && pj.Bestpath.Overall,
		}
		for _, s := range pj.ASPath.Segments {
			p.ASPath = append(p.ASPath, s.List...)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// parseTable parses a whole table into each prefix's best path; a prefix
// without a best path is left out.
func parseTable(data []byte) (map[netip.Prefix]Path, error) {
	var t tableJSON
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("parse bgp table: %w", err)
	}
	best := make(map[netip.Prefix]Path, len(t.Routes))
	for key, paths := range t.Routes {
		pfx, err := netip.ParsePrefix(key)
		if err != nil {
			return nil, fmt.Errorf("parse bgp table: prefix %q: %w", key, err)
		}
		for _, pj := range paths {
			if !pj.Bestpath {
				continue
			}
			as, err := parseASPath(pj.Path)
			if err != nil {
				return nil, fmt.Errorf("parse bgp table: %s: %w", key, err)
			}
			best[pfx] = Path{ASPath: as, Peer: parseAddr(pj.PeerID), NextHop: globalNextHop(pj.Nexthops), Best: true}
			break
		}
	}
	return best, nil
}

// parseNeighbors parses neighbor → state; keys that are not addresses
// (interface names of unnumbered peers) are left out.
func parseNeighbors(data []byte) (map[netip.Addr]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse bgp neighbors: %w", err)
	}
	states := make(map[netip.Addr]string, len(m))
	for key, raw := range m {
		a, err := netip.ParseAddr(key)
		if err != nil {
			continue
		}
		var n neighborJSON
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("parse bgp neighbor %s: %w", key, err)
		}
		states[a] = n.BGPState
	}
	return states, nil
}

// parseASPath parses FRR's AS path string: "64511 64511", "" when local,
// "64511 {64512,64513}" with an AS set, (…) or […] for confederations.
func parseASPath(s string) ([]uint32, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return strings.ContainsRune(" ,{}()[]", r)
	})
	var as []uint32
	for _, f := range fields {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("AS path %q: %w", s, err)
		}
		as = append(as, uint32(n))
	}
	return as, nil
}

// parseAddr parses an address; "0.0.0.0", "::", "(unspec)" and the like
// (a local path) are the invalid Addr.
func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// globalNextHop is the first next hop that is not link-local.
func globalNextHop(nhs []nexthopJSON) netip.Addr {
	for _, nh := range nhs {
		if nh.Scope == "link-local" {
			continue
		}
		if a := parseAddr(nh.IP); a.IsValid() && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}
