package speaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
)

var (
	pfxA = netip.MustParsePrefix("10.1.0.0/24")
	pfxB = netip.MustParsePrefix("10.2.0.0/24")
)

// TestAnnounceReplaceWithdraw drives one site speaker against an upstream
// through the whole life of its routes.
func TestAnnounceReplaceWithdraw(t *testing.T) {
	up := newNode(t, "upstream", "127.0.0.1", 65000, true)
	site := newNode(t, "site", "127.0.0.2", 65001, false)
	upSp := up.start(t, up.peerOf(site, true))
	siteSp := site.start(t, site.peerOf(up, false))
	waitEstablished(t, siteSp, up.addr)
	w := watchRIB(t, upSp)

	// Announce: the upstream sees prepends+1 copies of the site's AS.
	if d := apply(t, siteSp, Route{pfxA, 2}, Route{pfxB, 0}); d != (Diff{Announced: 2}) {
		t.Errorf("first apply: diff %+v, want 2 announced", d)
	}
	wantRoutes(t, siteSp, Route{pfxA, 2}, Route{pfxB, 0})
	w.waitUntil(t, "both prefixes at the upstream", func() (bool, string) {
		rib := received(t, upSp)
		return len(rib[pfxA]) == 1 && len(rib[pfxB]) == 1, ribString(rib)
	})
	rib := received(t, upSp)
	wantPath(t, rib[pfxA][0], site, repeat(site.asn, 3))
	wantPath(t, rib[pfxB][0], site, repeat(site.asn, 1))

	// Peers on both sides report the session and the counts.
	ps := peers(t, siteSp)
	if len(ps) != 1 || ps[0].Address != up.addr || ps[0].ASN != up.asn || ps[0].State != "established" ||
		ps[0].Advertised != 2 || ps[0].Received != 0 || ps[0].Description != "upstream" || ps[0].Since.IsZero() {
		t.Errorf("site's peers = %+v, want upstream established since some time, 2 advertised", ps)
	}
	ss, err := siteSp.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Address != up.addr || ss[0].State != "established" || ss[0].Since != ps[0].Since || ss[0].Advertised != 0 {
		t.Errorf("site's sessions = %+v, want upstream established since %s, no count of advertised prefixes", ss, ps[0].Since)
	}
	ps = peers(t, upSp)
	if len(ps) != 1 || ps[0].Address != site.addr || ps[0].State != "established" || ps[0].Received != 2 || ps[0].Accepted != 2 {
		t.Errorf("upstream's peers = %+v, want site established, 2 received and accepted", ps)
	}

	// The same set again makes no GoBGP call.
	calls := siteSp.routeCalls.Load()
	if d := apply(t, siteSp, Route{pfxB, 0}, Route{pfxA, 2}); d != (Diff{}) {
		t.Errorf("identical apply: diff %+v, want none", d)
	}
	if got := siteSp.routeCalls.Load(); got != calls {
		t.Errorf("identical apply made %d GoBGP route calls, want 0", got-calls)
	}

	// Change the prepends: replaced in place, the upstream never sees a
	// withdrawal of the prefix.
	if d := apply(t, siteSp, Route{pfxA, 5}, Route{pfxB, 0}); d != (Diff{Replaced: 1}) {
		t.Errorf("prepend change: diff %+v, want 1 replaced", d)
	}
	wantRoutes(t, siteSp, Route{pfxA, 5}, Route{pfxB, 0})
	// The RIB can show the new path before the watch has delivered its
	// event: wait for both.
	w.waitUntil(t, "the new path at the upstream and in its events", func() (bool, string) {
		rib := received(t, upSp)
		events := w.eventsFor(pfxA)
		return len(rib[pfxA]) == 1 && len(rib[pfxA][0].ASPath) == 6 &&
				len(events) > 0 && len(events[len(events)-1].asPath) == 6,
			fmt.Sprintf("RIB %s, UPDATEs %v", ribString(rib), events)
	})
	events := w.eventsFor(pfxA)
	for _, e := range events {
		if e.withdraw {
			t.Errorf("upstream saw a withdrawal of %v during the replace: %+v", pfxA, w.eventsFor(pfxA))
			break
		}
	}

	// Remove a prefix: withdrawn, the other stays.
	if d := apply(t, siteSp, Route{pfxB, 0}); d != (Diff{Withdrawn: 1}) {
		t.Errorf("removal: diff %+v, want 1 withdrawn", d)
	}
	wantRoutes(t, siteSp, Route{pfxB, 0})
	w.waitUntil(t, "the withdrawal at the upstream", func() (bool, string) {
		rib := received(t, upSp)
		return len(rib[pfxA]) == 0 && len(rib[pfxB]) == 1, ribString(rib)
	})

	// Withdraw everything.
	if d := apply(t, siteSp); d != (Diff{Withdrawn: 1}) {
		t.Errorf("empty apply: diff %+v, want 1 withdrawn", d)
	}
	wantRoutes(t, siteSp)
	w.waitUntil(t, "an empty upstream", func() (bool, string) {
		rib := received(t, upSp)
		return len(rib) == 0, ribString(rib)
	})
}

