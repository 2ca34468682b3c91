// Package sitetest runs real etcd clusters inside a test process: one
// embedded member per site on loopback ports, members that can be killed and
// restarted, and TCP proxies that cut a client off from etcd. It is for
// tests only.
package sitetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/pkg/v3/proxy"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/zdt-project/zdt/site/config"
	"github.com/zdt-project/zdt/site/embedetcd"
	"github.com/zdt-project/zdt/site/failstatic"
	"github.com/zdt-project/zdt/site/testport"
)

// Cluster is an in-process etcd cluster, one member per site, described by
// Config.
type Cluster struct {
	Config *config.Cluster

	t   testing.TB
	dir string
	log *zap.Logger

	quota int64 // Options.QuotaBackendBytes

	mu      sync.Mutex
	members map[string]*embed.Etcd
	ids     map[string]uint64 // member IDs by site, kept when killed
	closing sync.WaitGroup
}

// Options shapes the test cluster.
type Options struct {
	Sites    []string // default a, b, c
	Services []config.Service
	// Hosts are the hypervisors of each site, by site.
	Hosts    map[string][]config.Host
	LeaseTTL time.Duration // default 2s
	// FailStatic turns the fail-static checks on: every site gets a
	// peer_api on loopback and a certificate of a new test CA.
	FailStatic bool
	// Log receives the members' logs; default a test logger at warn level.
	Log *zap.Logger
	// QuotaBackendBytes is every member's database quota; 0: etcd's
	// default (2 GiB).
	QuotaBackendBytes int64
}

// New starts a cluster and waits until every member is ready. Everything is
// stopped in t.Cleanup.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if len(opts.Sites) == 0 {
		opts.Sites = []string{"a", "b", "c"}
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 2 * time.Second
	}
	cfg := &config.Cluster{
		Name: "test",
		Etcd: config.Etcd{DialTimeout: 2 * time.Second},
		Timings: config.Timings{
			LeaseTTL:            opts.LeaseTTL,
			RenewInterval:       opts.LeaseTTL / 4,
			SelfFenceMargin:     opts.LeaseTTL / 4,
			EtcdHeartbeat:       50 * time.Millisecond,
			EtcdElectionTimeout: 500 * time.Millisecond,
			BootstrapGrace:      5 * time.Second,
		},
		Services: opts.Services,
	}
	for _, name := range opts.Sites {
		s := config.Site{
			Name: name,
			API:  "127.0.0.1:" + freePort(t),
			Etcd: config.SiteEtcd{
				ClientURL: "http://127.0.0.1:" + freePort(t),
				PeerURL:   "http://127.0.0.1:" + freePort(t),
			},
			Hosts: opts.Hosts[name],
		}
		cfg.Sites = append(cfg.Sites, s)
		cfg.Etcd.Endpoints = append(cfg.Etcd.Endpoints, s.Etcd.ClientURL)
	}
	if opts.FailStatic {
		pki := NewPKI(t, opts.Sites...)
		cfg.FailStatic = config.FailStatic{Enabled: true, CA: pki.CA,
			CheckTimeout: (cfg.Timings.LeaseTTL - cfg.Timings.SelfFenceMargin) / 5}
		for i := range cfg.Sites {
			s := &cfg.Sites[i]
			s.PeerAPI, s.PeerCert, s.PeerKey = "127.0.0.1:"+freePort(t), pki.Cert[s.Name], pki.Key[s.Name]
		}
	}
	log := opts.Log
	if log == nil {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	c := &Cluster{Config: cfg, t: t, dir: t.TempDir(), log: log, members: map[string]*embed.Etcd{}, quota: opts.QuotaBackendBytes}
	t.Cleanup(c.Close)
	for _, name := range opts.Sites {
		c.StartMember(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range opts.Sites {
		if err := embedetcd.WaitReady(ctx, c.member(name)); err != nil {
			t.Fatalf("etcd member %s: %v", name, err)
		}
	}
	return c
}

func (c *Cluster) member(site string) *embed.Etcd {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[site]
}

// StartMember starts (or restarts, with its data) the site's member, once
// any killed member has let go of its ports.
func (c *Cluster) StartMember(site string) {
	c.t.Helper()
	c.closing.Wait()
	e, err := embedetcd.Start(c.Config, site, filepath.Join(c.dir, site), c.log,
		func(ec *embed.Config) { ec.QuotaBackendBytes = c.quota })
	if err != nil {
		c.t.Fatalf("start etcd member %s: %v", site, err)
	}
	c.mu.Lock()
	c.members[site] = e
	if c.ids == nil {
		c.ids = map[string]uint64{}
	}
	c.ids[site] = uint64(e.Server.MemberID())
	c.mu.Unlock()
}

// KillMember stops the site's member at once, as a crash would: raft stops
// without handing over leadership and every request fails from then on. The
// graceful part of the close (draining client streams, which can take
// seconds) goes on in the background; Close waits for it.
func (c *Cluster) KillMember(site string) {
	c.mu.Lock()
	e := c.members[site]
	delete(c.members, site)
	c.mu.Unlock()
	if e == nil {
		return
	}
	e.Server.HardStop()
	c.closing.Add(1)
	go func() {
		defer c.closing.Done()
		e.Close()
	}()
}

// Close stops every member and waits until they are gone (it also runs in
// t.Cleanup).
func (c *Cluster) Close() {
	for _, s := range c.Config.Sites {
		c.KillMember(s.Name)
	}
	c.closing.Wait()
}

// Endpoint is the client URL of the site's member.
func (c *Cluster) Endpoint(site string) string {
	s, _ := c.Config.Site(site)
	return s.Etcd.ClientURL
}

// Client returns a client of the given endpoints (default: every member's),
// closed in t.Cleanup.
func (c *Cluster) Client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Config.Etcd.Endpoints
	}
	cl, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatalf("etcd client: %v", err)
	}
	c.t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Proxy is a TCP proxy in front of one etcd member; Cut and Heal stop and
