package fabric

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

var update = flag.Bool("update", false, "write testdata/ from the live FRR of TestFabricBGP")

var (
	v4Net = netip.MustParsePrefix("203.0.113.0/24")
	v6Net = netip.MustParsePrefix("2001:db8:100::/48")
)

// TestFabricLinks builds three sites and checks who reaches whom, and that
// cutting a site's fabric link cuts only that.
func TestFabricLinks(t *testing.T) {
	f := New(t, []string{"a", "b", "c"})
	a, b, c := f.Site("a"), f.Site("b"), f.Site("c")
	if a == nil || f.Site("d") != nil || len(f.Sites) != 3 || f.Sites[2] != c {
		t.Fatalf("sites: %+v", f.Sites)
	}
	want := map[string]string{
		"a up4": "192.0.2.11", "b up6": "2001:db8:1::12", "c fab": "198.51.100.13",
	}
	for k, v := range map[string]netip.Addr{"a up4": a.UpstreamAddr4, "b up6": b.UpstreamAddr6, "c fab": c.FabricAddr} {
		if v.String() != want[k] {
			t.Errorf("%s: %v, want %s", k, v, want[k])
		}
	}

	// Each namespace has its own sysctls, set on a thread inside it.
	if err := a.NS.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/accept_dad")
		if err == nil && strings.TrimSpace(string(b)) != "0" {
			err = fmt.Errorf("accept_dad is %q in the namespace", b)
		}
		return err
	}); err != nil {
		t.Error(err)
	}

	// Command runs inside the namespace.
	out, err := a.NS.Command(t.Context(), "ip", "-o", "addr", "show", "dev", a.UpstreamLink).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "192.0.2.11/24") || !strings.Contains(string(out), "2001:db8:1::11/64") {
		t.Errorf("ip addr in site a: %v\n%s", err, out)
	}

	// A link for service addresses, which take connections at once.
	kind, err := a.NS.AddLocalLink("zdt0")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("local link zdt0: %s", kind)
	if err := a.NS.withHandle(func(h *netlink.Handle) error {
		return setUp(h, a.NS, "zdt0", []netip.Prefix{netip.MustParsePrefix("2001:db8:5::10/128")})
	}); err != nil {
		t.Fatal(err)
	}
	svcL := listen(t, a.NS, "[2001:db8:5::10]:0")
	// The kernel answers on a new IPv6 address only once it has
	// installed the address's local route, from a work queue, a moment
	// after the address is added (seen under load; svcaddr.Apply waits
	// for that route, this test's setUp does not).
	if err := waitFor(2*time.Second, func() error { return reachable(a.NS, svcL) }); err != nil {
		t.Errorf("service address on zdt0: %v", err)
	}

	upL := listen(t, f.Upstream, "[2001:db8:1::1]:0")
	fabL := listen(t, f.Fabric, "198.51.100.1:0")
	aL := listen(t, a.NS, net.JoinHostPort(a.FabricAddr.String(), "0"))
	reach := reachable
	for _, s := range f.Sites {
		if err := reach(s.NS, upL); err != nil {
			t.Errorf("site %s to upstream over IPv6: %v", s.Name, err)
		}
		if err := reach(s.NS, fabL); err != nil {
			t.Errorf("site %s to the fabric: %v", s.Name, err)
		}
	}
	if err := reach(b.NS, aL); err != nil {
		t.Errorf("site b to site a: %v", err)
	}
	if err := reach(f.Fabric, aL); err != nil {
		t.Errorf("fabric to site a: %v", err)
	}
	// The test process itself has no route to the sites.
	var d net.Dialer
	if c, err := d.DialContext(ctxTimeout(t, 200*time.Millisecond), "tcp", aL.Addr().String()); err == nil {
		c.Close()
		t.Errorf("the root namespace reaches site a at %s", aL.Addr())
	}
	if _, err := a.NS.DialContext(t.Context(), "tcp", "localhost:80"); err == nil || !strings.Contains(err.Error(), "IP address") {
		t.Errorf("dial a host name: %v, want an error asking for an IP address", err)
	}

	if err := a.CutFabric(); err != nil {
		t.Fatal(err)
	}
	if err := reach(b.NS, aL); err == nil {
		t.Errorf("site b reaches site a with a's fabric link cut")
	}
	if err := reach(a.NS, upL); err != nil {
		t.Errorf("site a to upstream with a's fabric link cut: %v", err)
	}
	if err := a.HealFabric(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(5*time.Second, func() error { return reach(b.NS, aL) }); err != nil {
		t.Errorf("site b to site a after healing: %v", err)
	}
	if err := c.CutUpstream(); err != nil {
		t.Fatal(err)
	}
	if err := reach(c.NS, upL); err == nil {
		t.Errorf("site c reaches upstream with its upstream link cut")
	}
	if err := c.HealUpstream(); err != nil {
		t.Fatal(err)
	}
	// IPv6 addresses survive the link going down (keep_addr_on_down).
	if err := waitFor(5*time.Second, func() error { return reach(c.NS, upL) }); err != nil {
		t.Errorf("site c to upstream after healing: %v", err)
	}
}

