package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zdt-project/zdt/e2e/fabric"
	"github.com/zdt-project/zdt/failover/drill"
)

// A lab in network namespaces (Topology.InNetns, `zdt lab --netns`) runs
// the same three sites as the loopback lab, each in a namespace of its own
// with two links, one to the upstream router and one to the other sites,
// which a fault cuts for real. Its files, beside the loopback lab's:
//
//	netns              the prefix of the lab's namespaces (ID-a, ID-upstream, ...)
//	upstream/          the upstream router's (FRR) configuration, logs and pids
//	<site>/responder.log the site's service responder
const (
	netnsFileName   = "netns"
	upstreamDirName = "upstream"
	// serviceLink is the link of every site's namespace that carries the
	// addresses of the services the site is active for (bgp.interface).
	serviceLink = "zdt0"
	// DefaultResponderPort is where the responders listen.
	DefaultResponderPort = 8080
)

// upstreamASN is the upstream router's AS (and the observer's).
const upstreamASN = 64500

// netnsOptions are the fabric options of a lab in namespaces.
var netnsOptions = fabric.Options{Client: true, Host: true, UpstreamOnFabric: true, ServiceLink: serviceLink, Switched: true}

// InNetns moves the topology into network namespaces: every site's
// listeners on its address on the fabric (198.51.100.11, .12, ...), its
// BGP sessions from its addresses on the upstream link (192.0.2.11 and
// 2001:db8:1::11, ...) to FRR, the upstream router (192.0.2.1 and
// 2001:db8:1::1, an IPv4 and an IPv6 session), and to the route observer,
// which runs beside FRR in the upstream namespace (192.0.2.4, port 1179)
// and reaches the sites' etcd over its own link to the fabric
// (198.51.100.3). The machine's own namespace has a link to the fabric
// (198.51.100.2), from which zdt commands reach the sites. Every service
// gets a host address in each of its prefixes (the tenth), which its
// active site's zdt0 carries, and every site a service responder on port
// DefaultResponderPort.
func (t Topology) InNetns() (Topology, error) {
	f, err := fabric.Describe("zdt0", t.siteNames(), netnsOptions)
	if err != nil {
		return t, fmt.Errorf("lab in network namespaces: %w", err)
	}
	t.Sites = slices.Clone(t.Sites)
	for i, fs := range f.Sites {
		s := &t.Sites[i]
		s.IP, s.BGPAddr4, s.BGPAddr6 = fs.FabricAddr, fs.UpstreamAddr4, fs.UpstreamAddr6
	}
	t.Services = slices.Clone(t.Services)
	for i := range t.Services {
		svc := &t.Services[i]
		svc.Addresses = nil
		for _, p := range svc.Prefixes {
			a := p.Addr()
			for range 10 {
				a = a.Next()
			}
			svc.Addresses = append(svc.Addresses, a)
		}
	}
	if t.BGP != nil {
		bgp := *t.BGP
		bgp.ObserverListen = netip.AddrPortFrom(f.ObserverAddr, bgp.ObserverListen.Port())
		bgp.Routers = []RouterSpec{
			{Address: f.UpstreamAddr4, ASN: upstreamASN, Description: "the upstream router (FRR), IPv4"},
			{Address: f.UpstreamAddr6, ASN: upstreamASN, Description: "the upstream router (FRR), IPv6"},
		}
		bgp.Interface = serviceLink
		t.BGP = &bgp
	}
	t.Netns = &NetnsSpec{ResponderPort: DefaultResponderPort}
	return t, nil
}

// Fabric is the lab's namespaces and links, nil for a loopback lab.
func (l *Lab) Fabric() *fabric.Fabric { return l.fab }

// InNetns reports whether the lab runs in network namespaces.
func (l *Lab) InNetns() bool { return l.fab != nil }