// restore everything that passes it, as a network partition would: bytes
// are held back, not lost, so TCP streams resume intact after Heal.
type Proxy struct {
	URL string
	srv proxy.Server
}

// NewProxy starts a proxy to the site's member, closed in t.Cleanup.
func (c *Cluster) NewProxy(site string) *Proxy {
	c.t.Helper()
	to, err := url.Parse(c.Endpoint(site))
	if err != nil {
		c.t.Fatal(err)
	}
	from := url.URL{Scheme: "tcp", Host: "127.0.0.1:" + freePort(c.t)}
	srv := proxy.NewServer(proxy.ServerConfig{Logger: zap.NewNop(), From: from, To: url.URL{Scheme: "tcp", Host: to.Host}})
	select {
	case <-srv.Ready():
		c.t.Cleanup(func() { c.closeProxy(site, srv) })
		return &Proxy{URL: "http://" + from.Host, srv: srv}
	case err := <-srv.Error():
		c.t.Fatalf("proxy to %s: %v", site, err)
		return nil
	}
}

// proxyCloseWait bounds how long a proxy's close waits for the
// connections through it to end.
const proxyCloseWait = 10 * time.Second

// closeProxy closes the proxy; when a connection through it stays open
// (its client was not closed), the test fails saying so rather than
// waiting for the package's timeout: etcd's proxy waits for every
// connection to end.
func (c *Cluster) closeProxy(site string, srv proxy.Server) {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = srv.Close()
	}()
	select {
	case <-closed:
	case <-time.After(proxyCloseWait):
		c.t.Errorf("the proxy to %s's member did not close in %s: a connection through it is still open", site, proxyCloseWait)
	}
}

// Cut holds back everything in both directions and new connections.
func (p *Proxy) Cut() {
	p.srv.PauseAccept()
	p.srv.PauseTx()
	p.srv.PauseRx()
}

// Heal lets traffic through again.
func (p *Proxy) Heal() {
	p.srv.UnpauseAccept()
	p.srv.UnpauseTx()
	p.srv.UnpauseRx()
}

// Delay holds every chunk that passes the proxy, each way, for d (as
// etcd's proxy does: one chunk after another, so a stream slows more than
// d); 0 ends the delay.
func (p *Proxy) Delay(d time.Duration) {
	if d == 0 {
		p.srv.UndelayTx()
		p.srv.UndelayRx()
		return
	}
	p.srv.DelayTx(d, 0)
	p.srv.DelayRx(d, 0)
}

