// Package lab runs a three-site zdt cluster on one machine, for people to
// try zdt and for the end-to-end tests to break it.
//
// A lab lives in one directory:
//
//	zdt.yaml             the cluster's config (a commented sample users read)
//	pki/                 a private CA, one certificate per site, one client certificate
//	<site>/etcd/         the site's embedded etcd member
//	<site>/controller.log the controller's output, appended across restarts
//	<site>/pid           the pid of the site's controller while it runs
//
// Each site is one process, `zdt controller --config DIR/zdt.yaml --site S
// --embed-etcd DIR/S/etcd`, listening on its own loopback address
// (127.0.0.11 for a, .12 for b, .13 for c), so no root is needed. Every site
// runs in its own process group: it outlives the `zdt lab` that started it
// and is killed as a whole when the site "goes dark".
//
// Create makes a fresh lab (keys, certificates, config, no etcd data) and
// Open takes up an existing one; StartSite, KillSite and Stop manage the
// processes, WaitHealthy and WaitAnswering wait on their /healthz. The
// sites, addresses, timings and services of the sample live in one place,
// DefaultTopology.
//
// The lab needs Linux: it reads /proc to tell its controllers from other
// processes that happen to reuse their pids.
package lab
