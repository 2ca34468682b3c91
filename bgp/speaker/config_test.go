package speaker

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartRejectsInvalidConfig(t *testing.T) {
	good := func() Config {
		return Config{
			ASN:        65000,
			RouterID:   netip.MustParseAddr("10.0.0.1"),
			ListenPort: -1,
			Peers: []Peer{{
				Address: netip.MustParseAddr("127.0.0.2"),
				ASN:     65001,
			}},
		}
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"no ASN", func(c *Config) { c.ASN = 0 }, []string{"ASN: must not be 0"}},
		{"no router ID", func(c *Config) { c.RouterID = netip.Addr{} }, []string{"RouterID"}},
		{"IPv6 router ID", func(c *Config) { c.RouterID = netip.MustParseAddr("::1") }, []string{"RouterID ::1"}},
		{"bad port", func(c *Config) { c.ListenPort = -2 }, []string{"ListenPort -2"}},
		{"bad listen address", func(c *Config) { c.ListenAddresses = []string{"localhost"} }, []string{`ListenAddresses[0] "localhost"`}},
		{"negative timeout", func(c *Config) { c.CallTimeout = -time.Second }, []string{"CallTimeout"}},
		{"peer without address", func(c *Config) { c.Peers[0].Address = netip.Addr{} }, []string{"Peers[0]: Address: missing"}},
		{"peer without ASN", func(c *Config) { c.Peers[0].ASN = 0 }, []string{"Peers[0]: ASN"}},
		{"mapped peer", func(c *Config) { c.Peers[0].Address = netip.MustParseAddr("::ffff:127.0.0.2") }, []string{"plain IPv4 form"}},
		{"zoned peer", func(c *Config) { c.Peers[0].Address = netip.MustParseAddr("fe80::1%eth0") }, []string{"zoned"}},
		{"local address family", func(c *Config) { c.Peers[0].LocalAddress = netip.MustParseAddr("::1") }, []string{"LocalAddress ::1"}},
		{"short hold time", func(c *Config) { c.Peers[0].HoldTime = 2 * time.Second }, []string{"HoldTime 2s"}},
		{"fractional hold time", func(c *Config) { c.Peers[0].HoldTime = 3500 * time.Millisecond }, []string{"HoldTime 3.5s"}},
		{"keepalive over hold time", func(c *Config) { c.Peers[0].HoldTime = 9 * time.Second; c.Peers[0].Keepalive = 9 * time.Second }, []string{"Keepalive 9s"}},
		{"fast connect retry", func(c *Config) { c.Peers[0].ConnectRetry = 100 * time.Millisecond }, []string{"ConnectRetry 100ms"}},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, []string{"Peers[1] 127.0.0.2: same address as Peers[0]"}},
		{"family twice", func(c *Config) { c.Peers[0].Families = []Family{IPv6, IPv6} }, []string{"Peers[0]: Families: ipv6 is listed twice"}},
		{"unknown family", func(c *Config) { c.Peers[0].Families = []Family{5} }, []string{"Families: Family(5) is not ipv4 or ipv6"}},
		{"IPv4 over IPv6", func(c *Config) {
			c.Peers[0].Address = netip.MustParseAddr("::1")
			c.Peers[0].Families = []Family{IPv4, IPv6}
		}, []string{"Families: ipv4 over an IPv6 session (Address ::1) is not supported"}},
		{"all problems at once", func(c *Config) { c.ASN = 0; c.Peers[0].ASN = 0 }, []string{"ASN: must not be 0", "Peers[0]: ASN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.modify(&cfg)
			sp, err := Start(context.Background(), cfg)
			if sp != nil {
				sp.Close()
				t.Fatalf("Start accepted %+v", cfg)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if err := good().validate(); err != nil {
		t.Errorf("the base config is invalid: %v", err)
	}
}

func TestPeerDefaults(t *testing.T) {
	p := Peer{Address: netip.MustParseAddr("2001:db8::1"), ASN: 65001, Multihop: 4, Passive: true}.apiPeer()
	if got := p.GetTimers().GetConfig(); got.GetHoldTime() != 90 || got.GetKeepaliveInterval() != 30 || got.GetConnectRetry() != 5 {
		t.Errorf("timers = %v, want hold 90, keepalive 30, connect retry 5", got)
	}
	if got := p.GetTransport(); got.GetRemotePort() != 179 || !got.GetPassiveMode() || got.GetLocalAddress() != "" {
		t.Errorf("transport = %v, want port 179, passive, no local address", got)
	}
	if got := p.GetEbgpMultihop(); !got.GetEnabled() || got.GetMultihopTtl() != 4 {
		t.Errorf("multihop = %v, want TTL 4", got)
	}
	if fams := p.GetAfiSafis(); len(fams) != 1 || fams[0].GetConfig().GetFamily().GetAfi() != familyOf(netip.IPv6Unspecified()).GetAfi() {
		t.Errorf("families = %v, want ipv6-unicast only", fams)
	}
}

// TestStartFailureLeavesNothing: when GoBGP cannot open a listener, Start
// fails and closes the listeners it had opened.
func TestStartFailureLeavesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port

	sp, err := Start(context.Background(), Config{
		ASN:             65000,
		RouterID:        netip.MustParseAddr("10.0.0.1"),
		ListenAddresses: []string{"127.0.0.5", "127.0.0.1"}, // the first opens, the second is taken
		ListenPort:      int32(port),
	})
	if err == nil {
		sp.Close()
		t.Fatalf("Start succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error = %v, want the port taken", err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.5", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("Start left a listener on 127.0.0.5:%d: %v", port, err)
	}
	l.Close()
}
