package fabric

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The files in testdata/ are what FRR 8.4 printed in TestFabricBGP
// (go test -run TestFabricBGP -args -update): sites a, b and c announce
// 203.0.113.0/24 and 2001:db8:100::/48 with AS paths of 3, 1 and 2.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		file          string
		peers         []string // in order
		best          Path
		bestLinkLocal bool
	}{
		{
			file:  "route4.json",
			peers: []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"},
			best: Path{ASPath: []uint32{64512}, Peer: netip.MustParseAddr("192.0.2.12"),
				NextHop: netip.MustParseAddr("192.0.2.12"), Best: true},
		},
		{
			file:  "route6.json",
			peers: []string{"2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"},
			best: Path{ASPath: []uint32{64512}, Peer: netip.MustParseAddr("2001:db8:1::12"),
				NextHop: netip.MustParseAddr("2001:db8:1::12"), Best: true},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			paths, err := parseRoute(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var peers []string
			var best []Path
			for _, p := range paths {
				peers = append(peers, p.Peer.String())
				if p.Best {
					best = append(best, p)
				}
			}
			if !slices.Equal(peers, tc.peers) {
				t.Errorf("peers %v, want %v", peers, tc.peers)
			}
			if len(best) != 1 || !equalPath(best[0], tc.best) {
				t.Errorf("best %+v, want %+v", best, tc.best)
			}
			if want := []uint32{64511, 64511, 64511}; !slices.Equal(paths[0].ASPath, want) {
				t.Errorf("AS path of a: %v, want %v", paths[0].ASPath, want)
			}
		})
	}
	paths, err := parseRoute(readTestdata(t, "route-none.json"))
	if err != nil || len(paths) != 0 {
		t.Errorf("a prefix without paths: %+v, %v", paths, err)
	}
	if _, err := parseRoute([]byte("% Network not in table")); err == nil {
		t.Error("text parsed as a route")
	}
}

func TestParseTable(t *testing.T) {
	for file, want := range map[string]map[netip.Prefix]Path{
		"table4.json": {v4Net: {ASPath: []uint32{64512}, Peer: netip.MustParseAddr("192.0.2.12"),
			NextHop: netip.MustParseAddr("192.0.2.12"), Best: true}},
		"table6.json": {v6Net: {ASPath: []uint32{64512}, Peer: netip.MustParseAddr("2001:db8:1::12"),
			NextHop: netip.MustParseAddr("2001:db8:1::12"), Best: true}},
	} {
		got, err := parseTable(readTestdata(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %+v, want %+v", file, got, want)
		}
		for p, w := range want {
			if !equalPath(got[p], w) {
				t.Errorf("%s: %s: %+v, want %+v", file, p, got[p], w)
			}
		}
	}
	if _, err := parseTable([]byte(`{"routes":{"nonsense":[]}}`)); err == nil {
		t.Error("a bad prefix parsed")
	}
}

func TestParseNeighbors(t *testing.T) {
	got, err := parseNeighbors(readTestdata(t, "neighbors.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.11", "192.0.2.12", "192.0.2.13", "2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"} {
		if s := got[netip.MustParseAddr(a)]; s != "Established" {
			t.Errorf("%s: %q, want Established", a, s)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d neighbors, want 6: %v", len(got), got)
	}
	got, err = parseNeighbors([]byte(`{"eth0":{"bgpState":"Active"},"192.0.2.9":{"bgpState":"Connect"}}`))
	if err != nil || len(got) != 1 || got[netip.MustParseAddr("192.0.2.9")] != "Connect" {
		t.Errorf("unnumbered neighbor: %v, %v", got, err)
	}
}

func TestParseASPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []uint32
		bad  bool
	}{
		{in: "", want: nil},
		{in: "64511 64511", want: []uint32{64511, 64511}},
		{in: "64511 {64512,64513}", want: []uint32{64511, 64512, 64513}},
		{in: "(65001 65002) 64511", want: []uint32{65001, 65002, 64511}},
		{in: "4200000000", want: []uint32{4200000000}},
		{in: "4294967296", bad: true},
		{in: "Local", bad: true},
	} {
		got, err := parseASPath(tc.in)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("parseASPath(%q) = %v, %v; want %v, error %t", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"route4.json", "route6.json", "route-none.json", "table4.json", "table6.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"192.0.2.1":{"bgpState":"Idle"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseRoute(b)
		parseTable(b)
		parseNeighbors(b)
		parseASPath(string(b))
	})
}
