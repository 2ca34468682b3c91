package speaker

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/zap"
)

// Defaults applied to zero values.
const (
	DefaultCallTimeout  = 5 * time.Second
	DefaultHoldTime     = 90 * time.Second
	DefaultConnectRetry = 5 * time.Second
	DefaultPort         = 179
)

// ErrInvalidConfig is wrapped by every error Start returns for a bad Config.
var ErrInvalidConfig = errors.New("invalid speaker config")

// Config is the speaker's own identity and its peers.
type Config struct {
	ASN      uint32
	RouterID netip.Addr // IPv4

	// ListenAddresses and ListenPort: where to accept BGP sessions.
	// ListenPort -1 means do not listen (only dial out); 0 means 179.
	// No addresses means all of them (0.0.0.0 and ::).
	ListenAddresses []string
	ListenPort      int32

	Peers []Peer

	// AcceptRoutes keeps the paths peers send, for a speaker that observes
	// (Received). Without it the speaker only announces: its import policy
	// rejects everything, so a learned path can never become the best path
	// in place of its own, which GoBGP would then not export.
	AcceptRoutes bool

	CallTimeout time.Duration // bounds every GoBGP call; 0 = 5s
	Log         *zap.Logger   // nil = zap.NewNop()
}

// Peer is one BGP neighbor. A peer carries the unicast family of its own
// address (IPv4 peer: ipv4-unicast; IPv6 peer: ipv6-unicast), and routes of a
// family are announced to the peers of that family. Timers are whole seconds.
type Peer struct {
	Address      netip.Addr
	ASN          uint32
	Port         uint16        // remote port; 0 = 179
	LocalAddress netip.Addr    // optional source address
	Password     string        // TCP-MD5; "" = none
	HoldTime     time.Duration // 0 = 90s
	Keepalive    time.Duration // 0 = HoldTime/3
	ConnectRetry time.Duration // 0 = 5s
	Multihop     uint8         // eBGP multihop TTL; 0 = off (directly connected)
	Passive      bool          // wait for the peer to connect
	Description  string
	// Families are the address families the session carries (multiprotocol
	// BGP, RFC 4760); nil means the family of Address. IPv6 over an IPv4
	// session goes with the IPv4-mapped form of the session's local address
	// as its next hop (::ffff:192.0.2.11), set by GoBGP. IPv4 over an IPv6
	// session is not supported: it would need an IPv4 next hop the session
	// does not have.
	Families []Family
}

// Family is an address family a session carries.
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

func (f Family) api() *api.Family {
	if f == IPv4 {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// families are the families the session carries.
func (p Peer) families() []Family {
	if len(p.Families) > 0 {
		return p.Families
	}
	if p.Address.Is4() {
		return []Family{IPv4}
	}
	return []Family{IPv6}
}

// validate checks the whole config and returns every problem at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.ASN == 0 {
		bad("ASN: must not be 0")
	}
	if !c.RouterID.IsValid() || !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		bad("RouterID %v: must be an IPv4 address other than 0.0.0.0", c.RouterID)
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		bad("ListenPort %d: must be -1 (do not listen), 0 (179) or a port number", c.ListenPort)
	}
	for i, a := range c.ListenAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			bad("ListenAddresses[%d] %q: not an IP address", i, a)
		}
	}
	if c.CallTimeout < 0 {
		bad("CallTimeout %v: must not be negative", c.CallTimeout)
	}
	seen := make(map[netip.Addr]int, len(c.Peers))
	for i, p := range c.Peers {
		if j, dup := seen[p.Address]; dup && p.Address.IsValid() {
			bad("Peers[%d] %v: same address as Peers[%d]; GoBGP keys peers by address", i, p.Address, j)
		}
		seen[p.Address] = i
		if err := p.validate(); err != nil {
			bad("Peers[%d]: %w", i, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

func (p Peer) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch {
	case !p.Address.IsValid():
		bad("Address: missing")
	case p.Address.Is4In6():
		bad("Address %v: use the plain IPv4 form", p.Address)
	case p.Address.Zone() != "":
		bad("Address %v: zoned (link-local) peers are not supported", p.Address)
	case p.Address.IsUnspecified():
		bad("Address %v: unspecified", p.Address)
	}
	if p.ASN == 0 {
		bad("ASN: must not be 0")
	}
	seen := map[Family]bool{}
	for _, f := range p.Families {
		switch {
		case f != IPv4 && f != IPv6:
			bad("Families: %v is not ipv4 or ipv6", f)
		case seen[f]:
			bad("Families: %v is listed twice", f)
		case f == IPv4 && p.Address.Is6():
			bad("Families: ipv4 over an IPv6 session (Address %v) is not supported: it needs an IPv4 next hop; use an IPv4 session", p.Address)
		}
		seen[f] = true
	}
	if p.LocalAddress.IsValid() && p.Address.IsValid() && p.LocalAddress.Is4() != p.Address.Is4() {
		bad("LocalAddress %v: not the family of Address %v", p.LocalAddress, p.Address)
	}
	hold := p.holdTime()
	if hold%time.Second != 0 || hold < 3*time.Second || hold > 65535*time.Second {
		bad("HoldTime %v: must be whole seconds from 3s to 65535s", p.HoldTime)
	}
	if ka := p.keepalive(); ka%time.Second != 0 || ka < time.Second || ka >= hold {
		bad("Keepalive %v: must be whole seconds, at least 1s and less than HoldTime %v", ka, hold)
	}
	if cr := p.connectRetry(); cr%time.Second != 0 || cr < time.Second {
		bad("ConnectRetry %v: must be whole seconds, at least 1s", p.ConnectRetry)
	}
	return errors.Join(errs...)
}

func (p Peer) holdTime() time.Duration {
	if p.HoldTime == 0 {
		return DefaultHoldTime
	}
	return p.HoldTime
}

func (p Peer) keepalive() time.Duration {
	if p.Keepalive == 0 {
		return (p.holdTime() / 3).Truncate(time.Second)
	}
	return p.Keepalive
}

func (p Peer) connectRetry() time.Duration {
	if p.ConnectRetry == 0 {
		return DefaultConnectRetry
	}
	return p.ConnectRetry
}

func familyOf(a netip.Addr) *api.Family {
	if a.Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// apiPeer is the GoBGP form of a validated Peer.
func (p Peer) apiPeer() *api.Peer {
	port := uint32(p.Port)
	if port == 0 {
		port = DefaultPort
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
			Description:     p.Description,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.holdTime() / time.Second),
			KeepaliveInterval: uint64(p.keepalive() / time.Second),
			ConnectRetry:      uint64(p.connectRetry() / time.Second),
		}},
		Transport: &api.Transport{
			RemotePort:  port,
			PassiveMode: p.Passive,
		},
	}
	for _, f := range p.families() {
		ap.AfiSafis = append(ap.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f.api(), Enabled: true}})
	}
	if p.LocalAddress.IsValid() {
		ap.Transport.LocalAddress = p.LocalAddress.String()
	}
	if p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	return ap
}
