package speaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
	"github.com/osrg/gobgp/v3/pkg/server"
	"go.uber.org/zap"
)

// ErrClosed is returned by calls on a closed Speaker.
var ErrClosed = errors.New("speaker closed")

const exportPolicyName = "zdt-export-local-only"

// Speaker is a running GoBGP server that announces this site's routes.
// Its methods are safe for concurrent use.
type Speaker struct {
	bgp     *server.BgpServer
	asn     uint32
	timeout time.Duration
	log     *zap.Logger
	// acceptRoutes keeps what peers send (Config.AcceptRoutes).
	acceptRoutes bool

	// applyMu serialises Apply; it is held across GoBGP calls.
	applyMu sync.Mutex
	// routeCalls counts the route changes (AddPath, DeletePath) sent to
	// GoBGP, for tests.
	routeCalls atomic.Int64

	mu sync.Mutex // guards the fields below; never held across a GoBGP call
	// announced is what GoBGP has accepted, by prefix.
	announced map[netip.Prefix]Route
	// pending is closed when a route change that Apply gave up waiting for
	// has returned from GoBGP (and its effect is recorded in announced).
	pending <-chan struct{}
	// states is the last session state seen for each peer, from the watch.
	states map[netip.Addr]peerState
	// statesChanged is closed and replaced whenever states changes.
	statesChanged chan struct{}
	established   chan netip.Addr
	closed        bool
	// sessionEnded holds, while Close runs, a channel per peer whose
	// session was up, closed when GoBGP reports the session gone.
	sessionEnded map[netip.Addr]chan struct{}

	stopWatch context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

type peerState struct {
	state string
	since time.Time
}

// Start validates cfg, starts the GoBGP server, installs the export policy
// (only locally originated routes leave) and adds the peers. On error nothing
// is left running but GoBGP's idle management loop (see the package doc).
func Start(ctx context.Context, cfg Config) (*Speaker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Log
	if logger == nil {
		logger = zap.NewNop()
	}
	timeout := cfg.CallTimeout
	if timeout == 0 {
		timeout = DefaultCallTimeout
	}

	bgp := server.NewBgpServer(server.LoggerOption(newZapLogger(logger.Named("gobgp"))))
	go bgp.Serve() // never returns; see the package doc

	watchCtx, stopWatch := context.WithCancel(context.Background())
	s := &Speaker{
		bgp:           bgp,
		asn:           cfg.ASN,
		timeout:       timeout,
		log:           logger,
		acceptRoutes:  cfg.AcceptRoutes,
		announced:     make(map[netip.Prefix]Route),
		states:        make(map[netip.Addr]peerState),
		statesChanged: make(chan struct{}),
		established:   make(chan netip.Addr, max(16, 4*len(cfg.Peers))),
		stopWatch:     stopWatch,
	}

	var startDone <-chan struct{}
	fail := func(err error) (*Speaker, error) {
		stopWatch()
		if startDone != nil {
			// Best effort: close the listeners and the peers added so far,
			// after a StartBgp we gave up on has returned.
			select {
			case <-startDone:
			case <-time.After(timeout):
			}
			if _, stopErr := call(context.Background(), timeout, "StopBgp", func() error {
				return bgp.StopBgp(context.Background(), &api.StopBgpRequest{})
			}); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
		return nil, fmt.Errorf("start BGP speaker AS%d %v: %w", cfg.ASN, cfg.RouterID, err)
	}

	global := &api.Global{
		Asn:             cfg.ASN,
		RouterId:        cfg.RouterID.String(),
		ListenPort:      cfg.ListenPort,
		ListenAddresses: cfg.ListenAddresses,
		Families: []uint32{
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV4_UNICAST]),
			uint32(oc.AfiSafiTypeToIntMap[oc.AFI_SAFI_TYPE_IPV6_UNICAST]),
		},
	}
	startDone, err := call(ctx, timeout, "StartBgp", func() error {
		return bgp.StartBgp(context.Background(), &api.StartBgpRequest{Global: global})
	})
	if err != nil {
		return fail(err) // StartBgp may have opened some listeners
	}

	// Watch before adding peers, so no transition is missed.
	if _, err := call(ctx, timeout, "WatchEvent", func() error {
		return bgp.WatchEvent(watchCtx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.onEvent)
	}); err != nil {
		return fail(err)
	}

	if err := s.setExportPolicy(ctx); err != nil {
		return fail(err)
	}

	for _, p := range cfg.Peers {
		req := &api.AddPeerRequest{Peer: p.apiPeer()}
		if _, err := call(ctx, timeout, "AddPeer", func() error {
			return bgp.AddPeer(context.Background(), req)
		}); err != nil {
			return fail(fmt.Errorf("add peer %v AS%d: %w", p.Address, p.ASN, err))
		}
	}
	return s, nil
}

