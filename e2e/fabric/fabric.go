package fabric

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/zdt-project/zdt/e2e/softswitch"
)

// The names of the links. They exist only inside the Fabric's own
// namespaces, so they need not be unique on the machine.
const (
	bridgeLink   = "zdtbr"  // the bridge of Upstream and of Fabric
	portPrefix   = "zdts"   // + site index: a site's veth end on a bridge
	upLink       = "zdtup"  // a site's (and the client's) veth to the upstream bridge
	fabricLink   = "zdtfab" // a site's veth to the fabric bridge
	clientPort   = "zdtc"   // the client's veth end on the upstream bridge
	hostPort     = "zdth"   // the host's veth end on the fabric bridge
	upstreamPort = "zdtu"   // the upstream namespace's veth end on the fabric bridge
	// With Options.Switched, the fabric namespace's own address is on
	// bridgeLink, one end of a veth pair whose other end is selfPort.
	selfPort = "zdtself"
)

// The addresses of the bed.
var (
	upstreamNet4 = netip.MustParsePrefix("192.0.2.0/24")
	upstreamNet6 = netip.MustParsePrefix("2001:db8:1::/64")
	fabricNet    = netip.MustParsePrefix("198.51.100.0/24")
)

// maxSites keeps the host addresses .11, .12, ... inside the /24s.
const maxSites = 200

// Fabric is a test-bed of network namespaces: an upstream router's
// namespace, a fabric that links the sites with each other and with the
// test, and one namespace per site, linked to both.
type Fabric struct {
	// ID prefixes the names of the namespaces (and of the host's links).
	ID string

	// Upstream hosts the upstream router (FRR, see StartFRR) on a bridge
	// with UpstreamAddr4 and UpstreamAddr6; every site has a veth on it.
	Upstream      NS
	UpstreamAddr4 netip.Addr // 192.0.2.1
	UpstreamAddr6 netip.Addr // 2001:db8:1::1

	// Fabric has a bridge with FabricAddr; every site has a veth on it.
	// The test reaches the sites through it: Fabric.DialContext.
	Fabric     NS
	FabricAddr netip.Addr // 198.51.100.1

	// Sites, in the order given to New.
	Sites []*Site

	// Client, with Options.Client, is a namespace on the upstream bridge
	// (ClientAddr4, ClientAddr6) whose default routes lead through the
	// upstream router: a consumer of the sites' services, whose packets
	// follow the router's best paths.
	Client      NS
	ClientAddr4 netip.Addr // 192.0.2.3
	ClientAddr6 netip.Addr // 2001:db8:1::3

	// With Options.Host, this process's own namespace (the machine's, for
	// a lab) has a link to the fabric, HostFabricLink with HostFabricAddr,
	// from which it reaches the sites.
	HostFabricAddr netip.Addr // 198.51.100.2
	HostFabricLink string     // ID + "f", in the host's namespace

	// With Options.UpstreamOnFabric, the upstream namespace has a link to
	// the fabric too (UpstreamFabricAddr, on link FabricLink), and a
	// second address on its bridge, ObserverAddr: for a route observer
	// beside the upstream router, which the sites peer with and which
	// reaches the sites' etcd.
	UpstreamFabricAddr netip.Addr // 198.51.100.3
	ObserverAddr       netip.Addr // 192.0.2.4

	// Switch, with Options.Switched, is the fabric's switch when NewWith
	// made the fabric; nil otherwise.
	Switch *softswitch.Switch

	opts       Options
	namespaces []NS // every namespace made, for cleanup
}

// Options add to a Fabric what a whole lab needs beyond the sites.
type Options struct {
	// Client adds the client's namespace; the upstream namespace then
	// forwards packets (IPv4 and IPv6).
	Client bool
	// Host links the caller's namespace to the fabric. Only one Fabric
	// with Host can exist at a time, and only where the host's own
	// networks leave 198.51.100.0/24 alone: Build checks.
	Host bool
	// UpstreamOnFabric links the upstream namespace to the fabric.
	UpstreamOnFabric bool
	// ServiceLink, if set, names a link every site gets for its service
	// addresses: a bridge without ports, up (this kernel may have no dummy
	// interfaces).
	ServiceLink string
	// Switched leaves the fabric without a bridge: its ports are the ports
	// of a softswitch.Switch, which delays or cuts the links between two
	// sites (and without which nothing crosses the fabric). StartSwitch
	// starts one in this process; NewWith does, for the test.
	Switched bool
}

