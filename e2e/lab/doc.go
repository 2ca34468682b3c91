// Package lab runs a three-site zdt cluster on one machine, for people to
// try zdt and for the end-to-end tests to break it.
//
// A lab lives in one directory:
//
//	zdt.yaml             the cluster's config (a commented sample users read)
//	pki/                 a private CA, one certificate per site, one client certificate
//	domains/<guest>.xml  the guests' libvirt domain XML (with libvirtd)
//	<site>/etcd/         the site's embedded etcd member
//	<site>/controller.log the controller's output, appended across restarts
//	<site>/pid           the pid of the site's controller while it runs
//	<site>/libvirt/      the site's libvirtd (with libvirtd): its libvirtd.conf,
//	                     libvirtd.log, pid, and its sockets unless the lab's
//	                     path is too long for a unix socket; in a scale
//	                     lab, node-<host>.xml for each of the site's hosts
//	<site>/postgres/     the site's PostgreSQL server (with PostgreSQL): data/,
//	                     postgresql.log, startup.log
//	observer/            the route observer's pid and observer.log
//	secrets/             the PostgreSQL users' passwords (pg.pass, pgpass)
//
// Each site is one process, `zdt controller --config DIR/zdt.yaml --site S
// --embed-etcd DIR/S/etcd`, listening on its own loopback address
// (127.0.0.11 for a, .12 for b, .13 for c), so no root is needed but for
// the guests (below). Every site runs in its own process group: it outlives
// the `zdt lab` that started it and is killed as a whole when the site
// "goes dark".
//
// When libvirtd is installed (in PATH or /usr/sbin), every site also has a
// hypervisor: its own libvirtd, serving libvirt's test driver on a unix
// socket, which the site's controller runs its guests on, and the services
// have guests of every tier. A site's libvirtd starts and dies with the
// site: a dark site loses its hypervisor and its guests, as a real one
// would. Each libvirtd runs with LIBVIRT_DRIVER_DIR an empty directory, so
// it loads no driver module and needs no libvirt-qemu user, and several
// can run side by side. The libvirtds need root: as another user libvirtd
// serves no socket where the lab asks. Without libvirtd, or without root,
// the lab runs without hosts and guests; InstallLibvirtd says how to get
// libvirtd.
//
// Every site has a BGP speaker (AS 64601, 64602, 64603) with one session,
// from its own address, to the lab's route observer, `zdt observer`, on
// 127.0.0.10:1179, which stands for the upstream: it runs beside the
// sites, outlives a site that goes dark, and publishes where its best path
// for each service prefix leads. The sessions are IPv4, so only the IPv4
// prefixes reach it.
//
// When the PostgreSQL server is installed (/usr/lib/postgresql/*/bin),
// service db keeps its data in replication group pg: one server per site on
// the site's address, port 15432, the first primary at db's preferred site
// (made with initdb), the others pg_basebackup clones streaming from it.
// pg_ctl starts each in a session of its own, so the lab tracks them by
// their postmaster.pid, whoever started them: a site that goes dark loses
// its server (SIGKILL), and when the site comes back its controller rewinds
// it and starts it as a standby. As root the servers run as user postgres,
// which must reach the lab directory. Without PostgreSQL the lab runs
// without the group; InstallPostgres says how to get it.
//
// Create makes a fresh lab (keys, certificates, config, domain XML, no etcd
// data) and Open takes up an existing one; StartSite, KillSite and Stop
// manage the processes, WaitHealthy and WaitAnswering wait on their
// /healthz and for the libvirtds to answer. The sites, addresses, timings,
// hosts, services and guests of the sample live in one place,
// DefaultTopology.
//
// A scale lab (ScaleTopology, `zdt lab --services N --guests M --hosts H
// [--prefixes-per-service P]`) grows the default one to measure zdt at a
// provider's size: services svc-0001 onwards besides web and db (which
// keep group pg), each with P IPv6 /48s of 2001:db8:1000::/36 onwards and
// its sites in an order rotated by one per service, so that the preferred
// sites take turns; M guests dealt to them in blocks, in a cycle of ten
// (Gold-Zone-A, Gold-Zone-B, Silver-Zone-A, Silver-Zone-B, Silver, five
// Bronze), the zone rules per service; and H hosts instead of one per
// site, spread over the sites, all of one size: room for every guest with
// 20% to spare while all sites are up, and for every gold guest with any
// one site dark (bronze, then silver guests are preempted). The same
// numbers give the same lab. All hosts of a site share its libvirtd, each
// a hypervisor of its own (SiteSpec.OwnHypervisors): the test driver
// opened on the host's node XML (the URI's name parameter,
// test:///DIR/<site>/libvirt/node-<host>.xml), which states its size. The
// driver keeps such a hypervisor for one connection, the controller's:
// another connection, such as an outside fence, finds a new one without
// guests, where every connection to the default lab's test:///default
// sees the same guests.
//
// A lab in network namespaces (Topology.InNetns, `zdt lab --netns`, root
// and FRR needed) is the test bed of the drills: each site runs in a
// namespace of its own (package e2e/fabric builds them; their names begin
// with the id in DIR/netns), with a link to the other sites (the fabric,
// 198.51.100.0/24) and a link to the upstream router, FRR in a namespace of
// its own (192.0.2.1 and 2001:db8:1::1), which installs its best paths into
// its kernel. The sites speak BGP to FRR over IPv4 and IPv6, and to the
// route observer, which runs beside FRR (192.0.2.4) and reaches etcd over
// its own link to the fabric; the machine's namespace has one too
// (198.51.100.2), so the zdt commands reach the sites. Every service has an
// address in each of its prefixes, which the active site's zdt0 carries (a
// bridge without ports: the kernel may have no dummy interfaces), and every
// site runs a service responder (package responder) on port 8080. A client
// namespace on the upstream's bridge routes through FRR: its requests to a
// service's address follow BGP to the active site. KillSite cuts the site's
// links before it kills its processes; IsolateSite cuts it off from the
// other sites alone; StartSite heals the links. Stop removes the
// namespaces.
//
// The lab needs Linux: it reads /proc to tell its controllers from other
// processes that happen to reuse their pids.
package lab