// setExportPolicy makes the global export policy accept the routes this
// speaker originates (route-type LOCAL) and reject everything else, so routes
// learned from one peer are never passed on to another.
func (s *Speaker) setExportPolicy(ctx context.Context) error {
	policy := &api.Policy{
		Name: exportPolicyName,
		Statements: []*api.Statement{{
			Name:       exportPolicyName + "-local",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		}},
	}
	if _, err := call(ctx, s.timeout, "AddPolicy", func() error {
		return s.bgp.AddPolicy(context.Background(), &api.AddPolicyRequest{Policy: policy})
	}); err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	assignment := &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicyName}},
		DefaultAction: api.RouteAction_REJECT,
	}
	if _, err := call(ctx, s.timeout, "SetPolicyAssignment", func() error {
		return s.bgp.SetPolicyAssignment(context.Background(), &api.SetPolicyAssignmentRequest{Assignment: assignment})
	}); err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	if s.acceptRoutes {
		return nil
	}
	// A speaker that only announces keeps nothing it learns: a path from
	// the upstream that GoBGP preferred to our own would otherwise be the
	// best path, and GoBGP exports only the best path (ours would go
	// unannounced); it also keeps the upstream's table out of memory.
	// GoBGP runs its own paths through the import policy too: accept
	// those (the same route-type LOCAL policy), reject the rest.
	imp := &api.PolicyAssignment{Name: "global", Direction: api.PolicyDirection_IMPORT,
		Policies: []*api.Policy{{Name: exportPolicyName}}, DefaultAction: api.RouteAction_REJECT}
	if _, err := call(ctx, s.timeout, "SetPolicyAssignment", func() error {
		return s.bgp.SetPolicyAssignment(context.Background(), &api.SetPolicyAssignmentRequest{Assignment: imp})
	}); err != nil {
		return fmt.Errorf("import policy: %w", err)
	}
	return nil
}

// onEvent handles GoBGP's peer events. It runs on GoBGP's watcher goroutine
// and never blocks. A state change has type STATE, except the one GoBGP
// sends when a deleted peer's session has ended, which has no type
// (UNKNOWN).
func (s *Speaker) onEvent(r *api.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil {
		return
	}
	if t := pe.GetType(); t != api.WatchEventResponse_PeerEvent_STATE && t != api.WatchEventResponse_PeerEvent_UNKNOWN {
		return
	}
	addr, err := netip.ParseAddr(pe.GetPeer().GetState().GetNeighborAddress())
	if err != nil {
		return
	}
	addr = addr.Unmap()
	state := sessionState(pe.GetPeer().GetState().GetSessionState())

	s.mu.Lock()
	defer s.mu.Unlock()
	if ended, ok := s.sessionEnded[addr]; ok && state != "established" {
		close(ended)
		delete(s.sessionEnded, addr)
	}
	if s.closed {
		return
	}
	if old, ok := s.states[addr]; !ok || old.state != state {
		s.states[addr] = peerState{state: state, since: time.Now()}
		close(s.statesChanged)
		s.statesChanged = make(chan struct{})
	}
	if state != "established" {
		return
	}
	select {
	case s.established <- addr:
	default: // full: the consumer re-reads Peers anyway
	}
}