// freePort returns a loopback TCP port reserved to t.
func freePort(t testing.TB) string {
	t.Helper()
	return strconv.Itoa(testport.Reserve(t, "127.0.0.1"))
}

// Leader returns the site whose member leads the etcd cluster, "" when none
// does (as far as the running members know).
func (c *Cluster) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for site, e := range c.members {
		if e.Server.Leader() == e.Server.MemberID() {
			return site
		}
	}
	return ""
}

// MemberStatus is what the site's member sees (stopped once killed).
func (c *Cluster) MemberStatus(site string) failstatic.MemberStatus {
	st := embedetcd.Status(c.member(site))
	if st.Self == 0 {
		c.mu.Lock()
		st.Self = c.ids[site]
		c.mu.Unlock()
	}
	return st
}

// SetNoSpace raises (on) or clears etcd's NOSPACE alarm through a running
// member, as a database at its quota would: every write that stores data
// is refused, lease grants too, while reads, deletes and keep-alives go
// on.
func (c *Cluster) SetNoSpace(ctx context.Context, on bool) error {
	c.mu.Lock()
	var e *embed.Etcd
	for _, m := range c.members {
		e = m
		break
	}
	c.mu.Unlock()
	if e == nil {
		return errors.New("no member runs")
	}
	action := etcdserverpb.AlarmRequest_DEACTIVATE
	if on {
		action = etcdserverpb.AlarmRequest_ACTIVATE
	}
	var ids []uint64
	for _, m := range e.Server.Cluster().Members() {
		ids = append(ids, uint64(m.ID))
	}
	for _, id := range ids {
		if _, err := e.Server.Alarm(ctx, &etcdserverpb.AlarmRequest{Action: action, MemberID: id, Alarm: etcdserverpb.AlarmType_NOSPACE}); err != nil {
			return fmt.Errorf("alarm NOSPACE %v for member %x: %w", action, id, err)
		}
		if on {
			break // one member's alarm is enough to cap the cluster
		}
	}
	return nil
}

// MoveLeader hands the etcd leadership to the site's member and waits until
// it leads.
func (c *Cluster) MoveLeader(ctx context.Context, to string) error {
	for ctx.Err() == nil {
		from := c.Leader()
		if from == to {
			return nil
		}
		c.mu.Lock()
		lead, target := c.members[from], c.members[to]
		c.mu.Unlock()
		if lead == nil || target == nil {
			return fmt.Errorf("move etcd leader from %q to %q: member not running", from, to)
		}
		err := lead.Server.MoveLeader(ctx, uint64(lead.Server.MemberID()), uint64(target.Server.MemberID()))
		if err != nil && ctx.Err() == nil {
			continue // the leadership moved meanwhile: look again
		}
	}
	return ctx.Err()
}

// Blackhole listens on a loopback port, accepts connections and never
// answers, like a hung host; it returns its address. It is closed, with the
// connections it accepted, when the test ends.
func Blackhole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// FailedWriteLanded plays a report write that failed but landed all the
// same (cancelled after etcd took it) against a writer that remembers what
// it wrote: writeFirst must succeed; land puts the second value into etcd
// behind the writer's back; writeSecond, called with a cancelled context,
// must fail; then writeFirst again must succeed. The caller checks that
// etcd holds the first value: a writer that took the failed write for one
// that did not land skips the last write, as equal to what it remembers.
func FailedWriteLanded(t testing.TB, writeFirst, land, writeSecond func(context.Context) error) {
	t.Helper()
	ctx := context.Background()
	if err := writeFirst(ctx); err != nil {
		t.Fatalf("the first write: %v", err)
	}
	if err := land(ctx); err != nil {
		t.Fatalf("the second value, put behind the writer's back: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := writeSecond(cancelled); err == nil {
		t.Fatal("a write with a cancelled context succeeded")
	}
	if err := writeFirst(ctx); err != nil {
		t.Fatalf("the first value again: %v", err)
	}
}