// Site is one site's namespace and its two links.
type Site struct {
	Name          string
	NS            NS
	UpstreamAddr4 netip.Addr // 192.0.2.(11+i), on link UpstreamLink
	UpstreamAddr6 netip.Addr // 2001:db8:1::11, ::12, ...: the same digits, on link UpstreamLink
	FabricAddr    netip.Addr // 198.51.100.(11+i), on link FabricLink
	UpstreamLink  string     // the name of the link, inside NS
	FabricLink    string
}

// New builds the bed for the named sites and removes it in t.Cleanup,
// after killing every process still running in its namespaces. It skips
// the test when it is not root or ip is missing, or fails it when CI=true.
func New(t testing.TB, sites []string) *Fabric {
	return NewWith(t, sites, Options{})
}

// NewWith is New with options.
func NewWith(t testing.TB, sites []string, opts Options) *Fabric {
	t.Helper()
	need(t, checkNetwork())
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f, err := Build(id, sites, opts)
	if f != nil {
		t.Cleanup(func() {
			if err := f.Remove(); err != nil {
				t.Errorf("fabric cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("build fabric %s: %v", id, err)
	}
	if opts.Switched {
		sw, err := f.StartSwitch()
		if err != nil {
			t.Fatalf("fabric %s: %v", id, err)
		}
		f.Switch = sw
		t.Cleanup(func() { sw.Close() }) // before Remove
	}
	t.Logf("fabric %s: %d sites in %v", id, len(sites), time.Since(start).Round(time.Millisecond))
	return f
}

// CheckNetwork reports what is missing to build a Fabric: root (for
// network namespaces) and the ip binary.
func CheckNetwork() error { return checkNetwork() }

// Describe is the Fabric that Build(id, sites, opts) makes, without
// making or touching anything: its names and addresses. Remove on it
// removes what such a Build made.
func Describe(id string, sites []string, opts Options) (*Fabric, error) {
	if err := checkSiteNames(sites); err != nil {
		return nil, err
	}
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("fabric id %q: want zdt and 1 to 8 of a-z and 0-9", id)
	}
	f := &Fabric{
		ID:            id,
		Upstream:      NS{Name: id + "-upstream"},
		UpstreamAddr4: upstreamNet4.Addr().Next(),
		UpstreamAddr6: upstreamNet6.Addr().Next(),
		Fabric:        NS{Name: id + "-fabric"},
		FabricAddr:    fabricNet.Addr().Next(),
		opts:          opts,
	}
	f.namespaces = []NS{f.Upstream, f.Fabric}
	for i, name := range sites {
		s := &Site{
			Name:          name,
			NS:            NS{Name: id + "-" + name},
			UpstreamAddr4: nth(upstreamNet4, 11+i),
			UpstreamAddr6: decimalHost(upstreamNet6, 11+i),
			FabricAddr:    nth(fabricNet, 11+i),
			UpstreamLink:  upLink,
			FabricLink:    fabricLink,
		}
		f.Sites = append(f.Sites, s)
		f.namespaces = append(f.namespaces, s.NS)
	}
	if opts.Client {
		f.Client = NS{Name: id + "-client"}
		f.ClientAddr4 = nth(upstreamNet4, 3)
		f.ClientAddr6 = decimalHost(upstreamNet6, 3)
		f.namespaces = append(f.namespaces, f.Client)
	}
	if opts.Host {
		f.HostFabricAddr = nth(fabricNet, 2)
		f.HostFabricLink = id + "f"
	}
	if opts.UpstreamOnFabric {
		f.UpstreamFabricAddr = nth(fabricNet, 3)
		f.ObserverAddr = nth(upstreamNet4, 4)
	}
	return f, nil
}

// idRE is what NewID makes, short enough for the host's link names.
var idRE = regexp.MustCompile(`^zdt[a-z0-9]{1,8}$`)

// Build makes the namespaces and links of a Fabric for the named sites,
// each namespace named id-NAME (id-upstream, id-fabric, id-a, ...). On an
// error it returns the Fabric too, when it made anything: Remove it.
// Building needs root and ip (CheckNetwork).
func Build(id string, sites []string, opts Options) (*Fabric, error) {
	if err := checkNetwork(); err != nil {
		return nil, err
	}
	f, err := Describe(id, sites, opts)
	if err != nil {
		return nil, err
	}
	if err := f.build(); err != nil {
		return f, err
	}
	return f, nil
}

// Exists reports whether the Fabric's namespaces are there (all of them).
func (f *Fabric) Exists() bool {
	for _, ns := range f.namespaces {
		if _, err := os.Stat(filepath.Join("/run/netns", ns.Name)); err != nil {
			return false
		}
	}
	return true
}

// Site returns the named site, or nil.
func (f *Fabric) Site(name string) *Site {
	for _, s := range f.Sites {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// CutFabric sets the site's link to the fabric down: the site is cut off
// from the other sites and from the test, while its BGP sessions stay up.
func (s *Site) CutFabric() error { return s.NS.setLink(s.FabricLink, false) }

// HealFabric sets the site's link to the fabric up again.
func (s *Site) HealFabric() error { return s.NS.setLink(s.FabricLink, true) }

// CutUpstream sets the site's link to the upstream down. The site's own
// BGP speaker sees its link go down; the upstream router, on a bridge
// that stays up, notices only when the session's hold time expires.
func (s *Site) CutUpstream() error { return s.NS.setLink(s.UpstreamLink, false) }

// HealUpstream sets the site's link to the upstream up again.
func (s *Site) HealUpstream() error { return s.NS.setLink(s.UpstreamLink, true) }

func checkSiteNames(sites []string) error {
	if len(sites) == 0 || len(sites) > maxSites {
		return fmt.Errorf("fabric: want 1 to %d sites, have %d", maxSites, len(sites))
	}
	seen := make(map[string]bool)
	for _, s := range sites {
		if s == "" || len(s) > 32 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("fabric: site name %q: want 1 to 32 of a-z, 0-9 and -", s)
		}
		if seen[s] {
			return fmt.Errorf("fabric: site %q given twice", s)
		}
		seen[s] = true
	}
	return nil
}

// NewID is "zdt" and 6 random hex digits: the prefix of a Fabric's
// namespaces.
func NewID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "zdt" + hex.EncodeToString(b[:]), nil
}

func (f *Fabric) build() error {
	if err := f.addNS(f.Upstream); err != nil {
		return err
	}
	if err := addBridge(f.Upstream, prefixOf(f.UpstreamAddr4, upstreamNet4), prefixOf(f.UpstreamAddr6, upstreamNet6)); err != nil {
		return err
	}
	if err := f.addNS(f.Fabric); err != nil {
		return err
	}
	if err := f.addFabricSelf(); err != nil {
		return err
	}
	for i, s := range f.Sites {
		if err := f.addNS(s.NS); err != nil {
			return err
		}
		port := sitePort(i)
		if err := addVeth(f.Upstream, port, s.NS, s.UpstreamLink,
			prefixOf(s.UpstreamAddr4, upstreamNet4), prefixOf(s.UpstreamAddr6, upstreamNet6)); err != nil {
			return fmt.Errorf("site %s: %w", s.Name, err)
		}
		if err := addVeth(f.Fabric, port, s.NS, s.FabricLink, prefixOf(s.FabricAddr, fabricNet)); err != nil {
			return fmt.Errorf("site %s: %w", s.Name, err)
		}
		if f.opts.ServiceLink != "" {
			if err := addBridgeNamed(s.NS, f.opts.ServiceLink); err != nil {
				return fmt.Errorf("site %s: %w", s.Name, err)
			}
		}
	}
	if f.opts.Client {
		if err := f.buildClient(); err != nil {
			return err
		}
	}
	if f.opts.UpstreamOnFabric {
		if err := addVeth(f.Fabric, upstreamPort, f.Upstream, fabricLink, prefixOf(f.UpstreamFabricAddr, fabricNet)); err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		err := f.Upstream.withHandle(func(h *netlink.Handle) error {
			return setUp(h, f.Upstream, bridgeLink, []netip.Prefix{prefixOf(f.ObserverAddr, upstreamNet4)})
		})
		if err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
	}
	if f.opts.Host {
		if err := f.buildHost(); err != nil {
			return err
		}
	}
	return nil
}

// addFabricSelf gives the fabric namespace its own address, FabricAddr,
// on bridgeLink: a bridge, or with Options.Switched one end of a veth pair
// whose other end is the switch's port selfPort.
func (f *Fabric) addFabricSelf() error {
	addr := prefixOf(f.FabricAddr, fabricNet)
	if !f.opts.Switched {
		return addBridge(f.Fabric, addr)
	}
	return f.Fabric.withHandle(func(h *netlink.Handle) error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: bridgeLink}, PeerName: selfPort}
		if err := h.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth %s - %s in netns %s: %w", bridgeLink, selfPort, f.Fabric.Name, err)
		}
		return errors.Join(setUp(h, f.Fabric, selfPort, nil), setUp(h, f.Fabric, bridgeLink, []netip.Prefix{addr}))
	})
}

