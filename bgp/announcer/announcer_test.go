package announcer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/bgp/announcer"
	"github.com/zdt-project/zdt/bgp/speaker"
	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/sitetest"
	"github.com/zdt-project/zdt/site/testport"
)

var (
	web4 = netip.MustParsePrefix("203.0.113.0/25")
	web6 = netip.MustParsePrefix("2001:db8:100::/48")
)

// bed is three sites' announcers with real GoBGP speakers, announcing to a
// GoBGP speaker that plays the upstream, over loopback.
type bed struct {
	t        *testing.T
	cl       *sitetest.Cluster
	cli      *clientv3.Client
	store    *site.Store
	upstream *speaker.Speaker
	ann      map[string]*announcer.Announcer
	addr     map[string]netip.Addr // each site's source address
	// carried records the service addresses each site's announcer last
	// applied (without addressesOff).
	carried map[string]*carriedAddrs
}

// carriedAddrs stands for a site's service-address interface: it keeps
// what the announcer asked it to carry.
type carriedAddrs struct {
	mu   sync.Mutex
	want []netip.Prefix
}

func (c *carriedAddrs) Apply(_ context.Context, want, _ []netip.Prefix) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = slices.Clone(want)
	return nil
}

func (c *carriedAddrs) carries() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.want) > 0
}

// waitCarried waits until exactly the given sites carry web's address.
func (b *bed) waitCarried(sites ...string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		for _, name := range []string{"a", "b", "c"} {
			if b.carried[name].carries() {
				got = append(got, name)
			}
		}
		if slices.Equal(got, sites) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("web's address is carried at %v; want %v", got, sites)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) uint16 {
	return uint16(testport.Reserve(t, "127.0.0.1"))
}

func newBed(t *testing.T, addressesOff error) *bed {
	return newBedSettling(t, addressesOff, 300*time.Millisecond)
}