// TestExportPolicyDoesNotLeak: a route the middle speaker learns from one peer
// is not passed on to another; only its own routes are.
func TestExportPolicyDoesNotLeak(t *testing.T) {
	far := newNode(t, "far", "127.0.0.3", 65010, false)
	mid := newNode(t, "mid", "127.0.0.2", 65020, true)
	up := newNode(t, "upstream", "127.0.0.1", 65030, true)
	farSp := far.start(t, far.peerOf(mid, false))
	midSp := mid.start(t, mid.peerOf(far, true), mid.peerOf(up, false))
	upSp := up.start(t, up.peerOf(mid, true))
	waitEstablished(t, midSp, far.addr, up.addr)
	upWatch := watchRIB(t, upSp)
	midWatch := watchRIB(t, midSp)

	learned := netip.MustParsePrefix("10.9.0.0/24")
	own := netip.MustParsePrefix("10.8.0.0/24")
	apply(t, farSp, Route{learned, 0})
	midWatch.waitUntil(t, "mid to learn far's route", func() (bool, string) {
		rib := received(t, midSp)
		return len(rib[learned]) == 1, ribString(rib)
	})

	// mid learned far's route before it announced its own, and a session
	// delivers UPDATEs in order: once own is at the upstream, a leak would
	// be there too.
	apply(t, midSp, Route{own, 0})
	upWatch.waitUntil(t, "mid's own route at the upstream", func() (bool, string) {
		rib := received(t, upSp)
		return len(rib[own]) == 1, ribString(rib)
	})
	rib := received(t, upSp)
	if len(rib) != 1 {
		t.Errorf("upstream received %s, want only %v", ribString(rib), own)
	}
	wantPath(t, rib[own][0], mid, []uint32{mid.asn})
	for _, p := range peers(t, midSp) {
		if p.Address == up.addr && p.Advertised != 1 {
			t.Errorf("mid advertises %d prefixes to the upstream, want 1 (its own)", p.Advertised)
		}
	}
}

// TestEstablishedAfterRestart: Established fires when a session comes up and
// again when it comes back after the peer restarted.
func TestEstablishedAfterRestart(t *testing.T) {
	site := newNode(t, "site", "127.0.0.2", 65001, false)
	up := newNode(t, "upstream", "127.0.0.1", 65000, true)
	siteSp := site.start(t, site.peerOf(up, false))
	upSp := up.start(t, up.peerOf(site, true))

	waitSignal(t, siteSp, up.addr)
	ps := peers(t, siteSp)
	if len(ps) != 1 || ps[0].State != "established" {
		t.Fatalf("after the signal, peers = %+v, want established", ps)
	}
	firstUp := ps[0].Since

	// The upstream goes away: the session drops.
	if err := upSp.Close(); err != nil {
		t.Fatalf("close upstream: %v", err)
	}
	if _, ok := <-drain(upSp.Established()); ok {
		t.Errorf("the closed speaker's Established channel is still open")
	}
	w := watchRIB(t, siteSp)
	w.waitUntil(t, "the session to drop", func() (bool, string) {
		ok, state := peersIn(t, siteSp, "established", up.addr)
		return !ok, state
	})
	drain(siteSp.Established())

	// It comes back on the same address and port.
	up.start(t, up.peerOf(site, true))
	peers(t, siteSp) // orders the restart before the site's next session (see the package doc)
	waitSignal(t, siteSp, up.addr)
	ps = peers(t, siteSp)
	if len(ps) != 1 || ps[0].State != "established" || !ps[0].Since.After(firstUp) {
		t.Errorf("after the restart, peers = %+v, want established since after %v", ps, firstUp)
	}
}

