// Package svcaddr puts a service's addresses on a local dummy interface at
// the site that serves it, and takes them off at the others.
//
// The addresses are host addresses (/32, /128) that the site's BGP speaker
// announces; the kernel accepts traffic for them only when an interface
// carries them. Manager.Apply is level-triggered: it is handed the whole
// set of wanted addresses and the whole set of addresses zdt manages, and
// makes the interface carry exactly the wanted ones among the managed ones,
// leaving any other address on the interface alone. It talks netlink
// (github.com/vishvananda/netlink) and needs CAP_NET_ADMIN.
//
// A missing interface is created as a dummy. An interface that exists is
// used whatever its type: on a kernel without dummy interfaces, create it
// beforehand, e.g. as a bridge without ports (ip link add zdt0 type bridge).
package svcaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

var (
	// ErrInvalid is wrapped by Apply's errors for bad input (an address
	// or the interface name); nothing was changed.
	ErrInvalid = errors.New("invalid service address input")
	// ErrNoCapability is wrapped by Check's and Apply's errors when the
	// process lacks CAP_NET_ADMIN; nothing was changed.
	ErrNoCapability = errors.New("missing capability CAP_NET_ADMIN")
	// ErrNoDummy is wrapped by Apply's error when the interface is missing
	// and the kernel cannot create a dummy interface.
	ErrNoDummy = errors.New("the kernel has no dummy interfaces")
)

// Manager manages the service addresses of one interface.
type Manager struct {
	iface string
	h     *netlink.Handle
	log   *zap.Logger

	mu sync.Mutex // one Apply at a time
}

// New returns a Manager of the interface iface (e.g. "zdt0") in this
// process's network namespace.
func New(iface string, log *zap.Logger) *Manager {
	// The zero Handle is what the netlink package's own functions use: a
	// socket per request, in the calling thread's namespace.
	return NewWithHandle(iface, &netlink.Handle{}, log)
}

// NewWithHandle returns a Manager that works through h, whose sockets may
// be in another network namespace (netlink.NewHandleAt). The caller
// closes h after the Manager's last use.
func NewWithHandle(iface string, h *netlink.Handle, log *zap.Logger) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	return &Manager{iface: iface, h: h, log: log.With(zap.String("iface", iface))}
}

// Check reports whether this process may manage the addresses: it needs
// CAP_NET_ADMIN in its effective capability set.
func (m *Manager) Check() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("service addresses on %s: read capabilities: %w", m.iface, err)
	}
	if data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) == 0 {
		return fmt.Errorf("service addresses on interface %s: %w: this process may not change "+
			"interfaces; run zdt as root, or grant it the capability "+
			"(AmbientCapabilities=CAP_NET_ADMIN in its systemd unit, or setcap cap_net_admin+ep on the binary)",
			m.iface, ErrNoCapability)
	}
	return nil
}

// Apply makes the interface carry exactly the addresses of want among
// those of managed: it creates the interface (a dummy) when it is missing,
// also when want is empty, so that a site that cannot create it says so
// before it has to serve, and sets it up; it adds every address of want and
// removes every address of managed that is not in want; other addresses
// on the interface stay. Addresses are host prefixes (/32, /128); IPv6
// ones skip duplicate address detection, and Apply returns only once the
// kernel routes to each new one locally (see awaitLocalRoutes), so an
// address is usable when Apply returns.
//
// It checks the input and the capability first and changes nothing when
// either is wrong. A netlink error does not stop it: it does what it can
// and returns every error; a later Apply converges. Applying the same sets
// again changes nothing.
func (m *Manager) Apply(ctx context.Context, want, managed []netip.Prefix) error {
	if err := m.checkInput(want, managed); err != nil {
		return err
	}
	if err := m.Check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}

	link, err := m.ensureLink()
	if err != nil {
		return err
	}
	have, err := m.list(link)
	if err != nil {
		return err
	}

	var errs []error
	var added6 []netip.Prefix
	for _, p := range sortedSet(want) {
		if slices.Contains(have, p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		a := toAddr(p)
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := m.h.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", p, m.iface, err))
			continue
		}
		m.log.Info("service address added", zap.String("op", "add"), zap.Stringer("addr", p))
		if p.Addr().Is6() {
			added6 = append(added6, p)
		}
	}
	for _, p := range sortedSet(managed) {
		if slices.Contains(want, p) || !slices.Contains(have, p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := m.h.AddrDel(link, toAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", p, m.iface, err))
			continue
		}
		m.log.Info("service address removed", zap.String("op", "remove"), zap.Stringer("addr", p))
	}
	if err := m.awaitLocalRoutes(ctx, added6); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// localRouteWait bounds how long Apply waits for the kernel to make a new
// IPv6 address usable.
const localRouteWait = 2 * time.Second

// awaitLocalRoutes waits until the kernel has a local route for each of
// the IPv6 addresses: it installs one from a work queue a moment after the
// address is added (even without duplicate address detection), and until
// then a packet to the address is dropped (seen under load: a connection's
// first SYN lost, so a client waits a full retransmission timeout). An
// IPv4 address is usable when AddrAdd returns. There is no event to wait
// on through a netlink handle of another namespace, so it polls the local
// table, briefly and bounded.
func (m *Manager) awaitLocalRoutes(ctx context.Context, addrs []netip.Prefix) error {
	if len(addrs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, localRouteWait)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		missing, err := m.withoutLocalRoute(addrs)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: the kernel has not installed a local route for %v yet (%w); "+
				"traffic to it is dropped until it does", m.iface, missing, ctx.Err())
		case <-tick.C:
		}
	}
}