// openFabric reads DIR/netns, if there is one: the lab runs in namespaces.
func openFabric(dir string, sites []string) (*fabric.Fabric, error) {
	data, err := os.ReadFile(filepath.Join(dir, netnsFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return fabric.Describe(strings.TrimSpace(string(data)), sites, netnsOptions)
}

// newFabricID picks the prefix of a new lab's namespaces and records it.
func newFabricID(dir string) error {
	id, err := fabric.NewID()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, netnsFileName), []byte(id+"\n"), 0o644)
}

// ensureFabric builds the lab's namespaces unless they are there.
func (l *Lab) ensureFabric() error {
	if l.fab == nil || l.fab.Exists() {
		return nil
	}
	// What an interrupted build left.
	if err := l.fab.Remove(); err != nil {
		return fmt.Errorf("remove the lab's partial namespaces: %w", err)
	}
	if _, err := fabric.Build(l.fab.ID, l.SiteNames(), netnsOptions); err != nil {
		return errors.Join(fmt.Errorf("build the lab's network namespaces: %w", err), l.fab.Remove())
	}
	return nil
}

// removeFabric removes the lab's namespaces, killing what still runs in
// them, and the upstream router's sockets.
func (l *Lab) removeFabric() error {
	if l.fab == nil {
		return nil
	}
	return errors.Join(l.fab.Remove(), os.RemoveAll(l.frrSockDir()))
}

// nsOf is the namespace a process runs in: a site's controller,
// PostgreSQL server and responder in the site's, the upstream router and
// the route observer in the upstream's; the libvirtds in the machine's
// (the zero NS), as everything does in a loopback lab.
func (l *Lab) nsOf(p proc) fabric.NS {
	if l.fab == nil {
		return fabric.NS{}
	}
	switch p.role {
	case controllerRole, postgresRole, responderRole:
		if s := l.fab.Site(p.site); s != nil {
			return s.NS
		}
	case zebraRole, bgpdRole, observerRole:
		return l.fab.Upstream
	case switchRole:
		return l.fab.Fabric
	}
	return fabric.NS{}
}

// inNS runs f (which starts a process) on a thread in the process's
// namespace, so that the process is born there.
func (l *Lab) inNS(p proc, f func() error) error {
	ns := l.nsOf(p)
	if ns.Name == "" {
		return f()
	}
	return ns.Do(f)
}

func (l *Lab) upstreamDir() string { return filepath.Join(l.dir, upstreamDirName) }

// frrSockDir holds the upstream router's sockets: a short path, as a unix
// socket's must be.
func (l *Lab) frrSockDir() string { return filepath.Join(os.TempDir(), l.fab.ID+"-frr") }

func (l *Lab) frrConfig() fabric.FRRConfig {
	cfg := fabric.FRRConfig{ASN: upstreamASN, RouterID: l.fab.UpstreamAddr4}
	for i, s := range l.fab.Sites {
		for _, a := range []netip.Addr{s.UpstreamAddr4, s.UpstreamAddr6} {
			cfg.Neighbors = append(cfg.Neighbors, fabric.FRRNeighbor{Address: a, ASN: l.siteASNs[i],
				HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second})
		}
	}
	return cfg
}