// TestReceivedBestPath: with two senders of one prefix, the upstream's best
// path is the one with the shorter AS path.
// upstreamOfTwo is an upstream speaker with two sites' speakers, s1 and s2,
// peered with it, the sessions established.
type upstreamOfTwo struct {
	s1, s2           *node
	upSp, s1Sp, s2Sp *Speaker
}

func newUpstreamOfTwo(t *testing.T) upstreamOfTwo {
	t.Helper()
	up := newNode(t, "upstream", "127.0.0.1", 65000, true)
	s1 := newNode(t, "s1", "127.0.0.2", 65001, false)
	s2 := newNode(t, "s2", "127.0.0.3", 65002, false)
	u := upstreamOfTwo{s1: s1, s2: s2}
	u.upSp = up.start(t, up.peerOf(s1, true), up.peerOf(s2, true))
	u.s1Sp = s1.start(t, s1.peerOf(up, false))
	u.s2Sp = s2.start(t, s2.peerOf(up, false))
	waitEstablished(t, u.upSp, s1.addr, s2.addr)
	return u
}

func TestReceivedBestPath(t *testing.T) {
	u := newUpstreamOfTwo(t)
	s1, s2, upSp, s1Sp, s2Sp := u.s1, u.s2, u.upSp, u.s1Sp, u.s2Sp
	w := watchRIB(t, upSp)

	apply(t, s1Sp, Route{pfxA, 3})
	apply(t, s2Sp, Route{pfxA, 1})
	w.waitUntil(t, "both paths at the upstream", func() (bool, string) {
		rib := received(t, upSp)
		return len(rib[pfxA]) == 2, ribString(rib)
	})
	paths := received(t, upSp)[pfxA]
	for _, p := range paths {
		switch p.Peer {
		case s1.addr:
			wantPath(t, p, s1, repeat(s1.asn, 4))
			if p.Best {
				t.Errorf("s1's longer path is best")
			}
		case s2.addr:
			wantPath(t, p, s2, repeat(s2.asn, 2))
			if !p.Best {
				t.Errorf("s2's shorter path is not best")
			}
		default:
			t.Errorf("path from unexpected peer: %+v", p)
		}
	}

	// s2 makes its path the longer one: the best path moves to s1.
	apply(t, s2Sp, Route{pfxA, 6})
	w.waitUntil(t, "the best path to move to s1", func() (bool, string) {
		rib := received(t, upSp)
		for _, p := range rib[pfxA] {
			if p.Best {
				return p.Peer == s1.addr, ribString(rib)
			}
		}
		return false, ribString(rib)
	})
}

// TestIPv6 announces an IPv6 prefix over an IPv6 session on ::1 (two speakers
// on the same address, one listening, one dialing). GoBGP replaces the
// unspecified next hop with the session's address. An IPv4 route of the
// same speaker stays off the IPv6 session.
func TestIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: no IPv6 loopback: %v", err)
		}
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	recv := newNode(t, "receiver", "::1", 65000, true)
	send := newNode(t, "sender", "::1", 65001, false)
	recvSp := recv.start(t, recv.peerOf(send, true))
	sendSp := send.start(t, send.peerOf(recv, false))
	waitEstablished(t, sendSp, recv.addr)
	w := watchRIB(t, recvSp)

	v6 := netip.MustParsePrefix("2001:db8:10::/48")
	if d := apply(t, sendSp, Route{pfxA, 0}, Route{v6, 1}); d != (Diff{Announced: 2}) {
		t.Errorf("diff %+v, want 2 announced", d)
	}
	w.waitUntil(t, "the IPv6 prefix at the receiver", func() (bool, string) {
		rib := received(t, recvSp)
		return len(rib[v6]) == 1, ribString(rib)
	})
	rib := received(t, recvSp)
	wantPath(t, rib[v6][0], send, repeat(send.asn, 2))
	if len(rib) != 1 {
		t.Errorf("receiver has %s, want only %v (no IPv4 on an IPv6 session)", ribString(rib), v6)
	}
	if nh := nextHop(t, recvSp, v6); nh != netip.IPv6Loopback() {
		t.Errorf("next hop of %v at the receiver = %v, want ::1", v6, nh)
	}

	apply(t, sendSp, Route{pfxA, 0})
	w.waitUntil(t, "the IPv6 withdrawal", func() (bool, string) {
		rib := received(t, recvSp)
		return len(rib) == 0, ribString(rib)
	})
}