func sessionState(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_IDLE:
		return "idle"
	case api.PeerState_CONNECT:
		return "connect"
	case api.PeerState_ACTIVE:
		return "active"
	case api.PeerState_OPENSENT:
		return "opensent"
	case api.PeerState_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

// Established receives a peer's address each time its session reaches the
// established state. Sends never block GoBGP: when the buffer is full the
// address is dropped, so a consumer must treat a receive as "look again"
// and re-read Peers. The channel is closed by Close.
func (s *Speaker) Established() <-chan netip.Addr { return s.established }

// PeerStatus is one peer's session as GoBGP reports it.
type PeerStatus struct {
	Address netip.Addr
	ASN     uint32
	// State is "established", "idle", "active", "connect", "opensent" or
	// "openconfirm".
	State string
	// Since is when the state last changed, if known (to the second when
	// only GoBGP's up/down times are available).
	Since time.Time
	// Prefix counts, summed over the peer's families: received from the
	// peer, accepted by the import policy, and advertised to it (after the
	// export policy).
	Received, Accepted, Advertised uint64
	Description                    string
}

// Peers reports every configured peer, sorted by address.
func (s *Speaker) Peers(ctx context.Context) ([]PeerStatus, error) {
	return s.peers(ctx, true)
}

// Sessions reports every configured peer as Peers does, but for the count
// of prefixes advertised to it (0): GoBGP works that out from the whole
// table, which costs tens of milliseconds a peer with 10,000 prefixes.
func (s *Speaker) Sessions(ctx context.Context) ([]PeerStatus, error) {
	return s.peers(ctx, false)
}

func (s *Speaker) peers(ctx context.Context, advertised bool) ([]PeerStatus, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var peers []*api.Peer
	if _, err := call(ctx, s.timeout, "ListPeer", func() error {
		return s.bgp.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: advertised}, func(p *api.Peer) {
			peers = append(peers, p)
		})
	}); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PeerStatus, 0, len(peers))
	for _, p := range peers {
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			continue
		}
		addr = addr.Unmap()
		st := PeerStatus{
			Address:     addr,
			ASN:         p.GetConf().GetPeerAsn(),
			State:       sessionState(p.GetState().GetSessionState()),
			Description: p.GetConf().GetDescription(),
		}
		if seen, ok := s.states[addr]; ok && seen.state == st.State {
			st.Since = seen.since
		} else if ts := p.GetTimers().GetState(); ts != nil {
			t := ts.GetDowntime()
			if st.State == "established" {
				t = ts.GetUptime()
			}
			if t != nil && t.GetSeconds() > 0 {
				st.Since = t.AsTime()
			}
		}
		for _, af := range p.GetAfiSafis() {
			st.Received += af.GetState().GetReceived()
			st.Accepted += af.GetState().GetAccepted()
			st.Advertised += af.GetState().GetAdvertised()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// ReceivedPath is a path learned from a peer.
type ReceivedPath struct {
	Prefix  netip.Prefix
	Peer    netip.Addr
	PeerASN uint32
	ASPath  []uint32 // flattened AS_PATH as received (AS_SET members in order)
	Best    bool     // GoBGP's best path for the prefix
}

// WatchRIB calls changed after every change of what the speaker holds from
// its peers: an update received, a best path that moved, a session that
// came up or went down. changed runs on GoBGP's goroutine and must not
// block. The watch ends with ctx.
func (s *Speaker) WatchRIB(ctx context.Context, changed func()) error {
	if s.isClosed() {
		return ErrClosed
	}
	req := &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_ADJIN},
			{Type: api.WatchEventRequest_Table_Filter_BEST},
		}},
	}
	if err := s.bgp.WatchEvent(ctx, req, func(*api.WatchEventResponse) { changed() }); err != nil {
		return fmt.Errorf("gobgp WatchEvent: %w", err)
	}
	return nil
}

