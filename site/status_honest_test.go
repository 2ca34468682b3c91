package site_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/zdt-project/zdt/site"
	"github.com/zdt-project/zdt/site/config"
)

// TestGuestStatesAreHonest: a guest shows running only where the placed
// host's site reports it running; placed at a live site and not seen yet it
// is starting, placed at a site without a lease its state is unknown.
func TestGuestStatesAreHonest(t *testing.T) {
	cfg := alarmCluster()
	for _, tc := range []struct {
		name   string
		change func(*site.Snapshot)
		state  string
		reason string
	}{
		{"runs where placed", func(*site.Snapshot) {}, "running", ""},
		{"not started yet", func(s *site.Snapshot) { s.Hosts = map[string]site.HostsReport{} }, "starting",
			"placed on host a1; site a does not report it running there yet"},
		{"runs elsewhere only", func(s *site.Snapshot) {
			s.Hosts = map[string]site.HostsReport{}
			run(s, "b", "b1", "web-1")
		}, "starting", "placed on host a1; site a does not report it running there yet"},
		{"placed at a dark site", func(s *site.Snapshot) { dark(s, "a") }, "unknown",
			"placed on host a1 at site a, which holds no lease: whether it runs is not known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := healthy()
			tc.change(snap)
			st := site.BuildStatus(cfg, snap, nil)
			g := st.Guests[0]
			if g.Name != "web-1" || g.State != tc.state || (tc.reason != "" && g.Reason != tc.reason) {
				t.Errorf("web-1: state %q (%q); want %q (%q)", g.State, g.Reason, tc.state, tc.reason)
			}
			if h := st.Judge(); tc.state != "running" && !strings.Contains(strings.Join(h.Reasons, "; "), "gold guest web-1 is "+tc.state) {
				t.Errorf("health %+v; want it to name web-1 %s", h, tc.state)
			}
			if p := st.Guests[1]; p.State != "preempted" {
				t.Errorf("web-2: %q; want preempted, as placed", p.State)
			}
		})
	}
}

// TestDarkSitesPeersShowDown: the BGP sessions of a site without a lease
// are listed down, from the config, instead of vanishing.
func TestDarkSitesPeersShowDown(t *testing.T) {
	cfg := alarmCluster()
	for i := range cfg.Sites {
		cfg.Sites[i].BGP = &config.SiteBGP{ASN: 64601 + uint32(i), Peers: []config.BGPPeer{{Address: netip.MustParseAddr("192.0.2.1"), ASN: 64500}}}
	}
	snap := healthy()
	snap.BGP = map[string]site.BGPReport{}
	for _, s := range []string{"a", "b", "c"} {
		snap.BGP[s] = site.BGPReport{Site: s, Peers: []site.BGPPeer{{Address: "192.0.2.1", ASN: 64500, State: "established"}}}
	}
	dark(snap, "b")
	st := site.BuildStatus(cfg, snap, nil)
	var got []string
	for _, p := range st.Peers {
		got = append(got, p.Site+" "+p.Address+" "+p.State)
	}
	want := "a 192.0.2.1 established|b 192.0.2.1 down (site holds no lease)|c 192.0.2.1 established"
	if strings.Join(got, "|") != want {
		t.Errorf("peers %q; want %q", got, want)
	}
}
