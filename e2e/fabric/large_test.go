package fabric

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestFabricTableLarge announces 10,000 IPv6 prefixes from one site and
// reads them at the upstream with one Table call.
func TestFabricTableLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips announcing 10,000 prefixes")
	}
	const n = 10000
	f := New(t, []string{"a"})
	a := f.Sites[0]
	var nets []netip.Prefix
	base := netip.MustParseAddr("2001:db8:200::")
	for i := range n {
		b := base.As16()
		b[14], b[15] = byte((i+1)>>8), byte(i+1)
		nets = append(nets, netip.PrefixFrom(netip.AddrFrom16(b), 128))
	}
	start := time.Now()
	StartFRR(t, a.NS, FRRConfig{ASN: 64511, RouterID: a.UpstreamAddr4, NoKernel: true, Networks: nets,
		Neighbors: []FRRNeighbor{{Address: f.UpstreamAddr6, ASN: 64500}}})
	up := StartFRR(t, f.Upstream, FRRConfig{ASN: 64500, RouterID: f.UpstreamAddr4,
		Neighbors: []FRRNeighbor{{Address: a.UpstreamAddr6, ASN: 64511}}})
	t.Logf("started in %v", time.Since(start))
	ctx := ctxTimeout(t, 50*time.Second)
	if err := up.WaitEstablished(ctx, a.UpstreamAddr6); err != nil {
		t.Fatal(err)
	}
	var calls int
	var last time.Duration
	err := waitFor(40*time.Second, func() error {
		s := time.Now()
		table, err := up.Table(ctx, IPv6)
		last = time.Since(s)
		calls++
		if err == nil && len(table) != n {
			err = fmt.Errorf("%d prefixes", len(table))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s := time.Now()
	out, err := up.Show(ctx, "show bgp ipv6 unicast json")
	if err != nil {
		t.Fatal(err)
	}
	show := time.Since(s)
	s = time.Now()
	if _, err := parseTable(out); err != nil {
		t.Fatal(err)
	}
	t.Logf("Table: bgpd prints %d bytes in %v, parsed in %v", len(out), show, time.Since(s))
	t.Logf("all %d prefixes at the upstream %v after start; %d Table calls, the last took %v", n, time.Since(start), calls, last)
}
