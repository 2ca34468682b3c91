package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zdt-project/zdt/site/testport"
)

// waitTimeout bounds every wait in these tests. A session needs 1-2 s to
// come up (GoBGP's first dial) and 6-7 s to come back after a reset (5 s idle
// hold, then the first dial).
const waitTimeout = 30 * time.Second

// node is one speaker of a test topology on loopback.
type node struct {
	name     string
	addr     netip.Addr
	port     int32 // -1: dials out only
	asn      uint32
	routerID netip.Addr
	logLevel zapcore.Level // kept in memory from this level; default debug
	sp       *Speaker
	logs     *observer.ObservedLogs
}

var routerIDs struct {
	sync.Mutex
	next byte
}

// newNode plans a speaker at addr; listen picks a free port on addr.
func newNode(t testing.TB, name, addr string, asn uint32, listen bool) *node {
	t.Helper()
	routerIDs.Lock()
	routerIDs.next++
	id := netip.AddrFrom4([4]byte{10, 255, 0, routerIDs.next})
	routerIDs.Unlock()
	n := &node{name: name, addr: netip.MustParseAddr(addr), port: -1, asn: asn, routerID: id, logLevel: zapcore.DebugLevel}
	if listen {
		n.port = freePort(t, n.addr)
	}
	return n
}

// freePort returns a TCP port on addr reserved to t (GoBGP cannot listen
// on port 0).
func freePort(t testing.TB, addr netip.Addr) int32 {
	t.Helper()
	return int32(testport.Reserve(t, addr.String()))
}

// peerOf is how n sees other. n waits for other to connect when passive is
// set or when other does not listen.
func (n *node) peerOf(other *node, passive bool) Peer {
	p := Peer{
		Address:      other.addr,
		ASN:          other.asn,
		LocalAddress: n.addr,
		ConnectRetry: time.Second,
		Passive:      passive || other.port < 0,
		Description:  other.name,
	}
	if other.port > 0 {
		p.Port = uint16(other.port)
	}
	return p
}

func (n *node) config(peers ...Peer) Config {
	cfg := Config{
		ASN:        n.asn,
		RouterID:   n.routerID,
		ListenPort: n.port,
		Peers:      peers,
		// Test nodes play the upstream too: they keep what they learn.
		AcceptRoutes: true,
	}
	if n.port > 0 {
		cfg.ListenAddresses = []string{n.addr.String()}
	}
	return cfg
}

// start starts n's speaker and closes it when the test ends. Its logs are
// kept in memory and printed if the test fails.
func (n *node) start(t testing.TB, peers ...Peer) *Speaker {
	t.Helper()
	return n.startConfig(t, n.config(peers...))
}

func (n *node) startConfig(t testing.TB, cfg Config) *Speaker {
	t.Helper()
	core, logs := observer.New(n.logLevel)
	n.logs = logs
	cfg.Log = zap.New(core).With(zap.String("node", n.name))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sp, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	n.sp = sp
	t.Cleanup(func() {
		if err := sp.Close(); err != nil {
			t.Errorf("close %s: %v", n.name, err)
		}
		if t.Failed() {
			dumpLogs(t, n.name, logs)
		}
	})
	return sp
}

func dumpLogs(t testing.TB, name string, logs *observer.ObservedLogs) {
	entries := logs.All()
	if len(entries) > 60 {
		entries = entries[len(entries)-60:]
	}
	for _, e := range entries {
		fields := ""
		for k, v := range e.ContextMap() {
			fields += fmt.Sprintf(" %s=%v", k, v)
		}
		t.Logf("%s log: %s %s%s", name, e.Level, e.Message, fields)
	}
}

// ribEvent is one path a watched speaker received in an UPDATE (pre-policy)
// or made best; a path usually shows up once as each.
type ribEvent struct {
	prefix   netip.Prefix
	peer     netip.Addr
	withdraw bool
	asPath   []uint32
}