// sitePort is the name of site i's veth ends in the upstream and the
// fabric namespaces.
func sitePort(i int) string { return portPrefix + strconv.Itoa(i) }

// buildClient adds the client's namespace, with default routes through
// the upstream router, which forwards.
func (f *Fabric) buildClient() error {
	// The router shares its bridge with the client and the sites: it must
	// not redirect the client to a site (ICMP redirect), or the client
	// would keep sending to that site, the router's routes aside, for
	// minutes after the site went dark.
	err := f.Upstream.Do(func() error {
		return writeSysctls(map[string]string{
			"net/ipv4/ip_forward":                             "1",
			"net/ipv6/conf/all/forwarding":                    "1",
			"net/ipv4/conf/all/send_redirects":                "0",
			"net/ipv4/conf/" + bridgeLink + "/send_redirects": "0",
		})
	})
	if err != nil {
		return fmt.Errorf("forwarding in netns %s: %w", f.Upstream.Name, err)
	}
	if err := f.addNS(f.Client); err != nil {
		return err
	}
	err = f.Client.Do(func() error {
		return writeSysctls(map[string]string{
			"net/ipv4/conf/all/accept_redirects":     "0",
			"net/ipv4/conf/default/accept_redirects": "0",
			"net/ipv6/conf/all/accept_redirects":     "0",
			"net/ipv6/conf/default/accept_redirects": "0",
		})
	})
	if err != nil {
		return fmt.Errorf("redirects in netns %s: %w", f.Client.Name, err)
	}
	if err := addVeth(f.Upstream, clientPort, f.Client, upLink,
		prefixOf(f.ClientAddr4, upstreamNet4), prefixOf(f.ClientAddr6, upstreamNet6)); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return f.Client.withHandle(func(h *netlink.Handle) error {
		l, err := h.LinkByName(upLink)
		if err != nil {
			return err
		}
		for _, gw := range []netip.Addr{f.UpstreamAddr4, f.UpstreamAddr6} {
			r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
			if err := h.RouteAdd(r); err != nil {
				return fmt.Errorf("default route via %s in netns %s: %w", gw, f.Client.Name, err)
			}
		}
		return nil
	})
}

