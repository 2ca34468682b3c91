package fabric

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBGPDConf(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:1::1")
	cfg := FRRConfig{
		ASN: 64511, RouterID: netip.MustParseAddr("192.0.2.11"),
		Neighbors: []FRRNeighbor{
			{Address: v4, ASN: 64500, Password: "s3cret", HoldTime: 3 * time.Second, Keepalive: time.Second},
			{Address: v6, ASN: 64500, HoldTime: 9 * time.Second, ConnectRetry: 1500 * time.Millisecond},
		},
		Networks: []netip.Prefix{v4Net, v6Net},
		Prepend:  map[netip.Prefix]int{v4Net: 2},
	}
	conf, err := cfg.bgpdConf("site-a", "/tmp/x/bgpd.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"log file /tmp/x/bgpd.log\n",
		"route-map zdt-prepend-2 permit 10\n set as-path prepend 64511 64511\n",
		"router bgp 64511\n bgp router-id 192.0.2.11\n",
		" no bgp ebgp-requires-policy\n",
		" no bgp network import-check\n",
		" no bgp default ipv4-unicast\n",
		" neighbor 192.0.2.1 remote-as 64500\n",
		" neighbor 192.0.2.1 password s3cret\n",
		" neighbor 192.0.2.1 timers 1 3\n",
		" neighbor 192.0.2.1 timers connect 1\n",
		" neighbor 2001:db8:1::1 timers 3 9\n",
		" neighbor 2001:db8:1::1 timers connect 2\n",
		" address-family ipv4 unicast\n  network 203.0.113.0/24 route-map zdt-prepend-2\n  neighbor 192.0.2.1 activate\n exit-address-family\n",
		" address-family ipv6 unicast\n  network 2001:db8:100::/48\n  neighbor 2001:db8:1::1 activate\n exit-address-family\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "2001:db8:1::1 password") {
		t.Errorf("password of the IPv6 neighbor:\n%s", conf)
	}
}

func TestBGPDConfInvalid(t *testing.T) {
	good := func() FRRConfig {
		return FRRConfig{ASN: 64500, RouterID: netip.MustParseAddr("192.0.2.1"),
			Neighbors: []FRRNeighbor{{Address: netip.MustParseAddr("192.0.2.11"), ASN: 64511}},
			Networks:  []netip.Prefix{v4Net}}
	}
	if _, err := good().bgpdConf("h", "/l"); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(c *FRRConfig){
		"no ASN":            func(c *FRRConfig) { c.ASN = 0 },
		"IPv6 router ID":    func(c *FRRConfig) { c.RouterID = netip.MustParseAddr("2001:db8::1") },
		"no router ID":      func(c *FRRConfig) { c.RouterID = netip.Addr{} },
		"no address":        func(c *FRRConfig) { c.Neighbors[0].Address = netip.Addr{} },
		"mapped address":    func(c *FRRConfig) { c.Neighbors[0].Address = netip.MustParseAddr("::ffff:192.0.2.11") },
		"twice":             func(c *FRRConfig) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) },
		"no peer ASN":       func(c *FRRConfig) { c.Neighbors[0].ASN = 0 },
		"password space":    func(c *FRRConfig) { c.Neighbors[0].Password = "a b" },
		"password newline":  func(c *FRRConfig) { c.Neighbors[0].Password = "a\n neighbor" },
		"hold 2s":           func(c *FRRConfig) { c.Neighbors[0].HoldTime = 2 * time.Second },
		"negative retry":    func(c *FRRConfig) { c.Neighbors[0].ConnectRetry = -time.Second },
		"host bits":         func(c *FRRConfig) { c.Networks[0] = netip.MustParsePrefix("203.0.113.1/24") },
		"prepend elsewhere": func(c *FRRConfig) { c.Prepend = map[netip.Prefix]int{v6Net: 1} },
		"prepend too many":  func(c *FRRConfig) { c.Prepend = map[netip.Prefix]int{v4Net: 65} },
	} {
		c := good()
		mod(&c)
		if conf, err := c.bgpdConf("h", "/l"); err == nil {
			t.Errorf("%s: no error:\n%s", name, conf)
		}
	}
}
