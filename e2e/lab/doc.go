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
//	                     path is too long for a unix socket
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
// Create makes a fresh lab (keys, certificates, config, domain XML, no etcd
// data) and Open takes up an existing one; StartSite, KillSite and Stop
// manage the processes, WaitHealthy and WaitAnswering wait on their
// /healthz and for the libvirtds to answer. The sites, addresses, timings,
// hosts, services and guests of the sample live in one place,
// DefaultTopology.
//
// The lab needs Linux: it reads /proc to tell its controllers from other
// processes that happen to reuse their pids.
package lab
