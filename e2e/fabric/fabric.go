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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The names of the links. They exist only inside the Fabric's own
// namespaces, so they need not be unique on the machine.
const (
	bridgeLink = "zdtbr"  // the bridge of Upstream and of Fabric
	portPrefix = "zdts"   // + site index: a site's veth end on a bridge
	upLink     = "zdtup"  // a site's veth to the upstream bridge
	fabricLink = "zdtfab" // a site's veth to the fabric bridge
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

	namespaces []NS // every namespace made, for cleanup
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
	t.Helper()
	need(t, checkNetwork())
	if err := checkSiteNames(sites); err != nil {
		t.Fatal(err)
	}
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	f := &Fabric{
		UpstreamAddr4: upstreamNet4.Addr().Next(),
		UpstreamAddr6: upstreamNet6.Addr().Next(),
		FabricAddr:    fabricNet.Addr().Next(),
	}
	t.Cleanup(func() { f.remove(t) })

	start := time.Now()
	if err := f.build(id, sites); err != nil {
		t.Fatalf("build fabric %s: %v", id, err)
	}
	t.Logf("fabric %s: %d sites in %v", id, len(sites), time.Since(start).Round(time.Millisecond))
	return f
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

// newID is "zdt" and 6 random hex digits: the prefix of the namespaces.
func newID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "zdt" + hex.EncodeToString(b[:]), nil
}

func (f *Fabric) build(id string, sites []string) error {
	var err error
	if f.Upstream, err = f.addNS(id + "-upstream"); err != nil {
		return err
	}
	if err := addBridge(f.Upstream, prefixOf(f.UpstreamAddr4, upstreamNet4), prefixOf(f.UpstreamAddr6, upstreamNet6)); err != nil {
		return err
	}
	if f.Fabric, err = f.addNS(id + "-fabric"); err != nil {
		return err
	}
	if err := addBridge(f.Fabric, prefixOf(f.FabricAddr, fabricNet)); err != nil {
		return err
	}
	for i, name := range sites {
		s := &Site{
			Name:          name,
			UpstreamAddr4: nth(upstreamNet4, 11+i),
			UpstreamAddr6: decimalHost(upstreamNet6, 11+i),
			FabricAddr:    nth(fabricNet, 11+i),
			UpstreamLink:  upLink,
			FabricLink:    fabricLink,
		}
		if s.NS, err = f.addNS(id + "-" + name); err != nil {
			return err
		}
		port := portPrefix + strconv.Itoa(i)
		if err := addVeth(f.Upstream, port, s.NS, s.UpstreamLink,
			prefixOf(s.UpstreamAddr4, upstreamNet4), prefixOf(s.UpstreamAddr6, upstreamNet6)); err != nil {
			return fmt.Errorf("site %s: %w", name, err)
		}
		if err := addVeth(f.Fabric, port, s.NS, s.FabricLink, prefixOf(s.FabricAddr, fabricNet)); err != nil {
			return fmt.Errorf("site %s: %w", name, err)
		}
		f.Sites = append(f.Sites, s)
	}
	return nil
}

// addNS makes a namespace with lo up, IPv6 duplicate address detection
// off (addresses are usable at once) and IPv6 addresses kept while a link
// is down (so that a healed link has them again).
func (f *Fabric) addNS(name string) (NS, error) {
	if out, err := exec.Command(ipBinary(), "netns", "add", name).CombinedOutput(); err != nil {
		return NS{}, fmt.Errorf("ip netns add %s: %v: %s", name, err, bytesTrim(out))
	}
	ns := NS{Name: name}
	f.namespaces = append(f.namespaces, ns)
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
		return ns, fmt.Errorf("sysctl in netns %s: %w", name, err)
	}
	return ns, ns.setLink("lo", true)
}

// addBridge adds the bridge, with addrs, to ns and sets it up.
func addBridge(ns NS, addrs ...netip.Prefix) error {
	return ns.withHandle(func(h *netlink.Handle) error {
		off := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeLink}, MulticastSnooping: &off}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge in netns %s: %w", ns.Name, err)
		}
		return setUp(h, ns, bridgeLink, addrs)
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
	err = brNS.withHandle(func(h *netlink.Handle) error {
		br, err := h.LinkByName(bridgeLink)
		if err != nil {
			return err
		}
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
			PeerName:      link,
			PeerNamespace: netlink.NsFd(int(fd)),
		}
		if err := h.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth %s (netns %s) - %s (netns %s): %w", port, brNS.Name, link, ns.Name, err)
		}
		return setUp(h, brNS, port, nil)
	})
	if err != nil {
		return err
	}
	return ns.withHandle(func(h *netlink.Handle) error { return setUp(h, ns, link, addrs) })
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

// remove kills what runs in the namespaces and deletes them.
func (f *Fabric) remove(t testing.TB) {
	for _, ns := range f.namespaces {
		if err := killAll(ns); err != nil {
			t.Errorf("fabric cleanup: %v", err)
		}
	}
	for _, ns := range f.namespaces {
		if out, err := exec.Command(ipBinary(), "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("fabric cleanup: ip netns del %s: %v: %s", ns.Name, err, bytesTrim(out))
		}
	}
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