// TestIPv6OverIPv4 carries an IPv6 prefix over an IPv4 session that
// negotiates both families (Families), as the lab's sessions do: the
// receiver gets it with the sender's address (IPv4-mapped) as its next hop,
// beside the IPv4 prefix; and a session of the IPv4 family alone
// carries no IPv6 prefix.
func TestIPv6OverIPv4(t *testing.T) {
	recv := newNode(t, "receiver", "127.0.0.1", 65000, true)
	both := newNode(t, "both", "127.0.0.2", 65001, false)
	v4only := newNode(t, "v4only", "127.0.0.3", 65002, false)
	toBoth, toV4 := recv.peerOf(both, true), recv.peerOf(v4only, true)
	toBoth.Families, toV4.Families = []Family{IPv4, IPv6}, []Family{IPv4, IPv6}
	recvSp := recv.start(t, toBoth, toV4)
	fromBoth := both.peerOf(recv, false)
	fromBoth.Families = []Family{IPv4, IPv6}
	bothSp := both.start(t, fromBoth)
	v4Sp := v4only.start(t, v4only.peerOf(recv, false))
	waitEstablished(t, recvSp, both.addr, v4only.addr)
	w := watchRIB(t, recvSp)

	v6 := netip.MustParsePrefix("2001:db8:10::/48")
	v6b := netip.MustParsePrefix("2001:db8:20::/48")
	apply(t, bothSp, Route{pfxA, 0}, Route{v6, 1})
	apply(t, v4Sp, Route{pfxB, 0}, Route{v6b, 0})
	w.waitUntil(t, "both prefixes of the dual session, and the IPv4 one of the other", func() (bool, string) {
		rib := received(t, recvSp)
		return len(rib[v6]) == 1 && len(rib[pfxA]) == 1 && len(rib[pfxB]) == 1, ribString(rib)
	})
	rib := received(t, recvSp)
	wantPath(t, rib[v6][0], both, repeat(both.asn, 2))
	if len(rib[v6b]) != 0 {
		t.Errorf("the IPv4-only session carried %v: %s", v6b, ribString(rib))
	}
	// On the wire it is ::ffff:127.0.0.2 (16 bytes); GoBGP shows it in
	// the IPv4 form.
	if nh, want := nextHop(t, recvSp, v6), netip.MustParseAddr("127.0.0.2"); nh.Unmap() != want {
		t.Errorf("next hop of %v at the receiver = %v, want %v (IPv4-mapped)", v6, nh, want)
	}
}

// nextHop reads the next hop of prefix in sp's global RIB.
func nextHop(t *testing.T, sp *Speaker, prefix netip.Prefix) netip.Addr {
	t.Helper()
	var nh netip.Addr
	err := sp.bgp.ListPath(context.Background(), &api.ListPathRequest{
		TableType: api.TableType_GLOBAL,
		Family:    familyOf(prefix.Addr()),
		Prefixes:  []*api.TableLookupPrefix{{Prefix: prefix.String()}},
	}, func(d *api.Destination) {
		for _, p := range d.GetPaths() {
			nh, _ = netip.ParseAddr(pathNextHop(t, p.GetPattrs()))
		}
	})
	if err != nil {
		t.Fatalf("list path %v: %v", prefix, err)
	}
	return nh
}

func pathNextHop(t *testing.T, attrs []*anypb.Any) string {
	t.Helper()
	for _, a := range attrs {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatalf("attribute %s: %v", a.GetTypeUrl(), err)
		}
		switch m := m.(type) {
		case *api.NextHopAttribute:
			return m.GetNextHop()
		case *api.MpReachNLRIAttribute:
			if len(m.GetNextHops()) > 0 {
				return m.GetNextHops()[0]
			}
		}
	}
	return ""
}

