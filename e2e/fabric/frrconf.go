package fabric

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// FRRConfig is what StartFRR configures bgpd with.
type FRRConfig struct {
	ASN      uint32
	RouterID netip.Addr // IPv4
	// Neighbors are eBGP or iBGP peers; an IPv4 neighbor carries IPv4
	// unicast only, an IPv6 neighbor IPv6 unicast only.
	Neighbors []FRRNeighbor
	// Networks are originated (`network` statements; no route needed).
	Networks []netip.Prefix
	// Prepend adds, to a prefix of Networks, that many copies of ASN in
	// front of its AS path. eBGP export adds one more: announced with N
	// prepends, the prefix reaches a neighbor with an AS path of N+1.
	Prepend map[netip.Prefix]int
	// NoKernel keeps bgpd's best paths out of the namespace's kernel
	// (bgpd -n); by default zebra installs them, so that the namespace
	// routes to the prefixes.
	NoKernel bool
}

// FRRNeighbor is one BGP neighbor. Durations are whole seconds; zero
// takes FRR's default, except ConnectRetry, which defaults to 1s.
type FRRNeighbor struct {
	Address      netip.Addr
	ASN          uint32
	Password     string // TCP MD5, empty for none
	HoldTime     time.Duration
	Keepalive    time.Duration
	ConnectRetry time.Duration
}

// bgpdConf renders the configuration of bgpd, which logs to logFile.
func (c FRRConfig) bgpdConf(hostname, logFile string) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "! written by zdt e2e/fabric\nfrr defaults traditional\nhostname %s\n", hostname)
	fmt.Fprintf(&b, "log file %s\nlog timestamp precision 3\ndebug bgp neighbor-events\n!\n", logFile)

	// One route-map per number of prepends.
	var counts []int
	for _, n := range c.Prepend {
		if n > 0 && !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	slices.Sort(counts)
	for _, n := range counts {
		fmt.Fprintf(&b, "route-map %s permit 10\n set as-path prepend%s\nexit\n!\n",
			prependMap(n), strings.Repeat(fmt.Sprintf(" %d", c.ASN), n))
	}

	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n", c.ASN, c.RouterID)
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp network import-check\n no bgp default ipv4-unicast\n")
	for _, n := range c.Neighbors {
		a := n.Address
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n", a, n.ASN)
		if n.Password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", a, n.Password)
		}
		if n.HoldTime != 0 || n.Keepalive != 0 {
			keepalive, hold := seconds(n.Keepalive), seconds(n.HoldTime)
			switch {
			case hold == 0:
				hold = 3 * keepalive
			case keepalive == 0:
				keepalive = max(hold/3, 1)
			}
			fmt.Fprintf(&b, " neighbor %s timers %d %d\n", a, keepalive, hold)
		}
		connect := seconds(n.ConnectRetry)
		if connect == 0 {
			connect = 1
		}
		fmt.Fprintf(&b, " neighbor %s timers connect %d\n", a, connect)
		fmt.Fprintf(&b, " neighbor %s advertisement-interval 0\n", a)
	}
	for _, fam := range []struct {
		name string
		is4  bool
	}{{"ipv4", true}, {"ipv6", false}} {
		fmt.Fprintf(&b, " !\n address-family %s unicast\n", fam.name)
		for _, p := range c.Networks {
			if p.Addr().Is4() != fam.is4 {
				continue
			}
			fmt.Fprintf(&b, "  network %s", p)
			if n := c.Prepend[p]; n > 0 {
				fmt.Fprintf(&b, " route-map %s", prependMap(n))
			}
			b.WriteString("\n")
		}
		for _, n := range c.Neighbors {
			if n.Address.Is4() == fam.is4 {
				fmt.Fprintf(&b, "  neighbor %s activate\n", n.Address)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString("exit\n")
	return b.String(), nil
}

func prependMap(n int) string { return fmt.Sprintf("zdt-prepend-%d", n) }

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

func (c FRRConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.ASN == 0 {
		bad("ASN: want a number above 0")
	}
	if !c.RouterID.Is4() {
		bad("RouterID %v: want an IPv4 address", c.RouterID)
	}
	seen := make(map[netip.Addr]bool)
	for i, n := range c.Neighbors {
		switch {
		case !n.Address.IsValid() || n.Address.Zone() != "" || n.Address.Is4In6():
			bad("Neighbors[%d].Address %v: want an IPv4 or IPv6 address, without zone", i, n.Address)
		case seen[n.Address]:
			bad("Neighbors[%d].Address %v: given twice", i, n.Address)
		}
		seen[n.Address] = true
		if n.ASN == 0 {
			bad("Neighbors[%d].ASN: want a number above 0", i)
		}
		if strings.ContainsFunc(n.Password, func(r rune) bool { return r <= ' ' || r > '~' }) || len(n.Password) > 80 {
			bad("Neighbors[%d].Password: want at most 80 printable ASCII characters without space", i)
		}
		for _, d := range []struct {
			name string
			d    time.Duration
			max  int64
		}{{"HoldTime", n.HoldTime, 65535}, {"Keepalive", n.Keepalive, 65535}, {"ConnectRetry", n.ConnectRetry, 65535}} {
			if d.d < 0 || seconds(d.d) > d.max {
				bad("Neighbors[%d].%s %v: want 0 to %ds", i, d.name, d.d, d.max)
			}
		}
		if h := seconds(n.HoldTime); h == 1 || h == 2 {
			bad("Neighbors[%d].HoldTime %v: want 0 or at least 3s", i, n.HoldTime)
		}
	}
	for i, p := range c.Networks {
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			bad("Networks[%d] %v: want a prefix without host bits", i, p)
		}
	}
	for p, n := range c.Prepend {
		if !slices.Contains(c.Networks, p) {
			bad("Prepend %v: not one of Networks", p)
		}
		if n < 0 || n > 64 {
			bad("Prepend %v: %d: want 0 to 64", p, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("FRR config: %w", err)
	}
	return nil
}
