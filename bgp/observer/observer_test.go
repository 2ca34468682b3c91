package observer

import (
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/zdt-project/zdt/bgp/speaker"
	"github.com/zdt-project/zdt/site/config"
)

// TestRoutes: paths lead to the site of the peer that sent them, or else to
// the site whose ASN originated them; only service prefixes are kept; the
// best path gives the record's site and AS path.
func TestRoutes(t *testing.T) {
	web := netip.MustParsePrefix("203.0.113.0/25")
	o := &Observer{
		prefixes: map[netip.Prefix]bool{web: true},
		byPeer:   map[netip.Addr]string{netip.MustParseAddr("127.0.0.11"): "a"},
		byASN:    map[uint32]string{64602: "b"},
		log:      zap.NewNop(),
	}
	now := time.Unix(1000, 0)
	routes := o.Routes([]speaker.ReceivedPath{
		{Prefix: web, Peer: netip.MustParseAddr("127.0.0.11"), ASPath: []uint32{64601, 64601, 64601}},
		{Prefix: web, Peer: netip.MustParseAddr("192.0.2.1"), ASPath: []uint32{64500, 64602}, Best: true},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Peer: netip.MustParseAddr("127.0.0.11"), ASPath: []uint32{64601}, Best: true},
	}, now)
	if len(routes) != 1 {
		t.Fatalf("routes = %+v, want only the service prefix", routes)
	}
	r := routes[web.String()]
	if r.BestSite != "b" || len(r.ASPath) != 2 || len(r.Paths) != 2 || !r.Observed.Equal(now) {
		t.Errorf("record = %+v; want the best path's site b (by its origin ASN), 2 paths", r)
	}
	if r.Paths[0].Site != "a" || r.Paths[1].Site != "b" {
		t.Errorf("paths = %+v; want a (by peer) then b (by origin ASN)", r.Paths)
	}
}

// TestStartNeedsObserver: a config without an observer section is refused.
func TestStartNeedsObserver(t *testing.T) {
	if _, err := Start(t.Context(), Config{Cluster: &config.Cluster{}}); err == nil {
		t.Error("Start without bgp.observer succeeded")
	}
}