// TestMD5 brings a session up with matching TCP-MD5 passwords and keeps one
// with a wrong password down.
func TestMD5(t *testing.T) {
	up := newNode(t, "upstream", "127.0.0.1", 65000, true)
	good := newNode(t, "good", "127.0.0.2", 65001, false)
	bad := newNode(t, "bad", "127.0.0.3", 65002, false)
	withPassword := func(p Peer, pw string) Peer { p.Password = pw; return p }
	upSp := up.start(t, withPassword(up.peerOf(good, true), "s3cret"), withPassword(up.peerOf(bad, true), "s3cret"))
	good.start(t, withPassword(good.peerOf(up, false), "s3cret"))
	bad.start(t, withPassword(bad.peerOf(up, false), "wrong"))
	for _, n := range []*node{up, good, bad} {
		for _, e := range n.logs.All() {
			if strings.Contains(e.Message, "md5") {
				t.Skipf("TCP-MD5 unavailable here: %s: %v", e.Message, e.ContextMap())
			}
		}
	}

	waitEstablished(t, upSp, good.addr)
	// The wrong password: wait until the bad speaker has failed to connect
	// twice (its SYNs are dropped), then its session must still be down.
	w := watchRIB(t, upSp)
	w.waitUntil(t, "two failed connects with the wrong password", func() (bool, string) {
		n := 0
		for _, e := range bad.logs.All() {
			if e.Message == "failed to connect" {
				n++
			}
		}
		return n >= 2, "failed connects so far: " + strconv.Itoa(n)
	})
	if ok, state := peersIn(t, upSp, "established", bad.addr); ok {
		t.Errorf("the session with the wrong password is established: %s", state)
	}
}

// TestClose: Close is idempotent, ends Established and makes later calls
// fail with ErrClosed.
func TestClose(t *testing.T) {
	n := newNode(t, "alone", "127.0.0.1", 65000, true)
	sp := n.start(t)
	apply(t, sp, Route{pfxA, 1})
	if err := sp.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := sp.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, ok := <-sp.Established(); ok {
		t.Errorf("Established is not closed")
	}
	if _, err := sp.Apply(context.Background(), []Route{{pfxA, 1}}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v, want ErrClosed", err)
	}
	if _, err := sp.Peers(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("peers after close: %v, want ErrClosed", err)
	}
	if _, err := sp.Received(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("received after close: %v, want ErrClosed", err)
	}
	if r := sp.Routes(); len(r) != 0 {
		t.Errorf("routes after close = %v, want none", r)
	}
	// The listener is gone.
	l, err := net.Listen("tcp", net.JoinHostPort(n.addr.String(), strconv.Itoa(int(n.port))))
	if err != nil {
		t.Errorf("the port is still taken after close: %v", err)
	} else {
		l.Close()
	}
}

func waitSignal(t *testing.T, sp *Speaker, want netip.Addr) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case a, ok := <-sp.Established():
			if !ok {
				t.Fatalf("Established closed")
			}
			if a == want {
				return
			}
		case <-deadline:
			t.Fatalf("no Established signal for %v within %v", want, waitTimeout)
		}
	}
}

// drain empties c without blocking and returns it.
func drain(c <-chan netip.Addr) <-chan netip.Addr {
	for {
		select {
		case _, ok := <-c:
			if !ok {
				return c
			}
		default:
			return c
		}
	}
}

func peers(t *testing.T, sp *Speaker) []PeerStatus {
	t.Helper()
	ps, err := sp.Peers(context.Background())
	if err != nil {
		t.Fatalf("peers: %v", err)
	}
	return ps
}

func wantRoutes(t *testing.T, sp *Speaker, want ...Route) {
	t.Helper()
	slices.SortFunc(want, func(a, b Route) int { return comparePrefix(a.Prefix, b.Prefix) })
	if got := sp.Routes(); !slices.Equal(got, want) {
		t.Errorf("Routes() = %v, want %v", got, want)
	}
}

func wantPath(t *testing.T, p ReceivedPath, from *node, asPath []uint32) {
	t.Helper()
	if p.Peer != from.addr || p.PeerASN != from.asn || !slices.Equal(p.ASPath, asPath) {
		t.Errorf("path %v from %v AS%d with AS path %v, want from %v AS%d with %v",
			p.Prefix, p.Peer, p.PeerASN, p.ASPath, from.addr, from.asn, asPath)
	}
}

func ribString(rib map[netip.Prefix][]ReceivedPath) string {
	var b strings.Builder
	for _, paths := range rib {
		for _, p := range paths {
			b.WriteString(p.Prefix.String() + " from " + p.Peer.String() + " path " + asPathString(p.ASPath))
			if p.Best {
				b.WriteString(" best")
			}
			b.WriteString("; ")
		}
	}
	if b.Len() == 0 {
		return "nothing"
	}
	return b.String()
}