// TestCommandKillsGroup checks that cancelling a Command's context ends
// it together with its children.
func TestCommandKillsGroup(t *testing.T) {
	f := New(t, []string{"a"})
	ctx, cancel := context.WithCancel(t.Context())
	cmd := f.Sites[0].NS.Command(ctx, "sh", "-c", "sleep 60 & echo started; wait")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 8)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "started\n" {
		t.Fatalf("read %q: %v", line, err)
	}
	if pids, err := pidsIn(f.Sites[0].NS); err != nil || len(pids) != 2 {
		t.Errorf("processes in the namespace: %v, %v; want sh and sleep", pids, err)
	}
	cancel()
	start := time.Now()
	cmd.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Wait took %v after cancel", d)
	}
	if err := waitFor(5*time.Second, func() error {
		if pids, err := pidsIn(f.Sites[0].NS); err != nil || len(pids) != 0 {
			return fmt.Errorf("processes left: %v, %v", pids, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestFabricBGP runs FRR as the upstream and, in each of three sites, an
// FRR that originates the same prefixes with different AS path lengths,
// and checks that the upstream prefers the shortest, and the next one
// when the best site's upstream link is cut.
func TestFabricBGP(t *testing.T) {
	f := New(t, []string{"a", "b", "c"})
	const upASN = 64500
	timers := FRRNeighbor{HoldTime: 3 * time.Second, Keepalive: time.Second}
	upCfg := FRRConfig{ASN: upASN, RouterID: f.UpstreamAddr4}
	var all []netip.Addr
	prepends := []int{2, 0, 1} // a, b, c: AS paths of 3, 1 and 2
	for i, s := range f.Sites {
		asn := uint32(64511 + i)
		password := ""
		if s.Name == "a" {
			password = "zdt-md5-secret"
		}
		for _, a := range []netip.Addr{s.UpstreamAddr4, s.UpstreamAddr6} {
			n := timers
			n.Address, n.ASN, n.Password = a, asn, password
			upCfg.Neighbors = append(upCfg.Neighbors, n)
			all = append(all, a)
		}
		cfg := FRRConfig{
			ASN: asn, RouterID: s.UpstreamAddr4, NoKernel: true,
			Networks: []netip.Prefix{v4Net, v6Net},
			Prepend:  map[netip.Prefix]int{v4Net: prepends[i], v6Net: prepends[i]},
		}
		for _, a := range []netip.Addr{f.UpstreamAddr4, f.UpstreamAddr6} {
			n := timers
			n.Address, n.ASN, n.Password = a, upASN, password
			cfg.Neighbors = append(cfg.Neighbors, n)
		}
		StartFRR(t, s.NS, cfg)
	}
	up := StartFRR(t, f.Upstream, upCfg)

	ctx := ctxTimeout(t, 40*time.Second)
	start := time.Now()
	if err := up.WaitEstablished(ctx, all...); err != nil {
		t.Fatal(err)
	}
	t.Logf("6 sessions established in %v", time.Since(start).Round(time.Millisecond))

	b := f.Site("b")
	for _, p := range []netip.Prefix{v4Net, v6Net} {
		if err := waitFor(10*time.Second, func() error {
			paths, err := up.Paths(ctx, p)
			if err == nil && len(paths) != 3 {
				err = fmt.Errorf("%d paths: %+v", len(paths), paths)
			}
			return err
		}); err != nil {
			t.Fatalf("%s at the upstream: %v", p, err)
		}
		best, ok, err := up.Best(ctx, p)
		want := Path{ASPath: []uint32{64512}, Peer: b.UpstreamAddr4, NextHop: b.UpstreamAddr4, Best: true}
		if p.Addr().Is6() {
			want.Peer, want.NextHop = b.UpstreamAddr6, b.UpstreamAddr6
		}
		if err != nil || !ok || !equalPath(best, want) {
			t.Errorf("best path of %s: %+v, %t, %v; want %+v", p, best, ok, err, want)
		}
		paths, _ := up.Paths(ctx, p)
		var lens []int
		for _, q := range paths {
			lens = append(lens, len(q.ASPath))
		}
		if slices.Sort(lens); !slices.Equal(lens, []int{1, 2, 3}) {
			t.Errorf("AS path lengths of %s: %v, want 1, 2, 3", p, lens)
		}
	}
	// Without NoKernel, zebra installs the best path in the upstream's kernel.
	if err := waitFor(5*time.Second, func() error {
		out, err := f.Upstream.Command(ctx, "ip", "route", "show", v4Net.String()).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "via 192.0.2.12 ") {
			err = fmt.Errorf("ip route: %s", out)
		}
		return err
	}); err != nil {
		t.Errorf("kernel route at the upstream: %v", err)
	}
	if _, ok, err := up.Best(ctx, netip.MustParsePrefix("203.0.113.0/25")); ok || err != nil {
		t.Errorf("best path of a prefix nobody announces: %t, %v", ok, err)
	}
	for fam, p := range map[Family]netip.Prefix{IPv4: v4Net, IPv6: v6Net} {
		table, err := up.Table(ctx, fam)
		if err != nil || len(table) != 1 || table[p].Peer.Unmap() != familyAddr(b, fam) || len(table[p].ASPath) != 1 {
			t.Errorf("%s table: %+v, %v", fam, table, err)
		}
	}
	states, err := up.Neighbors(ctx)
	if err != nil || len(states) != 6 {
		t.Errorf("neighbors: %v, %v", states, err)
	}
	if *update {
		capture(t, up)
	}
	measure(t, up, v4Net)
	crossCheck(t, up, v4Net)

	// Cut b's upstream link: its session drops (at once at b, after the
	// hold time at the upstream) and c, the next shortest, takes over.
	c := f.Site("c")
	if err := b.CutUpstream(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	for _, p := range []netip.Prefix{v4Net, v6Net} {
		err := waitFor(10*time.Second, func() error {
			best, ok, err := up.Best(ctx, p)
			if err == nil && (!ok || best.Peer != familyAddr(c, familyOf(p.Addr()))) {
				err = fmt.Errorf("best %+v %t", best, ok)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s after cutting b's upstream link: %v", p, err)
		}
	}
	t.Logf("best path moved to c %v after cutting b's upstream link", time.Since(cut).Round(time.Millisecond))
	if err := b.HealUpstream(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	for _, p := range []netip.Prefix{v4Net, v6Net} {
		err := waitFor(20*time.Second, func() error {
			best, ok, err := up.Best(ctx, p)
			if err == nil && (!ok || best.Peer != familyAddr(b, familyOf(p.Addr()))) {
				err = fmt.Errorf("best %+v %t", best, ok)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s after healing b's upstream link: %v", p, err)
		}
	}
	t.Logf("best path back at b %v after healing", time.Since(healed).Round(time.Millisecond))
}

// measure logs how long one Best takes, alone and from 4 workers.
func measure(t *testing.T, up *FRR, p netip.Prefix) {
	const n = 500
	ctx := t.Context()
	var ds []time.Duration
	for range n {
		s := time.Now()
		if _, _, err := up.Best(ctx, p); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(s))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("Best over bgpd's vty socket, %d calls: median %v, p99 %v, max %v", n, ds[n/2], ds[n*99/100], ds[n-1])

	var wg sync.WaitGroup
	s := time.Now()
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				if _, _, err := up.Best(ctx, p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("Best from 4 workers: %d calls in %v", n, time.Since(s).Round(time.Microsecond))
}

// crossCheck runs the same command with vtysh, to see that the vty client
// gets what vtysh gets, and how long vtysh takes.
func crossCheck(t *testing.T, up *FRR, p netip.Prefix) {
	vtysh, err := exec.LookPath("vtysh")
	if err != nil {
		t.Logf("no vtysh to cross-check with: %v", err)
		return
	}
	cmd := fmt.Sprintf("show bgp ipv4 unicast %s json", p)
	start := time.Now()
	out, err := exec.CommandContext(t.Context(), vtysh, "--vty_socket", up.sockDir, "-d", "bgpd", "-c", cmd).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("vtysh: %v\n%s", err, out)
	}
	viaVtysh, err := parseRoute(out)
	if err != nil {
		t.Fatal(err)
	}
	viaSocket, err := up.Paths(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(viaVtysh) != len(viaSocket) {
		t.Errorf("vtysh: %+v; vty socket: %+v", viaVtysh, viaSocket)
	}
	for i := range viaVtysh {
		if !equalPath(viaVtysh[i], viaSocket[i]) {
			t.Errorf("path %d: vtysh %+v, vty socket %+v", i, viaVtysh[i], viaSocket[i])
		}
	}
	t.Logf("one vtysh -c %q: %v", cmd, took.Round(time.Microsecond))
}

// capture writes the live JSON into testdata/ for the parser tests.
func capture(t *testing.T, up *FRR) {
	for file, cmd := range map[string]string{
		"route4.json":     "show bgp ipv4 unicast 203.0.113.0/24 json",
		"route6.json":     "show bgp ipv6 unicast 2001:db8:100::/48 json",
		"route-none.json": "show bgp ipv4 unicast 203.0.113.0/25 json",
		"table4.json":     "show bgp ipv4 unicast json",
		"table6.json":     "show bgp ipv6 unicast json",
		"neighbors.json":  "show bgp neighbors json",
	} {
		out, err := up.Show(t.Context(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", file), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func familyAddr(s *Site, fam Family) netip.Addr {
	if fam == IPv4 {
		return s.UpstreamAddr4
	}
	return s.UpstreamAddr6
}

func equalPath(a, b Path) bool {
	return slices.Equal(a.ASPath, b.ASPath) && a.Peer == b.Peer && a.NextHop == b.NextHop && a.Best == b.Best
}

// listen accepts connections in ns at addr and closes them, until the
// test ends.
func listen(t *testing.T, ns NS, addr string) net.Listener {
	t.Helper()
	return serve(t, ns, addr, func(net.Conn) {})
}

// serve runs handle on every connection it accepts in ns at addr, each on
// a goroutine of its own and closed after, until the test ends.
func serve(t *testing.T, ns NS, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	l, err := ns.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l
}

// reachable connects from a namespace to a listener, for at most 500ms.
func reachable(from NS, to net.Listener) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	conn, err := from.DialContext(ctx, "tcp", to.Addr().String())
	if err != nil {
		return err
	}
	return conn.Close()
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls f every 20ms until it returns nil, for at most d.
func waitFor(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", d, err)
		}
		<-tick.C
	}
}

// TestCleanup checks that the Fabric's cleanup kills what still runs in
// its namespaces and removes them.
func TestCleanup(t *testing.T) {
	var cmd *exec.Cmd
	var names []string
	t.Run("fabric", func(t *testing.T) {
		f := New(t, []string{"a", "b"})
		for _, ns := range []NS{f.Upstream, f.Fabric, f.Sites[0].NS, f.Sites[1].NS} {
			names = append(names, ns.Name)
		}
		cmd = f.Sites[1].NS.Command(context.Background(), "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	})
	if cmd == nil {
		t.Fatal("the subtest did not start sleep")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("sleep 60 exited 0, want killed")
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Error("sleep still runs after the fabric's cleanup")
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("netns %s: %v, want it removed", name, err)
		}
	}
}