// writeSysctls sets sysctls (paths under /proc/sys) of the calling
// thread's network namespace.
func writeSysctls(kv map[string]string) error {
	var errs []error
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// buildHost links the caller's namespace to the fabric, unless the host's
// own routes already cover the fabric's network: the bed never takes over
// addresses the machine uses.
func (f *Fabric) buildHost() error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones > 0 && r.Dst.Contains(fabricNet.Addr().AsSlice()) {
			l, _ := netlink.LinkByIndex(r.LinkIndex)
			name := "?"
			if l != nil {
				name = l.Attrs().Name
			}
			return fmt.Errorf("the host already routes %s (to %s, on %s): a test-bed linked to the host would clash with it; remove that fabric first (ip netns list shows zdt... namespaces)", fabricNet, r.Dst, name)
		}
	}
	host, err := netns.Get()
	if err != nil {
		return fmt.Errorf("this process's netns: %w", err)
	}
	defer host.Close()
	if err := addVethTo(f.Fabric, hostPort, host, "host", f.HostFabricLink); err != nil {
		return err
	}
	return setUp(&netlink.Handle{}, NS{Name: "host"}, f.HostFabricLink, []netip.Prefix{prefixOf(f.HostFabricAddr, fabricNet)})
}

// addNS makes ns with lo up, IPv6 duplicate address detection off
// (addresses are usable at once) and IPv6 addresses kept while a link is
// down (so that a healed link has them again).
func (f *Fabric) addNS(ns NS) error {
	if out, err := exec.Command(ipBinary(), "netns", "add", ns.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", ns.Name, err, bytesTrim(out))
	}
	err := ns.Do(func() error {
		for _, conf := range []string{"all", "default"} {
			for _, kv := range [][2]string{{"accept_dad", "0"}, {"keep_addr_on_down", "1"}} {
				p := filepath.Join("/proc/sys/net/ipv6/conf", conf, kv[0])
				if err := os.WriteFile(p, []byte(kv[1]), 0o644); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sysctl in netns %s: %w", ns.Name, err)
	}
	return ns.setLink("lo", true)
}

// addBridge adds the bridge, with addrs, to ns and sets it up.
func addBridge(ns NS, addrs ...netip.Prefix) error {
	return addBridgeNamed(ns, bridgeLink, addrs...)
}

func addBridgeNamed(ns NS, name string, addrs ...netip.Prefix) error {
	return ns.withHandle(func(h *netlink.Handle) error {
		off := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge %s in netns %s: %w", name, ns.Name, err)
		}
		return setUp(h, ns, name, addrs)
	})
}

// addVeth adds a veth pair: port, a port of the bridge in brNS, and link
// in ns with addrs; both ends up.
func addVeth(brNS NS, port string, ns NS, link string, addrs ...netip.Prefix) error {
	fd, err := netns.GetFromName(ns.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns.Name, err)
	}
	defer fd.Close()
	if err := addVethTo(brNS, port, fd, ns.Name, link); err != nil {
		return err
	}
	return ns.withHandle(func(h *netlink.Handle) error { return setUp(h, ns, link, addrs) })
}

// addVethTo adds a veth pair: port, up, in brNS, a port of its bridge if
// it has one (a switched fabric has none), and link in the namespace
// target (named name, for errors), left down.
func addVethTo(brNS NS, port string, target netns.NsHandle, name, link string) error {
	return brNS.withHandle(func(h *netlink.Handle) error {
		br, err := h.LinkByName(bridgeLink)
		if err != nil {
			return err
		}
		master := 0
		if _, ok := br.(*netlink.Bridge); ok {
			master = br.Attrs().Index
		}
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: master},
			PeerName:      link,
			PeerNamespace: netlink.NsFd(int(target)),
		}
		if err := h.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth %s (netns %s) - %s (netns %s): %w", port, brNS.Name, link, name, err)
		}
		return setUp(h, brNS, port, nil)
	})
}

