package config

import (
	"bytes"
	"math"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// BGP is the cluster's announcement policy and its route observer. The
// sites' speakers are in Site.BGP; a cluster without them announces nothing.
type BGP struct {
	// Headroom is the prepends of the active site in steady state (see
	// package bgp): the room below it for a takeover (0) and the new site
	// of a planned move (Headroom-1).
	Headroom int
	// PrependStep is the prepends between two standby ranks, for services
	// that set none.
	PrependStep int
	// MaxPrepends caps every announcement.
	MaxPrepends int
	// MinChangeInterval is the flap guard: the least time between two
	// non-urgent changes of one prefix at one site.
	MinChangeInterval time.Duration
	// Observer is the route observer, nil if none.
	Observer *Observer
}

// BGPEnabled reports whether the sites announce their services' prefixes.
func (c *Cluster) BGPEnabled() bool {
	return len(c.Sites) > 0 && c.Sites[0].BGP != nil
}

// SiteBGP is a site's BGP speaker: it announces the prefixes of the services
// the site may serve to the site's upstream routers.
type SiteBGP struct {
	ASN      uint32
	RouterID netip.Addr
	// Interface is the local dummy interface that carries the addresses of
	// the services the site is active for.
	Interface string
	Peers     []BGPPeer
}

// MaxHoldTime is the longest hold time of the site's peers: how long an
// upstream may keep the site's paths after the site went dark.
func (b *SiteBGP) MaxHoldTime() time.Duration {
	var h time.Duration
	for _, p := range b.Peers {
		h = max(h, p.HoldTime)
	}
	return h
}

// BGPPeer is one BGP session of a speaker.
type BGPPeer struct {
	Address      netip.Addr
	ASN          uint32
	Port         uint16     // 0 means 179
	LocalAddress netip.Addr // the source address; invalid means any
	// Password is the TCP-MD5 password read from PasswordFile, "" if none.
	Password     string
	PasswordFile string
	HoldTime     time.Duration
	Keepalive    time.Duration
	ConnectRetry time.Duration
	Multihop     uint8 // eBGP multihop TTL; 0 means directly connected
	Passive      bool
	Description  string
	// Families are the address families the session carries: "ipv4",
	// "ipv6"; the family of Address when the file gives none. IPv6 over an
	// IPv4 session is multiprotocol BGP with an IPv4-mapped next hop.
	Families []string
}

// Observer is a BGP speaker that learns the paths the upstream sees and
// publishes, for every service prefix, which site the best path leads to.
// In the lab it is the upstream itself; in production it peers with the
// upstream routers (which send it their best paths).
type Observer struct {
	ASN      uint32
	RouterID netip.Addr
	// Listen is where it accepts sessions.
	Listen netip.AddrPort
	Peers  []ObserverPeer
}

// ObserverPeer is a session of the observer: a site's speaker or an
// upstream router.
type ObserverPeer struct {
	Address netip.Addr
	ASN     uint32
	// Site is the site this peer is, "" for an upstream router. A path
	// leads to the site of the peer that sent it, or else to the site whose
	// ASN originated it.
	Site string
}

// The defaults of the BGP section.
const (
	DefaultBGPHeadroom          = 2
	DefaultBGPPrependStep       = 1
	DefaultBGPMaxPrepends       = 10
	DefaultBGPMinChangeInterval = 30 * time.Second
	DefaultBGPInterface         = "zdt0"
	DefaultBGPHoldTime          = 9 * time.Second
	DefaultBGPConnectRetry      = 5 * time.Second
)

type fileBGP struct {
	Headroom          *int           `yaml:"headroom"`
	PrependStep       *int           `yaml:"prepend_step"`
	MaxPrepends       *int           `yaml:"max_prepends"`
	MinChangeInterval *time.Duration `yaml:"min_change_interval"`
	Observer          *fileObserver  `yaml:"observer"`
}

type fileObserver struct {
	ASN      int64              `yaml:"asn"`
	RouterID string             `yaml:"router_id"`
	Listen   string             `yaml:"listen"`
	Peers    []fileObserverPeer `yaml:"peers"`
}

type fileObserverPeer struct {
	Address string `yaml:"address"`
	ASN     int64  `yaml:"asn"`
	Site    string `yaml:"site"`
}

type fileSiteBGP struct {
	ASN       int64         `yaml:"asn"`
	RouterID  string        `yaml:"router_id"`
	Interface string        `yaml:"interface"`
	Peers     []fileBGPPeer `yaml:"peers"`
}

type fileBGPPeer struct {
	Address      string         `yaml:"address"`
	ASN          int64          `yaml:"asn"`
	Port         int            `yaml:"port"`
	LocalAddress string         `yaml:"local_address"`
	PasswordFile string         `yaml:"password_file"`
	HoldTime     *time.Duration `yaml:"hold_time"`
	Keepalive    *time.Duration `yaml:"keepalive"`
	ConnectRetry *time.Duration `yaml:"connect_retry"`
	Multihop     int            `yaml:"multihop"`
	Passive      bool           `yaml:"passive"`
	Description  string         `yaml:"description"`
	Families     []string       `yaml:"families"`
}

// asTrans is AS_TRANS (RFC 6793), which no speaker may use as its own.
const asTrans = 23456

// checkASN reports an ASN outside 1..4294967295 or AS_TRANS.
func (c *checker) checkASN(field string, asn int64) uint32 {
	switch {
	case asn == 0:
		c.add(field, "required: an AS number from 1 to 4294967295 (private: 64512-65534, 4200000000-4294967294)")
	case asn < 0 || asn > math.MaxUint32:
		c.add(field, "%d is not an AS number: it must be from 1 to 4294967295", asn)
	case asn == asTrans:
		c.add(field, "%d is AS_TRANS (RFC 6793), reserved for 2-byte speakers; no speaker may use it", asn)
	default:
		return uint32(asn)
	}
	return 0
}

// checkAddr parses an IP address (no prefix length, no zone).
func (c *checker) checkAddr(field, raw, example string) (netip.Addr, bool) {
	if raw == "" {
		c.add(field, "required: %s", example)
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(raw)
	if err != nil || a.Zone() != "" {
		c.add(field, "%q is not an IP address: %s", raw, example)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// checkRouterID parses a BGP router id: an IPv4 address other than 0.0.0.0.
func (c *checker) checkRouterID(field, raw string) netip.Addr {
	a, ok := c.checkAddr(field, raw, "the speaker's BGP router id, an IPv4 address unique among the speakers, like 192.0.2.11")
	switch {
	case !ok:
	case !a.Is4():
		c.add(field, "%s is not IPv4: a BGP router id is a 32-bit number written as an IPv4 address, even on an IPv6-only speaker", a)
	case a.IsUnspecified():
		c.add(field, "0.0.0.0 is not a valid router id")
	default:
		return a
	}
	return netip.Addr{}
}

func (f *fileBGP) build(c *checker) BGP {
	b := BGP{Headroom: DefaultBGPHeadroom, PrependStep: DefaultBGPPrependStep, MaxPrepends: DefaultBGPMaxPrepends,
		MinChangeInterval: DefaultBGPMinChangeInterval}
	if f == nil {
		return b
	}
	if f.Headroom != nil {
		b.Headroom = *f.Headroom
		if b.Headroom < 1 {
			c.add("bgp.headroom", "must be at least 1, not %d: a takeover announces 0 prepends and must beat the active site's path (2, the default, also lets a takeover beat a planned move's new site)", b.Headroom)
		}
	}
	if f.PrependStep != nil {
		b.PrependStep = *f.PrependStep
		if b.PrependStep < 1 {
			c.add("bgp.prepend_step", "must be at least 1, not %d: with less, standbys would tie the active site and each other", b.PrependStep)
		}
	}
	if f.MaxPrepends != nil {
		b.MaxPrepends = *f.MaxPrepends
		if b.MaxPrepends < 1 || b.MaxPrepends > 64 {
			c.add("bgp.max_prepends", "must be from 1 to 64, not %d", b.MaxPrepends)
		}
	}
	if f.MinChangeInterval != nil {
		b.MinChangeInterval = *f.MinChangeInterval
		if b.MinChangeInterval < 0 {
			c.add("bgp.min_change_interval", "must be 0 (no flap guard) or more, not %s", b.MinChangeInterval)
		}
	}
	if f.Observer != nil {
		b.Observer = f.Observer.build(c, "bgp.observer")
	}
	return b
}

func (f *fileObserver) build(c *checker, field string) *Observer {
	o := &Observer{ASN: c.checkASN(field+".asn", f.ASN), RouterID: c.checkRouterID(field+".router_id", f.RouterID)}
	if f.Listen == "" {
		c.add(field+".listen", "required: the address and port where the observer accepts BGP sessions, like 127.0.0.10:1179")
	} else if ap, err := netip.ParseAddrPort(f.Listen); err != nil || ap.Port() == 0 {
		c.add(field+".listen", "%q is not an address:port, like 127.0.0.10:1179 or [2001:db8::10]:1179", f.Listen)
	} else {
		o.Listen = ap
	}
	if len(f.Peers) == 0 {
		c.add(field+".peers", "required: the sessions the observer learns paths from (the sites' speakers, or the upstream routers)")
	}
	seen := map[netip.Addr]string{}
	paths := c.elementPaths(field+".peers", len(f.Peers))
	for i, p := range f.Peers {
		pf := paths[i]
		op := ObserverPeer{ASN: c.checkASN(pf+".asn", p.ASN), Site: p.Site}
		if a, ok := c.checkAddr(pf+".address", p.Address, "the peer's address, like 127.0.0.11"); ok {
			if first, dup := seen[a]; dup {
				c.add(pf+".address", "peer %s is already listed at line %d", a, c.line(first))
			}
			seen[a] = pf + ".address"
			op.Address = a
		}
		o.Peers = append(o.Peers, op)
	}
	return o
}

func (f *fileSiteBGP) build(c *checker, field string) *SiteBGP {
	b := &SiteBGP{ASN: c.checkASN(field+".asn", f.ASN), RouterID: c.checkRouterID(field+".router_id", f.RouterID), Interface: f.Interface}
	if b.Interface == "" {
		b.Interface = DefaultBGPInterface
	} else if len(b.Interface) > 15 || !ifaceRe.MatchString(b.Interface) {
		c.add(field+".interface", "%q is not a valid interface name: at most 15 letters, digits, '-', '_' or '.'", b.Interface)
	}
	if len(f.Peers) == 0 {
		c.add(field+".peers", "required: the upstream routers this site announces its services' prefixes to")
	}
	seen := map[netip.Addr]string{}
	paths := c.elementPaths(field+".peers", len(f.Peers))
	for i, p := range f.Peers {
		b.Peers = append(b.Peers, p.build(c, paths[i], seen))
	}
	return b
}

func (f fileBGPPeer) build(c *checker, field string, seen map[netip.Addr]string) BGPPeer {
	p := BGPPeer{ASN: c.checkASN(field+".asn", f.ASN), Passive: f.Passive, Description: f.Description}
	if a, ok := c.checkAddr(field+".address", f.Address, "the upstream router's address, like 192.0.2.1"); ok {
		if first, dup := seen[a]; dup {
			c.add(field+".address", "peer %s is already listed at line %d", a, c.line(first))
		}
		seen[a] = field + ".address"
		p.Address = a
	}
	if f.LocalAddress != "" {
		if a, ok := c.checkAddr(field+".local_address", f.LocalAddress, "the source address of the session, like 192.0.2.11"); ok {
			if p.Address.IsValid() && a.Is4() != p.Address.Is4() {
				c.add(field+".local_address", "%s and the peer address %s are of different families", a, p.Address)
			}
			p.LocalAddress = a
		}
	}
	switch {
	case f.Port < 0 || f.Port > 65535:
		c.add(field+".port", "%d is not a TCP port (1-65535; leave it out for 179)", f.Port)
	default:
		p.Port = uint16(f.Port)
	}
	switch {
	case f.Multihop < 0 || f.Multihop > 255:
		c.add(field+".multihop", "%d is not a TTL: 0 (directly connected, the default) to 255", f.Multihop)
	default:
		p.Multihop = uint8(f.Multihop)
	}
	if f.PasswordFile != "" {
		p.PasswordFile = c.checkFile(field+".password_file", f.PasswordFile)
		if data, err := os.ReadFile(p.PasswordFile); err == nil {
			pw := string(bytes.TrimRight(data, "\r\n"))
			switch {
			case pw == "":
				c.add(field+".password_file", "%s is empty: write the TCP-MD5 password in it, or leave password_file out", p.PasswordFile)
			case len(pw) > 80:
				c.add(field+".password_file", "the password in %s is %d bytes; TCP-MD5 keys are at most 80", p.PasswordFile, len(pw))
			case bytes.ContainsAny([]byte(pw), "\n\x00"):
				c.add(field+".password_file", "%s holds more than one line; the TCP-MD5 password is its only line", p.PasswordFile)
			default:
				p.Password = pw
			}
		}
	}
	p.HoldTime, p.Keepalive, p.ConnectRetry = c.bgpTimers(field, f)
	p.Families = c.checkFamilies(field+".families", f.Families, p.Address)
	return p
}

// checkFamilies checks the address families a session carries: ipv4 and
// ipv6, each once; IPv4 only over an IPv4 session (it needs an IPv4 next
// hop). It returns them as given, nil when none is.
func (c *checker) checkFamilies(field string, families []string, addr netip.Addr) []string {
	if families == nil {
		return nil
	}
	if len(families) == 0 {
		c.add(field, "empty: list ipv4, ipv6 or both, or leave families out for the family of the peer's address")
		return nil
	}
	seen := map[string]bool{}
	for _, f := range families {
		switch {
		case f != "ipv4" && f != "ipv6":
			c.add(field, "%q: want ipv4 or ipv6", f)
		case seen[f]:
			c.add(field, "%s is listed twice", f)
		case f == "ipv4" && addr.Is6():
			c.add(field, "ipv4 over an IPv6 session (%s) is not supported: it needs an IPv4 next hop; add an IPv4 session for the IPv4 prefixes", addr)
		}
		seen[f] = true
	}
	return families
}

// bgpTimers checks a peer's timers: whole seconds, hold time 0 (no
// keepalives) or at least 3 s (RFC 4271), keepalive below the hold time.
func (c *checker) bgpTimers(field string, f fileBGPPeer) (hold, keepalive, retry time.Duration) {
	hold, keepalive, retry = DefaultBGPHoldTime, 0, DefaultBGPConnectRetry
	whole := func(name string, d *time.Duration) (time.Duration, bool) {
		if d == nil {
			return 0, false
		}
		switch {
		case *d < 0:
			c.add(field+"."+name, "must not be negative, not %s", *d)
		case *d%time.Second != 0:
			c.add(field+"."+name, "%s is not a whole number of seconds, which is what BGP counts in", *d)
		case *d > 65535*time.Second:
			c.add(field+"."+name, "%s is longer than BGP allows (65535s)", *d)
		default:
			return *d, true
		}
		return 0, false
	}
	if d, ok := whole("hold_time", f.HoldTime); ok {
		hold = d
		if d > 0 && d < 3*time.Second {
			c.add(field+".hold_time", "%s must be 0 (no keepalives) or at least 3s (RFC 4271)", d)
		}
	}
	if d, ok := whole("keepalive", f.Keepalive); ok {
		keepalive = d
		if hold > 0 && d >= hold {
			c.add(field+".keepalive", "%s must be shorter than the hold time %s (a third of it is usual)", d, hold)
		}
	}
	if keepalive == 0 {
		keepalive = hold / 3
	}
	if d, ok := whole("connect_retry", f.ConnectRetry); ok {
		if d == 0 {
			c.add(field+".connect_retry", "must be at least 1s")
		}
		retry = d
	}
	return hold, keepalive, retry
}

// checkBGP relates the sites' speakers, the observer and the services:
// every site has a speaker or none has, router ids are unique, and the
// observer's peers name known sites.
func (c *checker) checkBGP(cl *Cluster, fs []fileSite) {
	var with, without []string
	ids := map[netip.Addr]string{}
	paths := c.elementPaths("sites", len(fs))
	for i, s := range cl.Sites {
		if s.BGP == nil {
			without = append(without, s.Name)
			continue
		}
		with = append(with, s.Name)
		if id := s.BGP.RouterID; id.IsValid() {
			if other, dup := ids[id]; dup {
				c.add(paths[i]+".bgp.router_id", "router id %s is also site %s's; every speaker needs its own", id, other)
			}
			ids[id] = s.Name
		}
	}
	if len(with) > 0 && len(without) > 0 {
		c.add("sites", "sites %v have a bgp section but %v have none: either every site announces its services' prefixes or none does", with, without)
	}
	if o := cl.BGP.Observer; o != nil {
		if len(with) == 0 {
			c.add("bgp.observer", "an observer needs the sites to announce: give every site a bgp section")
		}
		peerPaths := c.elementPaths("bgp.observer.peers", len(o.Peers))
		for i, p := range o.Peers {
			if p.Site != "" && !slices.Contains(cl.SiteNames(), p.Site) {
				c.add(peerPaths[i]+".site", "unknown site %q", p.Site)
			}
		}
	}
	svcPaths := c.elementPaths("services", len(cl.Services))
	for i, svc := range cl.Services {
		field := svcPaths[i]
		if top := cl.BGP.Headroom + (len(svc.Sites)-1)*svc.PrependStep; len(with) > 0 && top > cl.BGP.MaxPrepends {
			c.add(field+".prepend_step", "the ladder of service %s over %d sites needs up to headroom %d + %d × step %d = %d prepends, above bgp.max_prepends %d: raise max_prepends or lower the step",
				svc.Name, len(svc.Sites), cl.BGP.Headroom, len(svc.Sites)-1, svc.PrependStep, top, cl.BGP.MaxPrepends)
		}
	}
}

// serviceAddresses checks a service's addresses: host addresses inside one
// of its prefixes, each once.
func (c *checker) serviceAddresses(field string, raws []string, prefixes []netip.Prefix) []netip.Addr {
	var addrs []netip.Addr
	paths := c.elementPaths(field, len(raws))
	for i, raw := range raws {
		a, ok := c.checkAddr(paths[i], raw, "a service address, like 203.0.113.10")
		if !ok {
			continue
		}
		if slices.Contains(addrs, a) {
			c.add(paths[i], "%s is listed twice", a)
			continue
		}
		if !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) }) {
			c.add(paths[i], "%s is not inside any of the service's prefixes; the site that announces the prefix must be the one that carries the address", a)
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs
}

// prependStep returns a service's prepend step: its own or the cluster's.
func (c *checker) prependStep(field string, set *int, dflt int) int {
	if set == nil {
		return dflt
	}
	if *set < 1 {
		c.add(field, "must be at least 1, not %s: with less, standbys would tie the active site and each other", strconv.Itoa(*set))
	}
	return *set
}

// ifaceRe is what Linux takes for an interface name.
var ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