// withoutLocalRoute returns the addresses that the kernel's local routing
// table has no route for.
func (m *Manager) withoutLocalRoute(addrs []netip.Prefix) ([]netip.Prefix, error) {
	routes, err := m.h.RouteListFiltered(netlink.FAMILY_V6,
		&netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("%s: list local IPv6 routes: %w", m.iface, err)
	}
	var missing []netip.Prefix
	for _, p := range addrs {
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return r.Dst != nil && r.Type == unix.RTN_LOCAL && r.Dst.IP.Equal(p.Addr().AsSlice())
		}) {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// Addresses returns the addresses the interface carries now, sorted; none
// when it does not exist.
func (m *Manager) Addresses() ([]netip.Prefix, error) {
	if err := checkIface(m.iface); err != nil {
		return nil, err
	}
	link, err := m.h.LinkByName(m.iface)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil, nil
		}
		return nil, fmt.Errorf("interface %s: %w", m.iface, err)
	}
	return m.list(link)
}

func (m *Manager) list(link netlink.Link) ([]netip.Prefix, error) {
	addrs, err := m.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", m.iface, err)
	}
	var ps []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		ps = append(ps, netip.PrefixFrom(ip.Unmap(), ones))
	}
	slices.SortFunc(ps, comparePrefix)
	return ps, nil
}

// ensureLink returns the interface, created as a dummy when missing, and
// set up. An interface that exists is used whatever its type.
func (m *Manager) ensureLink() (netlink.Link, error) {
	link, err := m.h.LinkByName(m.iface)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		err = m.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: m.iface}})
		switch {
		case errors.Is(err, unix.EOPNOTSUPP):
			return nil, fmt.Errorf("create dummy interface %s: %w: %w: load the kernel module (modprobe dummy), "+
				"or create %s yourself: zdt uses an existing interface of any type", m.iface, ErrNoDummy, err, m.iface)
		case err != nil && !errors.Is(err, unix.EEXIST):
			return nil, fmt.Errorf("create dummy interface %s: %w", m.iface, err)
		}
		m.log.Info("service address interface created", zap.String("op", "create"))
		link, err = m.h.LinkByName(m.iface)
	}
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", m.iface, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := m.h.LinkSetUp(link); err != nil {
			return nil, fmt.Errorf("set %s up: %w", m.iface, err)
		}
	}
	return link, nil
}

func (m *Manager) checkInput(want, managed []netip.Prefix) error {
	var errs []error
	if err := checkIface(m.iface); err != nil {
		errs = append(errs, err)
	}
	for _, set := range []struct {
		name string
		ps   []netip.Prefix
	}{{"want", want}, {"managed", managed}} {
		for i, p := range set.ps {
			if err := checkHost(p); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", set.name, i, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("service addresses on %s: nothing changed: %w", m.iface, errors.Join(errs...))
	}
	return nil
}

func checkIface(name string) error {
	if name == "" || len(name) > unix.IFNAMSIZ-1 || name == "." || name == ".." ||
		strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == '/' || r == ':' || r > '~' }) {
		return fmt.Errorf("%w: interface name %q: want 1 to 15 characters, no space, / or :", ErrInvalid, name)
	}
	return nil
}

// checkHost accepts a host prefix of a unicast address.
func checkHost(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w: %v", ErrInvalid, p)
	case a.Is4In6():
		return fmt.Errorf("%w: %v: write an IPv4 address as such", ErrInvalid, p)
	case a.Zone() != "":
		return fmt.Errorf("%w: %v: has a zone", ErrInvalid, p)
	case p.Bits() != a.BitLen():
		return fmt.Errorf("%w: %v: want a host address (/%d)", ErrInvalid, p, a.BitLen())
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback(), a.IsLinkLocalUnicast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%w: %v: not a unicast service address", ErrInvalid, p)
	}
	return nil
}

func toAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}

func sortedSet(ps []netip.Prefix) []netip.Prefix {
	s := slices.Clone(ps)
	slices.SortFunc(s, comparePrefix)
	return slices.Compact(s)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