// Received lists every path learned from peers in the global RIB, both
// families, sorted by prefix then peer: what a speaker playing the upstream
// sees. Paths this speaker originates are left out.
func (s *Speaker) Received(ctx context.Context) ([]ReceivedPath, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var out []ReceivedPath
	for _, fam := range []*api.Family{familyOf(netip.IPv4Unspecified()), familyOf(netip.IPv6Unspecified())} {
		var dsts []*api.Destination
		if _, err := call(ctx, s.timeout, "ListPath", func() error {
			return s.bgp.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}, func(d *api.Destination) {
				dsts = append(dsts, d)
			})
		}); err != nil {
			return nil, err
		}
		for _, d := range dsts {
			prefix, err := netip.ParsePrefix(d.GetPrefix())
			if err != nil {
				return nil, fmt.Errorf("gobgp ListPath: destination %q: %w", d.GetPrefix(), err)
			}
			for _, p := range d.GetPaths() {
				peer, err := netip.ParseAddr(p.GetNeighborIp())
				if err != nil || p.GetIsWithdraw() {
					continue // a local path has no neighbor ("<nil>")
				}
				asPath, err := flatASPath(p)
				if err != nil {
					return nil, fmt.Errorf("gobgp ListPath: %v from %v: %w", prefix, peer, err)
				}
				out = append(out, ReceivedPath{
					Prefix:  prefix,
					Peer:    peer.Unmap(),
					PeerASN: p.GetSourceAsn(),
					ASPath:  asPath,
					Best:    p.GetBest(),
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b ReceivedPath) int {
		return cmp.Or(comparePrefix(a.Prefix, b.Prefix), a.Peer.Compare(b.Peer))
	})
	return out, nil
}

func flatASPath(p *api.Path) ([]uint32, error) {
	var asns []uint32
	for _, a := range p.GetPattrs() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("path attribute %s: %w", a.GetTypeUrl(), err)
		}
		if ap, ok := m.(*api.AsPathAttribute); ok {
			for _, seg := range ap.GetSegments() {
				asns = append(asns, seg.GetNumbers()...)
			}
		}
	}
	return asns, nil
}

// Close stops the server: GoBGP closes every session (the peers drop our
// routes with them) and the listeners. Nothing is withdrawn first. Close is
// idempotent; later calls wait for the first and return its result.
func (s *Speaker) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Speaker) close() error {
	s.settleHandshakes()
	s.mu.Lock()
	s.closed = true
	clear(s.announced)
	close(s.established)
	s.sessionEnded = make(map[netip.Addr]chan struct{})
	for addr, st := range s.states {
		if st.state == "established" {
			s.sessionEnded[addr] = make(chan struct{})
		}
	}
	ended := maps.Clone(s.sessionEnded)
	s.mu.Unlock()

	// GoBGP's StopBgp clears the global configuration while the sessions
	// it deconfigures may still be reading it (a data race in v3.37.0:
	// fsm.go reads gConf for every UPDATE). So the peers go first, and
	// StopBgp comes once GoBGP has reported each open session ended,
	// which it does after that session's goroutines have returned.
	errs := []error{s.deletePeers()}
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	for addr, ch := range ended {
		select {
		case <-ch:
		case <-deadline.C:
			errs = append(errs, fmt.Errorf("session with %v: not ended within %v of its deletion", addr, s.timeout))
		}
	}
	s.stopWatch()
	if _, err := call(context.Background(), s.timeout, "StopBgp", func() error {
		return s.bgp.StopBgp(context.Background(), &api.StopBgpRequest{})
	}); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close BGP speaker AS%d: %w", s.asn, err)
	}
	return nil
}

// settleHandshakes waits, at most the call timeout, until no session is
// in its opening handshake as GoBGP's server loop sees it (opensent,
// openconfirm). GoBGP v3.37.0 leaks the TCP connection of a peer deleted
// while its session is between two handshake states (the server frees the
// handler without closing the connection, unless it saw the state active),
// and the other end then holds the session up until its hold timer
// expires, keeping our routes. A session settles within a round trip.
func (s *Speaker) settleHandshakes() {
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		busy := false
		for _, st := range s.states {
			busy = busy || st.state == "opensent" || st.state == "openconfirm"
		}
		changed := s.statesChanged
		s.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			return
		}
	}
}

// deletePeers deletes every configured peer; each open session is closed
// with a Cease notification.
func (s *Speaker) deletePeers() error {
	var addrs []string
	if _, err := call(context.Background(), s.timeout, "ListPeer", func() error {
		return s.bgp.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
			addrs = append(addrs, p.GetConf().GetNeighborAddress())
		})
	}); err != nil {
		return err
	}
	var errs []error
	for _, addr := range addrs {
		if _, err := call(context.Background(), s.timeout, "DeletePeer", func() error {
			return s.bgp.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: addr})
		}); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Speaker) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
