// Package fabric builds a test-bed of network namespaces for zdt's
// acceptance tests, with FRR as the upstream router.
//
// New makes, for a list of sites:
//
//	Upstream  a bridge with 192.0.2.1/24 and 2001:db8:1::1/64: the
//	          upstream router's namespace (StartFRR runs FRR there)
//	Fabric    a bridge with 198.51.100.1/24: the sites' etcd peer
//	          network, through which the test reaches the sites
//	site i    a veth to the upstream bridge (192.0.2.(11+i)/24 and
//	          2001:db8:1::(11+i)/64, the same digits: 2001:db8:1::11 for
//	          site 0) and a veth to the fabric bridge (198.51.100.(11+i)/24)
//
// IPv6 addresses skip duplicate address detection and survive their link
// going down. A Site's links are cut and healed one at a time (CutFabric,
// CutUpstream), to partition its etcd while its BGP sessions stay up, or
// the reverse. The upstream router sits on a bridge that stays up when one
// site's link goes down: it notices a cut only when the BGP hold time
// expires, so use a short one. NS.AddLocalLink adds a link for service
// addresses (a dummy, or a veth on kernels without dummy interfaces).
//
// Processes run in a namespace with NS.Command; the test process opens
// sockets in one with NS.DialContext, NS.Listen and NS.Do.
//
// StartFRR runs an FRR bgpd, with its own zebra, in a namespace, isolated
// from any other FRR on the machine, and reads its routes over bgpd's vty
// socket: FRR.Best, FRR.Paths, FRR.Table, FRR.Neighbors, FRR.Show.
//
// Everything is removed in t.Cleanup, also when the test fails. Without
// root, ip or FRR the tests that need them are skipped, unless the
// environment variable CI is "true": then they fail. Install with:
//
//	apt-get install -y --no-install-recommends iproute2 frr
package fabric
