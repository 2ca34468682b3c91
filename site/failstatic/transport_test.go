package failstatic_test

import (
	"context"
	"crypto/tls"
	"github.com/zdt-project/zdt/site/failstatic"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdt-project/zdt/site/sitetest"
)

// peer serves a site's answers over mutual failstatic.TLS on loopback; it counts
// the pledges it gave.
type peer struct {
	addr    string
	pledges atomic.Int32
}

func servePeer(t *testing.T, name string, serverTLS *tls.Config, member failstatic.Member, delay time.Duration) *peer {
	t.Helper()
	p := &peer{}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	srv := &http.Server{Handler: failstatic.Handler(func(ctx context.Context, pledge bool) failstatic.View {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
		}
		if pledge {
			p.pledges.Add(1)
		}
		v := failstatic.View{Site: name, Member: member, Pledged: pledge}
		if member == failstatic.MemberLeader {
			v.Leader = 7
		}
		return v
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func mustTLS(t *testing.T, pki sitetest.PKI, name string) (server, client *tls.Config) {
	t.Helper()
	s, c, err := failstatic.TLS(pki.CA, pki.Cert[name], pki.Key[name])
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func ownView(member failstatic.Member) func(context.Context, bool) failstatic.View {
	return func(context.Context, bool) failstatic.View { return failstatic.View{Site: "a", Member: member} }
}

// TestCheckOverMutualTLS: with every site answering "no leader", the check
// holds after two rounds and every peer pledged once; a peer that sees a
// leader rules it out in the first round, and nobody pledges.
func TestCheckOverMutualTLS(t *testing.T) {
	pki := sitetest.NewPKI(t, "a", "b", "c")
	_, aClient := mustTLS(t, pki, "a")
	bServer, _ := mustTLS(t, pki, "b")
	cServer, _ := mustTLS(t, pki, "c")
	b := servePeer(t, "b", bServer, failstatic.MemberNoLeader, 0)
	c := servePeer(t, "c", cServer, failstatic.MemberNoLeader, 0)
	chk := &failstatic.Checker{Me: "a", Peers: map[string]string{"b": b.addr, "c": c.addr}, Client: failstatic.NewClient(aClient),
		Timeout: 2 * time.Second, Own: ownView(failstatic.MemberNoLeader)}
	before := time.Now()
	v := chk.Check(t.Context())
	if !v.Hold || v.Sent.Before(before) {
		t.Fatalf("verdict %+v; want hold, sent after %s", v, before)
	}
	if b.pledges.Load() != 1 || c.pledges.Load() != 1 {
		t.Errorf("pledges b %d c %d, want one each", b.pledges.Load(), c.pledges.Load())
	}

	leader := servePeer(t, "c", cServer, failstatic.MemberLeader, 0)
	chk.Peers["c"] = leader.addr
	chk.Own = func(context.Context, bool) failstatic.View {
		return failstatic.View{Site: "a", Member: failstatic.MemberLeader, Leader: 7}
	}
	if v := chk.Check(t.Context()); v.Hold || !strings.Contains(v.Why, "the members of a, c follow leader 7") {
		t.Errorf("with a and c following a leader: %+v", v)
	}
	if b.pledges.Load() != 1 || leader.pledges.Load() != 0 {
		t.Errorf("pledges asked although the first round ruled it out: b %d c %d", b.pledges.Load(), leader.pledges.Load())
	}
}

// TestCheckRefusesStrangers: a server refuses a client without a
// certificate of the cluster's CA, and a client refuses a server with one
// of another CA; both count as a silent site.
func TestCheckRefusesStrangers(t *testing.T) {
	pki := sitetest.NewPKI(t, "a", "b")
	other := sitetest.NewPKI(t, "a", "b")
	_, aClient := mustTLS(t, pki, "a")
	_, strangerClient := mustTLS(t, other, "a")
	bServer, _ := mustTLS(t, pki, "b")
	strangerServer, _ := mustTLS(t, other, "b")
	b := servePeer(t, "b", bServer, failstatic.MemberNoLeader, 0)

	stranger := &failstatic.Checker{Me: "a", Peers: map[string]string{"b": b.addr}, Client: failstatic.NewClient(strangerClient),
		Timeout: 2 * time.Second, Own: ownView(failstatic.MemberNoLeader)}
	if v := stranger.Check(t.Context()); v.Hold || !strings.Contains(v.Why, "did not answer") {
		t.Errorf("a client of another CA: %+v", v)
	}
	noCert := &failstatic.Checker{Me: "a", Peers: map[string]string{"b": b.addr},
		Client:  failstatic.NewClient(&tls.Config{RootCAs: aClient.RootCAs, MinVersion: tls.VersionTLS13}),
		Timeout: 2 * time.Second, Own: ownView(failstatic.MemberNoLeader)}
	if v := noCert.Check(t.Context()); v.Hold || !strings.Contains(v.Why, "did not answer") {
		t.Errorf("a client without a certificate: %+v", v)
	}
	fake := servePeer(t, "b", strangerServer, failstatic.MemberNoLeader, 0)
	chk := &failstatic.Checker{Me: "a", Peers: map[string]string{"b": fake.addr}, Client: failstatic.NewClient(aClient),
		Timeout: 2 * time.Second, Own: ownView(failstatic.MemberNoLeader)}
	if v := chk.Check(t.Context()); v.Hold || !strings.Contains(v.Why, "did not answer") {
		t.Errorf("a server of another CA: %+v", v)
	}
	if b.pledges.Load() != 0 || fake.pledges.Load() != 0 {
		t.Errorf("pledges given to strangers: %d, %d", b.pledges.Load(), fake.pledges.Load())
	}
}

// TestCheckSlowPeerIsSilent: a site that answers after the round's
// timeout counts as silent, and the check ends within the timeout.
func TestCheckSlowPeerIsSilent(t *testing.T) {
	pki := sitetest.NewPKI(t, "a", "b")
	_, aClient := mustTLS(t, pki, "a")
	bServer, _ := mustTLS(t, pki, "b")
	b := servePeer(t, "b", bServer, failstatic.MemberNoLeader, time.Second)
	const timeout = 200 * time.Millisecond
	chk := &failstatic.Checker{Me: "a", Peers: map[string]string{"b": b.addr}, Client: failstatic.NewClient(aClient),
		Timeout: timeout, Own: ownView(failstatic.MemberNoLeader)}
	start := time.Now()
	v := chk.Check(t.Context())
	took := time.Since(start)
	if v.Hold || !strings.Contains(v.Why, "site b did not answer") {
		t.Errorf("a slow site: %+v", v)
	}
	if took > timeout+time.Second/2 {
		t.Errorf("the check took %s with a round timeout of %s", took, timeout)
	}
}