func (e ribEvent) String() string {
	if e.withdraw {
		return fmt.Sprintf("withdraw %v from %v", e.prefix, e.peer)
	}
	return fmt.Sprintf("%v from %v path %v", e.prefix, e.peer, e.asPath)
}

// ribWatch follows a speaker's GoBGP events (received paths, best-path
// changes, peer states) so tests wait on events rather than sleep.
type ribWatch struct {
	changed chan struct{}
	mu      sync.Mutex
	events  []ribEvent
}

func watchRIB(t testing.TB, sp *Speaker) *ribWatch {
	t.Helper()
	w := &ribWatch{changed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req := &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN},
			{Type: api.WatchEventRequest_Table_Filter_BEST},
		}},
	}
	if err := sp.bgp.WatchEvent(ctx, req, w.on); err != nil {
		t.Fatalf("watch: %v", err)
	}
	return w
}

func (w *ribWatch) on(r *api.WatchEventResponse) {
	if tbl := r.GetTable(); tbl != nil {
		w.mu.Lock()
		for _, p := range tbl.GetPaths() {
			peer, err := netip.ParseAddr(p.GetNeighborIp())
			if err != nil {
				continue // a local path
			}
			prefix, ok := pathPrefix(p)
			if !ok {
				continue
			}
			asPath, _ := flatASPath(p)
			w.events = append(w.events, ribEvent{
				prefix:   prefix,
				peer:     peer,
				withdraw: p.GetIsWithdraw(),
				asPath:   asPath,
			})
		}
		w.mu.Unlock()
	}
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func pathPrefix(p *api.Path) (netip.Prefix, bool) {
	var ip api.IPAddressPrefix
	if err := p.GetNlri().UnmarshalTo(&ip); err != nil {
		return netip.Prefix{}, false
	}
	addr, err := netip.ParseAddr(ip.GetPrefix())
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, int(ip.GetPrefixLen())), true
}

// eventsFor returns the received paths for prefix, in order.
func (w *ribWatch) eventsFor(prefix netip.Prefix) []ribEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ribEvent
	for _, e := range w.events {
		if e.prefix == prefix {
			out = append(out, e)
		}
	}
	return out
}

// waitUntil re-checks cond on every event of the watched speaker until it
// holds or waitTimeout passes. A slow tick guards against a check that
// depends on something the watch does not report.
func (w *ribWatch) waitUntil(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-w.changed:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", waitTimeout, what, state)
		}
	}
}

// waitEstablished waits until every one of peers is established at sp.
func waitEstablished(t testing.TB, sp *Speaker, peers ...netip.Addr) {
	t.Helper()
	w := watchRIB(t, sp)
	w.waitUntil(t, "sessions established", func() (bool, string) {
		return peersIn(t, sp, "established", peers...)
	})
}

// peersIn reports whether all peers are in state at sp.
func peersIn(t testing.TB, sp *Speaker, state string, peers ...netip.Addr) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ps, err := sp.Peers(ctx)
	if err != nil {
		t.Fatalf("peers: %v", err)
	}
	got := make(map[netip.Addr]string, len(ps))
	desc := ""
	for _, p := range ps {
		got[p.Address] = p.State
		desc += p.Address.String() + "=" + p.State + " "
	}
	for _, a := range peers {
		if got[a] != state {
			return false, desc
		}
	}
	return true, desc
}

// received returns sp's received paths, by prefix.
func received(t testing.TB, sp *Speaker) map[netip.Prefix][]ReceivedPath {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	paths, err := sp.Received(ctx)
	if err != nil {
		t.Fatalf("received: %v", err)
	}
	out := make(map[netip.Prefix][]ReceivedPath)
	for _, p := range paths {
		out[p.Prefix] = append(out[p.Prefix], p)
	}
	return out
}

func apply(t testing.TB, sp *Speaker, routes ...Route) Diff {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	d, err := sp.Apply(ctx, routes)
	if err != nil {
		t.Fatalf("apply %v: %v", routes, err)
	}
	return d
}

func repeat(asn uint32, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = asn
	}
	return out
}