func setUp(h *netlink.Handle, ns NS, name string, addrs []netip.Prefix) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s in netns %s: %w", name, ns.Name, err)
	}
	for _, p := range addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(l, a); err != nil {
			return fmt.Errorf("add %s to %s in netns %s: %w", p, name, ns.Name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in netns %s: %w", name, ns.Name, err)
	}
	return nil
}

// Remove kills what runs in the Fabric's namespaces and deletes them (the
// host's links go with them). Namespaces already gone are fine.
func (f *Fabric) Remove() error {
	var errs []error
	for _, ns := range f.namespaces {
		errs = append(errs, killAll(ns))
	}
	for _, ns := range f.namespaces {
		if _, err := os.Stat(filepath.Join("/run/netns", ns.Name)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if out, err := exec.Command(ipBinary(), "netns", "del", ns.Name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns.Name, err, bytesTrim(out)))
		}
	}
	return errors.Join(errs...)
}

// killAll kills every process in ns (what `ip netns pids` lists) and waits,
// for at most 10s, until none is left.
func killAll(ns NS) error {
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		pids, err := pidsIn(ns)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns %s: processes %v still run 10s after SIGKILL", ns.Name, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already: fine
		}
		time.Sleep(time.Duration(min(i+1, 10)) * 10 * time.Millisecond)
	}
}

// pidsIn lists the processes whose network namespace is ns, and those
// that NS.Command started and that are about to enter it (still
// `ip netns exec NAME ...`), except this process: the test process is
// never in it as a whole.
func pidsIn(ns NS) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", ns.Name), &want); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("netns %s: %w", ns.Name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	entering := []byte("\x00netns\x00exec\x00" + ns.Name + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
			continue
		}
		// Exited, a zombie, or in another namespace.
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, entering) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// decimalHost is the address of net (written with a trailing ::) whose
// last group reads like n in decimal: 2001:db8:1::11 for 11, to match
// 192.0.2.11.
func decimalHost(net netip.Prefix, n int) netip.Addr {
	return netip.MustParseAddr(net.Addr().String() + strconv.Itoa(n))
}

func prefixOf(a netip.Addr, net netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(a, net.Bits())
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }
