package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/zdt-project/zdt/e2e/fabric"
	"github.com/zdt-project/zdt/site"
)

// The BGP test-bed: three sites, each a zdt controller (with its etcd
// member and its BGP speaker) in its own network namespace, FRR as the
// upstream router in another, and a fabric namespace through which the
// sites' etcd members talk to each other and the test talks to them.
const (
	upstreamASN  = 64500
	bgpHoldTime  = 9 * time.Second
	bgpHeadroom  = 2
	bgpTestTTL   = 2 * time.Second
	bgpPeerRetry = time.Second
)

// siteASN is the ASN of the i-th site: 64601, 64602, ...
func siteASN(i int) uint32 { return uint32(64601 + i) }

// bgpService is a service of the test-bed config.
type bgpService struct {
	name     string
	sites    []string
	prefixes []netip.Prefix
}

// bgpBed is a running test-bed.
type bgpBed struct {
	t      testing.TB
	fab    *fabric.Fabric
	frr    *fabric.FRR
	cli    *clientv3.Client
	keys   site.Keys
	procs  map[string]*exec.Cmd
	asn    map[string]uint32
	dir    string
	config string
}

// startBGPBed builds the namespaces, starts FRR and the three controllers,
// and waits until every session is established.
func startBGPBed(t testing.TB, zdt string, services []bgpService, extra string) *bgpBed {
	t.Helper()
	names := []string{"a", "b", "c"}
	fab := fabric.New(t, names)
	b := &bgpBed{t: t, fab: fab, procs: map[string]*exec.Cmd{}, asn: map[string]uint32{}, dir: t.TempDir(), keys: site.NewKeys("bed")}

	frrCfg := fabric.FRRConfig{ASN: upstreamASN, RouterID: fab.UpstreamAddr4, NoKernel: true}
	for i, s := range fab.Sites {
		b.asn[s.Name] = siteASN(i)
		for _, a := range []netip.Addr{s.UpstreamAddr4, s.UpstreamAddr6} {
			frrCfg.Neighbors = append(frrCfg.Neighbors, fabric.FRRNeighbor{Address: a, ASN: siteASN(i), HoldTime: bgpHoldTime, Keepalive: bgpHoldTime / 3})
		}
	}
	b.frr = fabric.StartFRR(t, fab.Upstream, frrCfg)

	b.config = filepath.Join(b.dir, "zdt.yaml")
	if err := os.WriteFile(b.config, []byte(b.configYAML(services, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range fab.Sites {
		b.startController(zdt, s.Name)
	}
	var endpoints []string
	for _, s := range fab.Sites {
		endpoints = append(endpoints, net.JoinHostPort(s.FabricAddr.String(), "2379"))
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return fab.Fabric.DialContext(ctx, "tcp", addr)
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	b.cli = cli

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var peers []netip.Addr
	for _, s := range fab.Sites {
		peers = append(peers, s.UpstreamAddr4, s.UpstreamAddr6)
	}
	if err := b.frr.WaitEstablished(ctx, peers...); err != nil {
		b.dumpLogs()
		t.Fatalf("the sites' BGP sessions to FRR: %v", err)
	}
	return b
}

// configYAML is the test-bed's cluster config.
func (b *bgpBed) configYAML(services []bgpService, extra string) string {
	var y strings.Builder
	fmt.Fprintf(&y, `cluster: bed
# a test bed in its own network namespaces: no TLS
insecure_plaintext: true
timings:
  lease_ttl: %s
  renew_interval: 500ms
  self_fence_margin: 500ms
  etcd_heartbeat: 50ms
  etcd_election_timeout: 500ms
  bootstrap_grace: 5s
sites:
`, bgpTestTTL)
	for i, s := range b.fab.Sites {
		fa := s.FabricAddr.String()
		fmt.Fprintf(&y, `  - name: %s
    api: %s:7480
    etcd: {client_url: "http://%s:2379", peer_url: "http://%s:2380"}
    bgp:
      asn: %d
      router_id: %s
      peers:
        - {address: %s, asn: %d, hold_time: %s, keepalive: %s, connect_retry: %s}
        - {address: "%s", asn: %d, hold_time: %s, keepalive: %s, connect_retry: %s}
`, s.Name, fa, fa, fa, siteASN(i), s.UpstreamAddr4,
			b.fab.UpstreamAddr4, upstreamASN, bgpHoldTime, bgpHoldTime/3, bgpPeerRetry,
			b.fab.UpstreamAddr6, upstreamASN, bgpHoldTime, bgpHoldTime/3, bgpPeerRetry)
	}
	y.WriteString("services:\n")
	for _, svc := range services {
		var ps []string
		for _, p := range svc.prefixes {
			ps = append(ps, `"`+p.String()+`"`)
		}
		fmt.Fprintf(&y, "  - {name: %s, sites: [%s], prefixes: [%s]}\n", svc.name, strings.Join(svc.sites, ", "), strings.Join(ps, ", "))
	}
	fmt.Fprintf(&y, "bgp:\n  headroom: %d\n%s", bgpHeadroom, extra)
	return y.String()
}

// startController starts a site's controller in the site's namespace.
func (b *bgpBed) startController(zdt, name string) {
	b.t.Helper()
	s := b.fab.Site(name)
	log, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { log.Close() })
	cmd := s.NS.Command(context.Background(), zdt, "controller", "--config", b.config, "--site", name,
		"--embed-etcd", filepath.Join(b.dir, name+"-etcd"), "--log-level", "info")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start the controller of site %s: %v", name, err)
	}
	b.procs[name] = cmd
	b.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

// signal sends sig to a site's controller.
func (b *bgpBed) signal(name string, sig syscall.Signal) {
	b.t.Helper()
	if err := syscall.Kill(b.procs[name].Process.Pid, sig); err != nil {
		b.t.Fatalf("signal %s to the controller of site %s: %v", sig, name, err)
	}
}

// dumpLogs shows the controllers' logs' tails.
func (b *bgpBed) dumpLogs() {
	for name := range b.procs {
		data, _ := os.ReadFile(filepath.Join(b.dir, name+".log"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		b.t.Logf("--- controller %s (last 40 lines)\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// siteOf returns the site whose ASN originates path, "" if none.
func (b *bgpBed) siteOf(p fabric.Path) string {
	if len(p.ASPath) == 0 {
		return ""
	}
	for name, asn := range b.asn {
		if p.ASPath[len(p.ASPath)-1] == asn {
			return name
		}
	}
	return ""
}

// waitBest waits until FRR's best path for prefix leads to want (with
// prepends copies of its ASN added by zdt, if prepends >= 0).
func (b *bgpBed) waitBest(ctx context.Context, prefix netip.Prefix, want string, prepends int) fabric.Path {
	b.t.Helper()
	var last fabric.Path
	var found bool
	for ctx.Err() == nil {
		p, ok, err := b.frr.Best(ctx, prefix)
		if err == nil && ok {
			last, found = p, true
			if b.siteOf(p) == want && (prepends < 0 || len(p.ASPath) == prepends+1) {
				return p
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.dumpLogs()
	b.t.Fatalf("FRR's best path for %s does not lead to site %s with %d prepends; last seen: %v (found %t)", prefix, want, prepends, last.ASPath, found)
	return fabric.Path{}
}

// assign writes a service's assignment as a coordinator would, and returns
// when it was written.
func (b *bgpBed) assign(ctx context.Context, service, to, from, kind string) time.Time {
	b.t.Helper()
	var err error
	// A few tries: the etcd leader may have just been frozen with its site.
	for range 5 {
		at := time.Now()
		data, merr := json.Marshal(site.Assignment{Service: service, Site: to, Op: "test-" + kind, At: at, From: from, Kind: kind})
		if merr != nil {
			b.t.Fatal(merr)
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = b.cli.Put(pctx, b.keys.Assignment(service), string(data))
		cancel()
		if err == nil {
			return at
		}
	}
	b.t.Fatalf("assign %s to %s: %v", service, to, err)
	return time.Time{}
}

// waitAssigned waits until the coordinator has assigned service to want.
func (b *bgpBed) waitAssigned(ctx context.Context, service, want string) {
	b.t.Helper()
	for ctx.Err() == nil {
		resp, err := b.cli.Get(ctx, b.keys.Assignment(service))
		if err == nil && len(resp.Kvs) == 1 {
			var a site.Assignment
			if json.Unmarshal(resp.Kvs[0].Value, &a) == nil && a.Site == want {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.dumpLogs()
	b.t.Fatalf("service %s was not assigned to site %s", service, want)
}

var (
	web4 = netip.MustParsePrefix("203.0.113.0/25")
	web6 = netip.MustParsePrefix("2001:db8:100::/48")
	db4  = netip.MustParsePrefix("203.0.113.128/25")
	db6  = netip.MustParsePrefix("2001:db8:200::/48")
)

// TestBGPWithFRR is the acceptance test of the sites' announcements
// against a real router: FRR's best path for every prefix, IPv4 and IPv6,
// leads to the active site; a planned move never leaves a prefix without a
// path; a takeover beats the dark site's stale path at once; a self-fenced
// site's paths disappear.
func TestBGPWithFRR(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: skips building zdt and running FRR in namespaces")
	}
	zdt := buildZDT(t)
	services := []bgpService{
		{name: "web", sites: []string{"a", "b", "c"}, prefixes: []netip.Prefix{web4, web6}},
		{name: "db", sites: []string{"b", "c", "a"}, prefixes: []netip.Prefix{db4, db6}},
	}
	b := startBGPBed(t, zdt, services, "  min_change_interval: 2s\n")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// Bootstrap: web at a, db at b, each announced at the headroom by its
	// active site; the standbys announce more prepends.
	b.waitAssigned(ctx, "web", "a")
	b.waitAssigned(ctx, "db", "b")
	for _, p := range []netip.Prefix{web4, web6} {
		b.waitBest(ctx, p, "a", bgpHeadroom)
	}
	for _, p := range []netip.Prefix{db4, db6} {
		b.waitBest(ctx, p, "b", bgpHeadroom)
	}
	paths, err := b.frr.Paths(ctx, web4)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Errorf("FRR holds %d paths for %s, want 3 (the active site and two standbys): %+v", len(paths), web4, paths)
		b.dumpLogs()
	}

	t.Run("planned move is make-before-break", func(t *testing.T) {
		stop := make(chan struct{})
		type gap struct{ samples, missing int }
		done := make(chan gap)
		go func() {
			var g gap
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					done <- g
					return
				case <-tick.C:
				}
				_, ok, err := b.frr.Best(ctx, web4)
				if err != nil {
					continue
				}
				g.samples++
				if !ok {
					g.missing++
				}
			}
		}()
		start := time.Now()
		b.assign(ctx, "web", "b", "a", "switchover")
		b.waitBest(ctx, web4, "b", -1)
		moved := time.Since(start)
		b.waitBest(ctx, web6, "b", -1)
		// The new site returns to the headroom once the move has settled.
		b.waitBest(ctx, web4, "b", bgpHeadroom)
		close(stop)
		g := <-done
		t.Logf("planned move: best path at b after %s; %d samples of FRR's RIB, %d without a path", moved, g.samples, g.missing)
		if g.missing > 0 {
			t.Errorf("%d of %d samples found no path for %s during the planned move", g.missing, g.samples, web4)
		}
		if g.samples < 20 {
			t.Errorf("only %d samples: too few to tell", g.samples)
		}
	})

	t.Run("takeover beats the stale path", func(t *testing.T) {
		// b is active for db. Freeze b's controller: its BGP sessions stay
		// up at FRR until the hold time, with b's paths in place.
		b.signal("b", syscall.SIGSTOP)
		at := b.assign(ctx, "db", "c", "b", "failover")
		p := b.waitBest(ctx, db4, "c", 0)
		took := time.Since(at)
		b.waitBest(ctx, db6, "c", 0)
		t.Logf("takeover: FRR's best path for %s led to c after %s (AS path %v)", db4, took, p.ASPath)
		if took >= time.Second {
			b.dumpLogs()
			t.Errorf("takeover took %s; want less than 1s (the stale path's hold time is %s)", took, bgpHoldTime)
		}
		stale, err := b.frr.Paths(ctx, db4)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(stale, func(p fabric.Path) bool { return b.siteOf(p) == "b" }) {
			t.Logf("note: b's stale path was already gone when the takeover won: %+v", stale)
		}
		// Once the stale path is gone, c returns to the headroom.
		wctx, wcancel := context.WithTimeout(ctx, bgpHoldTime+15*time.Second)
		defer wcancel()
		b.waitBest(wctx, db4, "c", bgpHeadroom)
		b.signal("b", syscall.SIGCONT)
	})

	t.Run("self-fenced site withdraws", func(t *testing.T) {
		// c is active for db. Cut c off the fabric: its etcd member loses the
		// others, the controller self-fences and withdraws, while its BGP
		// sessions to FRR stay up.
		c := b.fab.Site("c")
		if err := c.CutFabric(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.HealFabric() }()
		wctx, wcancel := context.WithTimeout(ctx, 4*bgpTestTTL+5*time.Second)
		defer wcancel()
		for wctx.Err() == nil {
			var fromC int
			for _, pf := range []netip.Prefix{web4, web6, db4, db6} {
				ps, err := b.frr.Paths(wctx, pf)
				if err != nil {
					continue
				}
				for _, p := range ps {
					if b.siteOf(p) == "c" {
						fromC++
					}
				}
			}
			if fromC == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if wctx.Err() != nil {
			b.dumpLogs()
			t.Fatal("FRR still holds paths from the self-fenced site c")
		}
		states, err := b.frr.Neighbors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st := states[c.UpstreamAddr4]; !strings.EqualFold(st, "established") {
			t.Errorf("c's session is %q: the paths must go by withdrawal, with the session up", st)
		}
	})
}