func asPathString(asns []uint32) string {
	s := make([]string, len(asns))
	for i, a := range asns {
		s[i] = strconv.FormatUint(uint64(a), 10)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// TestAnnouncerKeepsNothing: a speaker without AcceptRoutes keeps nothing
// its peers send, so its own path stays its best and is announced even when
// a peer sends it a shorter path for the same prefix.
func TestAnnouncerKeepsNothing(t *testing.T) {
	up := newNode(t, "upstream", "127.0.0.1", 65000, true)
	other := newNode(t, "other", "127.0.0.3", 65002, true)
	site := newNode(t, "site", "127.0.0.2", 65001, false)
	cfg := site.config(site.peerOf(up, false), site.peerOf(other, false))
	cfg.AcceptRoutes = false
	siteSp := site.startConfig(t, cfg)
	upSp := up.start(t, up.peerOf(site, true))
	otherSp := other.start(t, other.peerOf(site, true))
	peers(t, siteSp) // orders the last start before the site's sessions (see the package doc)
	waitEstablished(t, siteSp, up.addr, other.addr)
	w := watchRIB(t, upSp)

	apply(t, otherSp, Route{pfxA, 0}) // a shorter path, sent to the site
	apply(t, siteSp, Route{pfxA, 3})
	w.waitUntil(t, "the site's path at the upstream", func() (bool, string) {
		rib := received(t, upSp)
		return len(rib[pfxA]) == 1 && rib[pfxA][0].Peer == site.addr, ribString(rib)
	})
	wantPath(t, received(t, upSp)[pfxA][0], site, repeat(site.asn, 4))
	// The other speaker did send its path to the site.
	ow := watchRIB(t, otherSp)
	ow.waitUntil(t, "the other speaker to advertise to the site", func() (bool, string) {
		ps := peers(t, otherSp)
		return len(ps) == 1 && ps[0].Advertised == 1, fmt.Sprintf("%+v", ps)
	})
	if rib := received(t, siteSp); len(rib) != 0 {
		t.Errorf("the site kept what its peers sent: %s", ribString(rib))
	}
}

// TestWatchRIB: WatchRIB says when what the speaker received changes (an
// update, a best path that moves, a session lost), and is quiet while
// nothing changes: the route observer reads its RIB only then.
func TestWatchRIB(t *testing.T) {
	u := newUpstreamOfTwo(t)
	s1, s2, upSp, s1Sp, s2Sp := u.s1, u.s2, u.upSp, u.s1Sp, u.s2Sp
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := upSp.WatchRIB(ctx, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	// expect waits for a change that makes cond true, reading the RIB
	// only when told of one.
	expect := func(what string, cond func(map[netip.Prefix][]ReceivedPath) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case <-changed:
				if rib := received(t, upSp); cond(rib) {
					return
				}
			case <-deadline:
				t.Fatalf("%s: no change told within 10s; the RIB: %s", what, ribString(received(t, upSp)))
			}
		}
	}
	best := func(rib map[netip.Prefix][]ReceivedPath) netip.Addr {
		for _, p := range rib[pfxA] {
			if p.Best {
				return p.Peer
			}
		}
		return netip.Addr{}
	}
	apply(t, s1Sp, Route{pfxA, 3})
	expect("s1's path", func(rib map[netip.Prefix][]ReceivedPath) bool { return best(rib) == s1.addr })
	apply(t, s2Sp, Route{pfxA, 1})
	expect("s2's shorter path best", func(rib map[netip.Prefix][]ReceivedPath) bool { return best(rib) == s2.addr })

	// Quiet while nothing changes, sessions up and idle. The
	// last updates may still be told for a moment (an adj-in event, then
	// a best path's): wait until 500 ms pass without one, at most 10 s.
	settled := time.After(10 * time.Second)
	for quiet := false; !quiet; {
		select {
		case <-changed:
		case <-time.After(500 * time.Millisecond):
			quiet = true
		case <-settled:
			t.Fatal("changes still told 10s after the last update")
		}
	}
	select {
	case <-changed:
		t.Error("a change told while nothing changed")
	case <-time.After(2 * time.Second):
	}

	if err := s2Sp.Close(); err != nil {
		t.Fatal(err)
	}
	expect("s2's session lost", func(rib map[netip.Prefix][]ReceivedPath) bool { return best(rib) == s1.addr })
}