// newBedSettling is newBed whose announcers end each phase of a planned move
// without a record after settle.
func newBedSettling(t *testing.T, addressesOff error, settle time.Duration) *bed {
	cl := sitetest.New(t, sitetest.Options{Services: []config.Service{
		{Name: "web", Sites: []string{"a", "b", "c"}, Prefixes: []netip.Prefix{web4}, PrependStep: 1,
			Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.10")}},
	}})
	cfg := cl.Config
	cfg.BGP = config.BGP{Headroom: 2, PrependStep: 1, MaxPrepends: 10}
	port := freePort(t)
	b := &bed{t: t, cl: cl, cli: cl.Client(), ann: map[string]*announcer.Announcer{}, addr: map[string]netip.Addr{}, carried: map[string]*carriedAddrs{}}
	b.store = site.NewStore(b.cli, cfg.Name)
	log := zaptest.NewLogger(t)
	up := speaker.Config{ASN: 64500, RouterID: netip.MustParseAddr("192.0.2.1"), ListenAddresses: []string{"127.0.0.1"}, ListenPort: int32(port), Log: log, AcceptRoutes: true}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		b.addr[s.Name] = netip.MustParseAddr("127.0.0." + strconv.Itoa(21+i))
		asn := uint32(64601 + i)
		s.BGP = &config.SiteBGP{ASN: asn, RouterID: netip.MustParseAddr("192.0.2." + strconv.Itoa(11+i)), Interface: "zdt0",
			Peers: []config.BGPPeer{{Address: netip.MustParseAddr("127.0.0.1"), ASN: 64500, Port: port, LocalAddress: b.addr[s.Name],
				HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second}}}
		up.Peers = append(up.Peers, speaker.Peer{Address: b.addr[s.Name], ASN: asn, Passive: true, HoldTime: 9 * time.Second})
	}
	// GoBGP keeps its route selection options in a package variable that
	// every server's StartBgp writes and every server reads: with several
	// servers in one process (only in tests), start them all before any
	// session can come up, the upstream last, and sync with each once, so
	// the race detector sees every write ordered before every read.
	ctx := t.Context()
	speakers := map[string]*speaker.Speaker{}
	for _, s := range cfg.Sites {
		p := s.BGP.Peers[0]
		sp, err := speaker.Start(ctx, speaker.Config{ASN: s.BGP.ASN, RouterID: s.BGP.RouterID, ListenPort: -1, Log: log,
			Peers: []speaker.Peer{{Address: p.Address, ASN: p.ASN, Port: p.Port, LocalAddress: p.LocalAddress, HoldTime: p.HoldTime, ConnectRetry: p.ConnectRetry}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		speakers[s.Name] = sp
	}
	var err error
	if b.upstream, err = speaker.Start(ctx, up); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.upstream.Close() })
	for _, sp := range speakers {
		if _, err := sp.Peers(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range cfg.Sites {
		acfg := announcer.Config{Cluster: cfg, Site: s.Name, Store: b.store, View: runView(t, b.store), Speaker: speakers[s.Name], Log: log,
			AddressesOff: addressesOff, MoveSettle: settle}
		if addressesOff == nil {
			b.carried[s.Name] = &carriedAddrs{}
			acfg.Addresses = b.carried[s.Name]
		}
		a, err := announcer.New(acfg)
		if err != nil {
			t.Fatal(err)
		}
		b.ann[s.Name] = a
		runUntilCleanup(t, a.Run)
	}
	return b
}

// runView returns a view of the store's cluster that runs until the test
// ends, as a controller's does.
func runView(t *testing.T, store *site.Store) *site.View {
	v := site.NewView(store)
	runUntilCleanup(t, v.Run)
	return v
}

// runUntilCleanup runs run in a goroutine until the test's cleanup, which
// cancels its context and waits for it to return.
func runUntilCleanup(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (b *bed) assign(service, to, from, kind string) {
	b.t.Helper()
	data, _ := json.Marshal(site.Assignment{Service: service, Site: to, Op: "test", At: time.Now(), From: from, Kind: kind})
	if _, err := b.cli.Put(b.t.Context(), b.store.Keys().Assignment(service), string(data)); err != nil {
		b.t.Fatal(err)
	}
}

// waitPaths waits until the upstream holds, for prefix, exactly the paths
// want gives (site source address -> AS path length), and the best one
// comes from best.
func (b *bed) waitPaths(prefix netip.Prefix, best string, want map[string]int) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last []speaker.ReceivedPath
	for time.Now().Before(deadline) {
		paths, err := b.upstream.Received(b.t.Context())
		if err != nil {
			b.t.Fatal(err)
		}
		last = nil
		got := map[string]int{}
		bestOK := best == ""
		for _, p := range paths {
			if p.Prefix != prefix {
				continue
			}
			last = append(last, p)
			for name, a := range b.addr {
				if a == p.Peer {
					got[name] = len(p.ASPath)
					if p.Best && name == best {
						bestOK = true
					}
				}
			}
		}
		if bestOK && mapsEqual(got, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("upstream paths for %s: %+v; want %v with the best from %q", prefix, last, want, best)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (b *bed) report(name string) site.BGPReport {
	b.t.Helper()
	resp, err := b.cli.Get(b.t.Context(), b.store.Keys().SiteBGP(name))
	if err != nil || len(resp.Kvs) != 1 {
		b.t.Fatalf("BGP report of %s: %v (%d keys)", name, err, len(resp.Kvs))
	}
	var r site.BGPReport
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		b.t.Fatal(err)
	}
	return r
}

// announced reads a site's announcement records, by service.
func (b *bed) announced(name string) map[string][]site.Announcement {
	b.t.Helper()
	an, err := b.store.Announcements(b.t.Context(), name)
	if err != nil {
		b.t.Fatal(err)
	}
	return an
}

// TestLadderAtTheUpstream: the active site announces at the headroom, the
// standbys one step more each in the service's order; a takeover goes to 0
// prepends; a self-fenced site withdraws everything at once.
func TestLadderAtTheUpstream(t *testing.T) {
	b := newBed(t, nil)
	for _, name := range []string{"a", "b", "c"} {
		b.ann[name].SetState(site.ControllerUp)
	}
	// No assignment: nothing is announced.
	b.assign("web", "a", "", "bootstrap")
	// Headroom 2: the upstream sees 3 copies from a, 4 from b, 5 from c.
	b.waitPaths(web4, "a", map[string]int{"a": 3, "b": 4, "c": 5})

	b.assign("web", "b", "a", "failover")
	// b takes over at 0 prepends; a, up again in this test, is the first
	// standby; c keeps its rank.
	b.waitPaths(web4, "b", map[string]int{"b": 1, "a": 4, "c": 5})

	// Each site's record of web says what it announces: b at 0 prepends,
	// a and c as standbys (the upstream sees one copy more).
	takenOver := func() bool {
		r := b.report("b")
		for name, want := range map[string]int{"b": 0, "a": 3, "c": 4} {
			web := b.announced(name)["web"]
			if len(web) != 1 || web[0].Prefix != web4.String() || web[0].Prepends != want {
				return false
			}
		}
		return len(r.Peers) == 1 && r.Peers[0].State == "established"
	}
	deadline := time.Now().Add(10 * time.Second)
	for !takenOver() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !takenOver() {
		t.Errorf("b's report: %+v; announcements of a, b, c: %+v, %+v, %+v; want web at 3, 0, 4 prepends, b's session established",
			b.report("b"), b.announced("a"), b.announced("b"), b.announced("c"))
	}

	// b self-fences: it withdraws without asking etcd.
	b.cl.Close()
	b.ann["b"].SetState(site.ControllerSelfFenced)
	b.waitPaths(web4, "", map[string]int{"a": 4, "c": 5})
}

// TestPlannedMove: the new site goes below the headroom while the old one
// keeps it, then the old one steps down and the new one returns to the
// headroom; the prefix keeps a path throughout. A site fenced after
// withdraws, and deletes its record of what it announced.
func TestPlannedMove(t *testing.T) {
	b := newBed(t, nil)
	for _, name := range []string{"a", "b", "c"} {
		b.ann[name].SetState(site.ControllerUp)
	}
	b.assign("web", "a", "", "bootstrap")
	b.waitPaths(web4, "a", map[string]int{"a": 3, "b": 4, "c": 5})
	b.assign("web", "c", "a", "switchover")
	// Settled: c at the headroom, a first standby, b second.
	b.waitPaths(web4, "c", map[string]int{"c": 3, "a": 4, "b": 5})

	// Fenced, b withdraws, and its record of web goes with its path.
	b.ann["b"].SetState(site.ControllerFenced)
	b.waitPaths(web4, "c", map[string]int{"c": 3, "a": 4})
	deadline := time.Now().Add(10 * time.Second)
	for len(b.announced("b")) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if an := b.announced("b"); len(an) > 0 {
		t.Errorf("fenced b still has announcement records: %+v", an)
	}
}

// TestRecordedMove: a planned move with a move record is in the record's
// phase at every site, whatever the clock: prepare keeps the old site in
// front, announce puts the new one in front while the old one keeps the
// headroom, release steps the old one back, done ends the move; a record
// past its bound counts as done. A move without a record would stay in its
// first phase for an hour here.
func TestRecordedMove(t *testing.T) {
	b := newBedSettling(t, nil, time.Hour)
	for _, name := range []string{"a", "b", "c"} {
		b.ann[name].SetState(site.ControllerUp)
	}
	b.assign("web", "a", "", "bootstrap")
	b.waitPaths(web4, "a", map[string]int{"a": 3, "b": 4, "c": 5})

	at := time.Now()
	move := func(phase site.MovePhase, until time.Time) {
		t.Helper()
		data, _ := json.Marshal(site.Move{Service: "web", Op: "test", From: "a", To: "c", Phase: phase, At: at, Until: until})
		if _, err := b.cli.Put(t.Context(), b.store.Keys().Move("web"), string(data)); err != nil {
			t.Fatal(err)
		}
	}
	// The record first, as the coordinator writes both in one
	// transaction: an assignment without it would run on the clock.
	move(site.MovePrepare, at.Add(time.Minute))
	b.assign("web", "c", "a", "switchover")
	// Prepare: a keeps the headroom, c stays behind it at its standby rank
	// (the anchor is a, so c is the second standby: 2+2*1).
	b.waitPaths(web4, "a", map[string]int{"a": 3, "b": 4, "c": 5})
	b.waitCarried("a")
	move(site.MoveAnnounce, at.Add(time.Minute))
	b.waitPaths(web4, "c", map[string]int{"c": 2, "a": 3, "b": 4})
	// a keeps the address while it holds a path as good as the old best:
	// an upstream still sending it the traffic must find it there.
	b.waitCarried("a", "c")
	move(site.MoveRelease, at.Add(time.Minute))
	b.waitPaths(web4, "c", map[string]int{"c": 2, "a": 4, "b": 5})
	b.waitCarried("c")
	move(site.MoveDone, at.Add(time.Minute))
	b.waitPaths(web4, "c", map[string]int{"c": 3, "a": 4, "b": 5})

	// A move stuck half-way ends at its bound.
	data, _ := json.Marshal(site.Move{Service: "web", Op: "test", From: "c", To: "a", Phase: site.MovePrepare, At: time.Now(), Until: time.Now().Add(time.Second)})
	if _, err := b.cli.Put(t.Context(), b.store.Keys().Move("web"), string(data)); err != nil {
		t.Fatal(err)
	}
	b.assign("web", "a", "c", "switchover")
	b.waitPaths(web4, "a", map[string]int{"a": 3, "b": 4, "c": 5})
}

// TestAddressesOffIsReported: a site that must carry service addresses but
// may not manage them says why in its report.
func TestAddressesOffIsReported(t *testing.T) {
	b := newBed(t, errors.New("no CAP_NET_ADMIN"))
	b.ann["a"].SetState(site.ControllerUp)
	b.assign("web", "a", "", "bootstrap")
	deadline := time.Now().Add(10 * time.Second)
	var r site.BGPReport
	for time.Now().Before(deadline) {
		resp, err := b.cli.Get(t.Context(), b.store.Keys().SiteBGP("a"))
		if err == nil && len(resp.Kvs) == 1 {
			_ = json.Unmarshal(resp.Kvs[0].Value, &r)
			if r.Error != "" {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := "service addresses are off: no CAP_NET_ADMIN"; r.Error != want {
		t.Errorf("report error %q, want %q", r.Error, want)
	}
}