// startFRR starts the upstream router: zebra, then bgpd once zebra
// listens. zebra installs bgpd's best paths into the upstream namespace's
// kernel, which forwards the client's packets by them.
func (l *Lab) startFRR() error {
	dir := l.upstreamDir()
	if err := errors.Join(os.MkdirAll(dir, 0o755), os.MkdirAll(l.frrSockDir(), 0o755)); err != nil {
		return fmt.Errorf("start the upstream router: %w", err)
	}
	setup, err := fabric.PrepareFRR(l.frrConfig(), "upstream", dir, l.frrSockDir())
	if err != nil {
		return fmt.Errorf("start the upstream router: %w", err)
	}
	if _, ok := l.running(zebraProc); !ok {
		if err := l.start(zebraProc, setup.Zebra[0], setup.Zebra[1:], nil); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitUnixSocket(ctx, setup.Zserv); err != nil {
		return fmt.Errorf("the upstream router's zebra: %w; see %s", err, l.logPath(zebraProc))
	}
	if _, ok := l.running(bgpdProc); !ok {
		return l.start(bgpdProc, setup.Bgpd[0], setup.Bgpd[1:], nil)
	}
	return nil
}

// FRRVTY is the upstream router's bgpd vty socket.
func (l *Lab) FRRVTY() string { return filepath.Join(l.frrSockDir(), "bgpd.vty") }

func waitUnixSocket(ctx context.Context, path string) error {
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %w", path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startResponder starts the site's service responder, `zdt lab responder`.
func (l *Lab) startResponder(site string) error {
	args := []string{"lab", "responder", "--lab", l.dir, "--site", site,
		"--listen", net.JoinHostPort("::", strconv.Itoa(DefaultResponderPort))}
	if l.pg != nil {
		args = append(args, "--database-url-file", filepath.Join(l.dir, PostgresClientURLFile))
	}
	return l.start(responderOf(site), l.binary, args, l.env)
}

// isResponder reports whether pid is this lab's responder of site.
func isResponder(pid int, dir, site string) bool {
	args := cmdline(pid)
	return len(args) > 2 && slices.Contains(args, "responder") &&
		flagValue(args[1:], "--lab") == dir && flagValue(args[1:], "--site") == site
}

// isFRRDaemon reports whether pid is an FRR daemon run with conf.
func isFRRDaemon(pid int, conf string) bool {
	args := cmdline(pid)
	return len(args) > 1 && flagValue(args[1:], "-f") == conf
}

// ServiceURL is the URL of the named service's responder, at its first
// address of the family of want (4 or 6), as the client reaches it.
func (l *Lab) ServiceURL(service string, family int) (string, error) {
	addrs, ok := l.serviceAddrs[service]
	if !ok || l.fab == nil {
		return "", fmt.Errorf("service %q has no address in this lab (a lab in network namespaces gives every service one)", service)
	}
	for _, a := range addrs {
		if (family == 4) == a.Is4() {
			return "http://" + net.JoinHostPort(a.String(), strconv.Itoa(DefaultResponderPort)), nil
		}
	}
	return "", fmt.Errorf("service %q has no IPv%d address", service, family)
}

// ClientProbeOptions are the options of a drill probe that stands for the
// lab's client: it dials from the client's namespace, through the upstream
// router, and, where the lab has group pg, checks in it every write it got
// acknowledged.
func (l *Lab) ClientProbeOptions() (drill.ProbeOptions, error) {
	if l.fab == nil {
		return drill.ProbeOptions{}, errors.New("this lab runs on loopback addresses: only a lab in network namespaces (zdt lab --netns) has a client")
	}
	opts := drill.ProbeOptions{Dial: l.fab.Client.DialContext}
	if l.HasPostgres() {
		var err error
		if opts.VerifyURL, err = l.PostgresClientURL(); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// CutSite sets both of the site's links down: it can reach neither the
// other sites nor the upstream router, which notices when its sessions'
// hold time expires.
func (l *Lab) CutSite(site string) error {
	s, err := l.fabricSite(site)
	if err != nil {
		return err
	}
	return errors.Join(s.CutFabric(), s.CutUpstream())
}

// HealSite sets both of the site's links up again.
func (l *Lab) HealSite(site string) error {
	s, err := l.fabricSite(site)
	if err != nil {
		return err
	}
	return errors.Join(s.HealFabric(), s.HealUpstream())
}

// IsolateSite sets the site's link to the other sites down and leaves its
// link to the upstream up: its etcd member and controller are cut off
// from the others while its BGP sessions stay up.
func (l *Lab) IsolateSite(site string) error {
	s, err := l.fabricSite(site)
	if err != nil {
		return err
	}
	return s.CutFabric()
}

func (l *Lab) fabricSite(site string) (*fabric.Site, error) {
	if l.fab == nil {
		return nil, errors.New("this lab runs on loopback addresses: only a lab in network namespaces (zdt lab --netns) has links to cut")
	}
	s := l.fab.Site(site)
	if s == nil {
		return nil, fmt.Errorf("no site %q in this lab", site)
	}
	return s, nil
}
